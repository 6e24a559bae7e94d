"""Filmstrips: the camera frames of an episode at the moments that matter, from the bag.

Every failed episode gets one (up to ``MAX_FAILED``), and the first ``MAX_SUCCEEDED``
successful ones, so a long run's report stays small. Frames are the recorded
``/camera/image_raw`` (what the camera saw, before preprocessing), as PNG.
"""
from __future__ import annotations

import base64
import bisect

import numpy as np

from sim2real_bringup.report_data import read_frames

MAX_FAILED = 30
MAX_SUCCEEDED = 5
NS = 10**9
# moments shown with the first frame at or after them; the others with the last before
AFTER = ('start', 'after closing')


def chosen(episodes: list[dict]) -> list[int]:
    """Indices of the episodes that get a filmstrip."""
    failed = [i for i, e in enumerate(episodes) if not e['success']][:MAX_FAILED]
    succeeded = [i for i, e in enumerate(episodes) if e['success']][:MAX_SUCCEEDED]
    return sorted(failed + succeeded)


def _png(frame: np.ndarray) -> str:
    import cv2
    ok, data = cv2.imencode('.png', np.ascontiguousarray(frame[..., ::-1]))
    return base64.b64encode(data.tobytes()).decode('ascii') if ok else ''


def filmstrips(bag, episodes: list[dict], frame_ns: list[int], start_ns: int) -> dict:
    """``{episode index: [(moment, t_s, frame_t_s or None, base64 PNG or '')]}``.

    ``frame_ns``: the camera's receive times (sorted); ``start_ns``: the bag's start, the
    origin of the episodes' times.
    """
    picks: dict[int, list] = {}
    for i in chosen(episodes):
        episode = episodes[i]
        low = start_ns + round(episode['t_start'] * NS)
        high = start_ns + round(episode['t_end'] * NS)
        row = []
        for label, t in episode['moments']:
            at = start_ns + round(t * NS)
            if label in AFTER:
                k = bisect.bisect_left(frame_ns, at)
                frame = frame_ns[k] if k < len(frame_ns) and frame_ns[k] <= high else None
            else:
                k = bisect.bisect_right(frame_ns, at) - 1
                frame = frame_ns[k] if k >= 0 and frame_ns[k] >= low else None
            row.append((label, t, frame))
        picks[i] = row
    images = read_frames(bag, {f for row in picks.values() for _, _, f in row if f is not None})
    return {i: [(label, t, None if f is None else (f - start_ns) / NS,
                 _png(images[f]) if f in images else '') for label, t, f in row]
            for i, row in picks.items()}

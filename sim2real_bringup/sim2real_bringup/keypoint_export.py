"""Keypoint labels for camera frames of collected episodes, from what the robot measured.

Fine-tuning the keypoint network on the robot needs the pixels of its keypoints in real
frames, and nobody on the robot knows them. The robot does know two things:

* **The grasp.** When a successful episode's gripper check says ``held``, the fingers are
  closed on the object, so the object's footprint centre is under the TCP: its x, y are the
  measured stage position then, its z the calibrated table height. Through the cell
  calibration's projection this is the ``object_base`` pixel in every frame taken before the
  fingers touched it (the measured gripper width still ``clearance`` wider than the grip),
  within ``window`` seconds of the grasp (a push on the table moves the object; a re-grasp's
  earlier attempt may have): older frames are not labelled.
* **The stage.** The measured TCP position projects to the ``tcp`` pixel of every frame.

``object_top`` is not labelled (NaN): a grasp does not measure the object's height. Frames of
failed episodes, and of episodes whose last attempt was not held, give no object labels and
are left out. Frames are the raw camera stream resized to the keypoint network's frame, the
space the calibration's projection maps into.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim2real_bringup import convert
from sim2real_bringup.export import CollectedEpisode, ExportError, read_episodes
from sim2real_policy.camera import ImagePreprocessor
from sim2real_policy.camera_geometry import project
from sim2real_policy.cell_calibration import CellCalibration
from sim2real_policy.keypoints import FRAME_SIZE, KEYPOINTS

RAW_IMAGE = '/camera/image_raw'
FILE = 'keypoints.npz'


@dataclass(frozen=True)
class LabelConfig:
    """Which frames of a successful episode get labels (s, m)."""

    window: float = 4.0         # s before the grasp's ``held`` verdict
    clearance: float = 0.01     # m the measured opening must exceed the grip's width
    period: float = 0.1         # s between labelled frames


def _state_at(times: list, states: list, t: int):
    index = bisect_right(times, t) - 1
    return None if index < 0 else states[index][1]


def episode_labels(episode: CollectedEpisode, streams: dict, calibration: CellCalibration,
                   config: LabelConfig, preprocessor: ImagePreprocessor):
    """``(frames, labels)`` of one episode (empty lists when it gives none)."""
    if not episode.success or not episode.attempts or episode.attempts[-1] != 'held' \
            or episode.attempt_ns[-1] is None:
        return [], []
    held_ns = episode.attempt_ns[-1]
    times = [t for t, _ in streams['states']]
    grasp = _state_at(times, streams['states'], held_ns)
    if grasp is None:
        return [], []
    # the window starts after any earlier attempt: it may have moved the object
    earliest = max([held_ns - int(config.window * 1e9), episode.start_ns]
                   + [t for t in episode.attempt_ns[:-1] if t is not None])
    matrix = calibration.matrix
    base = project(matrix, [[grasp[0], grasp[1], calibration.table_height]])[0]
    frames, labels, next_ns = [], [], earliest
    for t, msg in streams['images']:
        if t < next_ns or t > held_ns:
            continue
        state = _state_at(times, streams['states'], t)
        if state is None or state[4] < grasp[4] + config.clearance:
            continue                  # the fingers are on the object (or closing on it)
        tcp = project(matrix, [state[:3]])[0]
        label = np.full((len(KEYPOINTS), 2), np.nan, np.float32)
        label[KEYPOINTS.index('object_base')] = base
        label[KEYPOINTS.index('tcp')] = tcp
        frames.append(preprocessor.image(convert.image_array(msg)))
        labels.append(label)
        next_ns = t + int(config.period * 1e9)
    return frames, labels


def export_keypoints(bags, calibration: CellCalibration, out: Path,
                     config: LabelConfig | None = None) -> dict:
    """Write ``out/keypoints.npz`` (frames, labels N x K x 2 with NaN unknown, episode)."""
    if calibration.table_height is None:
        raise ExportError('the calibration has no table height (its touch-off found no table):'
                          ' object labels need it')
    config = config or LabelConfig()
    preprocessor = ImagePreprocessor(FRAME_SIZE)
    frames, labels, index, episodes = [], [], [], 0
    for bag in bags:
        listed, streams = read_episodes(Path(bag), RAW_IMAGE)
        for episode in listed:
            if episode.end_ns is None:
                continue
            f, lab = episode_labels(episode, streams, calibration, config, preprocessor)
            if f:
                frames += f
                labels += lab
                index += [episodes] * len(f)
                episodes += 1
    if not frames:
        raise ExportError('no successful, held grasp in ' + ', '.join(str(b) for b in bags)
                          + ': nothing to label keypoints from')
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / FILE, frames=np.asarray(frames, np.uint8),
                        labels=np.asarray(labels, np.float32),
                        episode=np.asarray(index, np.int32))
    return {'keypoint_frames': len(frames), 'keypoint_episodes': episodes,
            'labelled': [name for name in KEYPOINTS if name != 'object_top']}


def load_keypoints(folder: Path) -> dict:
    """The arrays :func:`export_keypoints` wrote (errors name the folder)."""
    path = Path(folder) / FILE
    if not path.is_file():
        raise FileNotFoundError(f'{folder} has no {FILE}: export the bags with '
                                '`sim2real export BAGS --out DATASET --calibration CELL.yaml`')
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}

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
from sim2real_bringup import interfaces as ifc
from sim2real_bringup.bag import read_bag
from sim2real_bringup.export import CollectedEpisode, ExportError, read_episodes
from sim2real_policy.camera import ImagePreprocessor
from sim2real_policy.camera_geometry import project
from sim2real_policy.keypoints import FRAME_SIZE, KEYPOINTS
from sim2real_safety.cell_file import CellCalibration

RAW_IMAGE = '/camera/image_raw'
FILE = 'keypoints.npz'


@dataclass(frozen=True)
class LabelConfig:
    """Which frames of a successful episode get labels (s, m)."""

    window: float = 4.0         # s before the grasp's ``held`` verdict
    clearance: float = 0.01     # m the measured opening must exceed the grip's width
    period: float = 0.1         # s between labelled frames


class _States:
    """The measured robot states of a bag, for lookups by time."""

    def __init__(self, states: list):
        self.times = [t for t, _ in states]
        self.values = [v for _, v in states]

    def at(self, t: int):
        """The last state at or before ``t`` (None before the first)."""
        index = bisect_right(self.times, t) - 1
        return None if index < 0 else self.values[index]


@dataclass
class _Window:
    """Where one episode's frames get labels: ``[start_ns, held_ns]`` and the grasp."""

    episode: CollectedEpisode
    start_ns: int
    held_ns: int
    grasp: tuple            # the measured state when the grip was held
    base: np.ndarray        # the object's footprint pixel


def label_window(episode: CollectedEpisode, states: _States, calibration: CellCalibration,
                 config: LabelConfig) -> _Window | None:
    """The window of a successful, held episode (None when it gives no labels)."""
    if not episode.success or not episode.attempts or episode.attempts[-1] != 'held' \
            or episode.attempt_ns[-1] is None:
        return None
    held_ns = episode.attempt_ns[-1]
    grasp = states.at(held_ns)
    if grasp is None:
        return None
    # the window starts after any earlier attempt: it may have moved the object
    start = max([held_ns - int(config.window * 1e9), episode.start_ns]
                + [t for t in episode.attempt_ns[:-1] if t is not None])
    base = project(calibration.matrix, [[grasp[0], grasp[1], calibration.table_height]])[0]
    return _Window(episode, start, held_ns, grasp, base)


def _frame_label(window: _Window, state, calibration: CellCalibration,
                 config: LabelConfig) -> np.ndarray | None:
    """The labels of a frame taken at ``state`` (None: the fingers are at the object)."""
    if state is None or state[4] < window.grasp[4] + config.clearance:
        return None
    label = np.full((len(KEYPOINTS), 2), np.nan, np.float32)
    label[KEYPOINTS.index('object_base')] = window.base
    label[KEYPOINTS.index('tcp')] = project(calibration.matrix, [state[:3]])[0]
    return label


def bag_labels(bag: Path, calibration: CellCalibration, config: LabelConfig,
               preprocessor: ImagePreprocessor) -> dict:
    """``{episode number: (frames, labels)}`` of one bag's labelled episodes.

    Two passes: events and states first (the windows), then the camera stream, one message at
    a time, keeping only the frames inside a window, one per ``config.period``: a robot's
    camera at full resolution is never held in memory. A frame is placed by its header stamp
    (when the camera took it); the states by when the bag received them, a few ms after
    their stamp at most.
    """
    episodes, streams = read_episodes(bag, image_topic=None)
    states = _States(streams['states'])
    windows = [w for w in (label_window(e, states, calibration, config)
                           for e in episodes if e.end_ns is not None) if w is not None]
    out = {w.episode.episode: ([], []) for w in windows}
    next_ns = {w.episode.episode: w.start_ns for w in windows}
    seen = False
    for m in read_bag(bag, (RAW_IMAGE,)):
        seen = True
        # the frame's own stamp (when the camera took it), not when the bag received it: the
        # stage is looked up where it was when the picture was taken
        taken = ifc.ns_from_time(m.msg.header.stamp) or m.time_ns
        window = next((w for w in windows
                       if next_ns[w.episode.episode] <= taken <= w.held_ns), None)
        if window is None:
            continue
        label = _frame_label(window, states.at(taken), calibration, config)
        if label is None:
            continue
        number = window.episode.episode
        frames, labels = out[number]
        frames.append(preprocessor.image(convert.image_array(m.msg)))
        labels.append(label)
        next_ns[number] = taken + int(config.period * 1e9)
    if not seen:
        raise ExportError(f'{bag}: no messages on {RAW_IMAGE} (keypoint labels need the '
                          'camera frames: record it)')
    return {k: v for k, v in out.items() if v[0]}


def keypoint_labels(bags, calibration: CellCalibration, config: LabelConfig | None = None
                    ) -> dict:
    """Frames (N x H x W x 3 uint8), labels (N x K x 2, NaN unknown) and episode (N)."""
    if calibration.table_height is None:
        raise ExportError('the calibration has no table height (its touch-off found no table):'
                          ' object labels need it')
    config = config or LabelConfig()
    preprocessor = ImagePreprocessor(FRAME_SIZE)
    frames, labels, index, episodes = [], [], [], 0
    for bag in bags:
        for number in sorted(labelled := bag_labels(Path(bag), calibration, config,
                                                     preprocessor)):
            f, lab = labelled[number]
            frames += f
            labels += lab
            index += [episodes] * len(f)
            episodes += 1
    if not frames:
        raise ExportError('no successful, held grasp in ' + ', '.join(str(b) for b in bags)
                          + ': nothing to label keypoints from')
    return {'frames': np.asarray(frames, np.uint8), 'labels': np.asarray(labels, np.float32),
            'episode': np.asarray(index, np.int32)}


def write_keypoints(data: dict, out: Path) -> dict:
    """Write ``out/keypoints.npz``; returns its summary."""
    np.savez_compressed(out / FILE, **data)
    return {'keypoint_frames': int(len(data['frames'])),
            'keypoint_episodes': int(len(np.unique(data['episode']))),
            'labelled': [name for name in KEYPOINTS if name != 'object_top']}


def load_keypoints(folder: Path) -> dict:
    """The arrays :func:`export_keypoints` wrote (errors name the folder)."""
    path = Path(folder) / FILE
    if not path.is_file():
        raise FileNotFoundError(f'{folder} has no {FILE}: export the bags with '
                                '`sim2real export BAGS --out DATASET --calibration CELL.yaml`')
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}

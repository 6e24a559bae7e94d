"""Keypoint images: heavily randomized frames labelled with where three points appear.

The perception of the deployed policy finds three points in the camera image:

* ``object_base`` -- the centre of the object's footprint on the table (on the table plane, so
  a calibrated camera maps its pixel to x, y exactly once the table height is known);
* ``object_top`` -- the top of the object's vertical axis (with the base: its height);
* ``tcp`` -- the tool centre point between the fingertips (the 2F-85 ``pinch`` site): shown at
  known stage positions, it calibrates the camera (:mod:`sim2real_policy.cell_calibration`).

Labels are pixel coordinates in OpenCV's convention (pixel ``i`` has its centre at ``i``) of the
frame *after* the episode's image randomization, whose crop and rotation move every pixel; they
come from the simulator's ground truth, which only training sees.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from sim2real_policy.sim.randomization import Randomizer, VisualRandomizer
from sim2real_policy.sim.robot import GripperSim, HOME
from sim2real_policy.sim.scene import object_half_height

KEYPOINTS = ('object_base', 'object_top', 'tcp')
FRAME_SIZE = (96, 96)      # (width, height) px: the sim robot's camera
STAGE_XY = ((0.36, 0.78), (-0.24, 0.24))   # m: where sampled TCP positions lie (base frame)


def keypoint_world(sim: GripperSim) -> np.ndarray:
    """World positions (3 x 3, m) of the keypoints in ``sim`` now (privileged)."""
    centre = sim.object_position()
    half = object_half_height(sim.params)
    base = centre - (0.0, 0.0, half)
    top = centre + (0.0, 0.0, half)
    return np.stack([base, top, sim.data.site('gripper/pinch').xpos.copy()])


def true_pixels(sim: GripperSim, visual: VisualRandomizer, points, size=FRAME_SIZE):
    """Where world points appear (N x 2, OpenCV convention) in the randomized frame."""
    width, height = size
    pixels = np.array([sim.project(p, width, height) for p in points]) - 0.5
    matrix = visual.warp(width, height)
    if matrix is not None:
        pixels = cv2.transform(pixels[None], matrix)[0]
    return pixels


def table_point_errors(sim: GripperSim, visual: VisualRandomizer, projection,
                       size=FRAME_SIZE) -> np.ndarray:
    """How far (m) a calibrated camera maps 16 true table points of the objects' region.

    Privileged (the simulator's truth): for reporting a calibration's error, never for a
    policy.
    """
    from sim2real_policy.camera_geometry import pixel_to_plane

    table = sim.params.table_height
    xs, ys = np.meshgrid(np.linspace(0.46, 0.64, 4), np.linspace(-0.12, 0.12, 4))
    points = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, table)], axis=1)
    found = np.array([pixel_to_plane(projection, uv, table)
                      for uv in true_pixels(sim, visual, points, size)])
    return np.linalg.norm(found - points, axis=1)


def pixel_labels(sim: GripperSim, visual: VisualRandomizer, size=FRAME_SIZE) -> np.ndarray:
    """Keypoint pixels (3 x 2) in the randomized frame of ``sim`` now."""
    return true_pixels(sim, visual, keypoint_world(sim), size)


# The gripper's yaw in the frames (rad). The bundled network learned from frames whose stage
# could not turn past 0.029 rad (its yaw travel was read as degrees), and the keypoint policy
# commands yaw 0: the frames keep to that until a network is trained on a turning gripper.
RENDERED_YAW = 0.03


def random_stage_pose(rng: np.random.Generator, object_xy, table_height: float) -> np.ndarray:
    """A stage target ``(x, y, z, yaw, gripper_width)`` as episodes and calibrations see it.

    Two fifths anywhere over the workspace, a third close above the object (approach and
    descent, where the object must still be found beside the fingers), the rest near the
    cell calibration's poses (its low ring sits at the edges of the frame).
    """
    draw = rng.random()
    if draw >= 0.75:
        from sim2real_policy.cell_calibration import CellCalibrationConfig, grid_targets
        targets = grid_targets(CellCalibrationConfig(), table_height)
        pose = targets[int(rng.integers(len(targets)))].copy()
        pose[:2] += rng.uniform(-0.02, 0.02, 2)
        pose[2] += rng.uniform(-0.01, 0.02)
        pose[3] = rng.uniform(-RENDERED_YAW, RENDERED_YAW)
        return pose
    if draw < 0.4:
        x, y = rng.uniform(*STAGE_XY[0]), rng.uniform(*STAGE_XY[1])
        # low over the table (calibration shows the fingertips there), never into the object
        near = math.hypot(x - object_xy[0], y - object_xy[1]) < 0.07
        z = table_height + rng.uniform(0.07 if near else 0.03, 0.30)
    else:
        x, y = np.asarray(object_xy) + rng.uniform(-0.03, 0.03, 2)
        z = table_height + rng.uniform(0.07, 0.14)
    return np.array([x, y, max(z, 0.0), rng.uniform(-RENDERED_YAW, RENDERED_YAW),
                     rng.uniform(0.0, 0.085)])


def render_samples(params, poses_per_world: int, size=FRAME_SIZE):
    """Frames and labels of one randomized world, the stage at several random poses."""
    rng = np.random.default_rng([params.seed, 0x6B])
    visual = VisualRandomizer(params.image, params.seed)
    frames, labels = [], []
    with GripperSim(params, start=HOME, settle_s=0.2) as sim:
        object_xy = sim.object_position()[:2]
        for _ in range(poses_per_world):
            pose = random_stage_pose(rng, object_xy, params.table_height)
            sim.place_stage(pose)
            frames.append(visual.apply(sim.render(*size)))
            labels.append(pixel_labels(sim, visual, size))
    return frames, labels


class WorldRenderer:
    """A rollout worker: the frames and labels of a few worlds per specification."""

    def __init__(self, config, profile, poses_per_world: int):
        self.randomizer = Randomizer(config, profile)
        self.poses = poses_per_world

    def __call__(self, spec: dict) -> tuple:
        """``(frames, labels)`` of the worlds ``spec['seeds']``, in order.

        ``spec['overrides']`` (optional): one mapping of pinned parameters per seed (ADR).
        """
        frames, labels = [], []
        overrides = spec.get('overrides') or [None] * len(spec['seeds'])
        for seed, pinned in zip(spec['seeds'], overrides):
            f, lab = render_samples(self.randomizer.sample(seed, pinned), self.poses)
            frames += f
            labels += lab
        return np.asarray(frames, np.uint8), np.asarray(labels, np.float32)


def render_dataset(config, profile, seeds, poses_per_world: int = 4,
                   workers: int | None = None, progress=None, overrides=None,
                   **rollout_options) -> dict:
    """Frames (N x H x W x 3 uint8) and labels (N x 3 x 2) of many worlds, in seed order.

    Worlds are rendered by :func:`sim2real_policy.rollout.run` in ``workers`` workers (default:
    the machine's cores), a few worlds per specification; the result does not depend on who
    rendered them. ``profile``: a profile's name or its mapping (:class:`Randomizer`).
    ``overrides``: one mapping of pinned parameters per seed (or None).
    ``progress(worlds done, worlds)``.
    """
    from sim2real_policy import rollout

    seeds = [int(s) for s in seeds]
    pinned = [dict(o or {}) for o in overrides] if overrides is not None else None
    if pinned is not None and len(pinned) != len(seeds):
        raise ValueError(f'{len(pinned)} overrides for {len(seeds)} worlds')
    chunk = max(1, math.ceil(len(seeds) / ((workers or rollout.default_workers()) * 8)))
    specs = [{'seeds': seeds[i:i + chunk]} for i in range(0, len(seeds), chunk)]
    if pinned is not None:
        for i, spec in zip(range(0, len(seeds), chunk), specs):
            spec['overrides'] = pinned[i:i + chunk]
    sizes = [len(spec['seeds']) for spec in specs]

    def worlds_done(done, total):
        if progress:
            progress(sum(sizes[:done]), len(seeds))

    results, _ = rollout.run(rollout.Task(WorldRenderer, {
        'config': config, 'profile': profile, 'poses_per_world': poses_per_world}),
        specs, workers=workers, progress=worlds_done, **rollout_options)
    return {'frames': np.concatenate([f for f, _ in results]),
            'labels': np.concatenate([lab for _, lab in results]),
            'seeds': np.asarray(seeds)}

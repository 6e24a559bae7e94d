"""Calibration runs for system identification: a safe excitation, played on a robot.

:class:`CalibrationPlayer` turns excitation trajectories (:func:`sysid.excitation`, sums of
sines inside the workspace) into 100 Hz targets: for each trajectory a slow move to its
start (from wherever the robot is, or from where the last one ended), a settle, the
trajectory; then a hold. Its targets are proposals like any other: ``calibration_node``
publishes them to the safety node, which limits them like policy commands; nothing here
bypasses it.

``sim2real_bringup.calibrate.record_calibration`` runs the calibrate launch graph (this
player in ``calibration_node``, the safety and supervisor nodes, the simulated robot) in-process
for ``sim2real sysid --calibrate-sim`` and the tests.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from sim2real_policy.sysid import SAMPLE

NS = 1_000_000_000
APPROACH, SETTLE, EXCITE, DONE = 'approach', 'settle', 'excite', 'done'


@dataclass(frozen=True)
class CalibrationConfig:
    """Parameters of a calibration run (``calibration_node`` declares each one)."""

    seeds: tuple = (0, 1, 2, 3, 4, 5)   # one excitation trajectory per seed
    duration: float = 3.0               # s per trajectory
    start_x: float = 0.55               # m: centre of the excitation (base frame)
    start_y: float = 0.0
    start_z: float = 0.22
    yaw: float = 0.0                    # rad, held during the run
    gripper_width: float = 0.085        # m, held open
    approach_speed: float = 0.05        # m/s towards the start, well under the speed limit
    settle_time: float = 1.0            # s of stillness before and between trajectories

    def __post_init__(self):
        for name in ('duration', 'approach_speed'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'calibration {name} must be > 0, got {value!r}')
        if not (math.isfinite(self.settle_time) and self.settle_time >= 0):
            raise ValueError(f'calibration settle_time must be >= 0, got {self.settle_time!r}')
        if not self.seeds:
            raise ValueError('calibration seeds must name at least one trajectory')


class CalibrationPlayer:
    """Targets ``(x, y, z, yaw, gripper_width)`` of a calibration run, by time.

    The timeline is a list of segments: move (at ``approach_speed``) to a trajectory's start,
    settle, play it; then the next; then hold the last target.
    """

    def __init__(self, config: CalibrationConfig, safety_limits=None):
        from sim2real_policy.sysid import excitation

        self.config = config
        start = (config.start_x, config.start_y, config.start_z)
        self.trajectories = [excitation(seed, config.duration, start, safety_limits)
                             for seed in config.seeds]
        self._segments: list[tuple] = []   # (phase, index, t_begin, t_end, from, to)
        self._start_ns = 0

    def start(self, pose, now_ns: int) -> None:
        """Begin from the measured pose ``(x, y, z, ...)``."""
        c = self.config
        self._start_ns = int(now_ns)
        self._segments = []
        t, here = 0.0, np.asarray(pose[:3], float)
        for index, trajectory in enumerate(self.trajectories):
            move = float(np.linalg.norm(trajectory[0] - here)) / c.approach_speed
            for phase, length in ((APPROACH, move), (SETTLE, c.settle_time),
                                  (EXCITE, c.duration)):
                self._segments.append((phase, index, t, t + length, here, trajectory[0]))
                t += length
            here = trajectory[-1]

    @property
    def total_time(self) -> float:
        """Seconds from start to the final hold (after :meth:`start`)."""
        return self._segments[-1][3] if self._segments else 0.0

    def _segment(self, now_ns: int):
        if not self._segments:
            raise RuntimeError('CalibrationPlayer.start() was not called')
        t = (now_ns - self._start_ns) / NS
        for segment in self._segments:
            if t < segment[3]:
                return segment, t
        return None, t

    def phase(self, now_ns: int) -> tuple[str, int]:
        """The phase and the trajectory index at ``now_ns``."""
        segment, _ = self._segment(now_ns)
        return (DONE, len(self.trajectories) - 1) if segment is None else segment[:2]

    def target(self, now_ns: int) -> tuple:
        """The target at ``now_ns``; holds the last sample once done."""
        segment, t = self._segment(now_ns)
        if segment is None:
            xyz = self.trajectories[-1][-1]
        else:
            phase, index, begin, end, origin, goal = segment
            if phase == APPROACH:
                xyz = origin + (goal - origin) * ((t - begin) / (end - begin))
            elif phase == SETTLE:
                xyz = goal
            else:
                trajectory = self.trajectories[index]
                xyz = trajectory[min(len(trajectory) - 1, int((t - begin) / SAMPLE))]
        c = self.config
        return (float(xyz[0]), float(xyz[1]), float(xyz[2]), c.yaw, c.gripper_width)

"""The scripted expert: a grasp planned from the privileged object pose.

Waypoints (pre-grasp above the object, descend, close, lift, hold) joined by straight
segments at a speed inside the safety limits; ``target(t)`` samples the plan and
``chunk(t, horizon, period)`` returns the next ``horizon`` targets, the action-chunk form the
policy is trained to produce.
"""
from __future__ import annotations

import math

import numpy as np

APPROACH_HEIGHT = 0.09   # pre-grasp height of the TCP above the object's centre (m)
GRASP_DEPTH = 0.004      # TCP this far below the object's centre when closing (m)
LIFT_Z = 0.20            # TCP height after lifting (m, base frame)
SPEED = 0.15             # m/s, under the safety limit of 0.25 m/s
YAW_RATE = 0.8           # rad/s
CLOSE_TIME = 0.6         # s to close the gripper
SETTLE_TIME = 0.3        # s to let the grip settle before lifting
CLOSED_WIDTH = 0.0


def grasp_yaw(shape: str, object_yaw: float) -> float:
    """Gripper yaw for the object: a box is gripped across its faces (symmetric every 90°)."""
    if shape != 'box':
        return 0.0
    return (object_yaw + math.pi / 4.0) % (math.pi / 2.0) - math.pi / 4.0


class ScriptedGrasp:
    """A timed grasp plan from ``start`` (the current command) for an object at ``position``."""

    def __init__(self, start, position, yaw: float, shape: str = 'box',
                 open_width: float = 0.085):
        ox, oy, oz = (float(v) for v in position)
        grip_yaw = grasp_yaw(shape, yaw)
        start = np.asarray(start, dtype=float)
        above = np.array([ox, oy, oz + APPROACH_HEIGHT, grip_yaw, open_width])
        down = np.array([ox, oy, oz - GRASP_DEPTH, grip_yaw, open_width])
        closed = down.copy()
        closed[4] = CLOSED_WIDTH
        lifted = closed.copy()
        lifted[2] = LIFT_Z
        self.waypoints = [start, above, down, closed, closed, lifted]
        times = [0.0]
        for a, b in zip(self.waypoints, self.waypoints[1:]):
            linear = float(np.linalg.norm(b[:3] - a[:3])) / SPEED
            turn = abs(float(b[3] - a[3])) / YAW_RATE
            grip = CLOSE_TIME if b[4] != a[4] else 0.0
            times.append(times[-1] + max(linear, turn, grip,
                                         SETTLE_TIME if np.array_equal(a, b) else 0.0))
        self.times = np.asarray(times)
        self.phases = ('start', 'approach', 'descend', 'close', 'settle', 'lift')

    @property
    def duration(self) -> float:
        """Time from start to the end of the lift (s)."""
        return float(self.times[-1])

    def target(self, t: float) -> np.ndarray:
        """The planned ``(x, y, z, yaw, gripper_width)`` at time ``t`` since the start."""
        points = np.asarray(self.waypoints)
        return np.array([np.interp(t, self.times, points[:, j]) for j in range(5)])

    def chunk(self, t: float, horizon: int, period: float) -> np.ndarray:
        """``horizon`` x 5 targets at ``t, t + period, ...``."""
        ts = t + period * np.arange(horizon)
        points = np.asarray(self.waypoints)
        return np.stack([np.interp(ts, self.times, points[:, j]) for j in range(5)], axis=1)

    def phase(self, t: float) -> str:
        """Name of the segment being executed at ``t``."""
        index = int(np.searchsorted(self.times, t, side='right'))
        return self.phases[min(index, len(self.phases) - 1)]

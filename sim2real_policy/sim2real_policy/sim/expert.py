"""Scripted experts that grasp from the privileged object pose.

Waypoints (pre-grasp above the object, descend, close, lift) joined by straight segments at a
speed inside the safety limits. ``ScriptedGrasp`` plans once (the scene's soundness check and
the drills' policy); ``ReactiveExpert`` replans from the measured state every time, which makes
it the labeller of behaviour-cloning data: its chunk is a function of what the robot observes.
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


class Plan:
    """Straight segments through waypoints ``(x, y, z, yaw, gripper_width)``.

    Timed so that every segment respects ``SPEED``, ``YAW_RATE`` and ``CLOSE_TIME`` (a pause
    where two waypoints are equal lasts ``SETTLE_TIME``).
    """

    def __init__(self, waypoints):
        self.waypoints = np.asarray(waypoints, dtype=float)
        times = [0.0]
        for a, b in zip(self.waypoints, self.waypoints[1:]):
            linear = float(np.linalg.norm(b[:3] - a[:3])) / SPEED
            turn = abs(float(b[3] - a[3])) / YAW_RATE
            # closing the full 85 mm takes CLOSE_TIME; a measured width a hair off the
            # commanded one must not stretch a motion segment to that
            grip = CLOSE_TIME * abs(float(b[4] - a[4])) / 0.085
            pause = SETTLE_TIME if np.array_equal(a, b) else 0.0
            times.append(times[-1] + max(linear, turn, grip, pause))
        self.times = np.asarray(times)

    @property
    def duration(self) -> float:
        """Time from the first to the last waypoint (s)."""
        return float(self.times[-1])

    def target(self, t: float) -> np.ndarray:
        """The planned ``(x, y, z, yaw, gripper_width)`` at time ``t`` since the start."""
        return np.array([np.interp(t, self.times, self.waypoints[:, j]) for j in range(5)])

    def chunk(self, t: float, horizon: int, period: float) -> np.ndarray:
        """``horizon`` x 5 targets at ``t, t + period, ...``."""
        ts = t + period * np.arange(horizon)
        return np.stack([np.interp(ts, self.times, self.waypoints[:, j]) for j in range(5)],
                        axis=1)


class ScriptedGrasp(Plan):
    """The whole grasp planned once from ``start`` for an object at ``position``."""

    def __init__(self, start, position, yaw: float, shape: str = 'box',
                 open_width: float = 0.085):
        ox, oy, oz = (float(v) for v in position)
        grip_yaw = grasp_yaw(shape, yaw)
        above = np.array([ox, oy, oz + APPROACH_HEIGHT, grip_yaw, open_width])
        down = np.array([ox, oy, oz - GRASP_DEPTH, grip_yaw, open_width])
        closed = down.copy()
        closed[4] = CLOSED_WIDTH
        lifted = closed.copy()
        lifted[2] = LIFT_Z
        super().__init__([np.asarray(start, float), above, down, closed, closed, lifted])
        self.phases = ('start', 'approach', 'descend', 'close', 'settle', 'lift')

    def phase(self, t: float) -> str:
        """Name of the segment being executed at ``t``."""
        index = int(np.searchsorted(self.times, t, side='right'))
        return self.phases[min(index, len(self.phases) - 1)]


class ReactiveExpert:
    """Replans from the current state at every call: the labeller for behaviour cloning.

    The phase is read off the state (where the TCP is relative to the object, how far the
    gripper is closed), so a policy can learn it from what it observes; the chunk is the next
    ``horizon`` targets of the plan from here.
    """

    XY_TOLERANCE = 0.01    # m: aligned above the object (the open 2F-85 has >= 16 mm spare)
    Z_TOLERANCE = 0.006    # m: at grasp height
    DESCEND_TOLERANCE = 0.015  # m: keep descending (or close) while this close in x, y

    def __init__(self, position, yaw: float, shape: str, object_width: float,
                 open_width: float = 0.085):
        # The object's pose at the start; after a miss it may have moved, so the expert is
        # told again (privileged) through ``update_object``.
        self.position = np.asarray(position, float)
        self.shape = shape
        self.yaw = grasp_yaw(shape, yaw)
        self.object_width = object_width
        self.open_width = open_width

    def phase(self, tcp, width: float) -> str:
        """approach, descend, close, lift or regrasp, from the measured state.

        The bands overlap on purpose (hysteresis without memory): under command latency the
        alignment wobbles, and a phase that flipped back at the first wobble would oscillate.
        """
        ox, oy, oz = self.position
        xy_error = math.hypot(tcp[0] - ox, tcp[1] - oy)
        grasp_z = oz - GRASP_DEPTH
        if width < self.object_width - 0.008:
            return 'regrasp'  # closed on nothing: open up and try again
        if width <= self.object_width + 0.006 and xy_error < 0.02 and tcp[2] < oz + 0.2:
            return 'lift'
        if tcp[2] <= grasp_z + self.Z_TOLERANCE and xy_error < self.DESCEND_TOLERANCE:
            return 'close'
        if xy_error < self.XY_TOLERANCE or (tcp[2] < oz + APPROACH_HEIGHT - 0.01
                                            and xy_error < self.DESCEND_TOLERANCE):
            return 'descend'
        return 'approach'

    def plan(self, tcp, width: float, settled: bool = False) -> Plan:
        """The plan from the current state.

        ``settled`` (the stage is nearly still): a compliant stage stops short of its target
        (joint springs, weak gains), so the x, y target is pushed past the object by the
        remaining error -- integral action, one step per replan.
        """
        ox, oy, oz = self.position
        if settled:
            ex, ey = ox - tcp[0], oy - tcp[1]
            if math.hypot(ex, ey) < 0.03:
                ox, oy = ox + ex, oy + ey
        current = np.array([*tcp[:4], width])
        above = np.array([ox, oy, oz + APPROACH_HEIGHT, self.yaw, self.open_width])
        down = np.array([ox, oy, oz - GRASP_DEPTH, self.yaw, self.open_width])
        closed = down.copy()
        closed[4] = CLOSED_WIDTH
        phase = self.phase(tcp, width)
        if phase == 'regrasp':
            opened = current.copy()
            opened[4] = self.open_width
            up = opened.copy()
            up[2] = max(tcp[2], oz + APPROACH_HEIGHT)
            return Plan([current, opened, up, above, *[down, closed]])
        if phase == 'lift':
            here = current.copy()
            here[4] = CLOSED_WIDTH
            top = here.copy()
            top[2] = LIFT_Z
            return Plan([here, top])
        if phase == 'close':
            here = current.copy()
            here[4] = CLOSED_WIDTH
            top = here.copy()
            top[2] = LIFT_Z
            return Plan([current, here, here, top])
        lifted = closed.copy()
        lifted[2] = LIFT_Z
        tail = [down, closed, closed, lifted]
        if phase == 'descend':
            return Plan([current, *tail])
        waypoints = [current]
        if tcp[2] < oz + APPROACH_HEIGHT - 0.02:
            rise = current.copy()
            rise[2] = oz + APPROACH_HEIGHT  # never sweep sideways near the object
            rise[4] = self.open_width
            waypoints.append(rise)
        return Plan([*waypoints, above, *tail])

    def update_object(self, position, yaw: float) -> None:
        """The object's current pose (it may have been nudged)."""
        self.position = np.asarray(position, float)
        self.yaw = grasp_yaw(self.shape, yaw)

    # The stage trails its target by ~0.1 s at cruise speed; a plan sampled from "now" on the
    # measured pose would crawl. Targets lead the measured pose by this much of the plan.
    LEAD_TIME = 0.1

    def chunk(self, tcp, width: float, horizon: int, period: float,
              settled: bool = False) -> np.ndarray:
        """The next ``horizon`` targets from the current state."""
        return self.plan(tcp, width, settled).chunk(self.LEAD_TIME, horizon, period)

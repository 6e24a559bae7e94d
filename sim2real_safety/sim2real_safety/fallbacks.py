"""The fallback motions the controller runs in a degraded mode (the supervisor's contract).

Each fallback is a small stateful generator of targets ``(x, y, z, yaw, gripper_width)``,
stepped once per control tick with the tick's time. Motions are straight lines at
``speed`` (m/s), well inside the safety filter's limits, so the filter passes them unchanged;
the filter still checks every one of them.

* :class:`Hold` -- keep the pose at entry (HUMAN_REQUIRED, SOFTWARE_STOP, end of the chunk).
* :class:`GoHome` -- after the vision grace period: travel to the home pose, gripper unchanged.
* :class:`StopReleaseRaise` -- gripper fault: stop at once, then open the gripper, then raise
  the TCP to ``safe_height``.
"""
from __future__ import annotations

import math

NS = 1_000_000_000


def _toward(current, target, max_step):
    """Move ``current`` toward ``target`` by at most ``max_step`` (Euclidean, xyz only)."""
    dx, dy, dz = (target[i] - current[i] for i in range(3))
    distance = math.sqrt(dx * dx + dy * dy + dz * dz)
    if distance <= max_step or distance == 0.0:
        return tuple(target[:3]), True
    k = max_step / distance
    return (current[0] + dx * k, current[1] + dy * k, current[2] + dz * k), False


class Hold:
    """Stay at the pose given at entry."""

    name = 'hold'

    def __init__(self, pose, now_ns: int):
        self.pose = tuple(pose)

    def step(self, now_ns: int) -> tuple:
        """The target for this tick."""
        return self.pose

    @property
    def done(self) -> bool:
        """A hold is never done; it lasts until the mode changes."""
        return False


class GoHome:
    """Straight line to ``home`` (x, y, z, yaw) at ``speed``; the gripper keeps its width."""

    name = 'home'

    def __init__(self, pose, now_ns: int, home, speed: float, yaw_rate: float = 0.5):
        self.pose = tuple(pose)
        self.home = tuple(home)
        self.speed = speed
        self.yaw_rate = yaw_rate
        self.last_ns = now_ns
        self.done = False

    def step(self, now_ns: int) -> tuple:
        """Advance along the line by the time since the last tick."""
        dt = max(0, now_ns - self.last_ns) / NS
        self.last_ns = now_ns
        xyz, arrived = _toward(self.pose, self.home, self.speed * dt)
        yaw_error = self.home[3] - self.pose[3]
        max_turn = self.yaw_rate * dt
        yaw = self.pose[3] + max(-max_turn, min(max_turn, yaw_error))
        self.pose = (*xyz, yaw, self.pose[4])
        self.done = arrived and yaw == self.home[3]
        return self.pose


class StopReleaseRaise:
    """Gripper fault: hold for ``stop_time``, open over ``release_time``, then raise."""

    name = 'release_raise'

    def __init__(self, pose, now_ns: int, open_width: float, safe_height: float, speed: float,
                 stop_time: float = 0.2, release_time: float = 0.6):
        self.pose = tuple(pose)
        self.start_ns = now_ns
        self.last_ns = now_ns
        self.open_width = open_width
        self.safe_height = safe_height
        self.speed = speed
        self.stop_ns = int(stop_time * NS)
        self.release_ns = int(release_time * NS)
        self.phase = 'stop'
        self.done = False

    def step(self, now_ns: int) -> tuple:
        """Stop, then release, then raise."""
        elapsed = now_ns - self.start_ns
        dt = max(0, now_ns - self.last_ns) / NS
        self.last_ns = now_ns
        x, y, z, yaw, width = self.pose
        if elapsed < self.stop_ns:
            self.phase = 'stop'
        elif elapsed < self.stop_ns + self.release_ns:
            self.phase = 'release'
            width = self.open_width
        else:
            self.phase = 'raise'
            width = self.open_width
            if z < self.safe_height:
                z = min(self.safe_height, z + self.speed * dt)
            self.done = z >= self.safe_height
        self.pose = (x, y, z, yaw, width)
        return self.pose

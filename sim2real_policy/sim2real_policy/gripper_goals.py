"""When a GripperCommand goal ends, as ros2_control's gripper action controller decides it.

A goal is reached within ``tolerance`` of its width, stalled when the fingers have not moved
for ``stall_time`` (closed on an object), or preempted by the next goal. The simulated
drivers (``standin_driver_node``, ``gz_driver_node``) serve their gripper action with it.
"""
from __future__ import annotations

from typing import Callable

from sim2real_safety.node_interface import NS, Param

# The simulated drivers' gripper: reported as the 2F-85 driver's knuckle joint, its goals
# ended as GripperGoals decides.
GRIPPER_PARAMETERS = (
    Param('gripper_joint', 'robotiq_85_left_knuckle_joint', 'the gripper joint reported'),
    Param('gripper_open_position', 0.0, 'joint position fully open', (-10.0, 10.0)),
    Param('gripper_closed_position', 0.8, 'joint position fully closed', (-10.0, 10.0)),
    Param('gripper_tolerance', 0.002, 'm: a goal within this is reached', (0.0, 0.1)),
    Param('gripper_stall_time', 0.3, 's without motion that ends a goal as stalled',
          (0.01, 10.0)),
)


class GripperGoals:
    """The one active gripper goal and its outcome: 'reached', 'stalled' or 'preempted'."""

    def __init__(self, tolerance: float, stall_time: float):
        self.tolerance = tolerance
        self.stall_ns = int(stall_time * NS)
        self._goal = None   # [finish(outcome), target width, since_ns, last width]

    def start(self, width: float, now_ns: int, measured: float,
              finish: Callable[[str], None]) -> None:
        """A new goal to ``width``; the previous one, if any, ends 'preempted'."""
        previous, self._goal = self._goal, [finish, width, now_ns, measured]
        if previous is not None:
            previous[0]('preempted')

    def update(self, now_ns: int, measured: float) -> None:
        """The fingers are at ``measured`` (m): end the goal if it is reached or stalled."""
        goal = self._goal
        if goal is None:
            return
        finish, target, since, last = goal
        if abs(measured - target) <= self.tolerance:
            self._goal = None
            finish('reached')
        elif abs(measured - last) > 1e-4:
            goal[2], goal[3] = now_ns, measured
        elif now_ns - since >= self.stall_ns:
            self._goal = None
            finish('stalled')


class GripperJoint:
    """The gripper joint's position (a driver's units) for an opening (m), and back."""

    def __init__(self, open_position: float, closed_position: float, width_max: float):
        self.open, self.closed, self.width_max = open_position, closed_position, width_max

    def width(self, position: float) -> float:
        """The opening (m) at joint ``position``, within 0 .. width_max."""
        fraction = (position - self.closed) / (self.open - self.closed)
        return min(max(fraction, 0.0), 1.0) * self.width_max

    def position(self, width: float) -> float:
        """The joint position at opening ``width`` (m)."""
        fraction = min(max(width / self.width_max, 0.0), 1.0)
        return self.closed + fraction * (self.open - self.closed)

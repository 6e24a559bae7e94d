"""The driver relay's core: the suite's safe command to standard driver interfaces, and back.

Real drivers do not speak ``sim2real_msgs``: Cartesian controllers and MoveIt Servo take a
``geometry_msgs/PoseStamped`` target (or a ``TwistStamped`` velocity for Servo), grippers run
``control_msgs/action/GripperCommand`` (ros2_control's gripper action controller, the Robotiq
2F-85 driver). This module turns a safe command ``(x, y, z, yaw, gripper_width)`` into those,
and the drivers' end-effector pose and gripper joint into the suite's RobotState. Frames and
units per REP-103/105: base frame x forward, z up; metres, radians; quaternions (x, y, z, w).

The relay sits after the safety node and adds nothing the filter did not allow: the pose is
the safe command's; a twist is a gain times the remaining error, clipped to the same speed
limits; the gripper goal is the safe width.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

ARM_OUTPUTS = ('pose', 'twist')
POSE_SOURCES = ('topic', 'tf')


@dataclass(frozen=True)
class RelayConfig:
    """Parameters of ``driver_relay_node`` (``config/relay.yaml``)."""

    arm_output: str = 'pose'            # pose: PoseStamped target; twist: TwistStamped (Servo)
    frame_id: str = 'base_link'         # frame of targets and of the measured pose
    tool_roll: float = math.pi          # rad: tool orientation at yaw 0 (pi: pointing down)
    tool_pitch: float = 0.0             # rad
    twist_gain: float = 5.0             # 1/s: twist = gain x remaining error
    max_linear_speed: float = 0.25      # m/s (twist mode; the safety filter's speed limit)
    max_yaw_rate: float = 1.0           # rad/s (twist mode)
    gripper_joint: str = 'robotiq_85_left_knuckle_joint'
    gripper_open_position: float = 0.0  # joint position at gripper_width_max
    gripper_closed_position: float = 0.8    # joint position at width 0 (2F-85: 0.8 rad)
    gripper_width_max: float = 0.085    # m
    gripper_max_effort: float = 50.0    # the action goal's max_effort (driver's units, N)
    gripper_deadband: float = 0.002     # m: a new gripper goal only when the width moves this
    # where the measured end-effector pose comes from: a PoseStamped topic, or tf2 (the
    # transform frame_id <- tool_frame, looked up tf_rate times a second)
    pose_source: str = 'topic'
    tool_frame: str = 'tool0'
    tf_rate: float = 100.0              # Hz

    def __post_init__(self):
        if self.arm_output not in ARM_OUTPUTS:
            raise ValueError(f'arm_output must be one of {ARM_OUTPUTS}, got {self.arm_output!r}')
        if self.pose_source not in POSE_SOURCES:
            raise ValueError(f'pose_source must be one of {POSE_SOURCES}, got '
                             f'{self.pose_source!r}')
        if self.pose_source == 'tf' and (not self.tool_frame or self.tool_frame == self.frame_id):
            raise ValueError(f'tool_frame must name the end-effector frame, not '
                             f'{self.tool_frame!r} (frame_id is {self.frame_id!r})')
        if self.gripper_open_position == self.gripper_closed_position:
            raise ValueError('gripper_open_position and gripper_closed_position must differ')
        for name in ('twist_gain', 'max_linear_speed', 'max_yaw_rate', 'gripper_width_max',
                     'tf_rate'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)!r}')


def quaternion_from_rpy(roll: float, pitch: float, yaw: float) -> tuple:
    """``(x, y, z, w)`` of R = Rz(yaw) Ry(pitch) Rx(roll) (REP-103 fixed-axis roll, pitch, yaw)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy)


class Relay:
    """Converts safe commands to driver goals and driver feedback to the suite's state."""

    def __init__(self, config: RelayConfig):
        self.config = config
        self._sent_position: float | None = None
        self._last_pose: tuple | None = None   # (t_ns, x, y, z)
        self.velocity = (0.0, 0.0, 0.0)

    # --------------------------------------------------------------------- arm commands
    def target_pose(self, command) -> tuple:
        """``((x, y, z), (qx, qy, qz, qw))`` of a safe command."""
        x, y, z, yaw, _ = command
        c = self.config
        return (x, y, z), quaternion_from_rpy(c.tool_roll, c.tool_pitch, yaw)

    def twist(self, command, measured) -> tuple:
        """``((vx, vy, vz), wz)`` towards ``command`` from the measured ``(x, y, z, yaw)``.

        A gain times the remaining error, the linear part clipped to ``max_linear_speed`` (its
        direction kept), the yaw rate to ``max_yaw_rate``.
        """
        c = self.config
        error = np.subtract(command[:3], measured[:3])
        velocity = c.twist_gain * error
        speed = float(np.linalg.norm(velocity))
        if speed > c.max_linear_speed:
            velocity *= c.max_linear_speed / speed
        yaw_error = math.remainder(command[3] - measured[3], math.tau)
        yaw_rate = max(-c.max_yaw_rate, min(c.max_yaw_rate, c.twist_gain * yaw_error))
        return tuple(float(v) for v in velocity), float(yaw_rate)

    # --------------------------------------------------------------------------- gripper
    def gripper_position(self, width: float) -> float:
        """The gripper joint position of an opening ``width`` (m), clamped to the range."""
        c = self.config
        fraction = min(max(width / c.gripper_width_max, 0.0), 1.0)
        return c.gripper_closed_position + fraction * (c.gripper_open_position
                                                       - c.gripper_closed_position)

    def gripper_width(self, position: float) -> float:
        """The opening (m) of a gripper joint position."""
        c = self.config
        fraction = (position - c.gripper_closed_position) / (c.gripper_open_position
                                                             - c.gripper_closed_position)
        return min(max(fraction, 0.0), 1.0) * c.gripper_width_max

    def gripper_goal(self, width: float) -> float | None:
        """The joint position to send for ``width``; None within the deadband of the last goal.

        An action goal per control tick would flood the driver.
        """
        position = self.gripper_position(width)
        deadband = abs(self.gripper_position(0.0) - self.gripper_position(
            self.config.gripper_deadband))
        if self._sent_position is not None and abs(position - self._sent_position) < deadband:
            return None
        self._sent_position = position
        return position

    def forget_gripper_goal(self) -> None:
        """The last goal did not reach the gripper: the next width is sent whatever it is."""
        self._sent_position = None

    # ---------------------------------------------------------------------------- state
    def on_pose(self, t_ns: int, position) -> tuple:
        """Velocity (m/s) of the end effector by differencing successive measured poses."""
        if self._last_pose is not None and t_ns > self._last_pose[0]:
            dt = (t_ns - self._last_pose[0]) / 1e9
            self.velocity = tuple((p - q) / dt for p, q in zip(position, self._last_pose[1:]))
        self._last_pose = (t_ns, *position)
        return self.velocity

"""Teleoperation: velocity input (a spacemouse's or joystick's Twist/Joy) to Cartesian targets.

The operator's device publishes velocities; :class:`Teleop` integrates them into a target
``(x, y, z, yaw, gripper_width)`` at the control rate. The targets are proposals like the
controller's: they go to the same safety node and are limited by the same filter, which is
the only thing that keeps them inside the workspace (nothing here clips to it). To avoid
wind-up when the filter holds a target back (a human pushing into a wall would otherwise
have to pull back as far as they pushed), the integrator restarts from the last safe
command (:meth:`anchor`).

A dead man's rule: no input for ``deadman_timeout`` stops the motion (the target holds).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

NS = 1_000_000_000


@dataclass(frozen=True)
class TeleopConfig:
    """Speeds, the dead man's timeout and the Joy mapping (SI units)."""

    max_linear_speed: float = 0.10     # m/s per axis, whatever the device sends
    max_yaw_rate: float = 0.5          # rad/s
    gripper_speed: float = 0.10        # m/s of fingertip opening/closing while a button is held
    deadman_timeout: float = 0.25      # s without input -> the target holds
    max_step_time: float = 0.05        # s integrated at most per tick (no leap after a pause)
    joy_axes: tuple = (1, 0, 4, 3)     # Joy axes driving x, y, z, yaw (-1: unused)
    joy_scale: tuple = (0.10, 0.10, 0.10, 0.5)  # m/s (rad/s) at full deflection
    button_close: int = 0              # Joy button closing the gripper while held
    button_open: int = 1               # Joy button opening it
    min_width: float = 0.0             # m
    max_width: float = 0.085           # m

    def __post_init__(self):
        for name in ('max_linear_speed', 'max_yaw_rate', 'gripper_speed', 'deadman_timeout',
                     'max_step_time'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f'teleop {name} must be a finite number > 0, got {value!r}')
        if len(self.joy_axes) != 4 or len(self.joy_scale) != 4:
            raise ValueError(f'teleop joy_axes and joy_scale need 4 entries (x, y, z, yaw), got '
                             f'{list(self.joy_axes)} and {list(self.joy_scale)}')
        if not 0.0 <= self.min_width < self.max_width:
            raise ValueError(f'teleop min_width {self.min_width} must be >= 0 and < '
                             f'max_width {self.max_width}')


class Teleop:
    """Integrates operator velocities into targets; call :meth:`tick` at the control rate."""

    def __init__(self, config: TeleopConfig):
        self.config = config
        self.target: np.ndarray | None = None
        self._velocity = np.zeros(5)      # vx, vy, vz, yaw rate, gripper rate
        self._input_ns: int | None = None
        self._tick_ns: int | None = None

    @property
    def started(self) -> bool:
        """True once seeded with a pose."""
        return self.target is not None

    def start(self, pose, now_ns: int) -> None:
        """Seed at ``pose`` (x, y, z, yaw, width), motionless."""
        self.target = np.asarray(pose[:5], float).copy()
        self._velocity[:] = 0.0
        self._input_ns = None
        self._tick_ns = now_ns

    def anchor(self, pose) -> None:
        """Restart from the last safe command (no wind-up against the safety filter)."""
        if self.target is not None and np.all(np.isfinite(pose[:5])):
            self.target[:] = pose[:5]

    def on_twist(self, linear, angular_z: float, now_ns: int) -> None:
        """A ``geometry_msgs/Twist``: base-frame linear velocity (m/s), yaw rate (rad/s).

        Non-finite input is ignored (it neither moves nor refreshes the dead man).
        """
        values = np.array([*linear[:3], angular_z], float)
        if not np.all(np.isfinite(values)):
            return
        self._velocity[:4] = values
        self._input_ns = now_ns

    def on_joy(self, axes, buttons, now_ns: int) -> None:
        """A ``sensor_msgs/Joy``: axes mapped to velocities, buttons to the gripper."""
        c = self.config
        if any(index >= 0 for index in c.joy_axes):
            # a gamepad drives with its axes; with every axis unused (-1) the device's
            # motion comes as a Twist (a spacemouse) and Joy carries only the buttons
            motion = np.zeros(4)
            for k, (index, scale) in enumerate(zip(c.joy_axes, c.joy_scale)):
                if 0 <= index < len(axes):
                    motion[k] = float(axes[index]) * scale
            if not np.all(np.isfinite(motion)):
                return
            self._velocity[:4] = motion

        def pressed(index):
            return 0 <= index < len(buttons) and bool(buttons[index])
        self._velocity[4] = (-c.gripper_speed if pressed(c.button_close) else
                             c.gripper_speed if pressed(c.button_open) else 0.0)
        self._input_ns = now_ns

    def tick(self, now_ns: int) -> tuple:
        """The target now (requires :meth:`start`)."""
        if self.target is None:
            raise RuntimeError('Teleop.start() was not called')
        c = self.config
        dt = min(max(0, now_ns - self._tick_ns) / NS, c.max_step_time)
        self._tick_ns = now_ns
        alive = self._input_ns is not None and now_ns - self._input_ns <= c.deadman_timeout * NS
        if alive:
            v = self._velocity
            self.target[:3] += np.clip(v[:3], -c.max_linear_speed, c.max_linear_speed) * dt
            self.target[3] += float(np.clip(v[3], -c.max_yaw_rate, c.max_yaw_rate)) * dt
            self.target[4] = float(np.clip(self.target[4] + v[4] * dt, c.min_width,
                                           c.max_width))
        return tuple(float(v) for v in self.target)

"""Jerk-limited motion toward the chunk's target: Ruckig's online trajectory generator.

Each control tick the controller hands the blended chunk target (and the chunk's own velocity
there) to :class:`JerkLimitedMotion`; Ruckig (``ruckig`` on PyPI) computes the next position of
a time-optimal trajectory from the current position, velocity and acceleration under
per-axis velocity, acceleration and jerk limits. The limits sit inside the safety node's, so a
policy's command reaches the filter already smooth: the filter is the last line, not the
shaping. One update costs about a microsecond (measured here).
"""
from __future__ import annotations

import numpy as np

DOFS = 5   # x, y, z (m), yaw (rad), gripper_width (m)


class JerkLimitedMotion:
    """Per-axis limited motion of ``(x, y, z, yaw, gripper_width)``."""

    def __init__(self, period: float, max_velocity, max_acceleration, max_jerk, start):
        try:
            from ruckig import (
                InputParameter,
                OutputParameter,
                Ruckig,
                RuckigError,
                Synchronization,
            )
        except ImportError:
            raise RuntimeError("control motion 'ruckig' needs the ruckig package "
                               '(pip install ruckig==0.19.4), or set motion: smoothing'
                               ) from None
        self._otg = Ruckig(DOFS, period)
        self._input = InputParameter(DOFS)
        self._output = OutputParameter(DOFS)
        self._input.max_velocity = list(max_velocity)
        self._input.max_acceleration = list(max_acceleration)
        self._input.max_jerk = list(max_jerk)
        # Each axis on its own: the target moves every tick, so a straight line between two
        # of them buys nothing, and the time synchronisation of the axes is what can fail.
        self._input.synchronization = Synchronization.No
        # What Ruckig can raise: its own error, and a ValueError when it returns a result
        # code its Python enum lacks (-101 for a target 1e4 m away, measured)
        self._errors = (RuckigError, ValueError, RuntimeError, OverflowError)
        self.failures = 0   # updates refused so far (a diagnostic; the output held)
        self._vmax = np.asarray(max_velocity, float)
        self.reset(start)

    def reset(self, pose) -> None:
        """Stand still at ``pose`` (after a hold or a fallback moved the output)."""
        self._input.current_position = [float(v) for v in pose]
        self._input.current_velocity = [0.0] * DOFS
        self._input.current_acceleration = [0.0] * DOFS

    def step(self, target, target_velocity) -> np.ndarray:
        """The next position toward ``target``, arriving with ``target_velocity`` (clipped)."""
        velocity = np.clip(target_velocity, -0.95 * self._vmax, 0.95 * self._vmax)
        self._input.target_position = [float(v) for v in target]
        for target_velocity in (velocity, np.zeros(DOFS)):
            self._input.target_velocity = [float(v) for v in target_velocity]
            try:
                result = self._otg.update(self._input, self._output)
            except self._errors:
                continue
            if int(result) >= 0:
                self._output.pass_to_input(self._input)
                return np.asarray(self._output.new_position, float)
        # Nothing feasible (Ruckig refused both): stand still where the output is rather
        # than guess; the next tick plans again from rest.
        self.failures += 1
        self.reset(self._input.current_position)
        return np.asarray(self._input.current_position, float)

"""An independent auditor of the safety filter's outputs, for the fuzz bench and the tests.

It restates the filter's promises from the limits alone (numpy, no shared code with
``filter.py``): every output is finite, inside every range limit (always, from the first
output on, whatever state the robot started in), within the rate limits of the previous
output, and frozen while the software stop is latched.
"""
from __future__ import annotations

import numpy as np

from sim2real_safety.limits import SafetyLimits

# Relative slack for floating-point rounding of a scaled step (1e-9 of a 2.5 mm step is
# 2.5 pm: far below anything physical, far above rounding).
RTOL = 1e-9


class OutputAuditor:
    """Feed it every output in order; it returns what each one broke (empty when safe)."""

    def __init__(self, limits: SafetyLimits):
        self.limits = limits
        self.lower = np.array(limits.lower)
        self.upper = np.array(limits.upper)
        self.previous: np.ndarray | None = None
        self.previous_ns = 0
        self.outputs = 0
        self.unsafe = 0

    def audit(self, command, now_ns: int, stopped_pose=None) -> list[str]:
        """Problems of ``command`` sent at ``now_ns`` (``stopped_pose``: the latched hold)."""
        problems = []
        pose = np.asarray(command, dtype=float)
        if pose.shape != (5,) or not np.all(np.isfinite(pose)):
            problems.append(f'not a finite 5-vector: {command!r}')
        else:
            for i in np.flatnonzero((pose < self.lower) | (pose > self.upper)):
                problems.append(f'field {i} = {pose[i]} outside '
                                f'[{self.lower[i]}, {self.upper[i]}]')
        if not problems and self.previous is not None:
            lim = self.limits
            period_ns = round(lim.control_period * 1e9)
            # A clock that went backwards hides how long passed: allow one period at most.
            elapsed_ns = now_ns - self.previous_ns if now_ns >= self.previous_ns else period_ns
            dt = min(elapsed_ns, period_ns) / 1e9
            step = pose - self.previous
            checks = (
                (np.linalg.norm(step[:3]),
                 min(lim.max_cartesian_step, lim.max_cartesian_speed * dt), 'linear'),
                (abs(step[3]), lim.max_yaw_rate * dt, 'yaw'),
                (abs(step[4]), lim.max_gripper_speed * dt, 'gripper'),
            )
            for actual, allowed, name in checks:
                if actual > allowed * (1.0 + RTOL) + 1e-15:
                    problems.append(f'{name} step {actual:.6g} > allowed {allowed:.6g} '
                                    f'in {dt:.4f} s')
        if stopped_pose is not None and pose.shape == (5,) and not np.array_equal(
                pose, np.asarray(stopped_pose, dtype=float)):
            problems.append(f'moved during the software stop: {command!r} != {stopped_pose!r}')
        if pose.shape == (5,) and np.all(np.isfinite(pose)):
            self.previous = pose
            self.previous_ns = now_ns
        self.outputs += 1
        self.unsafe += bool(problems)
        return problems

"""An independent auditor of the safety filter's outputs, for the fuzz bench and the tests.

It restates the filter's promises from the limits alone (numpy, no shared code with
``filter.py``): every output is finite, inside every range limit (always, from the first
output on, whatever state the robot started in), within the rate limits of the previous
output, above the fingers' floor at the measured opening (an output below it only rises),
within ``max_follow_error`` (and ``max_yaw_follow_error``) of the measured robot pose it is
given, and frozen while the software stop is latched. While commissioning (``commissioning``
given), the z floor is ``commissioning_floor`` instead, the fingers may touch, and below
``floor_top`` no output moves faster than ``commissioning_speed``; after it, an output below
the autonomous floor only rises. The one exception to the rate
limits is the pull toward the robot: when the previous output lies outside the follow region
of the current measured pose (the robot was pushed away, or moved on commands in flight), the
output must be nearer the robot than the previous one: it approaches, at the rate limits,
never jumping and never running farther.
"""
from __future__ import annotations

import math

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
        self.previous_stopped = False
        self.previous_step = None   # the last output's step (m/s, rad/s; 0 when it stood)
        self.outputs = 0
        self.unsafe = 0

    def region(self, measured, speeds=(0.0, 0.0), lower=None):
        """The follow region (centre, radius, yaw_lo, yaw_hi) around ``measured``.

        The measured TCP clamped into the box, and what is left of the follow bounds at the
        measured ``speeds`` (m/s, rad/s) after that.
        """
        measured = np.asarray(measured, dtype=float)
        lim = self.limits
        follow = min(lim.max_follow_error, lim.max_cartesian_speed * lim.follow_response_time
                     + abs(speeds[0]) * lim.follow_lag_time)
        yaw_follow = min(lim.max_yaw_follow_error, lim.max_yaw_rate * lim.follow_response_time
                         + abs(speeds[1]) * lim.follow_lag_time)
        lower = self.lower if lower is None else lower
        centre = np.clip(measured[:3], lower[:3], self.upper[:3])
        radius = max(0.0, follow - float(np.linalg.norm(centre - measured[:3])))
        yaw = float(np.clip(measured[3], self.lower[3], self.upper[3]))
        slack = max(0.0, yaw_follow - abs(yaw - measured[3]))
        return centre, radius, max(self.lower[3], yaw - slack), min(self.upper[3], yaw + slack)

    def _with_command_speed(self, speeds, pose):
        """The speeds the follow bound is judged at.

        The measured ones for a command that stands (this output and the one before it where
        the one before that was), else the speed limit: only the cap applies while the
        command moves.
        """
        step = self.previous_step
        standing = (self.previous is not None and step is not None
                    and not np.any(step) and np.array_equal(pose, self.previous))
        if standing:
            return speeds
        lim = self.limits
        return (max(abs(speeds[0]), lim.max_cartesian_speed),
                max(abs(speeds[1]), lim.max_yaw_rate))

    def audit(self, command, now_ns: int, stopped_pose=None, measured=None,
              speeds=(0.0, 0.0), commissioning: bool = False) -> list[str]:
        """Problems of ``command`` sent at ``now_ns``.

        ``stopped_pose``: the latched hold; ``measured``: the robot's measured pose the output
        must stay near, moving at ``speeds`` (m/s, rad/s); ``commissioning``: the supervisor's
        commissioning mode was on for this output.
        """
        problems = []
        pose = np.asarray(command, dtype=float)
        previous = self.previous
        lower = self.lower.copy()
        if commissioning:
            lower[2] = self.limits.commissioning_floor
        if pose.shape != (5,) or not np.all(np.isfinite(pose)):
            problems.append(f'not a finite 5-vector: {command!r}')
        else:
            low = lower.copy()
            if previous is not None and previous[2] < low[2]:
                low[2] = previous[2]   # below the floor after a commissioning: rising only
            for i in np.flatnonzero((pose < low) | (pose > self.upper)):
                problems.append(f'field {i} = {pose[i]} outside '
                                f'[{low[i]}, {self.upper[i]}]')
        if not problems and measured is not None:
            speeds = self._with_command_speed(speeds, pose)
            centre, radius, yaw_lo, yaw_hi = self.region(measured, speeds, lower)
            distance = float(np.linalg.norm(pose[:3] - centre))
            gap = (math.inf if previous is None
                   else float(np.linalg.norm(previous[:3] - centre)))
            if distance > radius * (1.0 + RTOL) + 1e-15 and distance > gap + 1e-12:
                problems.append(f'{distance:.6g} m from the measured robot {measured!r}, '
                                f'bound {radius:.6g}, and not approaching it')
            yaw_gap = abs(pose[3] - np.clip(pose[3], yaw_lo, yaw_hi))
            previous_yaw_gap = (math.inf if previous is None
                                else abs(previous[3] - np.clip(previous[3], yaw_lo, yaw_hi)))
            if yaw_gap > 1e-15 and yaw_gap > previous_yaw_gap + 1e-12:
                problems.append(f'yaw {pose[3]} outside [{yaw_lo}, {yaw_hi}] around the '
                                f'measured {measured[3]}, and not approaching it')
        if not problems and measured is not None and previous is not None and not commissioning:
            # the fingers' lowest point: the TCP floor at the measured opening, or the one a
            # closing command reaches within the response time; an output below it may rise
            lim = self.limits
            width = float(measured[4])
            reach = width - lim.max_gripper_speed * lim.follow_response_time
            floor = lim.tcp_floor(min(width, max(float(pose[4]), reach)))
            if pose[2] < floor - 1e-12 and pose[2] < previous[2] - 1e-12:
                problems.append(f"z {pose[2]:.6g} below the fingers' floor {floor:.6g} at "
                                f'opening {pose[4]:.4g} m (measured {width:.4g}), descending')
        if not problems and previous is not None:
            lim = self.limits
            period_ns = round(lim.control_period * 1e9)
            # A clock that went backwards hides how long passed: allow one period at most.
            elapsed_ns = now_ns - self.previous_ns if now_ns >= self.previous_ns else period_ns
            dt = min(elapsed_ns, period_ns) / 1e9
            step = pose - previous
            checks = (
                (np.linalg.norm(step[:3]),
                 min(lim.max_cartesian_step, lim.command_speed * dt), 'linear'),
                (abs(step[3]), lim.max_yaw_rate * dt, 'yaw'),
                (abs(step[4]), lim.max_gripper_speed * dt, 'gripper'),
            )
            if commissioning and min(pose[2], previous[2]) < self.limits.floor_top:
                checks += ((np.linalg.norm(step[:3]), lim.commissioning_speed * dt,
                            'commissioning linear'),)
            for actual, allowed, name in checks:
                if actual > allowed * (1.0 + RTOL) + 1e-15:
                    problems.append(f'{name} step {actual:.6g} > allowed {allowed:.6g} '
                                    f'in {dt:.4f} s')
        if stopped_pose is not None and pose.shape == (5,) and not np.array_equal(
                pose, np.asarray(stopped_pose, dtype=float)):
            problems.append(f'moved during the software stop: {command!r} != {stopped_pose!r}')
        if (stopped_pose is not None and previous is not None and pose.shape == (5,)
                and self.previous_stopped
                and not np.allclose(pose, previous, rtol=0.0, atol=1e-12)):
            problems.append(f'the stop hold moved other than toward the robot: {command!r}')
        self.previous_stopped = stopped_pose is not None
        if pose.shape == (5,) and np.all(np.isfinite(pose)):
            elapsed = (now_ns - self.previous_ns) / 1e9
            period = self.limits.control_period
            self.previous_step = (None if self.previous is None
                                  else (pose - self.previous) / max(min(elapsed, period),
                                                                    1e-9))
            self.previous = pose
            self.previous_ns = now_ns
        self.outputs += 1
        self.unsafe += bool(problems)
        return problems

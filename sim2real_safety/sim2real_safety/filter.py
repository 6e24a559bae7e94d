"""The safety filter: the last thing every command passes before it can reach hardware.

``SafetyFilter.check`` takes a proposed command ``(x, y, z, yaw, gripper_width)`` with its own
stamp and returns the command that may be sent, a verdict and every violated constraint. The
order of the checks is the order of their severity:

1. software stop latched -> hold the pose latched at the trigger (STOPPED);
2. malformed proposal (wrong length, non-finite value or stamp) -> hold (REJECTED);
3. stamp from the future, too old, or not newer than the last one -> hold (REJECTED);
4. an unhealthy input (supervisor heartbeat or robot state stale, no state yet) -> hold;
5. range limits (workspace box, table clearance, yaw, gripper width) -> scale/clamp/reject;
6. rate limits from the last command actually sent (Cartesian speed and step, yaw rate,
   gripper speed) -> scale/clamp/reject;
7. a final guard, independent of 5 and 6, re-checks the output; if it ever fails, the filter
   holds and latches the software stop (the filter contradicted itself).

"Hold" decelerates: the output keeps the direction of the last sent motion and slows at
``stop_deceleration`` until it rests, so a rejected proposal or a silent policy never causes a
jump, and never a jump back to an old setpoint. The software stop freezes at once.

Time is integer nanoseconds of the caller's clock (ROS time, sim time or a replayed bag's).
A clock that jumps backwards (a looping bag, sim time switching on) resets every time
reference: the filter holds until fresh inputs arrive on the new timeline.

The methods allocate little (plain floats, one small result object), do no I/O except when
the software stop is triggered or reset, and never block.
"""
from __future__ import annotations

import math
from typing import Sequence

from sim2real_safety.limits import COMMAND_FIELDS, Reaction, SafetyLimits, Verdict
from sim2real_safety.software_stop import SoftwareStopLatch

NS = 1_000_000_000
# CartesianCommand sources a proposal may carry (SOURCE_SAFETY is the filter's own, and
# anything else is not a source at all); checked against the .msg by a test.
PROPOSAL_SOURCES = frozenset(range(7))
# Relative slack of the final guard, for floating-point rounding of the scaled step only.
_GUARD_RTOL = 1e-9


class Violation:
    """One violated constraint: its name, the command field, the value and the limit."""

    __slots__ = ('constraint', 'field', 'value', 'limit', 'reaction')

    def __init__(self, constraint: str, field: str, value: float, limit: float,
                 reaction: Reaction):
        self.constraint = constraint
        self.field = field
        self.value = value
        self.limit = limit
        self.reaction = reaction

    def __repr__(self) -> str:
        return (f'Violation({self.constraint}: {self.field}={self.value!r} limit {self.limit!r}'
                f' -> {self.reaction.name.lower()})')


class Decision:
    """The filter's answer: the command to send (or None before the first robot state)."""

    __slots__ = ('command', 'verdict', 'violations', 'stamp_ns', 'command_age')

    def __init__(self, command, verdict: Verdict, violations: tuple, stamp_ns: int,
                 command_age: float):
        self.command = command
        self.verdict = verdict
        self.violations = violations
        self.stamp_ns = stamp_ns
        self.command_age = command_age

    def __repr__(self) -> str:
        return f'Decision({self.verdict.name}, {self.command}, {list(self.violations)})'


class SafetyFilter:
    """Constraint checking, the software stop, the fail-closed gate and the command watchdog."""

    def __init__(self, limits: SafetyLimits, latch: SoftwareStopLatch | None = None):
        self.limits = limits
        self.latch = latch or SoftwareStopLatch()
        self._lower = limits.lower
        self._upper = limits.upper
        self._period_ns = int(round(limits.control_period * NS))
        self._timeout_ns = int(round(limits.command_timeout * NS))
        self._max_age_ns = int(round(limits.max_command_age * NS))
        self._future_ns = int(round(limits.future_tolerance * NS))
        self._supervisor_ns = int(round(limits.supervisor_timeout * NS))
        self._state_timeout_ns = int(round(limits.state_timeout * NS))
        table_binding = limits.table_height + limits.table_clearance >= limits.workspace_min[2]
        r = limits.reactions
        # Per field: (lower-bound constraint, its reaction, upper-bound constraint, reaction).
        self._range_rules = (
            ('workspace_x', r['workspace'], 'workspace_x', r['workspace']),
            ('workspace_y', r['workspace'], 'workspace_y', r['workspace']),
            ('table_clearance' if table_binding else 'workspace_z',
             r['table_clearance' if table_binding else 'workspace'],
             'workspace_z', r['workspace']),
            ('yaw_range', r['yaw_range'], 'yaw_range', r['yaw_range']),
            ('gripper_width_range', r['gripper_width_range'],
             'gripper_width_range', r['gripper_width_range']),
        )
        self._joints = {joint.name: joint for joint in limits.joint_limits}
        self._sent: tuple | None = None        # last command actually sent
        self._sent_ns = 0
        self._velocity = (0.0, 0.0, 0.0)       # of the last sent linear step (m/s)
        self._stop_pose: tuple | None = None
        self._last_stamp_ns: int | None = None  # stamp of the last accepted proposal
        self._state_ns: int | None = None
        self._heartbeat_ns: int | None = None
        self._reset_ns: int | None = None       # proposals must be newer than the last reset
        self._outside: Violation | None = None  # why the measured state could not seed
        self._clock_ns: int | None = None
        self.checked_count = 0
        if self.latch.active:
            self._stop_pose = None  # set to the first known pose

    # ----------------------------------------------------------------------------- inputs
    def _observe_clock(self, now_ns: int) -> None:
        if self._clock_ns is not None and now_ns < self._clock_ns:
            # The clock went backwards: every stamp we hold is on the old timeline.
            self._last_stamp_ns = None
            self._state_ns = None
            self._heartbeat_ns = None
            self._reset_ns = None if self._reset_ns is None else now_ns
            self._sent_ns = now_ns
        self._clock_ns = now_ns

    def update_robot_state(self, pose: Sequence[float], now_ns: int) -> None:
        """Record the measured ``(x, y, z, yaw, gripper_width)``; the first one seeds the hold.

        A non-finite or malformed state means the sensors cannot be trusted: the software stop
        is latched.
        """
        self._observe_clock(now_ns)
        if len(pose) != 5 or not all(math.isfinite(v) for v in pose):
            self.trigger_stop('safety', f'robot state malformed or non-finite: {tuple(pose)}',
                              now_ns)
            return
        self._state_ns = now_ns
        if self._sent is None:
            # Start-up: the first command sent is the current state, brought inside the
            # limits by at most one allowed step. A robot measured farther outside is not
            # commanded at all (no output can be both inside the box and rate-limited from
            # there): proposals are rejected without a command until a state inside arrives.
            seed = self._seed_from(pose)
            if seed is None:
                return
            self._sent = seed
            self._sent_ns = now_ns
            self._outside = None
            if self.latch.active and self._stop_pose is None:
                self._stop_pose = self._sent

    def _seed_from(self, pose: Sequence[float]) -> tuple | None:
        """``pose`` clamped into the limits if it lies within one step of them, else None."""
        allowed = self._allowed_steps(self.limits.control_period)
        seed = [min(max(float(v), lo), hi) for v, lo, hi in zip(pose, self._lower, self._upper)]
        gaps = (math.dist(seed[:3], pose[:3]), abs(seed[3] - pose[3]), abs(seed[4] - pose[4]))
        for group, (gap, limit) in enumerate(zip(gaps, allowed)):
            if gap > limit:
                index = 0 if group == 0 else group + 2
                if group == 0:  # name the coordinate farthest out
                    index = max(range(3), key=lambda i: abs(seed[i] - pose[i]))
                self._outside = Violation('robot_outside_limits', COMMAND_FIELDS[index],
                                          float(pose[index]), seed[index], Reaction.REJECT)
                return None
        return tuple(seed)

    def update_joint_state(self, names: Sequence[str], positions: Sequence[float],
                           velocities: Sequence[float], now_ns: int) -> list[Violation]:
        """Check configured joints; a joint within the margin of a limit, or too fast, stops."""
        self._observe_clock(now_ns)
        found = []
        margin = self.limits.joint_limit_margin
        for index, name in enumerate(names):
            joint = self._joints.get(name)
            if joint is None:
                continue
            position = positions[index] if index < len(positions) else math.nan
            if not math.isfinite(position):
                found.append(Violation('joint_state', name, position, math.nan, Reaction.STOP))
            elif position < joint.lower + margin:
                found.append(Violation('joint_position', name, position, joint.lower + margin,
                                       Reaction.STOP))
            elif position > joint.upper - margin:
                found.append(Violation('joint_position', name, position, joint.upper - margin,
                                       Reaction.STOP))
            if index < len(velocities):
                velocity = velocities[index]
                if not math.isfinite(velocity):
                    found.append(Violation('joint_state', name, velocity, math.nan,
                                           Reaction.STOP))
                elif abs(velocity) > joint.max_velocity:
                    found.append(Violation('joint_velocity', name, velocity, joint.max_velocity,
                                           Reaction.STOP))
        if found:
            self.trigger_stop('safety', '; '.join(
                f'{v.constraint} {v.field}={v.value:.4g} (limit {v.limit:.4g})' for v in found),
                now_ns)
        return found

    def supervisor_heartbeat(self, now_ns: int) -> None:
        """The supervisor is alive (call on every SupervisorState received)."""
        self._observe_clock(now_ns)
        self._heartbeat_ns = now_ns

    def supervisor_alive(self, now_ns: int) -> bool:
        """True while the last heartbeat is at most ``supervisor_timeout`` old."""
        return (self._heartbeat_ns is not None
                and 0 <= now_ns - self._heartbeat_ns <= self._supervisor_ns)

    def unhealthy_inputs(self, now_ns: int) -> list[str]:
        """Why the gate is closed (empty when every input is healthy)."""
        problems = []
        if self._state_ns is None:
            problems.append('no robot state received')
        elif not 0 <= now_ns - self._state_ns <= self._state_timeout_ns:
            problems.append(f'robot state stale ({(now_ns - self._state_ns) / NS:.3f} s > '
                            f'state_timeout {self.limits.state_timeout} s)')
        if not self.supervisor_alive(now_ns):
            age = ('never heard' if self._heartbeat_ns is None
                   else f'silent {(now_ns - self._heartbeat_ns) / NS:.3f} s')
            problems.append(f'supervisor heartbeat {age} (supervisor_timeout '
                            f'{self.limits.supervisor_timeout} s)')
        return problems

    # ------------------------------------------------------------------------ software stop
    @property
    def stop_active(self) -> bool:
        """True while the software stop is latched."""
        return self.latch.active

    def trigger_stop(self, who: str, reason: str, now_ns: int):
        """Latch the software stop; the output freezes at the last sent command."""
        if not self.latch.active:
            self._stop_pose = self._sent
            self._velocity = (0.0, 0.0, 0.0)
        return self.latch.trigger(who, reason, now_ns)

    def reset_stop(self, operator: str, reason: str, now_ns: int):
        """Clear the stop if an operator and a reason are given and every input is healthy.

        Raises ``ResetRefusedError`` otherwise. Motion resumes only with a proposal stamped
        after the reset.
        """
        self._observe_clock(now_ns)
        event = self.latch.reset(operator, reason, now_ns, self.unhealthy_inputs(now_ns))
        self._stop_pose = None
        self._reset_ns = now_ns
        return event

    # ---------------------------------------------------------------------------- checking
    def check(self, proposal: Sequence[float] | None, stamp_ns: int, now_ns: int,
              frame_id: str | None = None, source: int | None = None) -> Decision:
        """Filter one proposed command stamped ``stamp_ns``, at time ``now_ns``.

        ``frame_id`` and ``source`` are the proposal's header frame and source constant; the
        safety node always passes them: a proposal in another frame than ``limits.frame_id``,
        or from a source that is not a proposal source, is rejected (a hold).
        """
        self._observe_clock(now_ns)
        self.checked_count += 1
        if self._sent is None:
            missing = self._outside or Violation('no_robot_state', 'state', math.nan, math.nan,
                                                 Reaction.REJECT)
            return Decision(None, Verdict.REJECTED, (missing,), now_ns, math.nan)
        if not isinstance(stamp_ns, int) and hasattr(stamp_ns, '__index__'):
            stamp_ns = int(stamp_ns)  # numpy integers
        age = (now_ns - stamp_ns) / NS if isinstance(stamp_ns, int) else math.nan
        if self.latch.active:
            return self._freeze(now_ns, age)

        # 2. malformed
        if proposal is None or len(proposal) != 5:
            size = -1 if proposal is None else len(proposal)
            return self._hold(now_ns, age, Violation('malformed', 'command', float(size), 5.0,
                                                     Reaction.REJECT))
        target = [0.0] * 5
        for index in range(5):
            value = proposal[index]
            try:
                if isinstance(value, (str, bytes, bool)):
                    raise TypeError(type(value).__name__)
                value = float(value)
            except (TypeError, ValueError):
                return self._hold(now_ns, age, Violation(
                    'malformed', COMMAND_FIELDS[index], math.nan, math.nan, Reaction.REJECT))
            # An explicit check: clipping would let NaN through (min/max with NaN is NaN).
            if not math.isfinite(value):
                return self._hold(now_ns, age, Violation(
                    'non_finite', COMMAND_FIELDS[index], value, math.nan, Reaction.REJECT))
            target[index] = value

        if frame_id is not None and frame_id != self.limits.frame_id:
            return self._hold(now_ns, age, Violation('wrong_frame', 'frame_id', math.nan,
                                                     math.nan, Reaction.REJECT))
        if source is not None and source not in PROPOSAL_SOURCES:
            return self._hold(now_ns, age, Violation('unknown_source', 'source', float(source)
                                                     if isinstance(source, int) else math.nan,
                                                     math.nan, Reaction.REJECT))

        # 3. stamps
        if not isinstance(stamp_ns, int) or isinstance(stamp_ns, bool) or stamp_ns < 0:
            return self._hold(now_ns, age, Violation('bad_stamp', 'stamp', math.nan, 0.0,
                                                     Reaction.REJECT))
        if stamp_ns > now_ns + self._future_ns:
            return self._hold(now_ns, age, Violation('future_stamp', 'stamp', age,
                                                     -self.limits.future_tolerance,
                                                     Reaction.REJECT))
        if now_ns - stamp_ns > self._max_age_ns:
            return self._hold(now_ns, age, Violation('stale_command', 'stamp', age,
                                                     self.limits.max_command_age,
                                                     Reaction.REJECT))
        if self._last_stamp_ns is not None and stamp_ns <= self._last_stamp_ns:
            return self._hold(now_ns, age, Violation(
                'stamp_not_increasing', 'stamp', stamp_ns / NS, self._last_stamp_ns / NS,
                Reaction.REJECT))
        self._last_stamp_ns = stamp_ns
        if self._reset_ns is not None and stamp_ns <= self._reset_ns:
            return self._hold(now_ns, age, Violation(
                'awaiting_new_command', 'stamp', stamp_ns / NS, self._reset_ns / NS,
                Reaction.REJECT))

        # 4. fail closed on unhealthy inputs
        if self._state_ns is None or not 0 <= now_ns - self._state_ns <= self._state_timeout_ns:
            return self._hold(now_ns, age, Violation('robot_state_stale', 'state', math.nan,
                                                     self.limits.state_timeout, Reaction.REJECT))
        if not self.supervisor_alive(now_ns):
            return self._hold(now_ns, age, Violation('supervisor_silent', 'heartbeat', math.nan,
                                                     self.limits.supervisor_timeout,
                                                     Reaction.REJECT))

        # 5. range limits
        sent = self._sent
        lower, upper = self._lower, self._upper
        violations = []
        scale_t = 1.0
        worst = Verdict.PASS
        for i in range(5):
            value = target[i]
            if value < lower[i]:
                name, reaction, _, _ = self._range_rules[i]
                bound = lower[i]
            elif value > upper[i]:
                _, _, name, reaction = self._range_rules[i]
                bound = upper[i]
            else:
                continue
            violations.append(Violation(name, COMMAND_FIELDS[i], value, bound, reaction))
            if reaction == Reaction.REJECT:
                return self._hold(now_ns, age, *violations)
            if reaction == Reaction.SCALE and lower[i] <= sent[i] <= upper[i]:
                scale_t = min(scale_t, (bound - sent[i]) / (value - sent[i]))
                worst = max(worst, Verdict.SCALED)
            else:
                worst = Verdict.CLAMPED
        if scale_t < 1.0:
            target = [s + scale_t * (t - s) for s, t in zip(sent, target)]
        for i in range(5):  # clamp-type fields, and rounding of the scaled ones
            if target[i] < lower[i]:
                target[i] = lower[i]
            elif target[i] > upper[i]:
                target[i] = upper[i]

        # 6. rate limits, from the last command actually sent
        dt_ns = min(max(now_ns - self._sent_ns, 0), self._period_ns)
        dt = dt_ns / NS
        lim = self.limits
        allowed = self._allowed_steps(dt)
        step = [t - s for t, s in zip(target, sent)]
        linear = math.sqrt(step[0] * step[0] + step[1] * step[1] + step[2] * step[2])
        actual = (linear, abs(step[3]), abs(step[4]))
        rate_names = ('cartesian_step' if lim.max_cartesian_step < lim.max_cartesian_speed * dt
                      else 'cartesian_speed', 'yaw_rate', 'gripper_speed')
        fields = ('xyz', 'yaw', 'gripper_width')
        scale_s = 1.0
        clamp_groups = []
        for group in range(3):
            if actual[group] <= allowed[group]:
                continue
            name = rate_names[group]
            reaction = lim.reactions[name]
            violations.append(Violation(name, fields[group], actual[group], allowed[group],
                                        reaction))
            if reaction == Reaction.REJECT:
                return self._hold(now_ns, age, *violations)
            if reaction == Reaction.SCALE:
                scale_s = min(scale_s, allowed[group] / actual[group])
                worst = max(worst, Verdict.SCALED)
            else:
                clamp_groups.append(group)
                worst = Verdict.CLAMPED
        if scale_s < 1.0:
            step = [d * scale_s for d in step]
        # Clamp-type groups, and any group a rounding error left a hair over its allowance.
        linear = math.sqrt(step[0] * step[0] + step[1] * step[1] + step[2] * step[2])
        if linear > allowed[0]:
            factor = allowed[0] / linear
            step[0] *= factor
            step[1] *= factor
            step[2] *= factor
        for i, group in ((3, 1), (4, 2)):
            if step[i] > allowed[group]:
                step[i] = allowed[group]
            elif step[i] < -allowed[group]:
                step[i] = -allowed[group]
        command = tuple(s + d for s, d in zip(sent, step))
        return self._emit(command, now_ns, dt, worst, tuple(violations), age)

    def tick(self, now_ns: int, force: bool = False) -> Decision | None:
        """The watchdog, called periodically: a hold when the command stream has gone quiet.

        Returns None while fresh proposals keep coming (their outputs stand), else a hold:
        STOPPED during the software stop, REJECTED with ``command_timeout`` or the unhealthy
        input otherwise. ``force``: decide even if an output was just sent (a software stop
        is published at once, not at the next tick).
        """
        self._observe_clock(now_ns)
        if self._sent is None:
            return None
        if now_ns - self._sent_ns < self._period_ns // 2 and not (force and self.latch.active):
            return None  # an output was just sent; the stream is alive
        if self.latch.active:
            return self._freeze(now_ns, math.nan)
        timed_out = (self._last_stamp_ns is None
                     or now_ns - self._last_stamp_ns > self._timeout_ns)
        if timed_out:
            age = math.nan if self._last_stamp_ns is None else (
                now_ns - self._last_stamp_ns) / NS
            return self._hold(now_ns, age, Violation('command_timeout', 'stamp', age,
                                                     self.limits.command_timeout,
                                                     Reaction.REJECT))
        problems = self.unhealthy_inputs(now_ns)
        if problems:
            return self._hold(now_ns, math.nan, Violation(
                'supervisor_silent' if 'supervisor' in problems[-1] else 'robot_state_stale',
                'input', math.nan, math.nan, Reaction.REJECT))
        return None

    # ------------------------------------------------------------------------------ output
    def _allowed_steps(self, dt: float) -> tuple[float, float, float]:
        lim = self.limits
        return (min(lim.max_cartesian_step, lim.max_cartesian_speed * dt),
                lim.max_yaw_rate * dt, lim.max_gripper_speed * dt)

    def _freeze(self, now_ns: int, age: float) -> Decision:
        if self._stop_pose is None:
            self._stop_pose = self._sent
        self._sent = self._stop_pose
        self._sent_ns = now_ns
        self._velocity = (0.0, 0.0, 0.0)
        return Decision(self._stop_pose, Verdict.STOPPED, (Violation(
            'software_stop', 'latch', math.nan, math.nan, Reaction.STOP),), now_ns, age)

    def _hold(self, now_ns: int, age: float, *violations: Violation) -> Decision:
        """Decelerate along the last sent motion to rest (never a jump, never backwards)."""
        dt_ns = min(max(now_ns - self._sent_ns, 0), self._period_ns)
        dt = dt_ns / NS
        sent = self._sent
        vx, vy, vz = self._velocity
        speed = math.sqrt(vx * vx + vy * vy + vz * vz)
        new_speed = max(0.0, speed - self.limits.stop_deceleration * dt)
        if new_speed <= 0.0 or dt <= 0.0:
            command = sent
        else:
            length = min(new_speed * dt, self._allowed_steps(dt)[0])
            k = length / speed
            target = [sent[0] + vx * k, sent[1] + vy * k, sent[2] + vz * k]
            for i in range(3):
                target[i] = min(max(target[i], min(self._lower[i], sent[i])),
                                max(self._upper[i], sent[i]))
            command = (target[0], target[1], target[2], sent[3], sent[4])
        return self._emit(command, now_ns, dt, Verdict.REJECTED, violations, age)

    def _emit(self, command: tuple, now_ns: int, dt: float, verdict: Verdict,
              violations: tuple, age: float) -> Decision:
        problem = self._guard(command, dt)
        if problem:
            self.trigger_stop('safety', f'internal guard: {problem}', now_ns)
            return self._freeze(now_ns, age)
        sent = self._sent
        if dt > 0.0:
            self._velocity = ((command[0] - sent[0]) / dt, (command[1] - sent[1]) / dt,
                              (command[2] - sent[2]) / dt)
        else:
            self._velocity = (0.0, 0.0, 0.0)
        self._sent = command
        self._sent_ns = now_ns
        return Decision(command, verdict, violations, now_ns, age)

    def _guard(self, command: tuple, dt: float) -> str:
        """Independent re-check of an output against the limits; '' when it is safe."""
        sent = self._sent
        for i in range(5):
            value = command[i]
            if not math.isfinite(value):
                return f'{COMMAND_FIELDS[i]} not finite'
            if not self._lower[i] <= value <= self._upper[i]:
                return f'{COMMAND_FIELDS[i]}={value} outside [{self._lower[i]}, {self._upper[i]}]'
        allowed = self._allowed_steps(dt)
        linear = math.dist(command[:3], sent[:3])
        if linear > allowed[0] * (1.0 + _GUARD_RTOL) + 1e-15:
            return f'linear step {linear} > allowed {allowed[0]}'
        if abs(command[3] - sent[3]) > allowed[1] * (1.0 + _GUARD_RTOL) + 1e-15:
            return f'yaw step {command[3] - sent[3]} > allowed {allowed[1]}'
        if abs(command[4] - sent[4]) > allowed[2] * (1.0 + _GUARD_RTOL) + 1e-15:
            return f'gripper step {command[4] - sent[4]} > allowed {allowed[2]}'
        return ''

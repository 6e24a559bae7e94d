"""The safety filter: the last thing every command passes before it can reach hardware.

``SafetyFilter.check`` takes a proposed command ``(x, y, z, yaw, gripper_width)`` with its own
stamp and returns the command that may be sent, a verdict and every violated constraint. The
order of the checks is the order of their severity:

1. software stop latched -> hold the pose latched at the trigger (STOPPED);
2. malformed proposal (wrong length, non-finite value or stamp) -> hold (REJECTED);
3. stamp from the future, too old, or not newer than the last one -> hold (REJECTED);
4. an unhealthy input (supervisor heartbeat, robot state or a monitored joint's state stale
   or missing, a robot state that is not plausible) -> hold;
5. range limits (workspace box, table clearance, yaw, gripper width) -> scale/clamp/reject;
6. rate limits from the last command actually sent (Cartesian speed and step, yaw rate,
   gripper speed) -> scale/clamp/reject;
7. the follow-error bound: the output lies near the latest plausible measured pose: within
   what the robot closes at the speed limit in ``follow_response_time`` when robot and
   command are at rest, plus ``follow_lag_time`` x the faster of the robot's measured and
   the command's own speed while either moves (the lag of a moving robot behind its command:
   latency, actuation delay, servo), never more than ``max_follow_error``
   (``max_yaw_follow_error`` for yaw). An output outside it (the robot was pushed away, or
   stopped by an obstacle) may only approach the robot, at the rate limits: never a jump;
8. a final guard, independent of 5 to 7, re-checks the output; if it ever fails, the filter
   holds and latches the software stop (the filter contradicted itself).

Commissioning (:meth:`SafetyFilter.set_commissioning`, from the supervisor's state): only
proposals from the commissioning source are taken; their z floor is ``commissioning_floor``
(the fingertips may touch the table: that is the touch-off), and below ``floor_top`` every
output moves at most ``commissioning_speed``. Everything else holds as always. When it ends,
an output below the autonomous floor only rises back to it, at the rate limits.

The measured pose is trusted only when it is plausible: the first command waits for
``SEED_READINGS`` consecutive readings that agree with each other (one glitched first reading
never seeds), and after that a reading farther from the last plausible one than the robot can
move (``state_tolerance`` + ``max_state_speed`` x the time between them), or one that
disagrees with the ``tcp_joints`` of the joint states, is a fault: it is not used, the gate
holds, and if no plausible reading comes for ``state_timeout`` the software stop latches.
Every monitored joint must be present in the joint states, finite, with its velocity, and
fresh (``state_timeout``); a missing, renamed or stale joint holds the gate.

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
PROPOSAL_SOURCES = frozenset((*range(7), 8))
# CartesianCommand.SOURCE_COMMISSIONING: while commissioning, the only source taken.
SOURCE_COMMISSIONING = 8
# Relative slack of the final guard, for floating-point rounding of the scaled step only.
_GUARD_RTOL = 1e-9
# Consecutive, mutually plausible robot states before the first command (and before a new
# reference while the stop is latched): one glitched reading can never seed a command.
SEED_READINGS = 3
# Violations that say the robot's measured state cannot be trusted (the supervisor names them).
STATE_FAULTS = frozenset(('robot_state_jump', 'robot_state_disagrees_with_joints',
                          'joint_state_missing', 'joint_state_stale'))


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
        self._command_speed = limits.command_speed
        self._period_dt = self._period_ns / NS
        self._period_steps = self._allowed_steps(self._period_dt)
        self._period_rate_rules = self._rate_rules(self._period_dt)
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
        self._tcp_joints = tuple(limits.tcp_joints)
        self._joint_vel: dict[str, float] = {}
        self._speeds = (0.0, 0.0)               # measured TCP speed, yaw rate (m/s, rad/s)
        self._anchor: tuple | None = None       # the follow region's centre, from _measured
        self._at_rest = limits.follow_bounds(0.0, 0.0)
        # how far the fingers may close before the robot responds to a new command (m)
        self._finger_reach = limits.max_gripper_speed * limits.follow_response_time
        self._floor = self._lower[2]            # the TCP floor at the last output's width
        self._floor_cache = (math.nan, self._lower[2])  # (opening, its tcp_floor)
        self._sent: tuple | None = None        # last command actually sent
        self._sent_ns = 0
        self._velocity = (0.0, 0.0, 0.0)       # of the last sent linear step (m/s)
        self._yaw_rate = 0.0                    # rad/s of the last sent yaw step (signed)
        self._stop_pose: tuple | None = None
        self._last_stamp_ns: int | None = None  # stamp of the last accepted proposal
        self._measured: tuple | None = None     # latest plausible robot state
        self._state_ns: int | None = None       # ... and when it arrived
        self._streak: tuple | None = None       # (pose, ns, count) of agreeing readings
        self._state_fault: Violation | None = None  # the latest reading was not plausible
        self._fault_since_ns: int | None = None
        self._joint_ns: dict[str, int] = {}     # when each monitored joint was last complete
        self._joint_oldest_ns: int | None = None  # the stalest of them (None: one never was)
        self._joint_pos: dict[str, float] = {}
        self._joint_absent = ''                 # monitored joints the last message lacked
        self._heartbeat_ns: int | None = None
        self._reset_ns: int | None = None       # proposals must be newer than the last reset
        self._outside: Violation | None = None  # why the measured state could not seed
        self._clock_ns: int | None = None
        self.checked_count = 0
        self._autonomous_lower = self._lower
        self._commissioning_lower = (self._lower[0], self._lower[1], limits.commissioning_floor,
                                     self._lower[3], self._lower[4])
        self._floor_top = limits.floor_top
        self.commissioning = False
        if self.latch.active:
            self._stop_pose = None  # set to the first known pose

    # ----------------------------------------------------------------------------- inputs
    def _observe_clock(self, now_ns: int) -> None:
        if self._clock_ns is not None and now_ns < self._clock_ns:
            # The clock went backwards: every stamp we hold is on the old timeline.
            self._last_stamp_ns = None
            self._state_ns = None
            self._streak = None
            self._fault_since_ns = None
            self._joint_ns.clear()
            self._joint_oldest_ns = None
            self._heartbeat_ns = None
            self._reset_ns = None if self._reset_ns is None else now_ns
            self._sent_ns = now_ns
        self._clock_ns = now_ns

    def update_robot_state(self, pose: Sequence[float], now_ns: int) -> None:
        """Record the measured ``(x, y, z, yaw, gripper_width)`` if it is plausible.

        A non-finite or malformed state means the sensors cannot be trusted: the software stop
        is latched. Before the first command, ``SEED_READINGS`` readings in a row must agree;
        after it, a reading the robot cannot have reached from the last plausible one (or that
        disagrees with the joint states) is a fault, never a new reference.
        """
        self._observe_clock(now_ns)
        if len(pose) != 5 or not all(math.isfinite(v) for v in pose):
            self.trigger_stop('safety', f'robot state malformed or non-finite: {tuple(pose)}',
                              now_ns)
            return
        pose = tuple(float(v) for v in pose)
        streak = self._streak
        count = (streak[2] + 1 if streak is not None and self._jump(pose, streak[0], now_ns
                                                                     - streak[1]) is None
                 else 1)
        self._streak = (pose, now_ns, count)
        fault = self._disagreement(pose, now_ns)
        # No reference before the first plausible reading, nor after the clock jumped back
        # (the time since it is unknown): then only agreeing readings in a row are trusted.
        reference = self._measured if self._state_ns is not None else None
        if fault is None and reference is not None:
            fault = self._jump(pose, reference, now_ns - self._state_ns)
            if fault is not None and count >= SEED_READINGS and (
                    self.latch.active or self._sent is None):
                # Nothing moves on it (stopped, or never commanded): readings that agree
                # with each other re-anchor.
                fault = None
        if fault is not None:
            self._state_fault = fault
            if self._fault_since_ns is None:
                self._fault_since_ns = now_ns
            elif (now_ns - self._fault_since_ns >= self._state_timeout_ns
                  and not self.latch.active):
                self.trigger_stop('safety', f'robot state not plausible for '
                                  f'{(now_ns - self._fault_since_ns) / NS:.3f} s: '
                                  f'{fault.constraint} {fault.field}={fault.value:.4g} '
                                  f'(limit {fault.limit:.4g})', now_ns)
            return
        if reference is None and count < SEED_READINGS:
            return  # waiting for readings that agree
        self._measured = pose
        self._set_anchor(pose)
        self._state_ns = now_ns
        self._state_fault = None
        self._fault_since_ns = None
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
            self._velocity = (0.0, 0.0, 0.0)
            self._outside = None
            if self.latch.active and self._stop_pose is None:
                self._stop_pose = self._sent

    def observe_exact_robot(self, pose: Sequence[float], now_ns: int) -> None:
        """Feed a robot measured exactly at ``pose``, at rest: its joint states, then its state.

        The ``tcp_joints`` are at the pose, other monitored joints mid-range.

        For tools that shape a trajectory through the filter offline (a system-identification
        excitation); a robot's own node feeds the measured states instead.
        """
        index = {name: i for i, name in enumerate(self._tcp_joints)}
        joints = self.limits.joint_limits
        self.update_joint_state([j.name for j in joints],
                                [float(pose[index[j.name]]) if j.name in index
                                 else (j.lower + j.upper) / 2.0 for j in joints],
                                [0.0] * len(joints), now_ns)
        self.update_robot_state(pose, now_ns)

    def _jump(self, pose: tuple, reference: tuple, dt_ns: int) -> Violation | None:
        """A violation if ``pose`` is farther from ``reference`` than the robot can move."""
        lim = self.limits
        distance = math.dist(pose[:3], reference[:3])
        allowed = lim.state_tolerance + lim.max_state_speed * max(dt_ns, 0) / NS
        if distance <= allowed:
            return None
        return Violation('robot_state_jump', 'xyz', distance, allowed, Reaction.REJECT)

    def _disagreement(self, pose: tuple, now_ns: int) -> Violation | None:
        """A violation if the pose and the fresh ``tcp_joints`` positions disagree."""
        tolerance = self.limits.state_tolerance
        for index, name in enumerate(self._tcp_joints):
            seen = self._joint_ns.get(name)
            if seen is None or now_ns - seen > self._state_timeout_ns:
                continue  # a stale joint holds the gate by itself
            error = abs(pose[index] - self._joint_pos[name])
            if error > tolerance:
                return Violation('robot_state_disagrees_with_joints', COMMAND_FIELDS[index],
                                 error, tolerance, Reaction.REJECT)
        return None

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
        """Check configured joints; a joint within the margin of a limit, or too fast, stops.

        A monitored joint counts as fresh only when this message carries it with a finite
        position and velocity; one it lacks (renamed, a typo, no velocity) goes stale and
        holds the gate after ``state_timeout``, whatever else the message says.
        """
        self._observe_clock(now_ns)
        found = []
        margin = self.limits.joint_limit_margin
        complete = set()
        for index, name in enumerate(names):
            joint = self._joints.get(name)
            if joint is None:
                continue
            position = positions[index] if index < len(positions) else math.nan
            velocity = velocities[index] if index < len(velocities) else None
            if not math.isfinite(position):
                found.append(Violation('joint_state', name, position, math.nan, Reaction.STOP))
            elif position < joint.lower + margin:
                found.append(Violation('joint_position', name, position, joint.lower + margin,
                                       Reaction.STOP))
            elif position > joint.upper - margin:
                found.append(Violation('joint_position', name, position, joint.upper - margin,
                                       Reaction.STOP))
            if velocity is not None:
                if not math.isfinite(velocity):
                    found.append(Violation('joint_state', name, velocity, math.nan,
                                           Reaction.STOP))
                elif abs(velocity) > joint.max_velocity:
                    found.append(Violation('joint_velocity', name, velocity, joint.max_velocity,
                                           Reaction.STOP))
                elif math.isfinite(position):
                    complete.add(name)
                    self._joint_ns[name] = now_ns
                    self._joint_pos[name] = float(position)
                    self._joint_vel[name] = float(velocity)
        absent = [name for name in self._joints if name not in complete]
        self._joint_absent = ', '.join(absent)
        stamps = [self._joint_ns.get(name) for name in self._joints]
        self._joint_oldest_ns = (min(stamps) if stamps and None not in stamps else None)
        self._speeds = self.measured_speeds()
        if found:
            self.trigger_stop('safety', '; '.join(
                f'{v.constraint} {v.field}={v.value:.4g} (limit {v.limit:.4g})' for v in found),
                now_ns)
        return found

    def _joint_problem(self, now_ns: int) -> Violation | None:
        """Why the monitored joints cannot be trusted now (None when every one is fresh)."""
        oldest = self._joint_oldest_ns
        if oldest is not None and 0 <= now_ns - oldest <= self._state_timeout_ns:
            return None  # the stalest monitored joint is fresh, so all are
        for name in self._joints:
            seen = self._joint_ns.get(name)
            if seen is None or not 0 <= now_ns - seen <= self._state_timeout_ns:
                kind = ('joint_state_missing' if seen is None or name in self._joint_absent
                        else 'joint_state_stale')
                age = math.nan if seen is None else (now_ns - seen) / NS
                return Violation(kind, name, age, self.limits.state_timeout, Reaction.REJECT)
        return None

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
            problems.append('no plausible robot state received')
        elif not 0 <= now_ns - self._state_ns <= self._state_timeout_ns:
            problems.append(f'robot state stale ({(now_ns - self._state_ns) / NS:.3f} s > '
                            f'state_timeout {self.limits.state_timeout} s)')
        fault = self._state_fault
        if fault is not None:
            problems.append(f'robot state not plausible: {fault.constraint} {fault.field}='
                            f'{fault.value:.4g} (limit {fault.limit:.4g})')
        joints = self._joint_problem(now_ns)
        if joints is not None:
            problems.append(f'{joints.constraint}: {joints.field} (monitored joints must be '
                            f'in every JointState with position and velocity, within '
                            f'state_timeout {self.limits.state_timeout} s)')
        if not self.supervisor_alive(now_ns):
            age = ('never heard' if self._heartbeat_ns is None
                   else f'silent {(now_ns - self._heartbeat_ns) / NS:.3f} s')
            problems.append(f'supervisor heartbeat {age} (supervisor_timeout '
                            f'{self.limits.supervisor_timeout} s)')
        return problems

    def set_commissioning(self, active: bool) -> None:
        """Enter or leave the commissioning bounds (the supervisor's state says which)."""
        active = bool(active)
        if active == self.commissioning:
            return
        self.commissioning = active
        self._lower = self._commissioning_lower if active else self._autonomous_lower
        self._floor_cache = (math.nan, self._lower[2])
        if self._measured is not None:
            self._set_anchor(self._measured)   # the follow region's centre is kept in the box

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
        # Resume from where the robot is, not from the frozen hold: the first command after
        # a reset is the measured pose, as at start-up.
        self._sent = self._seed_from(self._measured) if self._measured is not None else None
        self._sent_ns = now_ns
        self._velocity = (0.0, 0.0, 0.0)
        return event

    # ---------------------------------------------------------------------------- checking
    def check(self, proposal: Sequence[float] | None, stamp_ns: int, now_ns: int,
              frame_id: str | None = None, source: int | None = None) -> Decision:
        """Filter one proposed command stamped ``stamp_ns``, at time ``now_ns``.

        ``frame_id`` and ``source`` are the proposal's header frame and source constant; the
        safety node always passes them: a proposal in another frame than ``limits.frame_id``,
        or from a source that is not a proposal source, is rejected (a hold).
        """
        if self._clock_ns is None or now_ns < self._clock_ns:
            self._observe_clock(now_ns)
        else:
            self._clock_ns = now_ns
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
        # The common case in one test: five plain floats whose sum is finite (a NaN or an
        # infinity anywhere makes the sum non-finite); anything else is checked one by one.
        if type(proposal) is tuple or type(proposal) is list:
            p0, p1, p2, p3, p4 = proposal
            fast = (type(p0) is float and type(p1) is float and type(p2) is float
                    and type(p3) is float and type(p4) is float
                    and math.isfinite(p0 + p1 + p2 + p3 + p4))
        else:
            fast = False
        if fast:
            target = [p0, p1, p2, p3, p4]
        else:
            target = self._validated(proposal, now_ns, age)
            if type(target) is Decision:
                return target

        if frame_id is not None and frame_id != self.limits.frame_id:
            return self._hold(now_ns, age, Violation('wrong_frame', 'frame_id', math.nan,
                                                     math.nan, Reaction.REJECT))
        if source is not None and source not in PROPOSAL_SOURCES:
            return self._hold(now_ns, age, Violation('unknown_source', 'source', float(source)
                                                     if isinstance(source, int) else math.nan,
                                                     math.nan, Reaction.REJECT))
        if self.commissioning and source != SOURCE_COMMISSIONING:
            return self._hold(now_ns, age, Violation(
                'commissioning_source_only', 'source',
                float(source) if isinstance(source, int) else math.nan,
                float(SOURCE_COMMISSIONING), Reaction.REJECT))

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
        if self._state_fault is not None:
            return self._hold(now_ns, age, self._state_fault)
        if self._state_ns is None or not 0 <= now_ns - self._state_ns <= self._state_timeout_ns:
            return self._hold(now_ns, age, Violation('robot_state_stale', 'state', math.nan,
                                                     self.limits.state_timeout, Reaction.REJECT))
        joints = self._joint_problem(now_ns)
        if joints is not None:
            return self._hold(now_ns, age, joints)
        heartbeat = self._heartbeat_ns
        if heartbeat is None or not 0 <= now_ns - heartbeat <= self._supervisor_ns:
            return self._hold(now_ns, age, Violation('supervisor_silent', 'heartbeat', math.nan,
                                                     self.limits.supervisor_timeout,
                                                     Reaction.REJECT))

        # 5. range limits; the z floor is raised where the fingers reach below the TCP
        sent = self._sent
        lower, upper = self._lower, self._upper
        floor = self._finger_floor(min(max(target[4], lower[4]), upper[4]))
        self._floor = floor
        violations = []
        scale_t = 1.0
        worst = Verdict.PASS
        for i in range(5):
            value = target[i]
            low = floor if i == 2 else lower[i]
            if value < low:
                name, reaction, _, _ = self._range_rules[i]
                if i == 2 and floor > lower[2]:
                    name = 'finger_clearance'
                bound = low
            elif value > upper[i]:
                _, _, name, reaction = self._range_rules[i]
                bound = upper[i]
            else:
                continue
            violations.append(Violation(name, COMMAND_FIELDS[i], value, bound, reaction))
            if reaction == Reaction.REJECT:
                return self._hold(now_ns, age, *violations)
            if reaction == Reaction.SCALE and low <= sent[i] <= upper[i]:
                scale_t = min(scale_t, (bound - sent[i]) / (value - sent[i]))
                if worst is Verdict.PASS:
                    worst = Verdict.SCALED
            else:
                worst = Verdict.CLAMPED
        if scale_t < 1.0:
            target = [s + scale_t * (t - s) for s, t in zip(sent, target)]
        for i in range(5):  # clamp-type fields, and rounding of the scaled ones
            low = floor if i == 2 else lower[i]
            if target[i] < low:
                target[i] = low
            elif target[i] > upper[i]:
                target[i] = upper[i]

        # 6. rate limits, from the last command actually sent
        dt_ns = now_ns - self._sent_ns
        if dt_ns >= self._period_ns:  # the usual tick: its allowances computed once
            dt_ns = self._period_ns
            allowed, rate_rules = self._period_steps, self._period_rate_rules
        else:
            dt_ns = dt_ns if dt_ns > 0 else 0
            allowed = self._allowed_steps(dt_ns / NS)
            rate_rules = self._rate_rules(dt_ns / NS)
        dt = dt_ns / NS
        step = [target[0] - sent[0], target[1] - sent[1], target[2] - sent[2],
                target[3] - sent[3], target[4] - sent[4]]
        linear = math.sqrt(step[0] * step[0] + step[1] * step[1] + step[2] * step[2])
        actual = (linear, abs(step[3]), abs(step[4]))
        scale_s = 1.0
        for group in range(3):
            if actual[group] <= allowed[group]:
                continue
            name, field, reaction = rate_rules[group]
            violations.append(Violation(name, field, actual[group], allowed[group], reaction))
            if reaction == Reaction.REJECT:
                return self._hold(now_ns, age, *violations)
            if reaction == Reaction.SCALE:
                scale_s = min(scale_s, allowed[group] / actual[group])
                if worst is Verdict.PASS:
                    worst = Verdict.SCALED
            else:
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
        command = (sent[0] + step[0], sent[1] + step[1], sent[2] + step[2], sent[3] + step[3],
                   sent[4] + step[4])
        return self._emit(command, now_ns, dt, worst, tuple(violations), age)

    def _validated(self, proposal, now_ns: int, age: float):
        """The proposal as five floats, or the hold a malformed or non-finite one gets."""
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
        return target

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
        if self._state_fault is not None:
            return self._hold(now_ns, math.nan, self._state_fault)
        joints = self._joint_problem(now_ns)
        if joints is not None:
            return self._hold(now_ns, math.nan, joints)
        problems = self.unhealthy_inputs(now_ns)
        if problems:
            return self._hold(now_ns, math.nan, Violation(
                'supervisor_silent' if 'supervisor' in problems[-1] else 'robot_state_stale',
                'input', math.nan, math.nan, Reaction.REJECT))
        return None

    # ------------------------------------------------------------------------------ output
    def _finger_floor(self, width: float) -> float:
        """The TCP floor (m) for the fingers' lowest point over the next response time.

        At the measured opening, or the narrower one a command to ``width`` closes them to
        within ``follow_response_time``: where the fingers are and where they are going.
        """
        if self.commissioning:
            return self._lower[2]   # the touch-off puts the fingertips on the table
        measured = self._measured[4] if self._measured is not None else width
        reach = measured - self._finger_reach
        if width < reach:
            width = reach
        if width > measured:
            width = measured
        # the same opening tick after tick (the gripper at rest): the last floor stands
        cached_width, floor = self._floor_cache
        if width != cached_width:
            floor = self.limits.tcp_floor(width)
            self._floor_cache = (width, floor)
        return floor

    def _rate_rules(self, dt: float) -> tuple:
        """(constraint, field, reaction) of the linear, yaw and gripper rate limits over dt."""
        lim = self.limits
        linear = ('cartesian_step' if lim.max_cartesian_step < self._command_speed * dt
                  else 'cartesian_speed')
        return tuple((name, field, lim.reactions[name]) for name, field in (
            (linear, 'xyz'), ('yaw_rate', 'yaw'), ('gripper_speed', 'gripper_width')))

    def _allowed_steps(self, dt: float) -> tuple[float, float, float]:
        lim = self.limits
        return (min(lim.max_cartesian_step, self._command_speed * dt),
                lim.max_yaw_rate * dt, lim.max_gripper_speed * dt)

    def _follow_region(self) -> tuple | None:
        """Where an output may lie around the measured robot: (centre, radius, yaw_lo, yaw_hi).

        The centre is the measured TCP brought into the box and the radius what is left of
        ``max_follow_error`` after that, so the region lies inside the box and within the
        bound of the robot (a robot measured outside the box by the bound or more leaves only
        the box point nearest to it). None before any plausible state.
        """
        anchor = self._anchor
        if anchor is None:
            return None
        centre, gap, yaw, yaw_gap = anchor
        speed, yaw_rate = self._speeds
        # the command's own speed away from the robot: a robot lags a command that runs
        # ahead; a command that stands, or comes back, leaves it nothing to lag behind
        sent = self._sent
        vx, vy, vz = self._velocity
        ox, oy, oz = sent[0] - centre[0], sent[1] - centre[1], sent[2] - centre[2]
        norm = math.sqrt(ox * ox + oy * oy + oz * oz)
        away = ((vx * ox + vy * oy + vz * oz) / norm if norm > 0.0
                else math.sqrt(vx * vx + vy * vy + vz * vz))
        lim = self.limits
        follow = min(lim.max_follow_error, self._at_rest[0]
                     + (speed if speed > away else away) * lim.follow_lag_time)
        # the same for yaw: the command's own rate away from the robot's yaw
        yaw_off = sent[3] - yaw
        yaw_away = (self._yaw_rate if yaw_off > 0.0 else -self._yaw_rate if yaw_off < 0.0
                    else abs(self._yaw_rate))
        yaw_rate = yaw_rate if yaw_rate > yaw_away else yaw_away
        yaw_follow = min(lim.max_yaw_follow_error, self._at_rest[1]
                         + yaw_rate * lim.follow_lag_time)
        radius = follow - gap if follow > gap else 0.0
        slack = yaw_follow - yaw_gap if yaw_follow > yaw_gap else 0.0
        return (centre, radius, max(self._lower[3], yaw - slack),
                min(self._upper[3], yaw + slack))

    def _set_anchor(self, measured: tuple) -> None:
        """Cache what the follow region needs of a new plausible pose (once per reading)."""
        lower, upper = self._lower, self._upper
        centre = (min(max(measured[0], lower[0]), upper[0]),
                  min(max(measured[1], lower[1]), upper[1]),
                  min(max(measured[2], lower[2]), upper[2]))
        yaw = min(max(measured[3], lower[3]), upper[3])
        self._anchor = (centre, math.dist(centre, measured[:3]), yaw, abs(yaw - measured[3]))

    def measured_speeds(self) -> tuple[float, float]:
        """The TCP's speed and yaw rate (m/s, rad/s) from the ``tcp_joints``' velocities.

        0 without them: a robot whose motion is not measured is treated as at rest (the
        tighter bound).
        """
        velocities = [self._joint_vel.get(name, 0.0) for name in self._tcp_joints]
        linear = math.sqrt(sum(v * v for v in velocities[:3]))
        return linear, abs(velocities[3]) if len(velocities) > 3 else 0.0

    def _into_follow(self, command: tuple, region: tuple, dt: float) -> tuple:
        """``command`` kept near the robot, continuously: never a jump.

        From a last output inside ``region`` the step stops where it would leave it (a shorter
        step, same direction). From one outside it (the robot moved away: pushed, or driven by
        commands still in flight) the command may only approach the robot, at the rate
        limits; it never runs farther.

        The edge a step is cut at is no farther from the robot than the last output was,
        unless the robot's measured motion alone allows more: the region grows with the
        command's own speed away, so a cut that crept outward would grow it by lag/period
        (30x) per tick and lead a blocked robot to ``max_follow_error``.
        """
        centre, radius, yaw_lo, yaw_hi = region
        sent = self._sent
        x, y, z, yaw, width = command
        gap = math.dist(sent[:3], centre)
        measured_radius, measured_slack = self._measured_follow()
        if gap > radius:
            step = min(self._allowed_steps(dt)[0], gap - radius)
            k = step / gap
            x = sent[0] + (centre[0] - sent[0]) * k
            y = sent[1] + (centre[1] - sent[1]) * k
            z = sent[2] + (centre[2] - sent[2]) * k
            # toward a robot below the fingers' floor only sideways: never lower
            low = self._floor if self._floor < sent[2] else sent[2]
            if z < low:
                z = low
        elif math.dist((x, y, z), centre) > radius:
            # stop where the step leaves the region (no sliding along its edge: a command
            # held at the bound stands still, and the bound shrinks back to the at-rest one)
            edge = min(radius, max(measured_radius, gap))
            d = (x - sent[0], y - sent[1], z - sent[2])
            r = (sent[0] - centre[0], sent[1] - centre[1], sent[2] - centre[2])
            a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
            b = 2.0 * (d[0] * r[0] + d[1] * r[1] + d[2] * r[2])
            c = r[0] * r[0] + r[1] * r[1] + r[2] * r[2] - edge * edge
            t = max(0.0, min(1.0, (-b + math.sqrt(max(b * b - 4.0 * a * c, 0.0))) / (2.0 * a)))
            x, y, z = sent[0] + t * d[0], sent[1] + t * d[1], sent[2] + t * d[2]
        if sent[3] < yaw_lo or sent[3] > yaw_hi:
            bound = yaw_lo if sent[3] < yaw_lo else yaw_hi
            yaw_step = self._allowed_steps(dt)[1]
            yaw = sent[3] + max(-yaw_step, min(yaw_step, bound - sent[3]))
        elif yaw < yaw_lo or yaw > yaw_hi:
            # the same for yaw: clamped no farther from the robot than the last output was
            yaw_centre = self._anchor[2]
            half = max(measured_slack, abs(sent[3] - yaw_centre))
            yaw = min(max(yaw, yaw_lo, yaw_centre - half), yaw_hi, yaw_centre + half)
        return (x, y, z, yaw, width)

    def _measured_follow(self) -> tuple[float, float]:
        """The follow region's radius and yaw slack from the robot's measured motion alone."""
        _centre, gap, _yaw, yaw_gap = self._anchor
        follow, yaw_follow = self.limits.follow_bounds(*self._speeds)
        return (follow - gap if follow > gap else 0.0,
                yaw_follow - yaw_gap if yaw_follow > yaw_gap else 0.0)

    @staticmethod
    def _in_region(command: tuple, region: tuple, slack: float = 0.0) -> bool:
        centre, radius, yaw_lo, yaw_hi = region
        dx, dy, dz = command[0] - centre[0], command[1] - centre[1], command[2] - centre[2]
        return (math.sqrt(dx * dx + dy * dy + dz * dz) <= radius * (1.0 + slack) + slack * 1e-6
                and yaw_lo - slack * 1e-6 <= command[3] <= yaw_hi + slack * 1e-6)

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
            self._floor = self._finger_floor(sent[4])
            lower = (self._lower[0], self._lower[1], self._floor)
            for i in range(3):
                target[i] = min(max(target[i], min(lower[i], sent[i])),
                                max(self._upper[i], sent[i]))
            command = (target[0], target[1], target[2], sent[3], sent[4])
        return self._emit(command, now_ns, dt, Verdict.REJECTED, violations, age)

    def _emit(self, command: tuple, now_ns: int, dt: float, verdict: Verdict,
              violations: tuple, age: float) -> Decision:
        region = self._follow_region()
        if region is not None and not self._in_region(command, region):
            command = self._into_follow(command, region, dt)
            if verdict == Verdict.PASS or verdict == Verdict.SCALED:
                verdict = Verdict.CLAMPED
            violations = violations + (Violation(
                'follow_error', 'xyz', math.dist(command[:3], region[0]), region[1],
                Reaction.CLAMP),)
        if command[4] < self._sent[4] and command[2] < self._finger_floor(command[4]) - 1e-12:
            # the TCP could not rise above the fingers' floor yet (held near the robot, or
            # at the rate limit): the fingers wait, open as they are, rather than close below it
            command = (command[0], command[1], command[2], command[3], self._sent[4])
        sent = self._sent
        if self.commissioning and (command[2] < self._floor_top or sent[2] < self._floor_top):
            # near the table: the commissioning speed (a shorter step, same direction)
            cap = self.limits.commissioning_speed * dt
            dx, dy, dz = command[0] - sent[0], command[1] - sent[1], command[2] - sent[2]
            linear = math.sqrt(dx * dx + dy * dy + dz * dz)
            if linear > cap:
                k = cap / linear
                command = (sent[0] + dx * k, sent[1] + dy * k, sent[2] + dz * k, command[3],
                           command[4])
        problem = self._guard(command, dt, region)
        if problem:
            self.trigger_stop('safety', f'internal guard: {problem}', now_ns)
            return self._freeze(now_ns, age)
        sent = self._sent
        if dt > 0.0:
            self._velocity = ((command[0] - sent[0]) / dt, (command[1] - sent[1]) / dt,
                              (command[2] - sent[2]) / dt)
            self._yaw_rate = (command[3] - sent[3]) / dt
        else:
            self._velocity = (0.0, 0.0, 0.0)
            self._yaw_rate = 0.0
        self._sent = command
        self._sent_ns = now_ns
        return Decision(command, verdict, violations, now_ns, age)

    def _guard(self, command: tuple, dt: float, region: tuple | None) -> str:
        """Independent re-check of an output against the limits; '' when it is safe.

        An output outside the follow region is allowed only nearer the robot than the last
        one (approaching it from where the robot moved away).
        """
        sent = self._sent
        for i in range(5):
            value = command[i]
            if not math.isfinite(value):
                return f'{COMMAND_FIELDS[i]} not finite'
            low = self._lower[i]
            if i == 2 and sent[2] < low:
                low = sent[2]   # below the floor after commissioning: rising back, never lower
            if not low <= value <= self._upper[i]:
                return f'{COMMAND_FIELDS[i]}={value} outside [{low}, {self._upper[i]}]'
        floor = self._floor
        if command[2] < floor - 1e-12 and command[2] < sent[2] - 1e-12:
            return f"z={command[2]} below the fingers' floor {floor} and descending"
        if region is not None and not self._in_region(command, region, _GUARD_RTOL):
            # position and yaw each inside their part of the region, or approaching it: a
            # stage that stops turning leaves the yaw outside while the position moves inside
            centre, radius, yaw_lo, yaw_hi = region
            gap = math.dist(command[:3], centre)
            closer = (gap <= radius * (1.0 + _GUARD_RTOL) + _GUARD_RTOL * 1e-6
                      or gap <= math.dist(sent[:3], centre) + 1e-12)
            yaw_closer = (yaw_lo - _GUARD_RTOL * 1e-6 <= command[3] <= yaw_hi + _GUARD_RTOL * 1e-6
                          or abs(command[3] - min(max(command[3], yaw_lo), yaw_hi))
                          <= abs(sent[3] - min(max(sent[3], yaw_lo), yaw_hi)) + 1e-12)
            if not (closer and yaw_closer):
                return f'{command[:4]} outside the follow region {region}, moving away'
        allowed = self._period_steps if dt == self._period_dt else self._allowed_steps(dt)
        dx, dy, dz = command[0] - sent[0], command[1] - sent[1], command[2] - sent[2]
        linear = math.sqrt(dx * dx + dy * dy + dz * dz)
        if linear > allowed[0] * (1.0 + _GUARD_RTOL) + 1e-15:
            return f'linear step {linear} > allowed {allowed[0]}'
        if abs(command[3] - sent[3]) > allowed[1] * (1.0 + _GUARD_RTOL) + 1e-15:
            return f'yaw step {command[3] - sent[3]} > allowed {allowed[1]}'
        if abs(command[4] - sent[4]) > allowed[2] * (1.0 + _GUARD_RTOL) + 1e-15:
            return f'gripper step {command[4] - sent[4]} > allowed {allowed[2]}'
        if self.commissioning and min(command[2], sent[2]) < self._floor_top:
            cap = self.limits.commissioning_speed * dt
            if linear > cap * (1.0 + _GUARD_RTOL) + 1e-15:
                return f'linear step {linear} > commissioning_speed x dt {cap} near the table'
        return ''

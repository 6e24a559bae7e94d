"""The degraded-mode supervisor: an explicit, table-driven state machine.

Each row of :data:`FAULT_RULES` is one fault: what raises it, the mode it puts the robot in,
and what clears it. The mode is the highest-priority active fault (priority order, highest
first: SOFTWARE_STOP, HUMAN_REQUIRED, GRIPPER_FAULT, VISION_DEGRADED, INFERENCE_SLOW), or
NORMAL when none is active. Recoverable faults clear with hysteresis: their input must be
healthy for the rule's recovery time. HUMAN_REQUIRED clears only through an acknowledgement
naming an operator; SOFTWARE_STOP only when the safety node reports its latch reset.

Every input has a liveness check: an input not heard from within ``health_timeout`` is itself
a fault (a silent camera is a vision fault, a silent policy an inference fault, a silent
robot driver, controller or safety node needs a human).

What the controller does in each mode (the contract the control core implements, with
``sim2real_safety.fallbacks``):

====================  ==========================================================================
NORMAL                follow the policy
INFERENCE_SLOW        keep executing the cached chunk (the prediction from 2 steps ago), then hold
VISION_DEGRADED       the policy keeps the last good image for ``vision_grace_period``; then home
GRIPPER_FAULT         stop at once, then release (open), then raise to a safe height
HUMAN_REQUIRED        hold; autonomy disabled until acknowledged
SOFTWARE_STOP         hold (the safety node freezes the output anyway)
====================  ==========================================================================
"""
from __future__ import annotations

from dataclasses import dataclass
import enum
import math
from typing import Mapping

from sim2real_safety.node_interface import (
    check_parameter,
    dataclass_parameters,
    ParameterError,
)
from sim2real_safety.software_stop import name_problem

NS = 1_000_000_000


class Mode(enum.IntEnum):
    """Supervisor modes; the value is the priority (matches SupervisorState.MODE_*)."""

    NORMAL = 0
    INFERENCE_SLOW = 1
    VISION_DEGRADED = 2
    GRIPPER_FAULT = 3
    HUMAN_REQUIRED = 4
    SOFTWARE_STOP = 5


@dataclass(frozen=True)
class FaultRule:
    """One row of the transition table."""

    name: str
    mode: Mode
    raised_by: str
    cleared_by: str  # 'hysteresis', 'acknowledge', 'safety_reset' or 'inputs_up'


FAULT_RULES = (
    FaultRule('software_stop', Mode.SOFTWARE_STOP,
              'safety status reports the software stop latched', 'safety_reset'),
    FaultRule('grasp_failures', Mode.HUMAN_REQUIRED,
              'more than max_consecutive_failures failed grasps in a row', 'acknowledge'),
    FaultRule('critical_node_silent', Mode.HUMAN_REQUIRED,
              'robot state, controller or safety status silent for health_timeout after it '
              'had been heard', 'acknowledge'),
    FaultRule('inputs_pending', Mode.HUMAN_REQUIRED,
              'at start-up: robot state, controller or safety status not heard yet',
              'inputs_up'),
    FaultRule('camera_calibration', Mode.HUMAN_REQUIRED,
              'the policy finds the fingertips farther from where the cell file puts them '
              'than its check allows: the camera moved since commissioning', 'acknowledge'),
    FaultRule('robot_state', Mode.HUMAN_REQUIRED,
              'the safety node holds on a robot state it cannot trust: a jump the robot '
              'cannot make, a pose that disagrees with the joints, a monitored joint missing '
              'or stale', 'hysteresis'),
    FaultRule('gripper', Mode.GRIPPER_FAULT,
              'gripper fault flag, effort above max_gripper_effort, or a stall (commanded '
              'open by stall_width_error while effort >= stall_effort for stall_time, '
              'opening less than stall_width_error meanwhile, or for stall_opening_time in '
              'all), a non-finite width',
              'hysteresis'),
    FaultRule('vision', Mode.VISION_DEGRADED,
              'camera unhealthy, no frame within camera_timeout, frozen for frozen_timeout, '
              'or camera health silent', 'hysteresis'),
    FaultRule('inference', Mode.INFERENCE_SLOW,
              'inference slower than inference_deadline, policy errors, no chunk within '
              'inference_deadline, or policy health silent', 'hysteresis'),
)
RULES = {rule.name: rule for rule in FAULT_RULES}

# Every parameter of config/supervisor.yaml: (description with unit, allowed range).
PARAMETERS = {
    'camera_timeout': ('no camera frame for this long is a vision fault (s)', (0.01, 60.0)),
    'frozen_timeout': ('identical frames for this long are a vision fault (s)', (0.01, 60.0)),
    'inference_deadline': ('slower inference, or no chunk for this long (s)', (0.01, 60.0)),
    'health_timeout': ('an input silent this long is a fault (s)', (0.01, 60.0)),
    'recovery_time': ('healthy this long before leaving a degraded mode (s)', (0.0, 600.0)),
    'stall_width_error': ('commanded minus measured opening of a stall (m)', (0.0, 0.1)),
    'stall_effort': ('gripper effort of a stall (N)', (0.0, 1000.0)),
    'stall_time': ('how long a stall lasts before it is a fault (s)', (0.0, 60.0)),
    'stall_opening_time': ('longest the fingers may keep opening behind their command before '
                           'it is a stall anyway (s)', (0.0, 60.0)),
    'max_gripper_effort': ('gripper effort that is a fault by itself (N)', (0.0, 10000.0)),
    'max_consecutive_failures': ('failed grasps in a row allowed before a human', (0, 1000)),
    'vision_grace_period': ('time on the last good image before going home (s)',
                            (0.0, 60.0)),
    'heartbeat_period': ('period of the state publication / heartbeat (s)', (0.005, 1.0)),
    'commissioning_timeout': ('longest a commissioning may run before it is ended (s)',
                              (1.0, 3600.0)),
}


class SupervisorConfigError(ValueError):
    """A missing or invalid supervisor parameter."""


@dataclass(frozen=True)
class SupervisorConfig:
    """Thresholds of the supervisor (``config/supervisor.yaml``)."""

    camera_timeout: float = 0.5
    frozen_timeout: float = 1.0
    inference_deadline: float = 1.0
    health_timeout: float = 0.5
    recovery_time: float = 1.0
    stall_width_error: float = 0.005
    stall_effort: float = 20.0
    stall_time: float = 0.3
    stall_opening_time: float = 1.0
    max_gripper_effort: float = 200.0
    max_consecutive_failures: int = 3
    vision_grace_period: float = 1.0
    heartbeat_period: float = 0.1
    commissioning_timeout: float = 600.0

    @classmethod
    def parameters(cls) -> tuple:
        """The supervisor node's parameter declarations (defaults from this class)."""
        return dataclass_parameters(cls, PARAMETERS)

    @classmethod
    def from_parameters(cls, params: Mapping) -> 'SupervisorConfig':
        """Build from ``ros__parameters``.

        Every parameter must be given, in its range and > 0; an unknown key is an error
        naming it.
        """
        unknown = sorted(set(params) - set(PARAMETERS))
        if unknown:
            raise SupervisorConfigError(f'unknown supervisor parameter(s) {unknown}')
        values = {}
        for param in cls.parameters():
            if param.name not in params:
                raise SupervisorConfigError(f'supervisor parameter {param.name!r} is missing')
            try:
                value = check_parameter('supervisor_node', param, params[param.name])
            except ParameterError as exc:
                raise SupervisorConfigError(str(exc)) from None
            if value <= 0:
                raise SupervisorConfigError(
                    f'supervisor parameter {param.name!r} must be > 0, got {value!r}')
            values[param.name] = value
        return cls(**values)


@dataclass(frozen=True)
class Transition:
    """A change of mode, with the rule and the reason that caused it."""

    time_ns: int
    previous: Mode
    mode: Mode
    rule: str
    reason: str


class AcknowledgeRefusedError(RuntimeError):
    """An acknowledgement without an operator, or while the cause persists."""


class CommissioningRefusedError(RuntimeError):
    """A commissioning without an operator, or while autonomy is disabled."""


class _Input:
    """Receipt time of one input, for its liveness check."""

    __slots__ = ('last_ns',)

    def __init__(self):
        self.last_ns: int | None = None


class Supervisor:
    """Feed it health inputs; call :meth:`update` periodically; read :attr:`mode`."""

    def __init__(self, config: SupervisorConfig, start_ns: int = 0):
        self.config = config
        self._health_ns = int(config.health_timeout * NS)
        self._recovery_ns = int(config.recovery_time * NS)
        self._start_ns = start_ns
        self.inputs = {name: _Input() for name in
                       ('camera', 'policy', 'robot', 'control', 'safety')}
        # per fault: active?, reason, time its input was last unhealthy
        self.active = {rule.name: False for rule in FAULT_RULES}
        self.reasons = {rule.name: '' for rule in FAULT_RULES}
        self._unhealthy_ns = {rule.name: None for rule in FAULT_RULES}
        self._conditions = {rule.name: '' for rule in FAULT_RULES}
        # Fail closed at start-up: no autonomy until robot state, controller and safety
        # status have been heard (the rule clears by itself then).
        pending = 'waiting for the first message from: robot, control, safety'
        self.active['inputs_pending'] = True
        self.reasons['inputs_pending'] = pending
        self._conditions['inputs_pending'] = pending
        self.mode = Mode.HUMAN_REQUIRED
        self.previous_mode = Mode.HUMAN_REQUIRED
        self.reason = f'start: {pending}'
        self.mode_rule = 'inputs_pending'   # the rule that put the supervisor in its mode
        self.mode_since_ns = start_ns
        self.consecutive_failures = 0
        self.transitions: list[Transition] = []
        self.acknowledgements: list[tuple[int, str, str]] = []
        self._stall_since_ns: int | None = None
        self._stall_width = 0.0   # m measured when the stall window began
        self._stall_began_ns = 0   # when the stall condition began (opening does not reset)
        self._opened_readings = 0  # readings in a row stall_width_error past _stall_width
        self._unstalled_readings = 0   # readings in a row without the stall condition
        self._silent = {'camera': False, 'policy': False}
        self._commanded_width: float | None = None
        # The commissioning mode: who asked ('' = not commissioning), since when; every
        # begin and end as (ns, 'begin' or 'end', operator, reason).
        self.commissioning_operator = ''
        self.commissioning_since_ns = 0
        self.commissioning_log: list[tuple[int, str, str, str]] = []

    @property
    def autonomy_enabled(self) -> bool:
        """True while the policy may drive the robot (NORMAL and the recoverable modes).

        Never while a commissioning runs: the commissioning node has the robot then.
        """
        return self.mode < Mode.HUMAN_REQUIRED and not self.commissioning_operator

    # ----------------------------------------------------------------------------- inputs
    def _heard(self, name: str, now_ns: int) -> None:
        self.inputs[name].last_ns = now_ns

    def on_camera_health(self, healthy: bool, frame_age: float, frozen_duration: float,
                         now_ns: int, error: str = '') -> None:
        """A CameraHealth report."""
        self._heard('camera', now_ns)
        cfg = self.config
        if not healthy:
            self._conditions['vision'] = f'camera unhealthy: {error or "no reason given"}'
        elif not math.isfinite(frame_age) or frame_age > cfg.camera_timeout:
            self._conditions['vision'] = (f'camera: no frame for {frame_age:.2f} s > '
                                          f'camera_timeout {cfg.camera_timeout} s')
        elif frozen_duration > cfg.frozen_timeout:
            self._conditions['vision'] = (f'camera frozen for {frozen_duration:.2f} s > '
                                          f'frozen_timeout {cfg.frozen_timeout} s')
        else:
            self._conditions['vision'] = ''

    def on_policy_health(self, healthy: bool, inference_latency: float, chunk_age: float,
                         now_ns: int, error: str = '', calibration_suspect: str = '') -> None:
        """A PolicyHealth report (after every inference attempt).

        ``calibration_suspect``: the check's reason when it finds the cell file off.
        """
        self._heard('policy', now_ns)
        if calibration_suspect:
            self._conditions['camera_calibration'] = calibration_suspect
        deadline = self.config.inference_deadline
        if not healthy:
            self._conditions['inference'] = f'policy failing: {error or "no reason given"}'
        elif math.isfinite(inference_latency) and inference_latency > deadline:
            self._conditions['inference'] = (f'inference took {inference_latency:.3f} s > '
                                             f'inference_deadline {deadline} s')
        elif not math.isfinite(chunk_age) or chunk_age > deadline:
            self._conditions['inference'] = (f'no chunk for {chunk_age:.3f} s > '
                                             f'inference_deadline {deadline} s')
        else:
            self._conditions['inference'] = ''

    def on_command(self, gripper_width: float, now_ns: int) -> None:
        """The safe command's gripper width (for stall detection)."""
        self._commanded_width = gripper_width

    def on_robot_state(self, gripper_width: float, gripper_effort: float, gripper_fault: bool,
                       now_ns: int) -> None:
        """Measured gripper state."""
        self._heard('robot', now_ns)
        cfg = self.config
        if gripper_fault:
            self._conditions['gripper'] = 'gripper driver reports a fault'
            return
        if not math.isfinite(gripper_width):
            self._conditions['gripper'] = f'gripper width {gripper_width} is not finite'
            return
        if not math.isfinite(gripper_effort) or abs(gripper_effort) > cfg.max_gripper_effort:
            self._conditions['gripper'] = (f'gripper effort {gripper_effort:.1f} N > '
                                           f'max_gripper_effort {cfg.max_gripper_effort} N')
            return
        # A stall: told to open further than it is, pushing hard, not getting there. Closing
        # onto an object (commanded narrower than measured, high effort) is a grasp, not this.
        # "Not getting there" is judged on the width: fingers that opened stall_width_error
        # since the window began, on two readings in a row (one noisy reading is not a
        # motion, nor does one reading without the condition end it), are opening, and the
        # window starts over; but never past
        # stall_opening_time from the first moment: a jam that creeps open is caught then.
        # Without the restart a gripper opening as it should behind a lagging drive (up to
        # 0.25 s in the heavy ranges, the command ramping ahead at max_gripper_speed) was a
        # fault (measured: 4 re-grasps in 100 random realities).
        stalled = (self._commanded_width is not None
                   and self._commanded_width - gripper_width > cfg.stall_width_error
                   and abs(gripper_effort) >= cfg.stall_effort)
        if stalled:
            self._unstalled_readings = 0
            if self._stall_since_ns is None:
                self._stall_began_ns = self._stall_since_ns = now_ns
                self._stall_width = gripper_width
                self._opened_readings = 0
            elif gripper_width - self._stall_width >= cfg.stall_width_error:
                self._opened_readings += 1
                if self._opened_readings >= 2:
                    self._stall_since_ns = now_ns
                    self._stall_width = gripper_width
                    self._opened_readings = 0
            else:
                self._opened_readings = 0
            if (now_ns - self._stall_since_ns >= cfg.stall_time * NS
                    or now_ns - self._stall_began_ns >= cfg.stall_opening_time * NS):
                self._conditions['gripper'] = (
                    f'gripper stalled: commanded {self._commanded_width:.4f} m, measured '
                    f'{gripper_width:.4f} m at {gripper_effort:.1f} N for '
                    f'{(now_ns - self._stall_since_ns) / NS:.2f} s '
                    f'({(now_ns - self._stall_began_ns) / NS:.2f} s in all)')
            return
        # over only after two readings in a row: one noisy reading does not restart the clock
        self._unstalled_readings += 1
        if self._stall_since_ns is not None and self._unstalled_readings < 2:
            return
        self._stall_since_ns = None
        self._conditions['gripper'] = ''

    def on_control(self, now_ns: int) -> None:
        """A ControlDiagnostics message (the controller is alive)."""
        self._heard('control', now_ns)

    def on_safety_status(self, stop_active: bool, cause: str, now_ns: int,
                         state_fault: str = '') -> None:
        """A SafetyStatus message.

        ``state_fault``: its robot-state violation, if any
        (``sim2real_safety.filter.STATE_FAULTS``, with the field it names).
        """
        self._heard('safety', now_ns)
        self._conditions['software_stop'] = f'software stop: {cause}' if stop_active else ''
        self._conditions['robot_state'] = (f'safety holds: untrusted robot state: {state_fault}'
                                           if state_fault else '')

    def on_grasp_result(self, success: bool, now_ns: int) -> None:
        """An episode outcome; failures in a row count toward HUMAN_REQUIRED."""
        self.consecutive_failures = 0 if success else self.consecutive_failures + 1
        limit = self.config.max_consecutive_failures
        if self.consecutive_failures > limit:
            self._conditions['grasp_failures'] = (
                f'{self.consecutive_failures} failed grasps in a row > '
                f'max_consecutive_failures {limit}')

    def acknowledge(self, operator: str, note: str, now_ns: int) -> str:
        """A human acknowledges HUMAN_REQUIRED; raises AcknowledgeRefusedError if not allowed."""
        problem = name_problem(operator, 'an operator name')
        if problem:
            raise AcknowledgeRefusedError(f'acknowledge refused: {problem}')
        if self.mode != Mode.HUMAN_REQUIRED and not any(
                self.active[r.name] for r in FAULT_RULES if r.cleared_by == 'acknowledge'):
            raise AcknowledgeRefusedError(
                f'acknowledge refused: nothing to acknowledge (mode {self.mode.name})')
        self._liveness(now_ns)
        if self._conditions['inputs_pending']:
            raise AcknowledgeRefusedError(
                'acknowledge refused: ' + self._conditions['inputs_pending'])
        if self._conditions['critical_node_silent']:
            raise AcknowledgeRefusedError(
                'acknowledge refused: ' + self._conditions['critical_node_silent'])
        self.acknowledgements.append((now_ns, operator.strip(), note))
        self.consecutive_failures = 0
        for rule in FAULT_RULES:
            if rule.cleared_by == 'acknowledge':
                self._conditions[rule.name] = ''
                self.active[rule.name] = False
        self.update(now_ns, rule_hint='acknowledge',
                    reason_hint=f'acknowledged by {operator.strip()}: {note}')
        return f'autonomy re-enabled by {operator.strip()}; mode {self.mode.name}'

    # ----------------------------------------------------------------------- commissioning
    @property
    def commissioning(self) -> bool:
        """True while a commissioning runs (the safety node's commissioning bounds apply)."""
        return bool(self.commissioning_operator)

    def begin_commissioning(self, operator: str, reason: str, now_ns: int) -> str:
        """An operator starts commissioning the cell; raises CommissioningRefusedError.

        Refused without an operator's name or a reason, while autonomy is disabled (a stop,
        a fault needing a human, inputs not up) or in GRIPPER_FAULT, or while one runs.
        """
        problem = name_problem(operator, 'an operator name') or name_problem(reason, 'a reason')
        if problem:
            raise CommissioningRefusedError(f'commissioning refused: {problem}')
        if self.commissioning:
            raise CommissioningRefusedError(
                f'commissioning refused: already commissioning for {self.commissioning_operator}')
        self.update(now_ns)
        if self.mode >= Mode.GRIPPER_FAULT:
            raise CommissioningRefusedError(
                f'commissioning refused: mode {self.mode.name} ({self.reason})')
        self.commissioning_operator = operator.strip()
        self.commissioning_since_ns = now_ns
        self.commissioning_log.append((now_ns, 'begin', operator.strip(), reason.strip()))
        return (f'commissioning begun by {operator.strip()}: {reason.strip()}; the safety node '
                'takes only the commissioning source now')

    def end_commissioning(self, reason: str, now_ns: int) -> str:
        """Leave the commissioning mode (the procedure ended, failed, or was stopped)."""
        if not self.commissioning:
            return 'not commissioning'
        operator, self.commissioning_operator = self.commissioning_operator, ''
        self.commissioning_log.append((now_ns, 'end', operator, reason))
        return f'commissioning by {operator} ended: {reason}'

    def _commissioning_ends(self, now_ns: int) -> str:
        """Why a running commissioning must end now ('' while it may go on)."""
        if not self.commissioning:
            return ''
        if self.mode >= Mode.GRIPPER_FAULT:
            return f'mode {self.mode.name}: {self.reason}'
        limit = self.config.commissioning_timeout
        if now_ns - self.commissioning_since_ns > limit * NS:
            return f'ran longer than commissioning_timeout {limit} s'
        return ''

    # ---------------------------------------------------------------------------- update
    def _liveness(self, now_ns: int) -> None:
        health = self.config.health_timeout
        pending, silent = [], []
        for name in ('robot', 'control', 'safety'):
            last = self.inputs[name].last_ns
            if last is None:
                pending.append(name)
            elif now_ns - last > self._health_ns:
                silent.append(name)
        self._conditions['inputs_pending'] = (
            'waiting for the first message from: ' + ', '.join(pending) if pending else '')
        self._conditions['critical_node_silent'] = (
            f'silent for more than health_timeout {health} s: ' + ', '.join(silent)
            if silent else '')

        def quiet(name):
            last = self.inputs[name].last_ns
            return now_ns - (self._start_ns if last is None else last) > self._health_ns

        self._silent = {name: quiet(name) for name in ('camera', 'policy')}

    def _condition(self, name: str) -> str:
        condition = self._conditions[name]
        if not condition and name == 'vision' and self._silent['camera']:
            condition = f'camera health silent for more than {self.config.health_timeout} s'
        if not condition and name == 'inference' and self._silent['policy']:
            condition = f'policy health silent for more than {self.config.health_timeout} s'
        return condition

    def update(self, now_ns: int, rule_hint: str = '', reason_hint: str = '') -> Transition | None:
        """Evaluate every rule at ``now_ns``; return the transition if the mode changed.

        A commissioning that must end (a stop, a fault, its timeout) ends here.
        """
        transition = self._update_mode(now_ns, rule_hint, reason_hint)
        ends = self._commissioning_ends(now_ns)
        if ends:
            self.end_commissioning(ends, now_ns)
        return transition

    def _update_mode(self, now_ns: int, rule_hint: str, reason_hint: str) -> Transition | None:
        self._liveness(now_ns)
        for rule in FAULT_RULES:
            condition = self._condition(rule.name)
            if condition:
                self._unhealthy_ns[rule.name] = now_ns
                if not self.active[rule.name]:
                    self.active[rule.name] = True
                self.reasons[rule.name] = condition
                continue
            if not self.active[rule.name]:
                continue
            if rule.cleared_by == 'hysteresis':
                if now_ns - self._unhealthy_ns[rule.name] >= self._recovery_ns:
                    self.active[rule.name] = False
            elif rule.cleared_by in ('safety_reset', 'inputs_up'):
                self.active[rule.name] = False
            # 'acknowledge' rules clear only in acknowledge()
        winner = max((rule for rule in FAULT_RULES if self.active[rule.name]),
                     key=lambda rule: rule.mode, default=None)
        mode = winner.mode if winner else Mode.NORMAL
        if mode == self.mode:
            return None
        if winner is not None and mode > self.mode:
            rule, reason = winner.name, self.reasons[winner.name]
            self.mode_rule = winner.name
        else:
            left = next(r for r in FAULT_RULES if r.name == self.mode_rule)
            self.mode_rule = winner.name if winner is not None else ''
            rule = rule_hint or f'{left.name}_recovered'
            reason = reason_hint or (f'{left.name} healthy for recovery_time '
                                     f'{self.config.recovery_time} s'
                                     if left.cleared_by == 'hysteresis'
                                     else f'{left.name} cleared')
            if winner is not None:
                reason += f'; still active: {self.reasons[winner.name]}'
        transition = Transition(now_ns, self.mode, mode, rule, reason)
        self.previous_mode, self.mode = self.mode, mode
        self.reason = reason
        self.mode_since_ns = now_ns
        self.transitions.append(transition)
        return transition

"""The supervisor's transition table, row by row, plus coinciding faults and recovery."""
import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st
import pytest

from sim2real_safety.supervisor import (
    AcknowledgeRefusedError,
    CommissioningRefusedError,
    FAULT_RULES,
    Mode,
    RULES,
    Supervisor,
    SupervisorConfig,
    SupervisorConfigError,
)

MS = 1_000_000
CFG = SupervisorConfig()


class Rig:
    """Feeds healthy inputs every 10 ms unless told a fault; time in ns."""

    def __init__(self, start=True):
        self.sup = Supervisor(CFG, start_ns=0)
        self.now = 0
        self.camera = dict(healthy=True, frame_age=0.03, frozen_duration=0.0)
        self.policy = dict(healthy=True, inference_latency=0.05, chunk_age=0.1)
        self.gripper = dict(gripper_width=0.08, gripper_effort=0.0, gripper_fault=False)
        self.commanded_width = 0.08
        self.stop = False
        self.state_fault = ''
        self.silent = set()
        if start:  # past start-up (HUMAN_REQUIRED until every input has been heard)
            self.run(0.01)
            assert self.sup.mode == Mode.NORMAL, self.sup.reason
            self.sup.transitions.clear()

    def run(self, seconds):
        transitions = []
        for _ in range(int(round(seconds * 100))):
            self.now += 10 * MS
            s = self.sup
            if 'camera' not in self.silent:
                s.on_camera_health(now_ns=self.now, **self.camera)
            if 'policy' not in self.silent:
                s.on_policy_health(now_ns=self.now, **self.policy)
            if 'robot' not in self.silent:
                s.on_command(self.commanded_width, self.now)
                s.on_robot_state(now_ns=self.now, **self.gripper)
            if 'control' not in self.silent:
                s.on_control(self.now)
            if 'safety' not in self.silent:
                s.on_safety_status(self.stop, 'drill' if self.stop else '', self.now,
                                   self.state_fault)
            t = s.update(self.now)
            if t:
                transitions.append(t)
        return transitions

    @property
    def mode(self):
        return self.sup.mode


def started():
    rig = Rig()
    rig.run(0.5)
    assert rig.mode == Mode.NORMAL
    return rig


def enters_then_recovers(rig, fault, restore, mode, rule, within, recovery=CFG.recovery_time):
    fault()
    transitions = rig.run(within)
    assert rig.mode == mode, transitions
    assert transitions[-1].rule == rule and transitions[-1].reason
    restore()
    rig.run(recovery - 0.05)
    assert rig.mode == mode  # hysteresis: not yet
    transitions = rig.run(0.1)
    assert rig.mode == Mode.NORMAL
    assert transitions[-1].rule == f'{rule}_recovered'


def scenario_software_stop(rig):
    rig.stop = True
    t = rig.run(0.02)
    assert rig.mode == Mode.SOFTWARE_STOP and t[-1].rule == 'software_stop'
    assert 'drill' in t[-1].reason
    rig.stop = False
    rig.run(0.02)
    assert rig.mode == Mode.NORMAL


def scenario_grasp_failures(rig):
    for _ in range(CFG.max_consecutive_failures):
        rig.sup.on_grasp_result(False, rig.now)
    rig.run(0.02)
    assert rig.mode == Mode.NORMAL  # three in a row is allowed
    rig.sup.on_grasp_result(False, rig.now)
    t = rig.run(0.02)
    assert rig.mode == Mode.HUMAN_REQUIRED and t[-1].rule == 'grasp_failures'
    assert not rig.sup.autonomy_enabled
    rig.run(5.0)
    assert rig.mode == Mode.HUMAN_REQUIRED  # no timeout ever leaves it
    with pytest.raises(AcknowledgeRefusedError, match='operator'):
        rig.sup.acknowledge('', 'looked', rig.now)
    rig.sup.acknowledge('ana', 'cleared the bin', rig.now)
    assert rig.mode == Mode.NORMAL and rig.sup.consecutive_failures == 0
    assert rig.sup.transitions[-1].rule == 'acknowledge'
    assert 'ana' in rig.sup.transitions[-1].reason


def scenario_critical_node_silent(rig):
    rig.silent = {'control'}
    rig.run(CFG.health_timeout + 0.05)
    assert rig.mode == Mode.HUMAN_REQUIRED
    assert rig.sup.transitions[-1].rule == 'critical_node_silent'
    assert 'control' in rig.sup.transitions[-1].reason
    with pytest.raises(AcknowledgeRefusedError, match='control'):
        rig.sup.acknowledge('ana', 'restarted it', rig.now)  # still silent
    rig.silent = set()
    rig.run(0.2)
    assert rig.mode == Mode.HUMAN_REQUIRED  # back, but a human must look
    rig.sup.acknowledge('ana', 'restarted the controller', rig.now)
    assert rig.mode == Mode.NORMAL


def scenario_inputs_pending(rig):
    fresh = Rig(start=False)
    fresh.silent = {'robot'}
    assert fresh.mode == Mode.HUMAN_REQUIRED  # from the start: nothing heard yet
    assert not fresh.sup.autonomy_enabled
    fresh.run(0.3)
    assert fresh.mode == Mode.HUMAN_REQUIRED
    assert 'robot' in fresh.sup.reason and not fresh.sup.transitions
    with pytest.raises(AcknowledgeRefusedError, match='waiting for the first message'):
        fresh.sup.acknowledge('ana', 'go', fresh.now)
    fresh.silent = set()
    fresh.run(0.02)
    assert fresh.mode == Mode.NORMAL  # clears by itself once every input is up


def scenario_gripper(rig):
    def fault():
        rig.gripper['gripper_fault'] = True

    def restore():
        rig.gripper['gripper_fault'] = False

    enters_then_recovers(rig, fault, restore, Mode.GRIPPER_FAULT, 'gripper', 0.02)


def scenario_vision(rig):
    def fault():
        rig.camera['frame_age'] = CFG.camera_timeout + 0.01

    def restore():
        rig.camera['frame_age'] = 0.03

    enters_then_recovers(rig, fault, restore, Mode.VISION_DEGRADED, 'vision', 0.02)


def scenario_inference(rig):
    def fault():
        rig.policy['inference_latency'] = 1.5

    def restore():
        rig.policy['inference_latency'] = 0.05

    enters_then_recovers(rig, fault, restore, Mode.INFERENCE_SLOW, 'inference', 0.02)


def scenario_robot_state(rig):
    def fault():
        rig.state_fault = 'joint_state_missing stage_z'

    def restore():
        rig.state_fault = ''

    enters_then_recovers(rig, fault, restore, Mode.HUMAN_REQUIRED, 'robot_state', 0.02)
    assert 'stage_z' in rig.sup.transitions[-2].reason


def scenario_camera_calibration(rig):
    reason = 'camera calibration suspect: the fingertips are 4.2 px from where the cell file'
    rig.sup.on_policy_health(True, 0.05, 0.1, rig.now, '', reason)
    t = rig.run(0.02)
    assert rig.mode == Mode.HUMAN_REQUIRED and t[-1].rule == 'camera_calibration'
    assert 'cell file' in t[-1].reason and not rig.sup.autonomy_enabled
    rig.run(5.0)
    assert rig.mode == Mode.HUMAN_REQUIRED   # never leaves by itself
    rig.sup.acknowledge('ana', 'camera re-commissioned', rig.now)
    assert rig.mode == Mode.NORMAL


SCENARIOS = {
    'camera_calibration': scenario_camera_calibration,
    'software_stop': scenario_software_stop,
    'grasp_failures': scenario_grasp_failures,
    'critical_node_silent': scenario_critical_node_silent,
    'inputs_pending': scenario_inputs_pending,
    'robot_state': scenario_robot_state,
    'gripper': scenario_gripper,
    'vision': scenario_vision,
    'inference': scenario_inference,
}


def test_every_rule_has_a_scenario_and_every_scenario_a_rule():
    assert set(SCENARIOS) == set(RULES)


@pytest.mark.parametrize('rule', [rule.name for rule in FAULT_RULES])
def test_rule(rule):
    SCENARIOS[rule](started())


def test_priority_is_the_mode_value():
    assert [rule.mode for rule in FAULT_RULES] == sorted(
        (rule.mode for rule in FAULT_RULES), reverse=True)
    assert Mode.SOFTWARE_STOP > Mode.HUMAN_REQUIRED > Mode.GRIPPER_FAULT \
        > Mode.VISION_DEGRADED > Mode.INFERENCE_SLOW > Mode.NORMAL


@pytest.mark.parametrize('fault, condition', [
    ('camera unhealthy', lambda r: r.camera.update(healthy=False)),
    ('camera frozen', lambda r: r.camera.update(frozen_duration=CFG.frozen_timeout + 0.1)),
    ('camera silent', lambda r: r.silent.add('camera')),
])
def test_vision_faults(fault, condition):
    rig = started()
    condition(rig)
    rig.run(CFG.health_timeout + 0.1)
    assert rig.mode == Mode.VISION_DEGRADED, fault


@pytest.mark.parametrize('fault, condition', [
    ('policy raising', lambda r: r.policy.update(healthy=False)),
    ('no chunk', lambda r: r.policy.update(chunk_age=1.2)),
    ('policy silent', lambda r: r.silent.add('policy')),
])
def test_inference_faults(fault, condition):
    rig = started()
    condition(rig)
    rig.run(CFG.health_timeout + 0.1)
    assert rig.mode == Mode.INFERENCE_SLOW, fault


def test_gripper_stall_needs_time_and_effort_and_opening_direction():
    rig = started()
    # closing on an object: commanded narrower than measured, high effort -> a grasp, fine
    rig.commanded_width = 0.0
    rig.gripper.update(gripper_width=0.04, gripper_effort=60.0)
    rig.run(1.0)
    assert rig.mode == Mode.NORMAL
    # told to open, pushing, not opening: a stall once it lasts stall_time
    rig.commanded_width = 0.085
    rig.run(CFG.stall_time - 0.05)
    assert rig.mode == Mode.NORMAL
    rig.run(0.1)
    assert rig.mode == Mode.GRIPPER_FAULT
    assert 'stalled' in rig.sup.reason


def test_excessive_effort_is_a_gripper_fault():
    rig = started()
    rig.gripper['gripper_effort'] = CFG.max_gripper_effort + 1.0
    rig.run(0.02)
    assert rig.mode == Mode.GRIPPER_FAULT


def test_coinciding_faults_take_the_highest_and_recover_step_by_step():
    rig = started()
    rig.policy['inference_latency'] = 1.5
    rig.camera['frame_age'] = 1.0
    rig.run(0.05)
    assert rig.mode == Mode.VISION_DEGRADED  # vision outranks inference
    rig.stop = True
    rig.run(0.02)
    assert rig.mode == Mode.SOFTWARE_STOP   # a stop during a degraded mode
    rig.stop = False
    rig.run(0.02)
    assert rig.mode == Mode.VISION_DEGRADED  # back to the fault still active
    rig.camera['frame_age'] = 0.03
    rig.run(CFG.recovery_time + 0.05)
    assert rig.mode == Mode.INFERENCE_SLOW
    assert 'still active' in rig.sup.transitions[-1].reason
    rig.policy['inference_latency'] = 0.05
    rig.run(CFG.recovery_time + 0.05)
    assert rig.mode == Mode.NORMAL


def test_a_flapping_fault_does_not_flap_the_mode():
    rig = started()
    for _ in range(10):
        rig.camera['frame_age'] = 1.0
        rig.run(0.1)
        rig.camera['frame_age'] = 0.03
        rig.run(0.3)  # healthy for less than recovery_time
    assert rig.mode == Mode.VISION_DEGRADED
    assert len(rig.sup.transitions) == 1


def test_human_required_survives_lower_faults_clearing():
    rig = started()
    for _ in range(4):
        rig.sup.on_grasp_result(False, rig.now)
    rig.policy['inference_latency'] = 1.5
    rig.run(0.1)
    rig.policy['inference_latency'] = 0.05
    rig.run(3.0)
    assert rig.mode == Mode.HUMAN_REQUIRED


def test_acknowledge_with_nothing_to_acknowledge_is_refused():
    rig = started()
    with pytest.raises(AcknowledgeRefusedError, match='nothing to acknowledge'):
        rig.sup.acknowledge('ana', 'just checking', rig.now)


def test_success_resets_the_failure_count():
    rig = started()
    for outcome in (False, False, False, True, False, False, False):
        rig.sup.on_grasp_result(outcome, rig.now)
    rig.run(0.02)
    assert rig.mode == Mode.NORMAL and rig.sup.consecutive_failures == 3


@pytest.mark.parametrize('name, value', [('camera_timeout', 0), ('recovery_time', -1.0),
                                         ('max_consecutive_failures', 2.5),
                                         ('stall_effort', math.nan), ('heartbeat_period', True)])
def test_bad_config_is_named(name, value):
    params = {n: getattr(CFG, n) for n in CFG.__dataclass_fields__}
    params[name] = value
    with pytest.raises(SupervisorConfigError, match=name):
        SupervisorConfig.from_parameters(params)


def test_shipped_config_loads():
    from pathlib import Path

    import yaml
    path = Path(__file__).resolve().parents[2] / 'config' / 'supervisor.yaml'
    params = yaml.safe_load(path.read_text())['supervisor_node']['ros__parameters']
    assert SupervisorConfig.from_parameters(params).inference_deadline == 1.0



def _stall_run(widths, lead, effort, seconds, command=None):
    """The first time (s) the supervisor is in GRIPPER_FAULT, or None.

    Fingers at ``widths(t)`` told to open ``lead`` past them (the command ramps ahead of a
    lagging drive, up to the fully open width), pushing at ``effort``; or told ``command``.
    """
    rig = started()
    for tick in range(int(round(seconds * 100))):
        width = widths(tick * 0.01)
        rig.gripper.update(gripper_width=width, gripper_effort=effort)
        rig.commanded_width = command or min(0.085 + lead, width + lead)
        rig.run(0.01)
        if rig.mode == Mode.GRIPPER_FAULT:
            return (tick + 1) * 0.01
    return None


def _opening(start_width, speed):
    return lambda t: min(0.085, start_width + speed * (t + 0.01))


_LEAD = st.floats(CFG.stall_width_error * 1.01, 0.085)
_EFFORT = st.builds(lambda effort, sign: sign * effort,
                    st.floats(CFG.stall_effort, CFG.max_gripper_effort), st.sampled_from([-1, 1]))


@settings(max_examples=150, deadline=None)
@given(start_width=st.floats(0.0, 0.08), lead=_LEAD, effort=_EFFORT,
       speed=st.floats(2.0 * CFG.stall_width_error / CFG.stall_time, 0.3))
def test_fingers_opening_behind_their_command_are_not_a_stall(start_width, lead, speed, effort):
    # opening at least twice stall_width_error per stall_time, fully open within
    # stall_opening_time: no fault while they move; stopped there with the command still
    # ahead, a stall within stall_time
    moving_for = (0.085 - start_width) / speed
    assume(moving_for + CFG.stall_time < CFG.stall_opening_time)
    fault = _stall_run(_opening(start_width, speed), lead, effort, moving_for + 0.5)
    assert fault is not None and moving_for < fault <= moving_for + CFG.stall_time + 0.02, fault


@settings(max_examples=150, deadline=None)
@given(start_width=st.floats(0.0, 0.075), lead=_LEAD, effort=_EFFORT, creep=st.floats(0.0, 0.99))
def test_fingers_that_do_not_get_there_are_a_stall_within_stall_time(start_width, lead, creep,
                                                                     effort):
    # creeping open slower than stall_width_error per stall_time (a jam): a fault, no later
    # than stall_time after the stall began
    speed = creep * CFG.stall_width_error / (CFG.stall_time + 0.02)
    fault = _stall_run(_opening(start_width, speed), lead, effort, CFG.stall_time + 0.1)
    assert fault is not None and fault <= CFG.stall_time + 0.02, fault


@settings(max_examples=150, deadline=None)
@given(start_width=st.floats(0.0, 0.08), lead=_LEAD, effort=_EFFORT, speed=st.floats(0.0, 0.3))
def test_a_stall_is_a_fault_within_stall_opening_time_whatever_the_fingers_do(
        start_width, lead, speed, effort):
    # a jam that creeps open fast enough to restart every window is caught all the same
    fault = _stall_run(_opening(start_width, speed), lead, effort, CFG.stall_opening_time + 0.1)
    assert fault is not None and fault <= CFG.stall_opening_time + 0.02, fault


@settings(max_examples=150, deadline=None)
@given(width=st.floats(0.0, 0.075), lead=_LEAD, effort=_EFFORT,
       spikes=st.lists(st.tuples(st.integers(1, 40), st.floats(CFG.stall_width_error, 0.1)),
                       max_size=20))
def test_single_noisy_readings_do_not_postpone_a_stall(width, lead, effort, spikes):
    # jammed fingers whose width reading jumps open on single, separate readings after the
    # first: as far as the command (the stall condition gone for that reading) or further
    jumps = {}
    for tick, jump in spikes:
        if tick - 1 not in jumps and tick + 1 not in jumps:
            jumps[tick] = jump
    fault = _stall_run(lambda t: width + jumps.get(int(round(t * 100)), 0.0), lead, effort,
                       CFG.stall_time + 0.1, command=width + lead)
    # (a spiked reading is not judged: one landing on the deadline delays the fault by one)
    assert fault is not None and fault <= CFG.stall_time + 0.03, fault


@pytest.mark.parametrize('width', [math.nan, math.inf, -math.inf])
def test_a_non_finite_gripper_width_is_a_gripper_fault(width):
    rig = started()
    rig.gripper['gripper_width'] = width
    rig.run(0.02)
    assert rig.mode == Mode.GRIPPER_FAULT
    assert 'not finite' in rig.sup.reason


# ------------------------------------------------------------------------- commissioning
def test_commissioning_begins_on_a_named_request_and_disables_autonomy():
    rig = Rig()
    message = rig.sup.begin_commissioning('ana', 'new cell', rig.now)
    assert rig.sup.commissioning and rig.sup.commissioning_operator == 'ana'
    assert 'ana' in message and not rig.sup.autonomy_enabled
    assert rig.sup.mode == Mode.NORMAL
    rig.sup.end_commissioning('procedure done', rig.now)
    assert not rig.sup.commissioning and rig.sup.autonomy_enabled
    assert [event for _, event, _, _ in rig.sup.commissioning_log] == ['begin', 'end']


@pytest.mark.parametrize('operator, reason', [('', 'new cell'), ('  ', 'new cell'),
                                              ('ana', ''), (None, 'x'), ('ana', 3)])
def test_commissioning_without_an_operator_or_reason_is_refused(operator, reason):
    rig = Rig()
    with pytest.raises(CommissioningRefusedError):
        rig.sup.begin_commissioning(operator, reason, rig.now)
    assert not rig.sup.commissioning


def test_commissioning_is_refused_while_stopped_and_while_one_runs():
    rig = Rig()
    rig.stop = True
    rig.run(0.05)
    with pytest.raises(CommissioningRefusedError, match='SOFTWARE_STOP'):
        rig.sup.begin_commissioning('ana', 'new cell', rig.now)
    rig.stop = False
    rig.run(0.05)
    rig.sup.begin_commissioning('ana', 'new cell', rig.now)
    with pytest.raises(CommissioningRefusedError, match='already'):
        rig.sup.begin_commissioning('bo', 'again', rig.now)


@pytest.mark.parametrize('fault', ['stop', 'gripper', 'silent_safety'])
def test_a_stop_or_fault_ends_the_commissioning(fault):
    rig = Rig()
    rig.sup.begin_commissioning('ana', 'new cell', rig.now)
    if fault == 'stop':
        rig.stop = True
    elif fault == 'gripper':
        rig.gripper['gripper_fault'] = True
    else:
        rig.silent.add('safety')
    rig.run(CFG.health_timeout + 0.1)
    assert not rig.sup.commissioning
    assert rig.sup.commissioning_log[-1][1] == 'end'


def test_a_lower_fault_does_not_end_the_commissioning():
    rig = Rig()
    rig.sup.begin_commissioning('ana', 'new cell', rig.now)
    rig.silent.add('policy')    # commissioning runs without the policy node
    rig.run(2.0)
    assert rig.sup.mode == Mode.INFERENCE_SLOW and rig.sup.commissioning


def test_a_commissioning_that_runs_too_long_is_ended():
    rig = Rig()
    rig.sup = Supervisor(SupervisorConfig(commissioning_timeout=1.0), start_ns=rig.now)
    rig.run(0.05)
    rig.sup.begin_commissioning('ana', 'new cell', rig.now)
    rig.run(0.9)
    assert rig.sup.commissioning
    rig.run(0.2)
    assert not rig.sup.commissioning
    assert 'commissioning_timeout' in rig.sup.commissioning_log[-1][3]

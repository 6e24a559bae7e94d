"""Each constraint, each reaction, each malformed input, the watchdog and the gate."""
import math

import numpy as np
import pytest
from safety_rig import feed_robot, HOME, limits, MS, Rig

from sim2real_safety.audit import OutputAuditor
from sim2real_safety.filter import SafetyFilter
from sim2real_safety.limits import Reaction, Verdict


def names(decision):
    return [v.constraint for v in decision.violations]


def settle(rig, target, ticks=400):
    """Drive toward target long enough for the rate limits to get there."""
    decision = None
    for _ in range(ticks):
        decision = rig.step(target)
    return decision


# ------------------------------------------------------------------------- range limits
RANGE_CASES = [
    # (field index, value outside, constraint, limit)
    (0, 0.10, 'workspace_x', 0.30), (0, 1.20, 'workspace_x', 0.80),
    (1, -0.60, 'workspace_y', -0.25), (1, 0.60, 'workspace_y', 0.25),
    (2, 0.90, 'workspace_z', 0.45),
    (2, -0.05, 'finger_clearance', 0.0119),  # at HOME's 80 mm: 6.4 mm drop + 5 + 0.5 margin
    (3, -3.0, 'yaw_range', -1.5), (3, 3.0, 'yaw_range', 1.5),
    (4, -0.01, 'gripper_width_range', 0.0), (4, 0.20, 'gripper_width_range', 0.085),
]


def test_wide_open_the_table_clearance_binds():
    """Wide open the fingertips are 4.5 mm below the TCP: the TCP's 10 mm clearance binds.

    Commands stop the servo's tracking margin above it.
    """
    rig = Rig(start=(0.55, 0.0, 0.20, 0.0, 0.085))
    target = (0.55, 0.0, -0.05, 0.0, 0.085)
    first = rig.step(target)
    violation = next(v for v in first.violations if v.constraint == 'table_clearance')
    assert violation.limit == pytest.approx(0.0105)
    assert settle(rig, target).command[2] == pytest.approx(0.0105, abs=1e-12)


@pytest.mark.parametrize('field, value, constraint, limit', RANGE_CASES)
def test_range_limit_clamps_to_the_boundary(field, value, constraint, limit):
    rig = Rig()
    target = list(HOME)
    target[field] = value
    first = rig.step(target)
    assert constraint in names(first)
    violation = next(v for v in first.violations if v.constraint == constraint)
    assert violation.value == value and violation.limit == pytest.approx(limit)
    assert violation.reaction == Reaction.CLAMP and first.verdict == Verdict.CLAMPED
    final = settle(rig, target)
    assert final.command[field] == pytest.approx(limit, abs=1e-12)
    assert final.verdict == Verdict.CLAMPED


@pytest.mark.parametrize('field, value, constraint, limit', RANGE_CASES)
def test_range_limit_reject_holds(field, value, constraint, limit):
    # the fingers' floor reacts as the table clearance it raises does
    key = {'workspace_x': 'workspace', 'workspace_y': 'workspace', 'workspace_z': 'workspace',
           'finger_clearance': 'table_clearance'}.get(constraint, constraint)
    rig = Rig(limits(**{f'reaction.{key}': 'reject'}))
    target = list(HOME)
    target[field] = value
    decision = rig.step(target)
    assert decision.verdict == Verdict.REJECTED
    assert constraint in names(decision)
    assert decision.command == HOME


def test_range_scale_moves_along_the_motion_to_the_boundary():
    # Near the face, so the whole motion is within the rate limits: only the range acts.
    rig = Rig(limits(**{'reaction.workspace': 'scale'}), start=(0.799, 0.0, 0.20, 0.0, 0.08))
    start = rig.filter._sent
    decision = rig.step((0.801, 0.001, 0.20, 0.0, 0.08))  # x beyond 0.80 and y moving too
    assert decision.verdict == Verdict.SCALED
    t = (0.80 - start[0]) / (0.801 - start[0])
    assert decision.command[0] == pytest.approx(0.80)
    assert decision.command[1] == pytest.approx(start[1] + t * 0.001)  # same direction


def test_clamp_keeps_the_other_fields():
    rig = Rig(start=(0.799, 0.0, 0.20, 0.0, 0.08))
    decision = rig.step((0.801, 0.001, 0.20, 0.0, 0.08))
    assert decision.verdict == Verdict.CLAMPED
    assert decision.command[0] == pytest.approx(0.80)
    assert decision.command[1] == pytest.approx(0.001)


# -------------------------------------------------------------------------- rate limits
def test_cartesian_speed_scales_the_step_keeping_direction():
    rig = Rig()
    decision = rig.step((0.65, 0.10, 0.20, 0.0, 0.08))
    assert names(decision) == ['cartesian_speed']
    step = np.subtract(decision.command, HOME)
    # the command speed: the limit less the servo's margin (0.25 x 0.85 m/s)
    assert np.linalg.norm(step[:3]) == pytest.approx(rig.limits.command_speed * 0.01)
    assert rig.limits.command_speed == pytest.approx(0.2125)
    assert step[0] == pytest.approx(step[1])  # the 45 degree direction is kept
    assert decision.verdict == Verdict.SCALED


def test_cartesian_step_limit_binds_when_smaller_than_speed_times_period():
    rig = Rig(limits(max_cartesian_step=0.001))
    decision = rig.step((0.65, 0.0, 0.20, 0.0, 0.08))
    assert names(decision) == ['cartesian_step']
    assert decision.command[0] - HOME[0] == pytest.approx(0.001)


def test_yaw_rate_and_gripper_speed():
    rig = Rig()
    decision = rig.step((0.55, 0.0, 0.20, 1.0, 0.0))
    assert sorted(names(decision)) == ['gripper_speed', 'yaw_rate']
    # scale: one common factor for the whole motion, set by the tighter of the two
    factor = min(0.01 / 1.0, 0.0015 / 0.08)
    assert decision.command[3] == pytest.approx(1.0 * factor)
    assert decision.command[4] == pytest.approx(0.08 - 0.08 * factor)


def test_rate_clamp_limits_each_group_separately():
    rig = Rig(limits(**{'reaction.yaw_rate': 'clamp', 'reaction.gripper_speed': 'clamp'}))
    decision = rig.step((0.55, 0.0, 0.20, 1.0, 0.0))
    assert decision.verdict == Verdict.CLAMPED
    assert decision.command[3] == pytest.approx(0.01)
    assert decision.command[4] == pytest.approx(0.08 - 0.0015)


@pytest.mark.parametrize('key, target', [
    ('cartesian_speed', (0.65, 0.0, 0.20, 0.0, 0.08)),
    ('yaw_rate', (0.55, 0.0, 0.20, 1.0, 0.08)),
    ('gripper_speed', (0.55, 0.0, 0.20, 0.0, 0.0)),
])
def test_rate_reject_holds(key, target):
    rig = Rig(limits(**{f'reaction.{key}': 'reject'}))
    decision = rig.step(target)
    assert decision.verdict == Verdict.REJECTED and key in names(decision)
    assert decision.command == HOME


def test_rate_is_measured_from_the_last_command_actually_sent():
    rig = Rig()
    for _ in range(10):
        decision = rig.step((0.75, 0.0, 0.20, 0.0, 0.08))
    # ten ticks at the command speed: 21.25 mm, however far the proposals were
    assert decision.command[0] - HOME[0] == pytest.approx(10 * 0.01 * rig.limits.command_speed)


# ----------------------------------------------------------------------- malformed input
def _nan_at(index, value=math.nan):
    proposal = list(HOME)
    proposal[index] = value
    return proposal


MALFORMED = [
    *[(f'nan_{i}', _nan_at(i), 1, 'non_finite') for i in range(5)],
    *[(f'inf_{i}', _nan_at(i, math.inf), 1, 'non_finite') for i in range(5)],
    *[(f'-inf_{i}', _nan_at(i, -math.inf), 1, 'non_finite') for i in range(5)],
    ('string', _nan_at(0, '0.5'), 1, 'malformed'),
    ('none_value', _nan_at(2, None), 1, 'malformed'),
    ('short', list(HOME[:4]), 1, 'malformed'),
    ('long', list(HOME) + [0.0], 1, 'malformed'),
    ('empty', [], 1, 'malformed'),
    ('none', None, 1, 'malformed'),
    ('future_stamp', list(HOME), -5, 'future_stamp'),
    ('stale_stamp', list(HOME), 150, 'stale_command'),
]


@pytest.mark.parametrize('case, proposal, age_ms, constraint', MALFORMED,
                         ids=[c[0] for c in MALFORMED])
def test_malformed_input_is_rejected_and_the_robot_holds(case, proposal, age_ms, constraint):
    rig = Rig()
    decision = rig.step(proposal, age_ms=age_ms)
    assert decision.verdict == Verdict.REJECTED
    assert names(decision) == [constraint]
    assert decision.command == HOME
    assert all(math.isfinite(v) for v in decision.command)


def test_stamps_going_backwards_or_repeating_are_rejected():
    rig = Rig()
    target = (0.551, 0.0, 0.20, 0.0, 0.08)
    assert rig.step(target, age_ms=1).verdict == Verdict.PASS
    assert names(rig.step(target, age_ms=20)) == ['stamp_not_increasing']  # older stamp
    rig.now_ns += 10 * MS
    rig.feed()
    stamp = rig.now_ns - MS
    assert rig.filter.check(target, stamp, rig.now_ns).verdict != Verdict.REJECTED
    assert names(rig.filter.check(target, stamp, rig.now_ns + MS)) == ['stamp_not_increasing']


def test_nan_is_caught_by_an_explicit_check_not_by_clipping():
    # Why an explicit check: clipping lets NaN through.
    assert math.isnan(min(max(math.nan, 0.3), 0.8))
    assert np.isnan(np.clip(np.nan, 0.3, 0.8))
    # With every reaction set to clamp, a NaN is still rejected as non-finite, never clipped.
    rig = Rig(limits(**{f'reaction.{k}': 'clamp' for k in (
        'workspace', 'table_clearance', 'yaw_range', 'gripper_width_range',
        'cartesian_speed', 'cartesian_step', 'yaw_rate', 'gripper_speed')}))
    decision = rig.step(_nan_at(0))
    assert names(decision) == ['non_finite']
    assert decision.violations[0].field == 'x'
    assert decision.command == HOME



@pytest.mark.parametrize('container', [tuple, list, np.array])
def test_huge_finite_values_are_range_limited_not_called_non_finite(container):
    # Finite values whose sum overflows: the one-test path for plain floats must not read
    # them as non-finite, and numpy floats (not plain floats) take the field-by-field path.
    rig = Rig()
    decision = rig.step(container([1e308, 1e308, 0.2, 0.0, 0.08]))
    assert decision.verdict == Verdict.CLAMPED
    assert 'non_finite' not in names(decision)
    assert 'workspace_x' in names(decision) and 'workspace_y' in names(decision)
    assert all(math.isfinite(v) for v in decision.command)
    inf_among_numpy = rig.step(np.array([0.5, 0.0, 0.2, np.inf, 0.08]))
    assert names(inf_among_numpy) == ['non_finite']

# --------------------------------------------------------------------- hold and watchdog
def _moving_rig():
    rig = Rig()
    for _ in range(30):  # cruise at the speed limit along +x
        decision = rig.step((0.79, 0.0, 0.20, 0.0, 0.08))
    return rig, decision.command


def test_hold_decelerates_and_never_jumps_back():
    rig, last = _moving_rig()
    auditor = OutputAuditor(rig.limits)
    auditor.audit(last, rig.now_ns)
    previous_step = rig.limits.command_speed * 0.01
    positions = [last[0]]
    for _ in range(30):
        decision = rig.step(_nan_at(1))
        assert auditor.audit(decision.command, rig.now_ns) == []
        positions.append(decision.command[0])
        step = positions[-1] - positions[-2]
        assert 0.0 <= step <= previous_step + 1e-15  # forward, slowing, never backwards
        previous_step = step
    assert positions[-1] == positions[-2]  # at rest
    # braking distance v^2 / 2a = 0.2125^2 / 4 = 11.3 mm (plus one tick of discretization)
    assert positions[-1] - last[0] == pytest.approx(0.0113, abs=0.003)


@pytest.mark.parametrize('epsilon_ms, expect_hold', [(-1, False), (1, True)])
def test_watchdog_at_command_timeout(epsilon_ms, expect_hold):
    rig, last = _moving_rig()
    last_stamp_ns = rig.now_ns - MS
    # silence: no proposals; the watchdog runs every ms up to command_timeout +- epsilon
    outputs = []
    while rig.now_ns - last_stamp_ns < 100 * MS + epsilon_ms * MS:
        decision = rig.tick(dt_ms=1)
        if decision is not None:
            outputs.append(decision)
    if not expect_hold:
        assert outputs == []
        return
    assert outputs and names(outputs[0]) == ['command_timeout']
    # keeps decelerating to rest in later ticks, never back toward an older setpoint
    for _ in range(40):
        decision = rig.tick(dt_ms=10)
        outputs.append(decision)
    xs = [last[0]] + [d.command[0] for d in outputs]
    assert all(b >= a for a, b in zip(xs, xs[1:]))
    assert xs[-1] == xs[-2]


def test_start_up_first_command_equals_state_and_nothing_moves_until_healthy():
    lim = limits()
    flt = SafetyFilter(lim)
    assert flt.check(HOME, 0, 1).command is None  # no state yet: nothing to send
    now = 10 * MS
    state = (0.5, 0.1, 0.3, 0.2, 0.05)
    for _ in range(3):  # three agreeing readings before the first command
        assert flt.check((0.6, 0.1, 0.3, 0.2, 0.05), now - MS, now).command is None
        feed_robot(flt, state, now)
        now += 10 * MS
    now -= 10 * MS
    decision = flt.check((0.6, 0.1, 0.3, 0.2, 0.05), now - MS + 1, now)
    assert decision.command == state
    assert names(decision) == ['supervisor_silent']
    flt.supervisor_heartbeat(now + 10 * MS)
    feed_robot(flt, state, now + 10 * MS)
    moved = flt.check((0.6, 0.1, 0.3, 0.2, 0.05), now + 9 * MS, now + 10 * MS)
    assert moved.command[0] > 0.5


def test_gate_holds_when_the_supervisor_goes_silent():
    rig = Rig()
    silent_since = rig.now_ns
    xs = []
    for _ in range(80):  # state keeps coming, supervisor silent for 800 ms
        rig.now_ns += 10 * MS
        feed_robot(rig.filter, rig.filter._sent, rig.now_ns)  # the stage follows
        decision = rig.filter.check((0.79, 0.0, 0.20, 0.0, 0.08), rig.now_ns - MS, rig.now_ns)
        if rig.now_ns - silent_since > 500 * MS:
            assert names(decision) == ['supervisor_silent']
        xs.append(decision.command[0])
    # moving at the speed limit until the timeout, then braking to rest (<= 16 mm + a tick)
    at_timeout = xs[49]
    assert xs[-1] == xs[-2] and 0.0 < xs[-1] - at_timeout <= 0.0185


def test_gate_holds_when_the_robot_state_goes_stale():
    rig = Rig()
    for _ in range(20):
        rig.now_ns += 10 * MS
        rig.filter.supervisor_heartbeat(rig.now_ns)
        decision = rig.filter.check((0.70, 0.0, 0.20, 0.0, 0.08), rig.now_ns - MS, rig.now_ns)
    # the hold also comes back toward the last measured pose (follow_error)
    assert names(decision)[0] == 'robot_state_stale'


def test_clock_jumping_back_gives_no_negative_dt_and_no_jump():
    rig, last = _moving_rig()
    auditor = OutputAuditor(rig.limits)
    auditor.audit(last, rig.now_ns)
    rig.now_ns = 5 * MS  # a bag looping back / sim time switching on
    rig.feed()
    for _ in range(50):
        decision = rig.step((0.79, 0.0, 0.20, 0.0, 0.08))
        assert auditor.audit(decision.command, rig.now_ns) == []
    assert decision.verdict == Verdict.SCALED  # moving again on the new timeline


def test_wall_clock_to_sim_time_switch():
    rig = Rig(now_ns=1_732_240_000 * 1_000_000_000)
    rig.step((0.56, 0.0, 0.20, 0.0, 0.08))
    rig.now_ns = 0
    rig.feed()
    # the new timeline is trusted after three agreeing readings on it, as at start-up
    held = [rig.step((0.56, 0.0, 0.20, 0.0, 0.08)).verdict for _ in range(1)]
    assert held == [Verdict.REJECTED]  # two readings so far
    decision = rig.step((0.56, 0.0, 0.20, 0.0, 0.08))
    assert decision.verdict in (Verdict.PASS, Verdict.SCALED)


# -------------------------------------------------------------------------------- joints
JOINTS = {'joint_limits.names': ['stage_x', 'stage_z'], 'joint_limits.lower': [0.2, 0.0],
          'joint_limits.upper': [0.9, 0.5], 'joint_limits.max_velocity': [0.5, 0.5],
          'joint_limit_margin': 0.01, 'tcp_joints': []}


@pytest.mark.parametrize('positions, velocities, constraint', [
    ([0.205, 0.2], [0.0, 0.0], 'joint_position'),   # within the margin of the lower limit
    ([0.5, 0.495], [0.0, 0.0], 'joint_position'),   # within the margin of the upper limit
    ([0.5, 0.2], [0.6, 0.0], 'joint_velocity'),
    ([0.5, 0.2], [0.0, -0.7], 'joint_velocity'),
    ([math.nan, 0.2], [0.0, 0.0], 'joint_state'),
])
def test_joint_limits_latch_the_stop(positions, velocities, constraint):
    rig = Rig(limits(**JOINTS))
    found = rig.filter.update_joint_state(['stage_x', 'stage_z', 'finger'], positions + [9.0],
                                          velocities + [9.0], rig.now_ns)
    assert [v.constraint for v in found] == [constraint]
    assert rig.filter.stop_active
    assert rig.step((0.6, 0.0, 0.2, 0.0, 0.08)).verdict == Verdict.STOPPED


def test_joints_within_limits_and_unconfigured_joints_pass():
    rig = Rig(limits(**JOINTS))
    assert rig.filter.update_joint_state(['stage_x', 'stage_z', 'finger'], [0.5, 0.2, 99.0],
                                         [0.4, -0.4, 99.0], rig.now_ns) == []
    assert not rig.filter.stop_active

"""Limits that hold relative to the measured robot (issue 31, findings 1, 2 and 6).

Each test failed on the code before the fix: one glitched first reading seeded a command
0.4 m from the real TCP (1); a missing, renamed or velocity-less joint state, or an empty
joint list, left the joint monitor silently off (2); `--set` could loosen any limit without a
cap (6).
"""
import math

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest
from safety_rig import BASE, feed_robot, HOME, JOINTS, limits, MS, Rig, seeded

from sim2real_safety.audit import OutputAuditor
from sim2real_safety.filter import SafetyFilter, SEED_READINGS
from sim2real_safety.limits import LimitsError, PARAMETERS, SafetyLimits, Verdict
from sim2real_safety.software_stop import ResetRefusedError

LIM = limits()
AT_REST = LIM.max_cartesian_speed * LIM.follow_response_time  # 7.5 mm
YAW_AT_REST = LIM.max_yaw_rate * LIM.follow_response_time  # 0.03 rad


def names(decision):
    return [v.constraint for v in decision.violations]


# ------------------------------------------------------------------ 1. glitched readings
pose_in_box = st.tuples(st.floats(0.30, 0.80), st.floats(-0.25, 0.25), st.floats(LIM.z_min, 0.45),
                        st.floats(-1.5, 1.5), st.floats(0.0, 0.085))
anywhere = st.tuples(st.floats(-2.0, 2.0), st.floats(-2.0, 2.0), st.floats(-2.0, 2.0),
                     st.floats(-4.0, 4.0), st.floats(-0.1, 0.3))


@settings(max_examples=300, deadline=None)
@given(pose_in_box, st.one_of(pose_in_box, anywhere), st.integers(1, SEED_READINGS - 1))
def test_glitched_first_readings_never_seed_a_command(true_pose, glitch, glitches):
    """Up to two glitched first readings, then the true pose: the first command is the pose.

    The glitches lie inside or outside the box; every command stays within the follow bound.
    """
    flt = SafetyFilter(LIM)
    auditor = OutputAuditor(LIM)
    now = 1_000 * MS
    for _ in range(glitches):
        flt.update_joint_state(JOINTS, list(true_pose[:4]), [0.0] * 4, now)
        flt.update_robot_state(glitch, now)
        flt.supervisor_heartbeat(now)
        now += 10 * MS
    first = None
    for _ in range(40):
        feed_robot(flt, true_pose, now)
        flt.supervisor_heartbeat(now)
        decision = flt.check(glitch, now - MS, now)  # the proposal chases the glitch
        if decision.command is not None:
            first = first or decision.command
            assert auditor.audit(decision.command, now, measured=true_pose) == []
            assert math.dist(decision.command[:3], true_pose[:3]) <= LIM.max_follow_error + 1e-12
        now += 10 * MS
    assert first is not None and first[:4] == pytest.approx(true_pose[:4], abs=1e-12)


def test_a_glitched_first_reading_with_agreeing_joints_is_not_trusted_alone():
    """A first reading the joints disagree with is a fault, not a seed, even repeated.

    0.4 m off, as the adversarial test's lunge.
    """
    flt = SafetyFilter(LIM)
    now = 1_000 * MS
    glitch = (HOME[0] - 0.2, HOME[1] + 0.2, HOME[2] + 0.2, 0.0, 0.08)
    for _ in range(5):
        flt.update_joint_state(JOINTS, list(HOME[:4]), [0.0] * 4, now)
        flt.update_robot_state(glitch, now)
        flt.supervisor_heartbeat(now)
        decision = flt.check(glitch, now - MS, now)
        assert decision.command is None
        now += 10 * MS
    assert 'robot state not plausible' in ' '.join(flt.unhealthy_inputs(now))


def test_a_glitch_mid_run_holds_names_it_and_is_never_a_new_reference():
    rig = Rig()
    for _ in range(10):
        rig.step((0.70, 0.0, 0.20, 0.0, 0.08))
    held = rig.filter._sent
    glitch = (0.30, 0.25, 0.45, 0.0, 0.08)
    rig.now_ns += 10 * MS
    rig.filter.update_robot_state(glitch, rig.now_ns)  # the joints still say where it is
    decision = rig.filter.check((0.75, 0.0, 0.20, 0.0, 0.08), rig.now_ns - MS, rig.now_ns)
    assert decision.verdict == Verdict.REJECTED
    assert names(decision) == ['robot_state_disagrees_with_joints']
    assert math.dist(decision.command[:3], held[:3]) <= 0.25 * 0.01 + 1e-12
    # the next true reading is plausible again: motion resumes from the real pose
    moved = rig.step((0.75, 0.0, 0.20, 0.0, 0.08))
    assert moved.verdict in (Verdict.PASS, Verdict.SCALED, Verdict.CLAMPED)
    assert not rig.filter.stop_active


def test_a_jump_without_joints_to_contradict_it_is_a_fault_too():
    rig = Rig(limits(tcp_joints=[]))
    for _ in range(5):
        rig.step((0.60, 0.0, 0.20, 0.0, 0.08))
    rig.now_ns += 10 * MS
    rig.filter.update_robot_state((0.60, 0.0, 0.60, 0.0, 0.08), rig.now_ns)
    decision = rig.filter.check((0.60, 0.0, 0.20, 0.0, 0.08), rig.now_ns - MS, rig.now_ns)
    assert names(decision) == ['robot_state_jump']


def test_a_reading_that_stays_implausible_latches_the_stop_and_a_reset_resumes_there():
    """A robot that really moved latches the stop after state_timeout; the reset resumes there.

    Re-homed encoders, a hand push: readings that agree re-anchor while stopped.
    """
    rig = Rig(limits(tcp_joints=[]), follow=False)
    for _ in range(5):
        rig.step((0.60, 0.0, 0.20, 0.0, 0.08))
    rig.state = (0.60, 0.0, 0.40, 0.0, 0.08)  # 0.2 m higher from now on
    for _ in range(12):
        decision = rig.step((0.60, 0.0, 0.20, 0.0, 0.08))
    assert rig.filter.stop_active and 'not plausible' in rig.filter.latch.cause
    assert decision.verdict == Verdict.STOPPED
    rig.filter.reset_stop('ana', 'encoders re-homed, checked', rig.now_ns)
    resumed = rig.step((0.60, 0.0, 0.40, 0.0, 0.08), age_ms=0)
    assert resumed.command[2] == pytest.approx(0.40)  # from the measured pose, no lunge back


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 0.3), st.integers(20, 150), st.floats(0.0, 1.0))
def test_a_blocked_robot_is_never_led_farther_than_the_bound(follow, ticks, direction):
    """A blocked or slow stage is never led farther than the follow bound.

    The stage moves only part of the way while the proposals run far: no command is farther
    from the measured pose than max_follow_error while the command moves and the at-rest
    bound once it stands, unless it approaches the robot.
    """
    flt = SafetyFilter(LIM)
    auditor = OutputAuditor(LIM)
    now = seeded(flt, HOME, 1_000 * MS)
    robot = list(HOME)
    target = (0.55 + 0.25 * math.cos(6.28 * direction), 0.25 * math.sin(6.28 * direction),
              0.0, 1.0, 0.0)
    for _ in range(ticks):
        now += 10 * MS
        if flt._sent is not None:
            robot = [r + follow * (c - r) for r, c in zip(robot, flt._sent)]
        feed_robot(flt, robot, now)
        flt.supervisor_heartbeat(now)
        decision = flt.check(target, now - MS, now)
        assert auditor.audit(decision.command, now, measured=robot) == [], decision
        assert math.dist(decision.command[:3], robot[:3]) <= LIM.max_follow_error * (1 + 1e-9)
    if follow == 0.0:
        # a stage that does not move: the command runs at most to max_follow_error; there it
        # stops, and stopped, it comes back to the at-rest bound at the rate limit
        for _ in range(40):
            now += 10 * MS
            feed_robot(flt, robot, now)
            flt.supervisor_heartbeat(now)
            decision = flt.check(target, now - MS, now)
            assert auditor.audit(decision.command, now, measured=robot) == [], decision
        assert math.dist(decision.command[:3], robot[:3]) <= AT_REST + 1e-6  # within 1 um
        # and there it stays: a command held at the bound never creeps outward by itself
        for _ in range(50):
            now += 10 * MS
            feed_robot(flt, robot, now)
            flt.supervisor_heartbeat(now)
            decision = flt.check(target, now - MS, now)
            assert math.dist(decision.command[:3], robot[:3]) <= AT_REST + 1e-6
            assert abs(decision.command[3] - robot[3]) <= YAW_AT_REST + 1e-6
        assert not flt.stop_active


@settings(max_examples=300, deadline=None)
@given(st.floats(0.02, 1.0), st.floats(0.0, 1.0),
       st.lists(st.tuples(pose_in_box, st.integers(1, 60)), min_size=1, max_size=6))
def test_a_robot_lagging_in_yaw_alone_never_trips_the_guard(follow, yaw_follow, targets):
    """Position and yaw lag apart, targets change: the filter clamps, never trips its guard.

    A yaw left outside the shrinking yaw region while the position moves inside its own is
    the normal case of a stage that stops turning; it must not latch the software stop.
    """
    flt = SafetyFilter(LIM)
    auditor = OutputAuditor(LIM)
    now = seeded(flt, HOME, 1_000 * MS)
    robot = list(HOME)
    for target, ticks in targets:
        for _ in range(ticks):
            now += 10 * MS
            if flt._sent is not None:
                robot = [r + k * (c - r) for r, c, k in zip(
                    robot, flt._sent, (follow, follow, follow, yaw_follow, 1.0))]
            feed_robot(flt, robot, now)
            flt.supervisor_heartbeat(now)
            decision = flt.check(target, now - MS, now)
            assert not flt.stop_active, flt.latch.cause
            assert auditor.audit(decision.command, now, measured=robot) == [], decision


# ------------------------------------------------------- 5. the fingers above the table
@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 0.085), st.floats(0.0, 0.085), st.floats(0.0, 0.05),
       st.floats(0.3, 1.0))
def test_the_fingertips_never_go_below_their_clearance(start_width, width, z, follow):
    """Commanded down to the table at any opening, closing or opening on the way.

    The fingers' lowest point of a robot following the commands (TCP z less the finger
    depth at its measured opening) never comes nearer the table than finger_clearance: the
    old TCP-only floor let a closed gripper's fingertips 7.9 mm into the table.
    """
    flt = SafetyFilter(LIM)
    auditor = OutputAuditor(LIM)
    robot = [0.55, 0.0, 0.05, 0.0, start_width]
    now = seeded(flt, tuple(robot), 1_000 * MS)
    lowest = math.inf
    for _ in range(150):
        now += 10 * MS
        sent = flt._sent
        robot = [r + follow * (c - r) for r, c in zip(robot, sent)]
        feed_robot(flt, robot, now)
        flt.supervisor_heartbeat(now)
        decision = flt.check((0.55, 0.0, z, 0.0, width), now - MS, now)
        assert auditor.audit(decision.command, now, measured=robot) == [], decision
        lowest = min(lowest, robot[2] - LIM.finger_depth(robot[4]) - LIM.table_height)
    assert not flt.stop_active
    assert lowest >= LIM.finger_clearance - 1e-9, lowest


def test_a_closed_gripper_stops_with_its_fingertips_above_the_table():
    """The issue's case: closed, commanded to the floor: the TCP stays 23.4 mm up."""
    rig = Rig(start=(0.55, 0.0, 0.05, 0.0, 0.0))
    for _ in range(100):
        decision = rig.step((0.55, 0.0, -0.02, 0.0, 0.0))
    assert 'finger_clearance' in names(decision)
    assert decision.command[2] == pytest.approx(
        LIM.finger_clearance + 0.0179 + LIM.servo_position_margin, abs=1e-12)


def test_finger_drop_tables_that_make_no_sense_are_refused():
    for widths, depths in (([], []), ([0.0, 0.04], [0.01]), ([0.04, 0.02], [0.01, 0.01]),
                           ([0.0], [0.5]), ([0.0], [math.nan])):
        with pytest.raises(LimitsError, match='finger_drop'):
            limits(**{'finger_drop.widths': widths, 'finger_drop.depths': depths})


# --------------------------------------------------------------------- 2. joint monitor
@pytest.mark.parametrize('joints, velocities, constraint', [
    (None, None, 'joint_state_stale'),                        # no JointState any more
    ([], [], 'joint_state_missing'),                          # an empty one
    (['stage_x', 'stage_y', 'stage_zz', 'stage_yaw'], [0.0] * 4, 'joint_state_missing'),
    (['x', 'y', 'z', 'yaw'], [0.0] * 4, 'joint_state_missing'),  # renamed
    (JOINTS, [], 'joint_state_missing'),                      # positions without velocity
])
def test_missing_renamed_or_incomplete_joint_states_hold_the_gate(joints, velocities,
                                                                  constraint):
    rig = Rig()
    for _ in range(3):
        rig.step((0.60, 0.0, 0.20, 0.0, 0.08))
    moving = None
    for _ in range(30):
        rig.now_ns += 10 * MS
        if joints is not None:
            rig.filter.update_joint_state(joints, list(rig.filter._sent[:4])[:len(joints)],
                                          velocities, rig.now_ns)
        rig.filter.update_robot_state(rig.filter._sent, rig.now_ns)
        rig.filter.supervisor_heartbeat(rig.now_ns)
        moving = rig.filter.check((0.70, 0.0, 0.20, 0.0, 0.08), rig.now_ns - MS, rig.now_ns)
    assert moving.verdict == Verdict.REJECTED and constraint in names(moving)
    assert moving.violations[0].field in JOINTS
    with pytest.raises(ResetRefusedError, match='joint_state'):
        rig.filter.trigger_stop('ana', 'test', rig.now_ns)
        rig.filter.reset_stop('ana', 'joints?', rig.now_ns)


def test_a_stale_joint_state_holds_the_gate():
    rig = Rig()
    rig.step((0.60, 0.0, 0.20, 0.0, 0.08))
    for _ in range(15):  # robot state keeps coming, joint states stopped
        rig.now_ns += 10 * MS
        rig.filter.update_robot_state(rig.filter._sent, rig.now_ns)
        rig.filter.supervisor_heartbeat(rig.now_ns)
        decision = rig.filter.check((0.70, 0.0, 0.20, 0.0, 0.08), rig.now_ns - MS, rig.now_ns)
    assert names(decision) == ['joint_state_stale']


@pytest.mark.parametrize('value', [[], None, ['stage_x', 'stage_x'], ['']])
def test_the_monitored_joints_cannot_be_emptied(value):
    params = dict(BASE, **{'joint_limits.names': value, 'tcp_joints': []})
    with pytest.raises(LimitsError, match='joint_limits.names'):
        SafetyLimits.from_parameters(params)


# -------------------------------------------------------------------------- 6. hard caps
LOOSENED = [
    ('workspace_min', [-100.0, -100.0, -100.0]), ('workspace_max', [100.0, 100.0, 100.0]),
    ('table_clearance', 0.0), ('table_height', -2.0), ('stop_deceleration', 100.0),
    ('stop_deceleration', 0.1), ('max_cartesian_speed', 5.0), ('max_cartesian_step', 0.1),
    ('max_yaw_rate', 20.0), ('max_gripper_speed', 2.0), ('command_timeout', 10.0),
    ('max_command_age', 10.0), ('state_timeout', 10.0), ('supervisor_timeout', 10.0),
    ('future_tolerance', 1.0), ('max_follow_error', 1.0), ('follow_lag_time', 5.0),
    ('follow_response_time', 1.0), ('max_state_speed', 100.0), ('state_tolerance', 1.0),
    ('joint_limits.max_velocity', [5.0, 0.5, 0.5, 2.0]), ('joint_limit_margin', 2.0),
    ('servo_speed_margin', 0.0), ('servo_speed_margin', 1.0),
    ('servo_position_margin', 0.0), ('servo_position_margin', 0.1),
]


@pytest.mark.parametrize('name, value', LOOSENED)
def test_no_limit_can_be_loosened_past_its_hard_cap(name, value):
    with pytest.raises(LimitsError, match=name.split('.')[-1]):
        limits(**{name: value})


def test_every_numeric_safety_parameter_has_a_cap():
    numeric = [name for name, (kind, _, _) in PARAMETERS.items()
               if kind in ('double', 'double_array')]
    assert numeric and all(PARAMETERS[name][2] is not None for name in numeric)

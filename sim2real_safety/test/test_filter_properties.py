"""Property-based tests over the whole input space: no output is ever unsafe.

Hypothesis drives the filter with arbitrary interleavings of proposals (random, adversarial,
boundary, NaN/Inf, wrong lengths), stamps (future, stale, backwards), clock steps (including
backwards jumps), heartbeats, robot states (a stage that follows its commands with a lag),
glitched robot states, joint states that lack a joint, rename it or carry no velocity,
software stops and resets, and the commissioning mode switched on and off under proposals
from every source (touch-offs below the table clearance among them). An independent auditor
checks every output: finite, inside every limit, within the rate limits of the previous
output (or pulled toward the robot), within the follow-error bound of the latest plausible
measured pose, and frozen during the software stop; and every output lies within the follow
bound of the robot's true pose, plus what a glitch inside the plausibility tolerance can
move it.
"""
import math

from hypothesis import given, HealthCheck, settings
from hypothesis import strategies as st
from safety_rig import feed_robot, HOME, JOINTS, limits, MS, seeded

from sim2real_safety.audit import OutputAuditor
from sim2real_safety.filter import SafetyFilter
from sim2real_safety.limits import Verdict
from sim2real_safety.software_stop import ResetRefusedError

LIM = limits()
LOWER, UPPER = LIM.lower, LIM.upper

special = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324])
wide = st.floats(allow_nan=True, allow_infinity=True)
near = st.floats(-2.0, 2.0)


def boundary(i):
    return st.sampled_from([LOWER[i], UPPER[i], math.nextafter(LOWER[i], -1),
                            math.nextafter(UPPER[i], 2), LOWER[i] - 1e-9, UPPER[i] + 1e-9])


value = st.one_of(near, wide, special)
proposal = st.one_of(
    st.tuples(*[st.one_of(value, boundary(i)) for i in range(5)]),
    st.lists(value, max_size=8),
    st.none(),
)
# What a touch-off proposes: the closed gripper near and below the autonomous floor.
low_proposal = st.tuples(st.floats(0.3, 0.8), st.floats(-0.25, 0.25), st.floats(-0.05, 0.06),
                         st.floats(-0.1, 0.1), st.floats(0.0, 0.085))
source = st.sampled_from([None, 0, 2, 6, 7, 8, 8, 8, 99])
event = st.one_of(
    st.tuples(st.just('propose'), proposal, st.integers(-20, 200)),   # stamp age in ms
    st.tuples(st.just('propose_from'), st.one_of(proposal, low_proposal),
              st.integers(-20, 200), source),
    st.tuples(st.just('commission'), st.booleans()),
    st.tuples(st.just('time'), st.integers(-3000, 300)),                # clock step in ms
    st.tuples(st.just('tick'), st.integers(0, 50)),
    st.tuples(st.just('heartbeat')),
    st.tuples(st.just('state'), st.floats(0.0, 1.0)),       # the stage follows this far
    st.tuples(st.just('joints'), st.sampled_from(['missing', 'renamed', 'no_velocity',
                                                  'empty'])),
    st.tuples(st.just('glitch'), st.one_of(st.tuples(*[st.one_of(near, special)] * 5),
                                          st.lists(near, max_size=7))),
    st.tuples(st.just('stop')),
    st.tuples(st.just('reset'), st.sampled_from(['', 'ana']), st.sampled_from(['', 'ok'])),
)


reaction_sets = st.fixed_dictionaries({
    f'reaction.{key}': st.sampled_from(['scale', 'clamp', 'reject'])
    for key in ('workspace', 'table_clearance', 'yaw_range', 'gripper_width_range',
                'cartesian_speed', 'cartesian_step', 'yaw_rate', 'gripper_speed')})


# First robot states: anywhere, inside or outside the box, near its faces, non-finite.
initial_state = st.one_of(
    st.just(HOME),
    st.tuples(st.floats(-0.5, 1.5), st.floats(-1.0, 1.0), st.floats(-0.5, 1.0),
              st.floats(-4.0, 4.0), st.floats(-0.05, 0.2)),
    st.tuples(*[st.one_of(boundary(i), st.floats(LOWER[i] - 0.004, UPPER[i] + 0.004))
                for i in range(5)]),
    st.tuples(*[st.one_of(near, special)] * 5),
)


def run(events, lim=LIM, start=HOME):
    flt = SafetyFilter(lim)
    auditor = OutputAuditor(lim)
    now = 10_000 * MS
    finite = all(map(math.isfinite, start))
    truth = list(start) if finite else list(HOME)  # where the stage really is
    truth_ns = now
    if finite:
        now = seeded(flt, start, now)
    else:
        flt.update_robot_state(start, now)
    flt.supervisor_heartbeat(now)
    outputs = 0
    for ev in events:
        kind = ev[0]
        decision = None
        if kind == 'propose':
            now += 10 * MS
            decision = flt.check(ev[1], now - ev[2] * MS, now)
        elif kind == 'propose_from':
            now += 10 * MS
            decision = flt.check(ev[1], now - ev[2] * MS, now, source=ev[3])
        elif kind == 'commission':
            flt.set_commissioning(ev[1])
        elif kind == 'time':
            now = max(0, now + ev[1] * MS)
        elif kind == 'tick':
            now += ev[1] * MS
            decision = flt.tick(now)
        elif kind == 'heartbeat':
            flt.supervisor_heartbeat(now)
        elif kind == 'state':
            # the stage moves part of the way to its last command (a lag), and reports it
            if flt._sent is not None:
                truth = [t + ev[1] * (c - t) for t, c in zip(truth, flt._sent)]
            truth_ns = now
            feed_robot(flt, truth, now)
        elif kind == 'joints':
            names = {'missing': JOINTS[:2] + JOINTS[3:], 'renamed': ['x'] + JOINTS[1:],
                     'no_velocity': JOINTS, 'empty': []}[ev[1]]
            velocities = [] if ev[1] == 'no_velocity' else [0.0] * len(names)
            flt.update_joint_state(names, truth[:len(names)], velocities, now)
        elif kind == 'glitch':
            flt.update_robot_state(ev[1], now)
        elif kind == 'stop':
            flt.trigger_stop('hypothesis', 'random stop', now)
        elif kind == 'reset':
            try:
                flt.reset_stop(ev[1], ev[2], now)
                auditor.previous = None  # a reset starts from the measured pose, as start-up
            except ResetRefusedError:
                pass
        if decision is not None and decision.command is None:
            # nothing sent: only while no measured state could seed a safe output
            assert flt._sent is None and decision.verdict == Verdict.REJECTED
        elif decision is not None:
            stopped = flt._stop_pose if flt.stop_active else None
            problems = auditor.audit(decision.command, now, stopped, flt._measured,
                                     commissioning=flt.commissioning)
            assert problems == [], (decision, problems)
            if flt.stop_active:
                assert decision.verdict == Verdict.STOPPED
            # and near the stage itself: a reading is plausible within state_tolerance plus
            # max_state_speed x its age of the last plausible one
            slack = lim.state_tolerance + lim.max_state_speed * max(now - truth_ns, 0) / 1e9
            assert math.dist(decision.command[:3], truth[:3]) <= (
                lim.max_follow_error + 2 * slack + _box_gap(lim, truth, flt.commissioning)), (
                    decision, truth)
            outputs += 1
    assert_guard_never_fired(flt)
    return outputs


def _box_gap(lim, pose, commissioning=False):
    """How far ``pose`` lies outside the workspace box (m), its commissioning floor or not."""
    lower = (*lim.lower[:2], lim.commissioning_floor if commissioning else lim.lower[2])
    return math.dist(pose[:3], [min(max(v, lo), hi)
                                for v, lo, hi in zip(pose[:3], lower, lim.upper)])


def assert_guard_never_fired(flt):
    """The final guard is a backstop: the checks before it must already be right."""
    assert not [e for e in flt.latch.events if 'internal guard' in e.reason]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, min_size=1, max_size=120), initial_state)
def test_no_sequence_of_inputs_gives_an_unsafe_output(events, start):
    run(events, start=start)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reaction_sets, st.lists(event, min_size=1, max_size=80), initial_state)
def test_every_reaction_configuration_is_safe(reactions, events, start):
    run(events, limits(**reactions), start)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 4), st.sampled_from([-1, 1]), st.floats(1e-6, 0.02),
       st.integers(50, 400), reaction_sets)
def test_creeping_toward_a_limit_never_crosses_it(field, side, creep, ticks, reactions):
    """Each proposal is a little beyond the last output: the filter must stop at the limit."""
    lim = limits(**reactions)
    flt = SafetyFilter(lim)
    auditor = OutputAuditor(lim)
    now = seeded(flt, HOME, 10_000 * MS)
    current = list(HOME)
    for _ in range(ticks):
        now += 10 * MS
        flt.supervisor_heartbeat(now)
        feed_robot(flt, current, now)
        target = list(current)
        target[field] += side * creep
        decision = flt.check(target, now - MS, now)
        assert auditor.audit(decision.command, now) == []
        current = list(decision.command)
    assert_guard_never_fired(flt)
    assert LOWER[field] <= current[field] <= UPPER[field]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(proposal, st.integers(-20, 200)), min_size=1, max_size=60))
def test_during_a_software_stop_every_output_is_the_hold(proposals):
    flt = SafetyFilter(LIM)
    now = seeded(flt, HOME, 10_000 * MS)
    for _ in range(5):
        now += 10 * MS
        flt.supervisor_heartbeat(now)
        feed_robot(flt, HOME, now)
        held = flt.check((0.7, 0.1, 0.3, 0.5, 0.02), now - MS, now).command
    flt.trigger_stop('hypothesis', 'stop', now)
    for prop, age in proposals:
        now += 10 * MS
        flt.supervisor_heartbeat(now)
        decision = flt.check(prop, now - age * MS, now)
        assert decision.verdict == Verdict.STOPPED
        assert decision.command == held
        tick = flt.tick(now + 20 * MS)
        assert tick is None or tick.command == held

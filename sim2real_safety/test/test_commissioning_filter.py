"""The safety filter's commissioning bounds: below the table clearance, slowly, only then.

A touch-off presses the closed fingertips onto the table, below the floor autonomy keeps. The
filter allows it only while the supervisor says a commissioning runs, only from the
commissioning source, no lower than ``commissioning_floor`` and no faster than
``commissioning_speed`` near the table; afterwards the command only rises back.
"""
import math

from hypothesis import given, HealthCheck, settings
from hypothesis import strategies as st
import pytest
from safety_rig import BASE, feed_robot, HOME, limits, MS, seeded

from sim2real_safety.audit import OutputAuditor
from sim2real_safety.filter import SafetyFilter, SOURCE_COMMISSIONING
from sim2real_safety.limits import LimitsError, PARAMETERS, Verdict

POLICY = 0
LIM = limits()
ABOVE = (0.36, 0.0, 0.05, 0.0, 0.0)   # the touch-off's start, closed gripper


class Cell:
    """A filter, its auditor and a stage that reaches each command within one tick."""

    def __init__(self, lim=LIM, start=ABOVE, commissioning=True):
        self.filter = SafetyFilter(lim)
        self.auditor = OutputAuditor(lim)
        self.now = seeded(self.filter, start, 1_000 * MS)
        self.truth = start
        self.filter.set_commissioning(commissioning)
        self.outputs = []

    def propose(self, target, source=SOURCE_COMMISSIONING, table=None):
        """One tick: the stage reports where it is (stopped by a table at ``table``)."""
        self.now += 10 * MS
        truth = self.filter._sent or self.truth   # not commanded yet: where it started
        if table is not None and truth[2] < table:
            truth = (*truth[:2], table, *truth[3:])
        self.truth = truth
        feed_robot(self.filter, truth, self.now)
        self.filter.supervisor_heartbeat(self.now)
        decision = self.filter.check(tuple(target), self.now - MS, self.now, source=source)
        if decision.command is None:
            # a robot outside the limits (below the floor, not commissioning) is not commanded
            assert decision.verdict == Verdict.REJECTED and self.filter._sent is None
            return decision
        problems = self.auditor.audit(decision.command, self.now, None, self.filter._measured,
                                      commissioning=self.filter.commissioning)
        assert problems == [], (decision, problems)
        self.outputs.append(decision)
        return decision

    def descend(self, to_z, speed=0.02, source=SOURCE_COMMISSIONING, table=None):
        z = self.filter._sent[2]
        while z > to_z:
            z = max(to_z, z - speed * 0.01)
            self.propose((ABOVE[0], ABOVE[1], z, 0.0, 0.0), source, table)


def test_the_touch_off_reaches_the_commissioning_floor_and_no_lower():
    cell = Cell()
    cell.descend(-0.05)
    for _ in range(100):
        cell.propose((ABOVE[0], ABOVE[1], -0.05, 0.0, 0.0))
    lowest = min(d.command[2] for d in cell.outputs)
    assert lowest == pytest.approx(LIM.commissioning_floor, abs=1e-9)
    assert LIM.commissioning_floor < LIM.tcp_floor(0.0) - 0.02   # well under autonomy's floor


def test_without_the_mode_the_same_touch_off_stops_at_the_autonomous_floor():
    cell = Cell(commissioning=False)
    cell.descend(-0.05)
    for _ in range(50):
        cell.propose((ABOVE[0], ABOVE[1], -0.05, 0.0, 0.0))
    assert min(d.command[2] for d in cell.outputs) == pytest.approx(LIM.tcp_floor(0.0), abs=1e-9)


def test_near_the_table_a_fast_commissioning_command_moves_at_the_commissioning_speed():
    cell = Cell()
    cell.descend(LIM.floor_top + 0.001, speed=0.2)   # fast above the band: the normal limit
    fast = [d for d in cell.outputs if d.command[2] > LIM.floor_top + 0.004]
    steps = [math.dist(a.command[:3], b.command[:3]) for a, b in zip(fast, fast[1:])]
    assert max(steps) > 0.0015
    before = len(cell.outputs)
    cell.descend(-0.05, speed=0.2)
    low = cell.outputs[before - 1:]
    steps = [math.dist(a.command[:3], b.command[:3]) for a, b in zip(low, low[1:])]
    assert max(steps) <= LIM.commissioning_speed * 0.01 * (1 + 1e-9)


def test_during_commissioning_every_other_source_is_held():
    cell = Cell()
    for source in (POLICY, 2, 5, 6, None):
        decision = cell.propose((0.5, 0.0, 0.2, 0.0, 0.08), source=source)
        assert decision.verdict == Verdict.REJECTED
        assert decision.violations[0].constraint == 'commissioning_source_only'
    assert cell.propose((0.36, 0.0, 0.04, 0.0, 0.0)).verdict != Verdict.REJECTED


def test_after_commissioning_the_command_only_rises_back_to_the_floor():
    cell = Cell()
    cell.descend(0.0)
    low = cell.filter._sent[2]
    assert low < LIM.tcp_floor(0.0)
    cell.filter.set_commissioning(False)
    heights = [low]
    for _ in range(200):   # a policy that asks to stay low: it may not
        heights.append(cell.propose((ABOVE[0], ABOVE[1], -0.05, 0.0, 0.0), source=POLICY)
                       .command[2])
    assert all(b >= a - 1e-12 for a, b in zip(heights, heights[1:]))
    assert heights[-1] == pytest.approx(LIM.tcp_floor(0.0), abs=1e-9)
    assert not [e for e in cell.filter.latch.events if 'internal guard' in e.reason]


def test_the_software_stop_freezes_a_touch_off():
    cell = Cell()
    cell.descend(0.01)
    cell.filter.trigger_stop('operator', 'test', cell.now)
    frozen = cell.filter._sent
    for _ in range(20):
        decision = cell.propose((ABOVE[0], ABOVE[1], -0.05, 0.0, 0.0))
        assert decision.verdict == Verdict.STOPPED and decision.command == frozen


def test_a_touch_off_on_a_table_stops_with_the_table_and_never_runs_far_ahead():
    # the stage rests on a table (TCP at 0.02 m, above the commissioning floor) while the
    # command goes on down: the command leads it by the follow bound of a command moving at
    # the commissioning speed, never by max_follow_error
    cell = Cell()
    table = 0.02
    cell.descend(-0.05, table=table)
    for _ in range(100):
        cell.propose((ABOVE[0], ABOVE[1], -0.05, 0.0, 0.0), table=table)
    lowest = min(d.command[2] for d in cell.outputs)
    lead = (LIM.max_cartesian_speed * LIM.follow_response_time
            + LIM.commissioning_speed * LIM.follow_lag_time)
    assert lead < LIM.max_follow_error / 3
    assert table - lead - 1e-9 <= lowest < table - 0.004   # low enough to see the contact


@pytest.mark.parametrize('name, value', [('commissioning_depth', 0.051),
                                         ('commissioning_depth', -0.001),
                                         ('commissioning_speed', 0.051),
                                         ('commissioning_speed', 0.0),
                                         ('commissioning_speed', math.nan)])
def test_commissioning_bounds_past_their_hard_caps_are_refused(name, value):
    with pytest.raises(LimitsError, match=name):
        limits(**{name: value})


@settings(max_examples=200, deadline=None)
@given(st.floats(*PARAMETERS['commissioning_depth'][2]),
       st.floats(-0.2, 0.2), st.floats(-0.05, 0.1))
def test_the_commissioning_floor_never_leaves_the_box(depth, table, box_floor):
    params = dict(BASE, commissioning_depth=depth, table_height=table,
                  workspace_min=[0.30, -0.25, box_floor])
    try:
        lim = limits(**{k: v for k, v in params.items() if k not in BASE or BASE[k] != v})
    except LimitsError:
        return  # an inconsistent box: refused at start, nothing to check
    assert lim.workspace_min[2] <= lim.commissioning_floor <= lim.floor_top
    assert lim.floor_top - lim.commissioning_floor <= depth + 1e-12


low_target = st.tuples(st.floats(0.25, 0.85), st.floats(-0.3, 0.3), st.floats(-0.1, 0.08),
                       st.floats(-0.2, 0.2), st.floats(-0.01, 0.1))
step = st.one_of(
    st.tuples(st.just('propose'), low_target, st.sampled_from([SOURCE_COMMISSIONING] * 4
                                                               + [POLICY, 6, None])),
    st.tuples(st.just('mode'), st.booleans()),
    st.tuples(st.just('table'), st.one_of(st.none(), st.floats(-0.01, 0.05))),
    st.tuples(st.just('stop')),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=150), st.booleans(),
       st.one_of(st.just(HOME), st.tuples(st.floats(0.3, 0.8), st.floats(-0.25, 0.25),
                                          st.floats(0.0, 0.05), st.just(0.0), st.just(0.0))))
def test_no_commissioning_sequence_gives_an_unsafe_output(steps, start_commissioning, start):
    """Every output audited, during and after commissioning, from near the table or high up.

    No command below the commissioning floor.
    """
    cell = Cell(start=start, commissioning=start_commissioning)
    table = None
    for kind, *args in steps:
        if kind == 'propose':
            cell.propose(args[0], args[1], table)
        elif kind == 'mode':
            cell.filter.set_commissioning(args[0])
        elif kind == 'table':
            table = args[0]
        else:
            cell.filter.trigger_stop('hypothesis', 'random stop', cell.now)
    assert not [e for e in cell.filter.latch.events if 'internal guard' in e.reason]
    assert all(d.command[2] >= LIM.commissioning_floor - 1e-12 for d in cell.outputs
               if d.command is not None)

"""Regression tests for what an independent adversarial test broke (issue 17, F1-F3, F8).

Each test failed before its fix: the filter seeded outside the box (F1), a reset or trigger
whose state file could not be written opened the latch or crashed (F2), a malformed state file
crashed the latch (F3), proposals in another frame or from an unknown source passed (F8), and
invisible operator names were accepted.
"""
import json
import os

import pytest
from safety_rig import feed_robot, HOME, limits, MS, Rig, seeded

from sim2real_safety.audit import OutputAuditor
from sim2real_safety.filter import SafetyFilter
from sim2real_safety.limits import Verdict
from sim2real_safety.software_stop import ResetRefusedError, SoftwareStopLatch
from sim2real_safety.supervisor import AcknowledgeRefusedError, Supervisor, SupervisorConfig

LIM = limits()


def _healthy_filter(start, latch=None):
    flt = SafetyFilter(LIM, latch)
    return flt, seeded(flt, start, 1_000 * MS)


# ----------------------------------------------------------------------------------- F1
def test_a_first_state_outside_the_box_is_never_commanded():
    """A robot measured 20 mm outside the box is not commanded; back home, it is.

    It was jogged there (its joints agree); measured at home three times, it is commanded.
    """
    flt, now = _healthy_filter((0.82, 0.0, 0.2, 0.0, 0.08))
    auditor = OutputAuditor(LIM)
    decision = flt.check((0.55, 0.0, 0.25, 0.0, 0.08), now - MS, now)
    assert decision.command is None and decision.verdict == Verdict.REJECTED
    assert decision.violations[0].constraint == 'robot_outside_limits'
    assert flt.tick(now + 50 * MS) is None  # nothing to hold: no command at all
    for reading in range(100):  # the measured pose and every proposal are at home from now on
        now += 10 * MS
        feed_robot(flt, (0.55, 0.0, 0.25, 0.0, 0.08), now)
        flt.supervisor_heartbeat(now)
        decision = flt.check((0.55, 0.0, 0.25, 0.0, 0.08), now - MS, now)
        if reading < 2:  # three agreeing readings at home before the first command
            assert decision.command is None
            continue
        assert auditor.audit(decision.command, now) == []
    assert decision.command == (0.55, 0.0, 0.25, 0.0, 0.08)
    assert decision.verdict == Verdict.PASS


def test_a_state_just_outside_the_box_is_brought_in_by_at_most_one_step():
    flt, now = _healthy_filter((0.801, 0.0, 0.2, 0.0, 0.0851))
    decision = flt.check((0.801, 0.0, 0.2, 0.0, 0.0851), now - MS, now + 10 * MS)
    assert decision.command == (0.80, 0.0, 0.2, 0.0, 0.085)
    assert OutputAuditor(LIM).audit(decision.command, now) == []


def test_the_stop_hold_of_a_robot_outside_the_box_is_no_command():
    latch = SoftwareStopLatch()
    latch.trigger('ana', 'test', 0)
    flt, now = _healthy_filter((0.55, 0.0, -0.3, 0.0, 0.08), latch)
    assert flt.check(HOME, now - MS, now).command is None
    assert flt.tick(now + 20 * MS) is None


# ----------------------------------------------------------------------------------- F2
def _reset_fails_closed(latch):
    assert latch.active
    with pytest.raises(ResetRefusedError, match='cannot be written|unhealthy'):
        latch.reset('ana', 'cell checked', 5)
    assert latch.active


def test_a_stop_file_that_is_a_directory_starts_latched_and_never_resets(tmp_path):
    (tmp_path / 'stop').mkdir()
    latch = SoftwareStopLatch(tmp_path / 'stop')
    assert latch.active and 'unreadable' in latch.cause
    _reset_fails_closed(latch)


def test_a_reset_that_cannot_be_written_stays_latched_and_moves_nothing(tmp_path):
    path = tmp_path / 'stop.json'
    rig = Rig(persist_path=path)
    for _ in range(10):
        rig.step((0.6, 0.0, 0.2, 0.0, 0.08))
    rig.filter.trigger_stop('ana', 'cup in the cell', rig.now_ns)
    held = rig.step((0.6, 0.0, 0.2, 0.0, 0.08)).command
    path.unlink()
    path.mkdir()  # the file became a directory: nothing can be written there now
    with pytest.raises(ResetRefusedError, match='cannot be written'):
        rig.filter.reset_stop('ana', 'cell checked', rig.now_ns)
    assert rig.filter.stop_active
    # a proposal stamped 1 ms before the attempted reset must not move the robot
    decision = rig.step((0.7, 0.0, 0.2, 0.0, 0.08), age_ms=1)
    assert decision.verdict == Verdict.STOPPED and decision.command == held


def test_a_trigger_that_cannot_be_written_latches_anyway_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / 'stop.json'
    latch = SoftwareStopLatch(path)
    assert not latch.active and json.loads(path.read_text())['active'] is False
    os.chmod(tmp_path, 0o500)
    try:
        if os.access(tmp_path, os.W_OK):  # root ignores the mode bits: use a directory
            os.chmod(tmp_path, 0o700)
            path.unlink()
            path.mkdir()
        latch.trigger('ana', 'cup in the cell', 1)
    finally:
        os.chmod(tmp_path, 0o700)
    assert latch.active and 'not persisted' in latch.cause and latch.persist_error
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.stop-')]


def _under_a_file(d):
    (d / 'file').write_text('x')
    return d / 'file' / 'stop.json'


def _dangling(d):
    os.symlink(d / 'missing' / 'nowhere', d / 'stop.json')
    return d / 'stop.json'


def _loop(d):
    os.symlink(d / 'stop.json', d / 'stop.json')
    return d / 'stop.json'


@pytest.mark.parametrize('make', [_under_a_file, _dangling, _loop])
def test_a_stop_path_that_cannot_hold_the_state_starts_latched(tmp_path, make):
    path = make(tmp_path)
    latch = SoftwareStopLatch(path)
    assert latch.active
    # A reset either cannot be persisted (refused, still latched) or replaces the bad link
    # with a real state file: then what is on disk is what is in memory.
    try:
        latch.reset('ana', 'cell checked', 5)
    except ResetRefusedError:
        assert latch.active
    else:
        assert not SoftwareStopLatch(path).active


# ----------------------------------------------------------------------------------- F3
@pytest.mark.parametrize('text', [
    '{"active": false, "since_ns": 1e400}', '{"active": false, "since_ns": -5}',
    '{"active": false, "since_ns": "soon"}', '{"active": false, "events": [{"kind": 1}]}',
    '{"active": false, "events": 7}', '[]', 'null', '{"active": 0}', '\x00\xff',
])
def test_a_malformed_stop_file_restores_a_latched_stop(tmp_path, text):
    path = tmp_path / 'stop.json'
    path.write_text(text)
    latch = SoftwareStopLatch(path)
    assert latch.active and 'unreadable' in latch.cause


# ------------------------------------------------------------------------------ names
@pytest.mark.parametrize('name', ['', ' ', '\u200b', '\x00', '\x1b[2J', '--', 'ana\x00'])
def test_resets_and_acknowledgements_need_a_visible_name(name):
    latch = SoftwareStopLatch()
    latch.trigger('ana', 'test', 0)
    with pytest.raises(ResetRefusedError):
        latch.reset(name, 'cell checked', 1)
    assert latch.active
    with pytest.raises(ResetRefusedError):
        latch.reset('ana', name, 1)
    supervisor = Supervisor(SupervisorConfig(), start_ns=0)
    with pytest.raises(AcknowledgeRefusedError, match='operator name'):
        supervisor.acknowledge(name, 'ok', 1)


# ----------------------------------------------------------------------------------- F8
@pytest.mark.parametrize('frame_id, source', [('tool0', 0), ('', 0), ('base_link', 255),
                                              ('base_link', 7)])
def test_proposals_in_another_frame_or_from_no_known_source_are_held(frame_id, source):
    rig = Rig()
    for _ in range(5):
        good = rig.step((0.6, 0.0, 0.2, 0.0, 0.08)).command
    rig.now_ns += 10 * MS
    rig.feed()
    decision = rig.filter.check((0.7, 0.1, 0.3, 0.5, 0.02), rig.now_ns - MS, rig.now_ns,
                                frame_id=frame_id, source=source)
    assert decision.verdict == Verdict.REJECTED
    assert decision.violations[0].constraint in ('wrong_frame', 'unknown_source')
    assert max(abs(a - b) for a, b in zip(decision.command, good)) < 0.004

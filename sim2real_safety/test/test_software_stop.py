"""The software stop: latched, frozen output, explicit reset only, survives a restart."""
import json

import pytest
from safety_rig import HOME, limits, MS, Rig, seeded

from sim2real_safety.filter import SafetyFilter
from sim2real_safety.limits import Verdict
from sim2real_safety.software_stop import ResetRefusedError, SoftwareStopLatch


def _moving(rig, ticks=20):
    for _ in range(ticks):
        decision = rig.step((0.79, 0.0, 0.20, 0.0, 0.08))
    return decision.command


def test_stop_freezes_at_once_and_no_command_clears_it():
    rig = Rig()
    last = _moving(rig)
    rig.filter.trigger_stop('operator console', 'cup in the workspace', rig.now_ns)
    proposals = [HOME, (0.79, 0.0, 0.2, 0.0, 0.08), (float('nan'),) * 5, None, [],
                 (0.3, -0.25, 0.01, 0.0, 0.0)]
    for proposal in proposals * 20:
        decision = rig.step(proposal)
        assert decision.verdict == Verdict.STOPPED
        assert decision.command == last
    assert rig.tick(dt_ms=200).command == last
    assert rig.filter.stop_active
    assert 'cup in the workspace (by operator console)' == rig.filter.latch.cause


@pytest.mark.parametrize('operator, reason, message', [
    ('', 'checked the cell', 'an operator name is required'),
    ('   ', 'checked the cell', 'an operator name is required'),
    ('ana', '', 'a reason is required'),
    (None, None, 'an operator name is required; a reason is required'),
])
def test_reset_needs_operator_and_reason(operator, reason, message):
    rig = Rig()
    rig.filter.trigger_stop('test', 'drill', rig.now_ns)
    with pytest.raises(ResetRefusedError, match=message):
        rig.filter.reset_stop(operator, reason, rig.now_ns)
    assert rig.filter.stop_active
    assert rig.filter.latch.events[-1].kind == 'reset_refused'


def test_reset_refused_while_an_input_is_unhealthy():
    rig = Rig()
    rig.filter.trigger_stop('test', 'drill', rig.now_ns)
    rig.now_ns += 600 * MS  # no heartbeat, no state for 600 ms
    with pytest.raises(ResetRefusedError, match='inputs not healthy: robot state stale.*'
                                                'supervisor heartbeat silent'):
        rig.filter.reset_stop('ana', 'checked the cell', rig.now_ns)
    rig.feed()
    rig.filter.reset_stop('ana', 'checked the cell', rig.now_ns)
    assert not rig.filter.stop_active
    kinds = [e.kind for e in rig.filter.latch.events]
    assert kinds == ['trigger', 'reset_refused', 'reset']
    assert rig.filter.latch.events[-1].who == 'ana'


def test_motion_resumes_only_on_a_command_newer_than_the_reset():
    rig = Rig()
    last = _moving(rig)
    rig.filter.trigger_stop('test', 'drill', rig.now_ns)
    rig.step(HOME)
    rig.filter.reset_stop('ana', 'checked the cell', rig.now_ns)
    stale = rig.filter.check((0.79, 0.0, 0.2, 0.0, 0.08), rig.now_ns - 1, rig.now_ns + MS)
    assert stale.verdict == Verdict.REJECTED
    assert [v.constraint for v in stale.violations] == ['awaiting_new_command']
    assert stale.command == last
    fresh = rig.step((0.79, 0.0, 0.2, 0.0, 0.08))
    assert fresh.verdict == Verdict.SCALED and fresh.command[0] > last[0]


def test_stop_survives_a_restart(tmp_path):
    state_file = tmp_path / 'stop.json'
    rig = Rig(persist_path=state_file)
    rig.filter.trigger_stop('safety', 'joint limit', rig.now_ns)
    # a new process: new latch and filter from the same file
    restarted = Rig(persist_path=state_file)
    assert restarted.filter.stop_active
    assert restarted.step(HOME).verdict == Verdict.STOPPED
    assert 'joint limit' in restarted.filter.latch.cause
    assert [e.kind for e in restarted.filter.latch.events] == ['trigger', 'restored']
    restarted.filter.reset_stop('ana', 'limit switch replaced', restarted.now_ns)
    again = Rig(persist_path=state_file)
    assert not again.filter.stop_active
    assert json.loads(state_file.read_text())['active'] is False


@pytest.mark.parametrize('content', ['{not json', '{"active": "no"}', '[]', ''])
def test_unreadable_persisted_state_fails_closed(tmp_path, content):
    state_file = tmp_path / 'stop.json'
    state_file.write_text(content)
    latch = SoftwareStopLatch(state_file)
    assert latch.active and 'unreadable' in latch.cause
    flt = SafetyFilter(limits(), latch)
    now = seeded(flt, HOME, 0)
    assert flt.check(HOME, now, now + MS).verdict == Verdict.STOPPED


def test_non_finite_robot_state_latches_the_stop():
    rig = Rig()
    rig.filter.update_robot_state((0.5, float('nan'), 0.2, 0.0, 0.08), rig.now_ns)
    assert rig.filter.stop_active
    assert 'robot state malformed or non-finite' in rig.filter.latch.cause


def test_a_forced_tick_publishes_the_stop_hold_at_once_even_right_after_an_output():
    rig = Rig()
    last = _moving(rig)
    assert rig.filter.tick(rig.now_ns) is None           # an output was just sent
    rig.filter.trigger_stop('operator console', 'cup in the workspace', rig.now_ns)
    decision = rig.filter.tick(rig.now_ns, force=True)
    assert decision.verdict == Verdict.STOPPED and decision.command == last


# A trigger on a full disk (issue 31, finding 3): the write fails with EFBIG past a file-size
# limit of 0 bytes, the way a full disk fails it with ENOSPC; a real file system, no mock.
FULL_DISK = """
import resource, signal, sys
from sim2real_safety.software_stop import SoftwareStopLatch
latch = SoftwareStopLatch(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
latch.trigger('ana', 'cup in the cell', 5)
print(latch.active, bool(latch.persist_error))
"""


def test_a_stop_triggered_on_a_full_disk_survives_a_restart(tmp_path):
    import subprocess
    import sys
    path = tmp_path / 'stop.json'
    done = subprocess.run([sys.executable, '-c', FULL_DISK, str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ['True', 'True']  # latched, and the failed write reported
    restarted = SoftwareStopLatch(path)
    assert restarted.active and 'could not be written' in restarted.cause
    with pytest.raises(ResetRefusedError):
        restarted.reset('', 'no name', 10)
    restarted.reset('ana', 'cell checked', 10)
    assert (tmp_path / 'stop.json.latched').is_file()  # re-armed before the latch opened
    assert not SoftwareStopLatch(path).active


def test_an_unlatched_state_without_its_write_ahead_file_restores_latched(tmp_path):
    path = tmp_path / 'stop.json'
    SoftwareStopLatch(path)
    (tmp_path / 'stop.json.latched').unlink()
    latch = SoftwareStopLatch(path)
    assert latch.active and 'write-ahead' in latch.cause


def test_a_reset_that_cannot_re_arm_stays_latched(tmp_path):
    path = tmp_path / 'stop.json'
    latch = SoftwareStopLatch(path)
    latch.trigger('ana', 'test', 1)
    armed = tmp_path / 'stop.json.latched'
    armed.unlink()
    armed.mkdir()  # nothing can be written there
    with pytest.raises(ResetRefusedError, match='cannot be written'):
        latch.reset('ana', 'checked', 2)
    assert latch.active and SoftwareStopLatch(path).active

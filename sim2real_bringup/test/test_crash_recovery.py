"""A recording killed with SIGKILL is recovered with all but at most its last second."""
import signal
import subprocess
import sys
import textwrap

import pytest

from sim2real_bringup.bag import BagError, BagRecorder, custom_data, read_bag, recover_bag
from sim2real_bringup.runtime import Graph, Scheduler
from sim2real_bringup.scenarios import synthetic_traffic
from sim2real_bringup.topics import qos_map

KILL_AT = 5.37  # s of recorded time


def test_sigkilled_recording_recovers_all_but_the_last_second(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal
        from sim2real_bringup.bag import BagRecorder
        from sim2real_bringup.runtime import Graph, Scheduler
        from sim2real_bringup.scenarios import synthetic_traffic
        from sim2real_bringup.topics import qos_map
        sched = Scheduler()
        graph = Graph(sched)
        graph.custom_data['sim2real.at_start'] = 'kept'
        BagRecorder({str(tmp_path / 'killed')!r}, qos=qos_map()).attach(graph)
        synthetic_traffic(graph, sched, seed=3)
        sched.run_for(1.0)
        graph.custom_data['sim2real.during_the_run'] = 'kept too'  # a calibration, say
        sched.run_for({KILL_AT} - 1.0)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with pytest.raises(BagError, match='never closed'):
        list(read_bag(tmp_path / 'killed'))

    recovered = recover_bag(tmp_path / 'killed')
    got = [(m.topic, m.time_ns, m.raw) for m in read_bag(recovered)]
    # the run's custom data (calibrations, clock kind, digests) survives the kill (issue 31)
    kept = custom_data(recovered)
    assert kept['sim2real.at_start'] == 'kept'
    assert kept['sim2real.during_the_run'] == 'kept too'

    # the same run, closed cleanly, is the reference
    from sim2real_bringup.bag import BagRecorder
    sched = Scheduler()
    graph = Graph(sched)
    with BagRecorder(tmp_path / 'clean', qos=qos_map()).attach(graph):
        synthetic_traffic(graph, sched, seed=3)
        sched.run_for(KILL_AT)
    clean = [(m.topic, m.time_ns, m.raw) for m in read_bag(tmp_path / 'clean')]
    assert set(got) <= set(clean)
    kept_until = (KILL_AT - 1.0) * 1e9
    assert [m for m in clean if m[1] <= kept_until] == [m for m in got if m[1] <= kept_until]
    assert len(got) < len(clean)  # the unflushed tail really was lost
    with pytest.raises(BagError, match='closed cleanly'):
        recover_bag(tmp_path / 'clean')


def _recorded(path, seconds=4.0):
    sched = Scheduler()
    graph = Graph(sched)
    with BagRecorder(path, qos=qos_map()).attach(graph):
        synthetic_traffic(graph, sched, seed=5)
        sched.run_for(seconds)
    return path


@pytest.mark.parametrize('fraction', [0.35, 0.8])
def test_a_closed_bag_cut_short_later_is_recovered_up_to_its_last_complete_message(
        tmp_path, fraction, capsys):
    """Issue 17 F10: a closed bag whose .mcap was truncated afterwards could not be recovered."""
    import shutil

    from sim2real_bringup import cli

    clean = _recorded(tmp_path / 'clean')
    reference = [(m.topic, m.time_ns, m.raw) for m in read_bag(clean)]
    whole = next(clean.glob('*.mcap')).read_bytes()
    cut = int(len(whole) * fraction)
    damaged = tmp_path / 'damaged'
    shutil.copytree(clean, damaged)
    next(damaged.glob('*.mcap')).write_bytes(whole[:cut])  # metadata.yaml stays
    with pytest.raises(BagError):
        list(read_bag(damaged))

    assert cli.main(['recover', str(damaged), '--out', str(tmp_path / 'back')]) == 0
    out = capsys.readouterr().out
    assert 'cut short' in out and 'recovered' in out
    got = {(m.topic, m.time_ns, m.raw) for m in read_bag(tmp_path / 'back')}
    assert got and got <= set(reference)
    # exactly the messages whose records lie whole before the cut (a message record ends
    # with its payload)
    for message in reference:
        ends = whole.index(message[2]) + len(message[2])
        assert (message in got) == (ends <= cut), (message[:2], ends, cut)
    assert next(damaged.glob('*.mcap')).read_bytes() == whole[:cut]  # left untouched


def test_recover_into_an_existing_path_is_one_line_and_overwrites_nothing(tmp_path, capsys):
    """Issue 17 F10: a traceback, and the rosbags writer's own error."""
    from sim2real_bringup import cli

    clean = _recorded(tmp_path / 'clean', seconds=2.0)
    damaged = tmp_path / 'damaged'
    damaged.mkdir()
    mcap = next(clean.glob('*.mcap')).read_bytes()
    (damaged / 'damaged_0.mcap').write_bytes(mcap[:len(mcap) // 2])
    existing = tmp_path / 'existing'
    existing.mkdir()
    (existing / 'keep.txt').write_text('mine')
    for target in (existing, clean):
        before = {p: p.read_bytes() for p in target.rglob('*') if p.is_file()}
        assert cli.main(['recover', str(damaged), '--out', str(target)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(target) in err[0] and 'exists already' in err[0], err
        assert {p: p.read_bytes() for p in target.rglob('*') if p.is_file()} == before
    # the default output path is refused the same way once it exists
    assert cli.main(['recover', str(damaged)]) == 0
    assert cli.main(['recover', str(damaged)]) == 2
    assert 'damaged-recovered exists already' in capsys.readouterr().err


def test_a_failed_recovery_leaves_no_output_folder(tmp_path, monkeypatch, capsys):
    from rosbags.rosbag2 import Writer

    from sim2real_bringup import cli

    clean = _recorded(tmp_path / 'clean', seconds=2.0)
    damaged = tmp_path / 'damaged'
    damaged.mkdir()
    (damaged / 'damaged_0.mcap').write_bytes(next(clean.glob('*.mcap')).read_bytes()[:-100])

    def full_disk(*args, **kwargs):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(Writer, 'write', full_disk)
    assert cli.main(['recover', str(damaged), '--out', str(tmp_path / 'back')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'No space left on device' in err[0], err
    assert not (tmp_path / 'back').exists()

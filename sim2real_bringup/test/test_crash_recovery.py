"""A recording killed with SIGKILL is recovered with all but at most its last second."""
import signal
import subprocess
import sys
import textwrap

import pytest

from sim2real_bringup.bag import BagError, read_bag, recover_bag
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
        BagRecorder({str(tmp_path / 'killed')!r}, qos=qos_map()).attach(graph)
        synthetic_traffic(graph, sched, seed=3)
        sched.run_for({KILL_AT})
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with pytest.raises(BagError, match='never closed'):
        list(read_bag(tmp_path / 'killed'))

    recovered = recover_bag(tmp_path / 'killed')
    got = [(m.topic, m.time_ns, m.raw) for m in read_bag(recovered)]

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

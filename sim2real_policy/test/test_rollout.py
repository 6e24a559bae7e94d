"""The rollout layer: same results in order whatever runs them, faults, checks, Ray on loopback.

The task is the keypoint dataset's renderer (one world per specification, real MuJoCo frames
and labels), so a result that came back out of order or from the wrong seed cannot pass.
"""
import importlib.util
import os
import signal
import subprocess
import sys
import time

import numpy as np
from processes import alive, descendants, is_loopback, kill, listening_tcp, pids_with_command
import pytest

from sim2real_bringup.config import load_yaml
from sim2real_policy import rollout
from sim2real_policy.keypoints import WorldRenderer

CONFIG = load_yaml('randomization.yaml')
TASK = rollout.Task(WorldRenderer, {'config': CONFIG, 'profile': 'heavy', 'poses_per_world': 1})
SPECS = [{'seeds': [4 * 10**6 + k]} for k in range(8)]
HAS_RAY = importlib.util.find_spec('ray') is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason='ray is not installed '
                                                   '(pip install -r tools/requirements-ray.txt)')
PARALLEL = ['process', pytest.param('ray', marks=needs_ray)]
# how each back end's worker processes are found (Ray titles its actor processes)
WORKER_COMMAND = {'process': 'multiprocessing.spawn', 'ray': 'ray::_RayWorker'}


def workers_of_this_test(backend: str) -> list[int]:
    mine = set(descendants(os.getpid()))
    return [pid for pid in pids_with_command(WORKER_COMMAND[backend]) if pid in mine]


def same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])
                                    for x, y in zip(a, b))


@pytest.fixture(scope='module')
def serial():
    results, stats = rollout.run(TASK, SPECS, workers=1)
    assert stats.backend == 'serial'
    return results


def test_serial_results_are_each_specifications_own(serial):
    alone = WorldRenderer(CONFIG, 'heavy', 1)(SPECS[5])
    assert same([alone], [serial[5]])
    assert not np.array_equal(serial[4][0], serial[5][0])


@pytest.mark.slow
@pytest.mark.parametrize('backend', PARALLEL)
def test_two_workers_give_the_serial_results_in_order(backend, serial):
    results, stats = rollout.run(TASK, SPECS, workers=2, backend=backend)
    assert (stats.backend, stats.workers, stats.retried) == (backend, 2, [])
    assert same(results, serial)
    assert len(stats.worker_max_rss_mb) == 2 and min(stats.worker_max_rss_mb.values()) > 50


@pytest.mark.slow
@pytest.mark.parametrize('backend', PARALLEL)
def test_killed_workers_lose_only_their_episodes_which_are_retried(backend, serial):
    killed = []

    def kill_every_worker(done, total):
        if not killed:   # one worker has just finished an episode, the other is mid-episode
            killed.extend(workers_of_this_test(backend))
            kill(killed)

    results, stats = rollout.run(TASK, SPECS, workers=2, backend=backend,
                                 progress=kill_every_worker)
    assert len(killed) == 2
    assert 1 <= len(stats.retried) <= 2
    retried = [str(spec) for spec, _ in stats.retried]
    assert len(set(retried)) == len(retried)   # each lost episode once, not the whole list
    assert same(results, serial)


@pytest.mark.slow
def test_an_episode_lost_more_often_than_it_may_be_retried_fails_the_run():
    def kill_every_worker(done, total):
        kill(workers_of_this_test('process'))

    with pytest.raises(rollout.RolloutError, match='lost 1 times'):
        rollout.run(TASK, SPECS, workers=2, backend='process', retries=0,
                    progress=kill_every_worker)


@pytest.mark.parametrize('backend', ['serial', 'process', pytest.param('ray', marks=needs_ray)])
def test_an_episode_that_raises_stops_the_run_naming_it(backend):
    with pytest.raises(rollout.RolloutError,
                       match=r"\{'seeds': \['not a seed'\]\} raised \w+Error") as error:
        rollout.run(TASK, [*SPECS[:1], {'seeds': ['not a seed']}], workers=2 if backend
                    != 'serial' else 1, backend=backend)
    assert '\n' not in str(error.value)


def test_a_bad_specification_fails_before_any_worker_starts():
    def only_seeds(spec):
        if not all(isinstance(s, int) for s in spec.get('seeds', [None])):
            raise ValueError(f'a specification is {{"seeds": [int, ...]}}, got {spec!r}')

    # a worker would fail at once on this profile: the check has to come first
    task = rollout.Task(WorldRenderer, {'config': CONFIG, 'profile': 'no such profile',
                                        'poses_per_world': 1}, check=only_seeds)
    for backend in ('serial', 'process'):
        with pytest.raises(ValueError, match="got {'seeds': \\[1.5\\]}"):
            rollout.run(task, [SPECS[0], {'seeds': [1.5]}], workers=2, backend=backend)
    with pytest.raises(ValueError, match='is a dict'):
        rollout.run(TASK, [4], workers=1)
    with pytest.raises(ValueError, match='workers must be >= 1'):
        rollout.run(TASK, SPECS, workers=0)


@pytest.mark.parametrize('backend', ['process', pytest.param('ray', marks=needs_ray)])
def test_a_worker_that_cannot_start_is_reported_in_one_line(backend):
    task = rollout.Task(WorldRenderer, {'config': CONFIG, 'profile': 'no such profile',
                                        'poses_per_world': 1})
    with pytest.raises(rollout.RolloutError, match='could not start.*no such profile') as error:
        rollout.run(task, SPECS[:2], workers=2, backend=backend)
    assert '\n' not in str(error.value)


def test_the_ray_backend_without_ray_is_one_line_not_a_traceback(tmp_path):
    """A machine without Ray (a ray package that cannot import stands in for it)."""
    fake = tmp_path / 'ray'
    fake.mkdir()
    (fake / '__init__.py').write_text("raise ImportError('No module named ray')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    done = subprocess.run([sys.executable, '-m', 'sim2real_bringup.cli', 'evaluate', '--only',
                           'heavy', '--episodes', '1', '--rollout-backend', 'ray', '--json',
                           str(tmp_path / 'out.json')], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0
    assert 'Traceback' not in done.stderr, done.stderr
    assert '--rollout-backend ray needs Ray' in done.stderr
    assert not (tmp_path / 'out.json').exists()


def test_the_backend_follows_workers_and_address():
    assert rollout.choose_backend(1, None, None) == 'serial'
    assert rollout.choose_backend(2, None, None) == 'process'
    assert rollout.choose_backend(None, None, '127.0.0.1:6379') == 'ray'
    with pytest.raises(ValueError, match='needs the ray backend'):
        rollout.choose_backend(2, 'process', '127.0.0.1:6379')
    with pytest.raises(ValueError, match='backend must be one of'):
        rollout.choose_backend(2, 'threads', None)


@pytest.mark.slow
@needs_ray
def test_a_local_ray_listens_on_loopback_only(serial):
    before = listening_tcp()
    opened = []

    def look(done, total):
        if not opened:
            opened.extend(listening_tcp() - before)

    results, _ = rollout.run(TASK, SPECS[:3], workers=2, backend='ray', progress=look)
    assert same(results, serial[:3])
    assert len(opened) >= 3, opened    # GCS, raylet, workers: the check is not vacuous
    assert all(is_loopback(address) for address, _ in opened), opened


CTRL_C_SCRIPT = """
import signal
import sys
from sim2real_bringup.config import load_yaml
from sim2real_policy import rollout
from sim2real_policy.keypoints import WorldRenderer

if __name__ == '__main__':
    # as in a terminal: a test runner started as a background job hands its children SIGINT
    # ignored (POSIX shells do that to asynchronous commands), and Ctrl-C would do nothing
    signal.signal(signal.SIGINT, signal.default_int_handler)
    task = rollout.Task(WorldRenderer, {'config': load_yaml('randomization.yaml'),
                                        'profile': 'heavy', 'poses_per_world': 4})
    def progress(done, total):
        print('progress', done, flush=True)
    try:
        rollout.run(task, [{'seeds': [k]} for k in range(400)], workers=2,
                    backend=sys.argv[1], progress=progress)
    except KeyboardInterrupt:
        print('interrupted', flush=True)
        sys.exit(130)
"""


@pytest.mark.slow
@pytest.mark.parametrize('backend', PARALLEL)
def test_ctrl_c_stops_every_worker(backend, tmp_path):
    script = tmp_path / 'run.py'
    script.write_text(CTRL_C_SCRIPT)
    # its own session, so that the signal goes to the whole group, as a terminal's Ctrl-C does
    run = subprocess.Popen([sys.executable, str(script), backend], stdout=subprocess.PIPE,
                           text=True, start_new_session=True, cwd=tmp_path,
                           env=dict(os.environ, MUJOCO_GL='egl'))
    try:
        assert run.stdout.readline().startswith('progress')
        below = descendants(run.pid)
        assert len(below) >= 2
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=60) == 130
        assert 'interrupted' in run.stdout.read()
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in below) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in below if alive(pid)]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def test_progress_reports_rate_and_eta(capsys):
    progress = rollout.Progress('episodes', 4, stream=sys.stdout, every_s=0.0)
    progress(1, 4)
    time.sleep(0.05)
    progress(4, 4)
    first, last = capsys.readouterr().out.splitlines()
    assert 'episodes 1/4' in first and 'ETA' in first and 'wall clock' in first
    assert 'episodes 4/4' in last and 'ETA' not in last


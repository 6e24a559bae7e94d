"""One rollout layer: seeded, independent episodes run serially, in local processes or on Ray.

Every sim-side job (evaluation, demonstrations, rendered datasets, the simulator and sysid
benchmarks) is a list of episode specifications (small dicts of plain values, one seed each)
and a :class:`Task`: a module-level factory that a worker calls once to build what it reuses
(a loaded policy, the randomization config), and the callable it returns, run once per
specification. Results come back in the order of the specifications as plain values and
arrays, never pickled simulator state, so they are the same whatever ran them: one process,
``workers`` local processes, or a Ray cluster.

Faults: a worker that dies (killed, out of memory) loses only the episode it was running; that
episode runs again on a fresh worker, once, and the retry is reported. An exception raised by
an episode is a bug, not a fault: the run stops with the episode's specification and the
error. Ctrl-C stops every worker. Every specification is checked before any work starts.

Ray stays on this machine unless given an address: a local Ray binds to 127.0.0.1 only (see
:func:`_start_local_ray`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import multiprocessing
from multiprocessing.connection import wait
import os
import resource
import signal
import sys
import time
import traceback
from typing import Any, Callable, Sequence

BACKENDS = ('serial', 'process', 'ray')


class RolloutError(RuntimeError):
    """An episode raised, or was lost to dead workers more often than it may be retried."""


@dataclass(frozen=True)
class Task:
    """What every worker builds once, ``factory(**options)``, then calls per specification.

    ``check(spec)`` (optional) runs in the caller on every specification before any work and
    raises ``ValueError`` naming what is wrong. ``factory`` must be importable by name (a
    module-level function or class), so that worker processes and Ray find the same code.
    """

    factory: Callable[..., Callable[[dict], Any]]
    options: dict = field(default_factory=dict)
    check: Callable[[dict], None] | None = None


@dataclass
class RolloutStats:
    """How a run went: figures measured on the wall clock of the caller."""

    backend: str
    workers: int
    episodes: int
    seconds: float = 0.0            # from the first episode dispatched to the last result
    startup_seconds: float = 0.0    # starting workers (and Ray) until the first dispatch
    retried: list = field(default_factory=list)        # (spec, why) of every retried episode
    worker_max_rss_mb: dict = field(default_factory=dict)  # worker id -> peak resident MB

    def summary(self, what: str = 'episodes') -> str:
        """One line for a person (``what`` the specifications were)."""
        rss = list(self.worker_max_rss_mb.values())
        memory = f', peak memory per worker {max(rss):.0f} MB' if rss else ''
        retried = f', {len(self.retried)} retried after a worker died' if self.retried else ''
        return (f'{self.episodes} {what} on {self.workers} {self.backend} worker(s) in '
                f'{self.seconds:.1f} s (wall clock; start-up {self.startup_seconds:.1f} s)'
                f'{memory}{retried}')


def default_workers() -> int:
    """The machine's cores (the CPUs this process may run on)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def choose_backend(workers: int | None, backend: str | None, ray_address: str | None) -> str:
    """``serial`` for one worker, ``ray`` with an address, else ``process`` (or as asked)."""
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    if ray_address:
        if backend not in (None, 'ray'):
            raise ValueError(f'--ray-address needs the ray backend, got {backend!r}')
        return 'ray'
    if backend is not None:
        return backend
    return 'serial' if (workers or default_workers()) == 1 else 'process'


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


class Progress:
    """Episodes done / total, rate and ETA across workers, printed at most every few seconds."""

    def __init__(self, what: str, total: int, stream=None, every_s: float = 5.0):
        self.what, self.total, self.every_s = what, total, every_s
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.last = -every_s

    def __call__(self, done: int, total: int) -> None:
        """Print unless the last line is recent (the last episode is always printed)."""
        now = time.perf_counter() - self.started
        if done != total and now - self.last < self.every_s:
            return
        self.last = now
        rate = done / now if now > 0 else 0.0
        eta = f', ETA {(total - done) / rate:.0f} s' if 0 < rate and done < total else ''
        print(f'  {self.what} {done}/{total} ({rate * 60:.1f}/min{eta}; wall clock)',
              file=self.stream, flush=True)


def run(task: Task, specs: Sequence[dict], workers: int | None = None,
        backend: str | None = None, ray_address: str | None = None, progress=None,
        retries: int = 1) -> tuple[list, RolloutStats]:
    """Run every specification; ``(results in order, stats)``.

    ``workers`` defaults to the machine's cores (with ``ray_address``: the cluster's CPUs);
    ``backend`` defaults to :func:`choose_backend`. ``progress(done, total)`` after each result.
    """
    specs = list(specs)
    if workers is not None and workers < 1:
        raise ValueError(f'workers must be >= 1, got {workers}')
    for spec in specs:
        if not isinstance(spec, dict):
            raise ValueError(f'an episode specification is a dict, got {spec!r}')
        if task.check is not None:
            task.check(spec)
    backend = choose_backend(workers, backend, ray_address)
    runner = {'serial': _run_serial, 'process': _run_processes, 'ray': _run_ray}[backend]
    count = 1 if backend == 'serial' else (workers or (None if ray_address
                                                         else default_workers()))
    stats = RolloutStats(backend, count or 0, len(specs))
    results = runner(task, specs, count, ray_address, progress, retries, stats)
    return results, stats


def _run_serial(task, specs, workers, ray_address, progress, retries, stats):
    started = time.perf_counter()
    worker = task.factory(**task.options)
    stats.startup_seconds = time.perf_counter() - started
    started = time.perf_counter()
    results = []
    for spec in specs:
        try:
            results.append(worker(spec))
        except Exception as error:
            raise RolloutError(f'episode {spec} raised {_one_line(error)}') from error
        if progress:
            progress(len(results), len(specs))
    stats.seconds = time.perf_counter() - started
    stats.worker_max_rss_mb[os.getpid()] = _peak_rss_mb()
    return results


class _WorkerLostError(Exception):
    """The worker running an episode is gone."""


def _dispatch(specs, workers: list, retries: int, stats: RolloutStats, progress,
              submit: Callable, collect: Callable, replace: Callable) -> list:
    """The scheduling both parallel back ends share: one episode per idle worker.

    ``submit(worker, index, spec)`` starts an episode; ``collect()`` blocks until one ends and
    returns ``(worker, index, result)`` or raises :class:`_WorkerLostError` with
    ``(worker, index, why)``;
    ``replace(worker)`` gives a fresh worker for a dead one.
    """
    pending = list(range(len(specs)))[::-1]   # a stack: the next index at the end
    attempts = [0] * len(specs)
    results: list = [None] * len(specs)
    idle = list(workers)
    done = 0
    started = time.perf_counter()
    while done < len(specs):
        while idle and pending:
            index = pending.pop()
            attempts[index] += 1
            submit(idle.pop(), index, specs[index])
        try:
            worker, index, result = collect()
        except _WorkerLostError as lost:
            worker, index, why = lost.args
            if attempts[index] > retries:
                raise RolloutError(f'episode {specs[index]} was lost {attempts[index]} times '
                                   f'(last: {why}); not retried again') from None
            stats.retried.append((specs[index], why))
            print(f'  episode {specs[index]} lost ({why}); retrying it on a fresh worker',
                  file=sys.stderr, flush=True)
            pending.append(index)
            idle.append(replace(worker))
            continue
        results[index] = result
        done += 1
        idle.append(worker)
        if progress:
            progress(done, len(specs))
    stats.seconds = time.perf_counter() - started
    return results


# -- local processes ---------------------------------------------------------------------------

def _one_line(error: Exception) -> str:
    """``Type: message (file:line)`` of where it was raised: a line for the user."""
    where = traceback.extract_tb(error.__traceback__)[-1]
    return (f'{type(error).__name__}: {error} '
            f'({os.path.basename(where.filename)}:{where.lineno})')


def _process_main(factory, options, connection) -> None:
    """A worker process: build once, then run specifications until told to stop."""
    # Ctrl-C reaches the whole process group; the parent stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        worker = factory(**options)
    except Exception as error:
        connection.send(('setup failed', None, _one_line(error)))
        return
    connection.send(('ready', None, None))
    while True:
        item = connection.recv()
        if item is None:
            return
        index, spec = item
        try:
            result = worker(spec)
        except Exception as error:
            connection.send(('raised', index, _one_line(error)))
            continue
        connection.send(('done', index, (result, os.getpid(), _peak_rss_mb())))


class _Process:
    def __init__(self, context, task: Task):
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_process_main,
                                       args=(task.factory, task.options, child), daemon=True)
        self.process.start()
        child.close()
        self.index: int | None = None

    def wait_ready(self) -> None:
        """Block until the worker has built its task; raise what its set-up raised."""
        try:
            status, _, payload = self.connection.recv()
        except (EOFError, OSError):
            raise RolloutError(f'worker pid {self.process.pid} died while starting (exit '
                               f'code {self.process.exitcode})') from None
        if status != 'ready':
            raise RolloutError(f'a worker could not start: {payload}')

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.is_alive():
            try:
                self.connection.send(None)
            except (BrokenPipeError, OSError):
                pass
            self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


def _run_processes(task, specs, workers, ray_address, progress, retries, stats):
    # A pool of our own rather than concurrent.futures: ProcessPoolExecutor breaks as a whole
    # when one worker dies and cannot say which episode that worker was running.
    context = multiprocessing.get_context('spawn')  # no inherited threads or GL contexts
    started = time.perf_counter()
    processes = [_Process(context, task) for _ in range(min(workers, max(1, len(specs))))]
    everyone = list(processes)

    def submit(worker, index, spec):
        worker.index = index
        try:
            worker.connection.send((index, spec))
        except (BrokenPipeError, OSError):
            pass   # the worker is dead: collect() sees its sentinel and retries the episode

    def collect():
        busy = [p for p in everyone if p.index is not None]
        ready = wait([p.connection for p in busy] + [p.process.sentinel for p in busy])
        for worker in busy:
            if worker.connection in ready:
                try:
                    status, index, payload = worker.connection.recv()
                except (EOFError, OSError):
                    pass   # died mid-message: handled as a dead worker below
                else:
                    if status != 'done':
                        raise RolloutError(f'episode {specs[worker.index]} raised {payload}')
                    worker.index = None
                    result, pid, rss = payload
                    stats.worker_max_rss_mb[pid] = rss
                    return worker, index, result
            if worker.process.sentinel in ready or not worker.process.is_alive():
                worker.process.join()
                index, worker.index = worker.index, None
                raise _WorkerLostError(worker, index,
                            f'worker pid {worker.process.pid} exited with code '
                            f'{worker.process.exitcode}')
        raise AssertionError('wait() returned no busy worker')  # unreachable

    def replace(worker):
        worker.stop(timeout=0.1)
        fresh = _Process(context, task)
        everyone[everyone.index(worker)] = fresh
        fresh.wait_ready()
        return fresh

    try:
        for worker in processes:   # every worker built (start-up measured apart)
            worker.wait_ready()
        stats.startup_seconds = time.perf_counter() - started
        return _dispatch(specs, processes, retries, stats, progress, submit, collect, replace)
    finally:
        for worker in everyone:
            worker.stop(timeout=1.0 if sys.exc_info()[0] is None else 0.0)


# -- Ray ---------------------------------------------------------------------------------------

class _RayWorker:
    """A Ray actor around one built worker."""

    def __init__(self, factory, options):
        self.worker = factory(**options)

    def run(self, spec):
        return self.worker(spec), os.getpid(), _peak_rss_mb()


def _start_local_ray(workers: int):
    """A Ray instance of ``workers`` CPUs on this machine, bound to 127.0.0.1 only.

    Measured with Ray 2.60 (``ss -ltnp``): ``_node_ip_address='127.0.0.1'`` alone still has
    the GCS, raylet and workers listen on every interface and the runtime-env agent on the
    machine's routable address, because Ray replaces a loopback node address with a
    "remotely reachable" one whenever multi-node clusters are enabled. A local instance is
    one node, so multi-node support is switched off for it, and every server listens on
    127.0.0.1.
    """
    import ray

    ray.init(num_cpus=workers, _node_ip_address='127.0.0.1', include_dashboard=False,
             log_to_driver=False, configure_logging=False)


def _run_ray(task, specs, workers, ray_address, progress, retries, stats):
    switch = 'RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'
    before = os.environ.get(switch)
    if not ray_address:
        # before Ray is imported, which reads it once (see _start_local_ray); Ray's own
        # processes read it when they start
        os.environ.setdefault(switch, '0')
    try:
        import ray
    except ImportError as error:
        if before is None and not ray_address:
            os.environ.pop(switch, None)
        raise RolloutError(f'--rollout-backend ray needs Ray, which does not import here '
                           f'({error}); `bash tools/setup.sh --test` installs it, or use '
                           f'--rollout-backend process') from None

    started = time.perf_counter()
    owned = not ray.is_initialized()
    try:
        if owned:
            if ray_address:
                ray.init(address=ray_address, log_to_driver=False, configure_logging=False)
            else:
                _start_local_ray(workers)
    finally:
        # nothing this process starts later (a `ray start` of a real cluster) inherits it
        if before is None:
            os.environ.pop(switch, None)
        else:
            os.environ[switch] = before
    if workers is None:
        workers = max(1, int(ray.cluster_resources().get('CPU', 1)))
        stats.workers = workers
    actor_class = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_RayWorker)
    actors = [actor_class.remote(task.factory, task.options)
              for _ in range(min(workers, max(1, len(specs))))]
    try:
        ray.get([a.__ray_ready__.remote() for a in actors])
    except ray.exceptions.RayError as error:
        for actor in actors:
            ray.kill(actor)
        if owned:
            ray.shutdown()
        cause = getattr(error, 'cause', None) or error
        raise RolloutError(f'a worker could not start: {type(cause).__name__}: '
                           f'{str(cause).splitlines()[-1] if str(cause) else ""}') from None
    stats.startup_seconds = time.perf_counter() - started
    running: dict = {}   # object ref -> (actor, index)

    def submit(actor, index, spec):
        running[actor.run.remote(spec)] = (actor, index)

    def collect():
        (ref,), _ = ray.wait(list(running), num_returns=1)
        actor, index = running.pop(ref)
        try:
            result, pid, rss = ray.get(ref)
        except ray.exceptions.RayActorError as error:
            raise _WorkerLostError(actor, index,
                                   f'Ray actor died: {type(error).__name__}') from None
        except ray.exceptions.RayTaskError as error:
            raise RolloutError(f'episode {specs[index]} raised '
                               f'{type(error.cause).__name__}: {error.cause}') from None
        stats.worker_max_rss_mb[pid] = rss
        return actor, index, result

    def replace(actor):
        ray.kill(actor)
        fresh = actor_class.remote(task.factory, task.options)
        actors.append(fresh)
        return fresh

    try:
        return _dispatch(specs, actors, retries, stats, progress, submit, collect, replace)
    finally:
        for actor in actors:
            ray.kill(actor)
        if owned:
            ray.shutdown()

"""Closed-loop evaluation of a policy through the full stack, and the transfer ratio.

Every episode runs in the in-process pipeline: camera, policy (ONNX), 100 Hz control, safety
filter, supervisor, MuJoCo robot. Success is the simulator's grasp check (object lifted and
held). Evaluation seeds (0, 1, ...) never overlap the training seeds (10**6 and up).

Each episode is a fresh cell from simulated time zero (its own world, its own calibration,
the nodes started afresh), independent of the episodes before it, so that episodes can run on
any worker of :mod:`sim2real_policy.rollout` and give the same results whatever ran them. A
worker loads the policy once and reuses it.

On the robot, more than ``max_consecutive_failures`` failed grasps in a row stop autonomy
(HUMAN_REQUIRED) until an operator acknowledges. The evaluation reports how many such
acknowledgements its run of episodes, in seed order, would have needed.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from sim2real_bringup.config import load_yaml
from sim2real_bringup.pipeline import load_runner, Pipeline, PipelineConfig
from sim2real_policy import rollout
from sim2real_policy.camera_geometry import GeometryError
from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.randomization import Randomizer
from sim2real_safety.audit import OutputAuditor
from sim2real_safety.cell_file import CellFileError, commissioned_table
from sim2real_safety.supervisor import Mode

PROXY_FILE = 'reality_proxy.yaml'
PROXY_KEY = 'reality_proxy'


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def ratio_interval(a: tuple, b: tuple, rate_a: float, rate_b: float) -> tuple[float, float]:
    """A conservative interval of rate_a / rate_b from the two rates' intervals."""
    low = a[0] / b[1] if b[1] > 0 else math.inf
    high = a[1] / b[0] if b[0] > 0 else math.inf
    return (low, high)


def episode_source(where: str):
    """``(label, params(i))`` for a randomization profile name or ``proxy``."""
    config = load_yaml('randomization.yaml')
    if where == 'proxy':
        proxy = load_yaml(PROXY_FILE)
        if PROXY_KEY not in proxy:
            raise ValueError(f'{PROXY_FILE} has no {PROXY_KEY!r} section')
        randomizer = Randomizer(config, proxy[PROXY_KEY])
    else:
        randomizer = Randomizer(config, where)
    return randomizer.sample


def calibration_summary(calibrations: list) -> dict | None:
    """Errors of the per-episode cell calibrations, checked against the simulator's truth (mm).

    ``calibrations``: one dict per calibrated episode (:func:`_calibration_check`). ``None``
    for a policy that needs no calibration. The policy never sees these figures.
    """
    if not calibrations:
        return None
    table = np.abs([c['table_error_m'] for c in calibrations
                    if c['table_error_m'] is not None])
    points = np.asarray([c['table_point_error_m_p95'] for c in calibrations])
    return {'calibrations': len(calibrations),
            'table_out_of_reach': sum(c['table_height'] is None for c in calibrations),
            'table_height_error_mm': {'mean': float(np.mean(table) * 1e3) if table.size else None,
                                      'p95': float(np.percentile(table, 95) * 1e3)
                                      if table.size else None},
            'table_point_error_mm_p95': {'mean': float(np.mean(points) * 1e3),
                                         'p95': float(np.percentile(points, 95) * 1e3)},
            'reprojection_rms_px_mean': float(np.mean([c['reprojection_rms_px']
                                                       for c in calibrations])),
            'actuation_delay_unmeasured': sum(c.get('actuation_delay_error_s') is None
                                              for c in calibrations),
            'actuation_delay_error_ms': _abs_mean_p95_ms(
                [c.get('actuation_delay_error_s') for c in calibrations])}


def _abs_mean_p95_ms(errors: list) -> dict:
    """Mean and p95 of the absolute errors given (s -> ms); None where none was measured."""
    values = np.abs([e for e in errors if e is not None])
    if not values.size:
        return {'mean': None, 'p95': None}
    return {'mean': float(np.mean(values) * 1e3), 'p95': float(np.percentile(values, 95) * 1e3)}


def _calibration_check(calibration) -> dict:
    checked = calibration.extra.get('checked_against_truth', {})
    return {'table_height': calibration.table_height,
            'table_error_m': checked.get('table_error_m'),
            'table_point_error_m_p95': checked['table_point_error_m_p95'],
            'reprojection_rms_px': calibration.reprojection_rms_px,
            'actuation_delay_s': calibration.actuation_delay,
            'actuation_delay_error_s': checked.get('actuation_delay_error_s')}


OVERRIDABLE = frozenset(f.name for f in dataclasses.fields(SimParams)
                        if f.type in ('float', float))


def check_episode(spec: dict) -> None:
    """An evaluation episode: ``{'seed': int >= 0}``, optionally ``'overrides'``.

    ``overrides`` pins scalar world parameters (:class:`SimParams` fields, finite numbers)
    over the sampled ones: how ADR evaluates a range's boundary.
    """
    seed = spec.get('seed')
    if not set(spec) <= {'seed', 'overrides'} or not isinstance(seed, int) \
            or isinstance(seed, bool) or seed < 0:
        raise ValueError('an evaluation episode is {"seed": int >= 0, "overrides": {...}}, '
                         f'got {spec!r}')
    overrides = spec.get('overrides', {})
    if not isinstance(overrides, dict):
        raise ValueError(f'episode overrides must be a mapping, got {overrides!r}')
    for name, value in overrides.items():
        if name not in OVERRIDABLE:
            raise ValueError(f'episode override {name!r} is not a scalar world parameter; '
                             f'choose from {sorted(OVERRIDABLE)}')
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ValueError(f'episode override {name} must be a finite number, got {value!r}')


class EpisodeEvaluator:
    """A rollout worker: the policy and the reality's sampler built once, one episode a call."""

    def __init__(self, model: str, where: str, backend: str | None = None):
        self.config = PipelineConfig.load()
        self.params = episode_source(where)
        self.runner = load_runner(self.config, str(model), backend)

    def __call__(self, spec: dict) -> dict:
        """Run the episode of ``spec['seed']`` through the whole stack; plain values out."""
        config, seed = self.config, spec['seed']
        overrides = spec.get('overrides')
        try:
            pipe = Pipeline(config, lambda i: self.params(seed, overrides), policy=self.runner)
        except (GeometryError, CellFileError) as error:
            # The cell's calibration found no camera (the network did not find the TCP at
            # enough poses), or a node refused the cell it measured (a delay past
            # max_actuation_delay): on a robot the suite would not start. A failed episode,
            # with its reason, not an evaluation that stops.
            params = self.params(seed, overrides)
            return {'seed': seed, 'success': False, 'duration': 0.0, 'lift_height': 0.0,
                    'regrasps': 0, 'unsafe_commands': 0, 'degraded_modes': [],
                    'overrides': {k: getattr(params, k) for k in overrides or {}},
                    'latencies_s': [], 'inference_wall_s': [], 'calibration': None,
                    'calibration_failed': str(error)}
        # The auditor checks the episode against the limits its cell was commissioned with
        # (the table from the touch-off; every other limit as configured), worked out from
        # the cell's calibration here, not read back from the safety node it audits.
        cell = pipe.calibrations[-1] if pipe.calibrations and \
            config.runtime['commission_table'] else None
        auditor = OutputAuditor(dataclasses.replace(
            config.safety, **(commissioned_table(config.safety, cell) if cell else {})))
        latencies, unsafe = [], [0]

        def on_diagnostics(msg):
            if math.isfinite(msg.latency):
                latencies.append(msg.latency)

        def on_command(msg):
            if auditor.audit((msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width),
                             pipe.sched.now_ns):
                unsafe[0] += 1

        pipe.graph.create_subscription('/control/diagnostics',
                                       'sim2real_msgs/msg/ControlDiagnostics', on_diagnostics)
        pipe.graph.create_subscription('/safety/command', 'sim2real_msgs/msg/CartesianCommand',
                                       on_command)
        modes: list = []   # the supervisor's degraded modes entered, with its reasons

        def on_supervisor(msg):
            if msg.mode != Mode.NORMAL and (not modes or modes[-1][0] != Mode(msg.mode).name):
                modes.append((Mode(msg.mode).name, msg.reason))

        pipe.graph.create_subscription('/supervisor/state',
                                       'sim2real_msgs/msg/SupervisorState', on_supervisor)
        try:
            (record,) = pipe.run_episodes(1)
        finally:
            pipe.close()
        return {'seed': record.seed, 'success': record.success,
                'duration': record.duration, 'lift_height': record.lift_height,
                'regrasps': record.regrasps, 'unsafe_commands': unsafe[0],
                'degraded_modes': modes,
                # the pinned parameters as the world was built with them
                'overrides': {k: record.params[k] for k in overrides or {}},
                'latencies_s': latencies,            # charged on the simulated clock
                'inference_wall_s': list(pipe.wall_latencies),   # measured, wall clock
                'calibration': (_calibration_check(pipe.calibrations[0])
                                if pipe.calibrations else None),
                'calibration_failed': None}


def acknowledgements_needed(outcomes: list[bool], max_consecutive_failures: int) -> int:
    """Operator acknowledgements the supervisor would ask for over ``outcomes`` in order.

    More than ``max_consecutive_failures`` failures in a row stop autonomy; the
    acknowledgement clears the count (:meth:`Supervisor.on_grasp_result`, ``acknowledge``).
    """
    count = streak = 0
    for success in outcomes:
        streak = 0 if success else streak + 1
        if streak > max_consecutive_failures:
            count += 1
            streak = 0
    return count


def _percentile(values, q: float, scale: float = 1e3):
    return float(np.percentile(values, q) * scale) if len(values) else None


def run_episodes(model: str, where: str, specs: list, inference_backend: str | None = None,
                 progress=None, **rollout_options) -> tuple[list, rollout.RolloutStats]:
    """Each episode of ``specs`` (:func:`check_episode`) of ``model`` in ``where``, in order.

    ``rollout_options``: workers, backend, ray_address of :func:`sim2real_policy.rollout.run`.
    """
    task = rollout.Task(EpisodeEvaluator, {'model': str(model), 'where': where,
                                           'backend': inference_backend}, check_episode)
    return rollout.run(task, specs, progress=progress, **rollout_options)


def evaluate(model: str, where: str, episodes: int, first_seed: int = 0,
             backend: str | None = None, progress=None, workers: int | None = None,
             rollout_backend: str | None = None, ray_address: str | None = None) -> dict:
    """Run ``episodes`` episodes of ``model`` in ``where`` (a profile or ``proxy``).

    ``workers`` / ``rollout_backend`` / ``ray_address`` choose who runs them
    (:func:`sim2real_policy.rollout.run`); the results do not depend on it.
    """
    specs = [{'seed': first_seed + i} for i in range(episodes)]
    results, stats = run_episodes(model, where, specs, backend, progress, workers=workers,
                                  backend=rollout_backend, ray_address=ray_address)
    supervisor = PipelineConfig.load().params.get('supervisor_node', {})
    successes = sum(r['success'] for r in results)
    latencies = [x for r in results for x in r['latencies_s']]
    wall = [x for r in results for x in r['inference_wall_s']]
    return {
        'where': where, 'model': str(model), 'episodes': len(results), 'successes': successes,
        'success_rate': successes / max(1, len(results)),
        'ci95': list(wilson_interval(successes, len(results))),
        'first5_success_rate': sum(r['success'] for r in results[:5])
        / max(1, len(results[:5])),
        'latency_ms': {'what': 'observation to command, charged on the simulated clock',
                       'mean': float(np.mean(latencies) * 1e3) if latencies else None,
                       'p95': _percentile(latencies, 95)},
        'inference_wall_ms': {'what': 'measured on the wall clock, per inference',
                              'p50': _percentile(wall, 50), 'p95': _percentile(wall, 95)},
        'inference_wall_ms_p99': _percentile(wall, 99),
        'calibration': calibration_summary([r['calibration'] for r in results
                                            if r['calibration'] is not None]),
        'calibration_failed': sum(r['calibration_failed'] is not None for r in results),
        'regrasps': {'episodes_with_regrasp': sum(r['regrasps'] > 0 for r in results),
                     'recovered': sum(r['regrasps'] > 0 and r['success'] for r in results)},
        'unsafe_commands': sum(r['unsafe_commands'] for r in results),
        'acknowledgements': acknowledgements_needed(
            [r['success'] for r in results],
            int(supervisor.get('max_consecutive_failures', 3))),
        'rollout': {'backend': stats.backend, 'workers': stats.workers,
                    'seconds': stats.seconds, 'startup_seconds': stats.startup_seconds,
                    'retried': [spec for spec, _ in stats.retried],
                    'worker_max_rss_mb': list(stats.worker_max_rss_mb.values())},
        'seeds': [r['seed'] for r in results],
        'degraded_modes': _mode_counts(results),
        # per episode, with its calibration's errors against the truth: which world a
        # failure or a calibration outlier came from
        'episode_results': [{k: r[k] for k in ('seed', 'success', 'duration', 'lift_height',
                                                'regrasps', 'unsafe_commands',
                                                'degraded_modes', 'calibration',
                                                'calibration_failed')}
                            for r in results]}


def _mode_counts(results) -> dict:
    """Episodes (and failed episodes) in which the supervisor entered each degraded mode."""
    counts: dict = {}
    for r in results:
        for mode in {name for name, _ in r['degraded_modes']}:
            entry = counts.setdefault(mode, {'episodes': 0, 'failed_episodes': 0})
            entry['episodes'] += 1
            entry['failed_episodes'] += not r['success']
    return counts

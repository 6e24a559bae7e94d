"""Closed-loop evaluation of a policy through the full stack, and the transfer ratio.

Every episode runs in the in-process pipeline: camera, policy (ONNX), 100 Hz control, safety
filter, supervisor, MuJoCo robot. Success is the simulator's grasp check (object lifted and
held). Evaluation seeds (0, 1, ...) never overlap the training seeds (10**6 and up).

When four grasps fail in a row the supervisor stops autonomy (HUMAN_REQUIRED), as it must.
A statistical evaluation has to go on, so the harness acknowledges as the operator
"evaluation harness"; every such acknowledgement is counted and reported.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from sim2real_bringup.config import load_yaml
from sim2real_bringup.pipeline import Pipeline, PipelineConfig
from sim2real_policy.sim.randomization import Randomizer
from sim2real_safety.audit import OutputAuditor
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


def calibration_summary(calibrations) -> dict | None:
    """Errors of the per-episode cell calibrations, checked against the simulator's truth (mm).

    ``None`` for a policy that needs no calibration. The policy never sees these figures.
    """
    if not calibrations:
        return None
    checked = [c.extra.get('checked_against_truth', {}) for c in calibrations]
    table = np.abs([c['table_error_m'] for c in checked if c.get('table_error_m') is not None])
    points = np.asarray([c['table_point_error_m_p95'] for c in checked])
    return {'calibrations': len(calibrations),
            'table_out_of_reach': sum(c.table_height is None for c in calibrations),
            'table_height_error_mm': {'mean': float(np.mean(table) * 1e3) if table.size else None,
                                      'p95': float(np.percentile(table, 95) * 1e3)
                                      if table.size else None},
            'table_point_error_mm_p95': {'mean': float(np.mean(points) * 1e3),
                                         'p95': float(np.percentile(points, 95) * 1e3)},
            'reprojection_rms_px_mean': float(np.mean([c.reprojection_rms_px
                                                       for c in calibrations]))}


def evaluate(model: str, where: str, episodes: int, first_seed: int = 0,
             backend: str | None = None, progress=None) -> dict:
    """Run ``episodes`` episodes of ``model`` in ``where`` (a profile or ``proxy``)."""
    params = episode_source(where)
    config = PipelineConfig.load()
    pipe = Pipeline(config, lambda i: params(first_seed + i), policy=model, backend=backend)
    latencies = []
    auditor = OutputAuditor(config.safety)

    def commissioned(index, params):
        # the auditor checks each episode against the limits its cell was commissioned with
        # (the table from the touch-off; every other limit as configured)
        nonlocal auditor
        auditor = OutputAuditor(dataclasses.replace(
            config.safety, **{k: tuple(v) if isinstance(v, list) else v
                              for k, v in pipe._cell_safety.items()}))

    pipe.episode_start_hooks.append(commissioned)
    commissioned(0, None)
    unsafe = [0]
    end_ns = [None]
    pipe.graph.create_subscription(
        '/control/diagnostics', 'sim2real_msgs/msg/ControlDiagnostics',
        lambda m: latencies.append(m.latency) if math.isfinite(m.latency) else None)

    def on_command(msg):
        if end_ns[0] is not None and pipe.sched.now_ns > end_ns[0]:
            auditor.previous, end_ns[0] = None, None  # the world was reset
        if auditor.audit((msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width), pipe.sched.now_ns):
            unsafe[0] += 1

    pipe.graph.create_subscription('/safety/command', 'sim2real_msgs/msg/CartesianCommand',
                                   on_command)
    pipe.graph.create_subscription('/episode/result', 'sim2real_msgs/msg/GraspResult',
                                   lambda m: end_ns.__setitem__(0, pipe.sched.now_ns))
    acknowledgements = 0

    def after_episode(record, done, total):
        nonlocal acknowledgements
        pipe.supervisor.core.update(pipe.sched.now_ns)
        if pipe.supervisor.core.mode == Mode.HUMAN_REQUIRED:
            pipe.supervisor.core.acknowledge(
                'evaluation harness', 'automatic, to continue a statistical evaluation',
                pipe.sched.now_ns)
            acknowledgements += 1
        if progress:
            progress(record, done, total)

    records = pipe.run_episodes(episodes, progress=after_episode)
    pipe.close()
    calibration = calibration_summary(pipe.calibrations)
    successes = sum(r.success for r in records)
    wall = np.asarray(pipe.wall_latencies) * 1e3
    return {
        'where': where, 'model': str(model), 'episodes': len(records), 'successes': successes,
        'success_rate': successes / max(1, len(records)),
        'ci95': list(wilson_interval(successes, len(records))),
        'first5_success_rate': sum(r.success for r in records[:5]) / max(1, len(records[:5])),
        'latency_ms': {'mean': float(np.mean(latencies) * 1e3) if latencies else None,
                       'p95': float(np.percentile(latencies, 95) * 1e3) if latencies else None},
        'inference_wall_ms': {'p50': float(np.percentile(wall, 50)) if wall.size else None,
                              'p95': float(np.percentile(wall, 95)) if wall.size else None},
        'inference_wall_ms_p99': float(np.percentile(wall, 99)) if wall.size else None,
        'calibration': calibration,
        'regrasps': {'episodes_with_regrasp': sum(r.regrasps > 0 for r in records),
                     'recovered': sum(r.regrasps > 0 and r.success for r in records)},
        'unsafe_commands': unsafe[0], 'acknowledgements': acknowledgements,
        'seeds': [r.seed for r in records]}

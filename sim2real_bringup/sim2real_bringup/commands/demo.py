"""Run grasp episodes of the full stack in-process on the MuJoCo simulator.

camera -> policy (the bundled ONNX policy by default) -> 100 Hz control -> safety filter ->
simulated robot, with the supervisor watching, all on the simulated clock. The run folder
holds the rosbag2 bag (MCAP, every topic, message definitions embedded), report.json and
report.html with plots, and episodes.json (each episode's seed and sampled parameters).
Bags are deterministic: the same --seed gives the same bag.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
import sys
import time


def add_arguments(parser) -> None:
    """Options of ``sim2real demo``."""
    parser.add_argument('--episodes', type=int, default=10, help='grasp episodes (default 10)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the first episode')
    parser.add_argument('--out', type=Path, default=None,
                        help='run folder to create (default runs/demo-<seed>-<time>); never '
                             'overwritten')
    parser.add_argument('--config', type=Path, default=None,
                        help='a config folder to use instead of the suite config/')
    parser.add_argument('--proxy', action='store_true',
                        help='run on the reality proxy (config/reality_proxy.yaml)')
    parser.add_argument('--randomization', default=None,
                        help="randomization profile of the episodes (default: sim.yaml's)")
    parser.add_argument('--policy', default='bundled',
                        help='bundled (default), a model path, or expert (privileged script)')
    parser.add_argument('--backend', choices=('onnxruntime', 'cv2_dnn'), default=None,
                        help="inference backend (default: policy.yaml's)")


def run(args) -> int:
    """Run, record, report, summarize."""
    if args.config is not None:
        if not args.config.is_dir():
            raise FileNotFoundError(f'--config {args.config} is not a folder')
        os.environ['SIM2REAL_CONFIG_DIR'] = str(args.config.resolve())
    import numpy as np

    from sim2real_bringup.bag import BagRecorder
    from sim2real_bringup.evaluation import episode_source
    from sim2real_bringup.pipeline import Pipeline, PipelineConfig
    from sim2real_bringup.report import write_report
    from sim2real_bringup.topics import qos_map

    if args.episodes < 1:
        raise ValueError(f'--episodes must be >= 1, got {args.episodes}')
    out = args.out or Path('runs') / f'demo-{args.seed}-{time.strftime("%Y%m%d-%H%M%S")}'
    if out.exists():
        raise FileExistsError(f'{out} exists already; choose another --out')
    config = PipelineConfig.load()
    where = 'proxy' if args.proxy else (args.randomization or config.sim['randomization'])
    params = episode_source(where)
    pipe = Pipeline(config, lambda i: params(args.seed + i), policy=args.policy,
                    backend=args.backend)
    pipe.graph.custom_data['sim2real.where'] = where   # the report says where it ran
    started = time.perf_counter()
    print(f'sim2real demo: {args.episodes} episodes on "{where}", policy '
          f'{pipe.runner.model_id}, run folder {out}', flush=True)

    def progress(record, done, total):
        print(f'  episode {done}/{total}: {"success" if record.success else "failure"} in '
              f'{record.duration:.1f} s (seed {record.seed}); mode '
              f'{pipe.supervisor.core.mode.name}', flush=True)

    with BagRecorder(out / 'bag', qos=qos_map()).attach(pipe.graph):
        pipe.run_episodes(args.episodes, progress=progress)
    pipe.close()
    wall = time.perf_counter() - started
    # Every episode's seed and sampled parameters: enough to rebuild it exactly
    # (SimParams.from_dict) in the simulator.
    (out / 'episodes.json').write_text(json.dumps(
        [{'episode': r.index, 'seed': r.seed, 'success': r.success, 'duration_s': r.duration,
          'params': r.params} for r in pipe.records], indent=1))
    print('writing the report ...', file=sys.stderr, flush=True)
    measured = np.asarray(pipe.wall_latencies) * 1e3
    wall_ms = ({f'p{q}': float(np.percentile(measured, q)) for q in (50, 95, 99)}
               if measured.size else {})
    charged = pipe.config.runtime['simulated_inference_latency'] * 1e3
    summary = write_report(out / 'bag', out, extra={
        'where': where, 'seed': args.seed, 'policy': pipe.runner.model_id,
        'simulated_s': pipe.sched.now, 'wall_s': wall,
        'inference_wall_ms': {**wall_ms, 'inferences': int(measured.size),
                              'what': 'the model run, measured on the wall clock'},
        'inference_charged_ms': {'value': charged, 'what': 'charged per inference on the '
                                 'simulated clock (config/sim.yaml): a model, not a measurement'}})
    print(f'episodes {summary["episodes"]}, success rate {summary["success_rate"]:.0%}')
    if wall_ms:
        print(f'inference latency, measured (wall clock, {measured.size} inferences): p50 '
              f'{wall_ms["p50"]:.2f} ms, p95 {wall_ms["p95"]:.2f} ms, p99 {wall_ms["p99"]:.2f} ms')
    else:
        print('inference latency: no model was run (the policy is scripted or recorded)')
    print(f'inference latency, charged on the simulated clock: {charged:.1f} ms each; '
          f'observation-to-command p95 {summary["observation_to_command_ms"]["p95"]:.1f} ms '
          f'(simulated clock)')
    print('safety verdicts: ' + ', '.join(f'{k.lower()} {v}' for k, v in
                                          sorted(summary['safety']['verdicts'].items())))
    print(f'mode changes: {summary["modes"]["changes"]} '
          f'({", ".join(f"{k} {v:.1f} s" for k, v in summary["modes"]["time_s"].items())})')
    print(f'{pipe.sched.now:.0f} s simulated in {wall:.0f} s; bag {out / "bag"}, report '
          f'{out / "report.html"}')
    return 0

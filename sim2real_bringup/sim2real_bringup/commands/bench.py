"""Benchmarks that print their figures and, with --json, write them to a file.

  safety   per-check cost of the safety filter (µs), a fuzz run audited for unsafe outputs
           (glitched states included), and --motion-runs runs of the MuJoCo stage behind the
           filter judged on its true motion (speed, z against the floor; simulated clock)
  control  the 100 Hz loop under 0-1000 ms inference latency on the simulated clock (where its
           commands came from, observation-to-command latency, largest steps per blending), the
           synchronous loop's rate (a model, labelled as one); measured on the wall clock: the
           control node's tick timer's jitter with inference on another thread, inference
           p50/p95/p99 per backend
  sim      physics steps/s, render fps at policy resolution, episodes/min with rendering and
           randomization, scripted-grasp success rate in the nominal scene
  sysid    the identifiability self-test over --draws random parameter draws: worst error per
           parameter, worst and mean seconds (acceptance: 5%, one control period, 2 min)
  rollout  --episodes evaluation episodes of the bundled policy on the reality proxy, run by
           one worker, then by --workers (default 2) local processes and local Ray: wall time,
           speed-up, start-up apart, peak memory per worker, and whether results are identical
  adaptation  the actuation-delay drill: 50 ms -> 150 ms mid-run (--episodes, default 20,
           the change halfway) in the nominal cell, with and without the control node's
           online delay estimate: time to track within 10 %, grasp success before and after
           (all on the simulated clock)
  camera   the bumped-camera drill: --trials heavy worlds (default 10) commissioned, then run
           with the camera tilted 2 degrees, moved 2 cm sideways, and as it was: caught by the
           policy's check of the cell file (HUMAN_REQUIRED, camera_calibration), the
           residuals (px), commands the auditor flags (simulated clock)

Figures depend on how quiet the machine is; the JSON records what was seen.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
import platform
import sys
import time

from sim2real_bringup.commands.rollout_options import add_rollout_arguments, rollout_options
from sim2real_bringup.outputs import refuse_existing, write_new

TARGETS = ('safety', 'control', 'sim', 'sysid', 'rollout', 'adaptation', 'camera')


def add_arguments(parser) -> None:
    """Options of ``sim2real bench``."""
    parser.add_argument('target', choices=TARGETS, help='what to benchmark')
    parser.add_argument('--json', type=Path, default=None, help='write the figures here')
    parser.add_argument('--config', default='safety.yaml',
                        help='safety parameter file (default: the suite config safety.yaml)')
    parser.add_argument('--fuzz-inputs', type=int, default=200_000,
                        help='inputs of the safety fuzz run (default 200000)')
    parser.add_argument('--motion-runs', type=int, default=40,
                        help='safety: runs of the simulated stage behind the filter, judged '
                        'on its true motion (default 40, 3 s simulated each)')
    parser.add_argument('--seed', type=int, default=0, help='seed (default 0)')
    parser.add_argument('--trials', type=int, default=10,
                        help='camera: worlds per bump (heavy seeds 80000...; default 10)')
    parser.add_argument('--draws', type=int, default=10,
                        help='sysid: parameter draws (seeds --seed...) (default 10)')
    parser.add_argument('--trajectories', type=int, default=6,
                        help='sysid: synthetic trajectories per draw (default 6, at most 10)')
    parser.add_argument('--episodes', type=int, default=100,
                        help='rollout: evaluation episodes per back end (default 100); '
                        'adaptation: episodes per run (default 20)')
    add_rollout_arguments(parser)


def _bench_safety(args) -> dict:
    from sim2real_bringup.config import node_parameters
    from sim2real_safety import bench
    from sim2real_safety.limits import SafetyLimits

    limits = SafetyLimits.from_parameters(node_parameters(args.config, 'safety_node'))
    cost = bench.check_cost(limits, seed=args.seed)
    print(f'check cost: p50 {cost["p50"]:.1f} µs, p99 {cost["p99"]:.1f} µs, '
          f'max {cost["max"]:.1f} µs over {cost["samples"]} checks '
          f'(budget: 50 µs = 0.5% of the 10 ms period)')

    def progress(done, total):
        print(f'  fuzz {done}/{total}', file=sys.stderr, flush=True)

    started = time.perf_counter()
    fuzz = bench.fuzz(limits, inputs=args.fuzz_inputs, seed=args.seed, progress=progress)
    print('fuzz first robot states: ' + ', '.join(f'{v} {k}' for k, v in
                                                  fuzz['first_states'].items())
          + ' (a fresh filter every 2000 inputs; 2 % of state updates are glitches)')
    print(f'fuzz: {fuzz["inputs"]} inputs, {fuzz["withheld"]} answered with no command (the '
          f'robot outside the limits), {fuzz["outputs"]} outputs audited, '
          f'{fuzz["unsafe_outputs"]} unsafe, final guard tripped {fuzz["guard_trips"]} times '
          f'({time.perf_counter() - started:.1f} s)')
    counts = sorted(fuzz['verdicts'].items())
    print('  verdicts: ' + ', '.join(f'{name.lower()} {count}' for name, count in counts))
    print(f'  {fuzz["glitched_states"]} glitched robot states among them')
    motion = None
    if args.motion_runs > 0:
        from sim2real_policy.sim import safety_motion

        started = time.perf_counter()
        motion = safety_motion.judge(limits, runs=args.motion_runs, seed=args.seed,
                                     progress=lambda done, total: print(
                                         f'  motion {done}/{total}', file=sys.stderr,
                                         flush=True) if done % 10 == 0 else None)
        print(f'true motion of the simulated stage ({motion["runs"]} runs x '
              f'{motion["simulated_s_per_run"]:.0f} s, simulated clock; glitched first '
              f'readings {", ".join(safety_motion.GLITCHES)}; '
              f'{time.perf_counter() - started:.0f} s wall):')
        print(f'  largest true TCP speed {motion["max_true_speed_m_s"]:.4f} m/s '
              f'(limit {motion["speed_limit_m_s"]} m/s; {motion["runs_over_speed_limit"]} '
              f'runs over it), lowest true z {motion["min_true_z_margin_m"] * 1000:+.1f} mm '
              f'from the floor ({motion["runs_below_floor"]} runs below), gripper\'s lowest '
              f'point {motion["min_true_finger_clearance_m"] * 1000:+.1f} mm above the table '
              f'at the least (clearance {motion["finger_clearance_m"] * 1000:.0f} mm; '
              f'{motion["runs_fingers_below_clearance"]} runs below), farthest command '
              f'from the true TCP {motion["max_command_to_true_tcp_m"] * 1000:.1f} mm '
              f'(bound {motion["follow_bound_m"] * 1000:.0f} mm + the robot\'s lag)')
    return {'check_us': cost, 'fuzz': fuzz, 'motion': motion}


def _bench_sim(args) -> dict:
    from sim2real_bringup.config import load_yaml
    from sim2real_policy.rollout import Progress
    from sim2real_policy.sim import bench

    figures = bench.run(load_yaml('randomization.yaml'), progress=Progress(
        'scripted episodes', 120), **rollout_options(args))
    rollout = figures['rollout']
    print(f'physics: {figures["physics_steps_per_s"]:.0f} steps/s (dt 1 ms; measured, one '
          'process)')
    print(f'render: {figures["render_fps"]:.0f} fps at 96x96 (EGL, no MSAA, no shadows; '
          'measured, one process)')
    print(f'episodes: {figures["episodes_per_min"]:.1f}/min with rendering at 10 Hz and heavy '
          f'randomization (measured on the wall clock, {rollout["workers"]} '
          f'{rollout["backend"]} worker(s); start-up {rollout["startup_seconds"]:.1f} s apart)')
    print(f'scripted grasp: {figures["scripted_success_rate"]:.0%} of '
          f'{figures["scripted_episodes"]} nominal episodes, '
          f'{figures["heavy_scripted_success_rate"]:.0%} under heavy randomization')
    return figures


def _bench_sysid(args) -> dict:
    from sim2real_policy import sysid

    if not 1 <= args.trajectories <= 10 or args.draws < 1:
        raise ValueError(f'--trajectories must be 1..10 and --draws >= 1, got '
                         f'{args.trajectories} and {args.draws}')
    from sim2real_policy import rollout

    task = rollout.Task(sysid.SelfTestDraws, {'trajectories': args.trajectories})
    results, stats = rollout.run(task, [{'seed': seed} for seed in
                                        range(args.seed, args.seed + args.draws)],
                                 **rollout_options(args))
    print(f"{stats.summary('draws')}; each draw's seconds are its own wall time on a worker")
    draws = []
    for seed, result in zip(range(args.seed, args.seed + args.draws), results):
        p = result['params']
        draws.append({'seed': seed, 'seconds': result['seconds'],
                      'rel_error': {n: p[n]['rel_error'] for n in sysid.PARAMS},
                      'delay_error_s': p['delay']['abs_error']})
        print(f'draw {seed}: ' + ', '.join(f'{n} {p[n]["rel_error"]:.2%}'
                                           for n in sysid.PARAMS if n != 'delay')
              + f', delay {p["delay"]["abs_error"] * 1e3:.2f} ms; {result["seconds"]:.0f} s',
              flush=True)
    worst = {n: max(d['rel_error'][n] for d in draws) for n in sysid.PARAMS}
    seconds = [d['seconds'] for d in draws]
    delay_ms = max(d['delay_error_s'] for d in draws) * 1e3
    print('worst over draws: ' + ', '.join(f'{n} {worst[n]:.2%}' for n in sysid.PARAMS
                                           if n != 'delay')
          + f', delay {delay_ms:.2f} ms; seconds max {max(seconds):.0f}, '
            f'mean {sum(seconds) / len(seconds):.0f}')
    return {'draws': draws, 'worst_rel_error': worst, 'worst_delay_ms': delay_ms,
            'seconds_max': max(seconds), 'seconds_mean': sum(seconds) / len(seconds),
            'trajectories': args.trajectories}


def _bench_rollout(args) -> dict:
    from sim2real_bringup.evaluation import evaluate
    from sim2real_policy.rollout import Progress

    if args.episodes < 1:
        raise ValueError(f'--episodes must be >= 1, got {args.episodes}')
    workers = args.workers or 2
    runs = {}
    for backend, count in (('serial', 1), ('process', workers), ('ray', workers)):
        started = time.perf_counter()
        result = evaluate('bundled', 'proxy', args.episodes, first_seed=args.seed,
                          workers=count, rollout_backend=backend,
                          progress=Progress(f'{backend} episodes', args.episodes))
        rollout = dict(result['rollout'], total_seconds=time.perf_counter() - started)
        runs[backend] = {'rollout': rollout, 'success_rate': result['success_rate'],
                         'episodes': result['episode_results']}
        print(f'{backend:>7}: {args.episodes} episodes in {rollout["seconds"]:.1f} s on '
              f'{count} worker(s), start-up {rollout["startup_seconds"]:.1f} s apart, peak '
              f'memory per worker {max(rollout["worker_max_rss_mb"]):.0f} MB; success '
              f'{result["success_rate"]:.0%} (measured, wall clock)', flush=True)
    serial = runs['serial']
    for backend in ('process', 'ray'):
        run = runs[backend]
        run['speedup'] = serial['rollout']['seconds'] / run['rollout']['seconds']
        run['speedup_with_startup'] = (serial['rollout']['total_seconds']
                                       / run['rollout']['total_seconds'])
        run['identical_to_serial'] = run['episodes'] == serial['episodes']
        print(f'{backend} vs serial: speed-up {run["speedup"]:.2f}x over the episodes, '
              f'{run["speedup_with_startup"]:.2f}x with start-up; results identical: '
              f'{"yes" if run["identical_to_serial"] else "NO"}')
    return {'what': 'measured on the wall clock', 'episodes': args.episodes,
            'workers': workers, 'runs': runs}


def _bench_adaptation(args) -> dict:
    from sim2real_bringup.delay_drill import run_delay_drill

    episodes = 20 if args.episodes == 100 else args.episodes
    if episodes < 2:
        raise ValueError(f'--episodes must be >= 2 for the adaptation drill, got {episodes}')
    runs = {}
    for adapt in (True, False):
        run = run_delay_drill(episodes=episodes, change_episode=episodes // 2, adapt=adapt,
                              first_seed=args.seed)
        run.pop('trace')
        runs['with_adaptation' if adapt else 'without_adaptation'] = run
        after = run['success_before'] + run['success_changing_episode'] + run['success_after']
        print(f'{"with" if adapt else "without"} adaptation: delay in use '
              f'{run["estimate_before_change_s"] * 1e3:.0f} ms before the change, '
              f'{run["estimate_end_s"] * 1e3:.0f} ms at the end; within 10 % of '
              f'{run["delay_after_s"] * 1e3:.0f} ms '
              + (f'{run["time_to_track_s"]:.1f} s after the change, then '
                 f'{run["share_within_after_track"]:.0%} of the ticks, largest error '
                 f'{run["max_error_after_track_s"] * 1e3:.0f} ms'
                 if math.isfinite(run['time_to_track_s']) else 'never') +
              f'; grasps {sum(after)}/{len(after)} (before the change '
              f'{sum(run["success_before"])}/{len(run["success_before"])}, after '
              f'{sum(run["success_after"])}/{len(run["success_after"])}); simulated clock',
              flush=True)
    return {'what': 'charged on the simulated clock', 'runs': runs}


def _bench_control(args) -> dict:
    from sim2real_policy import control_bench
    from sim2real_policy.models import BUNDLED
    from sim2real_policy.standin import build_standin

    model = BUNDLED
    if not model.is_file():
        import tempfile
        model = build_standin(Path(tempfile.mkdtemp()) / 'standin.onnx')
        print(f'no bundled policy; using the stand-in model {model}')
    sweep = control_bench.latency_sweep()
    print('simulated clock (measured: the controller ticked at 100 Hz, chunks arriving '
          '`latency` after their observation):')
    print('latency  fresh  tail   hold   obs-to-cmd  deadline misses  '
          'max step crossfade/naive/ensemble (mm)')
    for r in sweep:
        obs_ms = r['observation_to_command_ms']
        obs_ms = '   none   ' if obs_ms is None else f'{obs_ms:>7.1f} ms'
        print(f'{r["inference_latency_ms"]:>5} ms  {r["fresh_fraction"]:>5.0%}  '
              f'{r["tail_fraction"]:>5.0%}  {r["hold_fraction"]:>5.0%}  '
              f'{obs_ms}  {r["deadline_misses"]:>15}  '
              f'{r["max_step_blended"] * 1e3:>8.2f} / {r["max_step_naive"] * 1e3:.2f} / '
              f'{r["max_step_ensemble"] * 1e3:.2f}')
    sync = control_bench.sync_baseline()
    print(f'synchronous loop (observe, infer inline, act), {control_bench.SYNC_MODEL}: '
          + ', '.join(f'{r["inference_latency_ms"]} ms -> {r["command_rate_hz"]:.1f} Hz'
                      for r in sync))
    jitter = control_bench.wall_clock_jitter(model)
    print("wall clock (measured: the control node's tick timer driving its controller, "
          f'inference on another thread, no ROS): jitter p50 {jitter["p50"]:.3f} ms, '
          f'p99 {jitter["p99"]:.3f} ms, max {jitter["max"]:.3f} ms over {jitter["ticks"]} '
          f'ticks ({jitter["inferences"]} inferences)')
    latency = control_bench.inference_latency(model)
    for backend, q in latency.items():
        print(f'inference {backend} (measured, wall clock): p50 {q["p50"]:.3f} ms, '
              f'p95 {q["p95"]:.3f} ms, p99 {q["p99"]:.3f} ms')
    return {'latency_sweep': {'what': 'measured on the simulated clock', 'rows': sweep},
            'sync_baseline': {'what': control_bench.SYNC_MODEL, 'rows': sync},
            'wall_clock_jitter_ms': {'what': "measured on the wall clock: the control node's "
                                             'tick timer (PreciseTimer) driving its Controller, '
                                             'inference on another thread, no ROS', **jitter},
            'inference_ms': {'what': 'measured on the wall clock, batch 1', **latency},
            'model': str(model)}


def _bench_camera(args) -> dict:
    import numpy as np

    from sim2real_bringup.camera_drill import run_drill

    if args.trials < 1:
        raise ValueError(f'--trials must be >= 1, got {args.trials}')

    def progress(kind, trial):
        print(f'  {kind} seed {trial["seed"]}: {trial["check"]} at {trial["residual_px"]:.2f} '
              f'px' + (f', caught at {trial["time_to_caught_s"]:.2f} s' if trial['caught']
                       else ''), flush=True)

    results = run_drill(args.trials, 80000 + args.seed, progress=progress)
    for kind, figures in results.items():
        residuals = np.asarray(figures['residual_px'], dtype=float)
        print(f'{kind}: caught {figures["caught"]} of {args.trials}, a grasp begun in '
              f'{figures["grasp_begun"]}; worlds whose commissioning was refused (passed '
              f'over): {len(figures["commissioning_refused"])}; residual '
              f'{np.nanmin(residuals):.2f}-{np.nanmax(residuals):.2f} px (median offset of the '
              f'check\'s window); {figures["unsafe_commands"]} commands flagged by the auditor')
    return {'camera_drill': results}


def run(args) -> int:
    """Run one benchmark."""
    refuse_existing(args.json, '--json')  # before minutes of work, not after
    if args.fuzz_inputs <= 0:
        raise ValueError(f'--fuzz-inputs must be > 0, got {args.fuzz_inputs}')
    figures = {'safety': _bench_safety, 'control': _bench_control, 'sim': _bench_sim,
               'sysid': _bench_sysid, 'rollout': _bench_rollout,
               'adaptation': _bench_adaptation, 'camera': _bench_camera}[args.target](args)
    figures['machine'] = {'python': platform.python_version(), 'machine': platform.machine(),
                          'processor': platform.processor()}
    if args.json:
        write_new(args.json, json.dumps(figures, indent=2), '--json')
        print(f'wrote {args.json}')
    unsafe = figures.get('fuzz', {}).get('unsafe_outputs', 0)
    return 1 if unsafe else 0

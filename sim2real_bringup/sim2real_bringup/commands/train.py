"""Train the grasping policy in the simulator.

Two kinds (``--kind``):

* ``keypoints`` (the default, the bundled policy): a keypoint network trained with pixel
  supervision on randomized frames rendered in parallel processes, exported with the grasp
  planner's contract as one ONNX file (``keypoints.onnx``). The model is chosen by its
  error on worlds drawn fresh from the same randomization (validation), never by a reality.
  The bundled policy is `sim2real train --randomization heavy --seed 0 --bundle`.
  With ``--adr`` the worlds are drawn by automatic domain randomization over
  ``adr_training`` of config/randomization.yaml (on top of the profile), widened as the
  network masters them, in ``--rounds`` rounds; the state is saved every round and the same
  command resumes an interrupted run (sim2real_policy/train_keypoints_adr.py).
  With ``--sysid FILE`` (sysid_params.yaml of ``sim2real sysid``) the profile's physics ranges
  are centred on the values identified on the robot, each keeping its width. The keypoint
  network's frames place the stage rather than drive it, so its dynamics hardly reach them
  (measured: 0.03 grey levels mean difference); bc's demonstrations are driven.
* ``bc``: behaviour cloning of the expert end to end (model.onnx, model.pt for fine-tuning).

Needs the optional training extra: pip install torch==2.13.0.
"""
from __future__ import annotations

import json
from pathlib import Path
import shutil
import sys
import time

from sim2real_bringup.commands.rollout_options import add_rollout_arguments, rollout_options

# Epochs of the keypoint network. Measured (heavy, 4000 worlds, seed 0): 14 epochs reached a
# worst-keypoint p95 of 4.0 px on fresh validation worlds, 24 reached 3.1 px, as good as the
# bundled model before it (3.13 px); 24 epochs take about 24 min here (2 cores).
KEYPOINT_EPOCHS = 24


def add_arguments(parser) -> None:
    """Options of ``sim2real train``."""
    parser.add_argument('--kind', choices=('keypoints', 'bc'), default='keypoints',
                        help='keypoints (network + calibrated camera + planner; default) or '
                             'bc (end-to-end behaviour cloning)')
    parser.add_argument('--randomization', default='heavy',
                        help='profile of randomization.yaml for the training worlds '
                             "(none, light, heavy; default heavy, the bundled policy's)")
    parser.add_argument('--worlds', type=int, default=4000,
                        help='keypoints: randomized worlds rendered (4 frames each; default '
                             '4000) and a tenth as many fresh ones for validation')
    parser.add_argument('--episodes', type=int, default=None,
                        help='demonstration episodes (default: 150 none, 200 light, 300 heavy)')
    parser.add_argument('--epochs', type=int, default=None,
                        help=f'training epochs (default {KEYPOINT_EPOCHS} keypoints, 25 bc)')
    parser.add_argument('--seed', type=int, default=0, help='seed of data and training')
    parser.add_argument('--dataset', type=Path, default=None,
                        help='train on this dataset folder instead of collecting one')
    parser.add_argument('--out', type=Path, default=None,
                        help='output folder (default runs/train-<profile>-<seed>); never '
                             'overwritten')
    parser.add_argument('--adr', action='store_true',
                        help='keypoints: draw the training worlds by ADR (adr_training in '
                             'randomization.yaml); resumes an interrupted run in --out')
    parser.add_argument('--rounds', type=int, default=40,
                        help='--adr: rounds (default 40), --worlds spread over them')
    parser.add_argument('--sysid', type=Path, default=None, metavar='SYSID_PARAMS',
                        help="centre the profile's physics ranges on the values identified "
                             'on the robot (sysid_params.yaml of sim2real sysid): each range '
                             "keeps its width; not with --adr. The stage's dynamics shape bc's "
                             "demonstrations, hardly the keypoint network's frames (the "
                             'stage is placed, not driven)')
    parser.add_argument('--bundle', action='store_true',
                        help='also install the model as the bundled policy of sim2real_policy')
    add_rollout_arguments(parser)


DEFAULT_EPISODES = {'none': 150, 'light': 200, 'heavy': 300}


def run(args) -> int:
    """Collect, train, export."""
    for name in ('worlds', 'epochs', 'episodes'):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f'--{name} must be >= 1, got {value}')
    # Training worlds are seeds 10**6 + seed * 10**4 + k, validation 2 * 10**6 + ...: kept
    # apart from each other, from fine-tuning's (3 and 4 * 10**6) and from evaluation's.
    if not 0 <= args.seed < 100:
        raise ValueError(f'--seed must be in [0, 100), got {args.seed}')
    if args.worlds > 10**4:
        raise ValueError(f"--worlds must be at most 10000 (a seed's block), got {args.worlds}")
    if args.sysid is not None and args.adr:
        raise ValueError('--sysid and --adr do not go together (ADR moves its own ranges)')
    if args.kind == 'keypoints':
        return run_keypoints(args)
    from sim2real_bringup.config import load_yaml
    from sim2real_policy import data, train
    from sim2real_policy.models import BUNDLED_BC_CHECKPOINT
    from sim2real_policy.rollout import Progress
    from sim2real_policy.sim.randomization import Randomizer

    out = args.out or Path('runs') / f'train-{_label(args)}-{args.seed}'
    if out.exists():
        raise FileExistsError(f'{out} exists already; choose another --out')
    if args.dataset and args.sysid:
        raise ValueError('--sysid centres the worlds a training collects; with --dataset it '
                         'collects none')
    started = time.perf_counter()
    identified = {}
    if args.dataset:
        dataset = data.load(args.dataset)
    else:
        episodes = args.episodes or DEFAULT_EPISODES.get(args.randomization, 150)
        config = load_yaml('randomization.yaml')
        profile, identified = _profile(args, config)
        randomizer = Randomizer(config, profile)

        # Demonstration seeds start at 10**6 so they never coincide with evaluation seeds.
        dataset = data.collect(randomizer, episodes, first_seed=10**6 + args.seed * 10**4,
                               progress=Progress('demonstrations', episodes),
                               **rollout_options(args))
        data.save(dataset, out / 'dataset', randomization=args.randomization,
                  command=' '.join(sys.argv))
        print(f'collected {len(dataset["images"])} samples from {episodes} episodes, expert '
              f'success {dataset["success"].mean():.0%} ({time.perf_counter() - started:.0f} s)')

    def epoch(done, total, loss, val):
        if done % 5 == 0 or done == total:
            print(f'  epoch {done}/{total}: train {loss:.4f}, validation {val:.4f}',
                  file=sys.stderr, flush=True)

    summary = train.train(dataset, out, epochs=args.epochs or 25, seed=args.seed,
                          model_id=f'grasp-{_label(args)}-s{args.seed}',
                          extra={'randomization': args.randomization,
                                 **_sysid_extra(args, identified)},
                          progress=epoch)
    print(f'trained in {summary["seconds"]:.0f} s on {summary["samples"]} samples: '
          f'{out / "model.onnx"} (curves: {out / "training_curves.png"})')
    if args.bundle:
        # the end-to-end policy is kept for fine-tuning; the bundled policy is the keypoint one
        shutil.copyfile(out / 'model.pt', BUNDLED_BC_CHECKPOINT)
        print(f'bundled as {BUNDLED_BC_CHECKPOINT}')
    print(f'total {time.perf_counter() - started:.0f} s')
    return 0


def run_keypoints(args) -> int:
    """Render, train, export the keypoint policy."""
    import numpy as np

    from sim2real_bringup.config import load_yaml
    from sim2real_policy.keypoints import render_dataset
    from sim2real_policy.train_keypoints import train_keypoints

    out = args.out or Path('runs') / (f'train-{_label(args)}{"-adr" if args.adr else ""}'
                                      f'-{args.seed}')
    # an ADR run resumes in its own folder (adr_run.json says with what), from its checkpoint
    # or, stopped before the first round ended, from its validation frames
    run_file = out / 'adr_run.json'
    run_record = {'randomization': args.randomization, 'seed': args.seed,
                  'worlds': args.worlds, 'rounds': args.rounds}
    resuming = args.adr and run_file.is_file()
    if resuming and json.loads(run_file.read_text()) != run_record:
        raise ValueError(f'{run_file}: this ADR run was started with '
                         f'{run_file.read_text().strip()}, not {json.dumps(run_record)}; '
                         'resume it with those options or choose another --out')
    if out.exists() and not resuming:
        raise FileExistsError(f'{out} exists already; choose another --out')
    config = load_yaml('randomization.yaml')
    if args.randomization not in config.get('profiles', {}):
        raise ValueError(f'unknown randomization profile {args.randomization!r}; choose from '
                         f'{sorted(config.get("profiles", {}))}')
    if args.rounds < 1 or (args.adr and args.worlds < args.rounds):
        raise ValueError(f'--rounds must be >= 1 and at most --worlds ({args.worlds}), got '
                         f'{args.rounds}')
    profile, identified = _profile(args, config)
    started = time.perf_counter()
    base = args.seed * 10**4

    def rendered(what):
        def progress(done, total):
            print(f'  {what}: {done}/{total} worlds ({time.perf_counter() - started:.0f} s)',
                  file=sys.stderr, flush=True)
        return progress

    # Training worlds from seed 10**6, validation from 2 * 10**6: never evaluation seeds.
    options = rollout_options(args)
    if resuming and (out / 'validation.npz').is_file():
        with np.load(out / 'validation.npz') as saved:
            validation = {k: saved[k] for k in saved.files}
    else:
        first = 2 * 10**6 + base
        validation = render_dataset(config, profile,
                                    range(first, first + max(1, args.worlds // 10)),
                                    progress=rendered('validation'), **options)
    if args.adr:
        return _train_adr(args, out, config, validation, options, started)
    training = render_dataset(config, profile,
                              range(10**6 + base, 10**6 + base + args.worlds),
                              progress=rendered('training'), **options)
    out.mkdir(parents=True)
    np.savez_compressed(out / 'validation.npz', **validation)
    print(f'rendered {len(training["frames"])} training and {len(validation["frames"])} '
          f'validation frames ({time.perf_counter() - started:.0f} s wall)')

    def epoch(done, total, loss, p95, seconds):
        print(f'  epoch {done}/{total}: loss {loss:.3f}, validation p95 {p95:.2f} px '
              f'({seconds:.0f} s)', file=sys.stderr, flush=True)

    epochs = args.epochs or KEYPOINT_EPOCHS
    summary = train_keypoints(training, validation, out, epochs=epochs,
                              seed=args.seed,
                              model_id=f'keypoints-{_label(args)}-s{args.seed}',
                              extra={'randomization': args.randomization,
                                     'worlds': args.worlds, 'epochs': epochs,
                                     **_sysid_extra(args, identified)},
                              progress=epoch)
    _print_validation(summary)
    print(f'trained in {summary["seconds"]:.0f} s: {summary["model"]}')
    return _bundle(args, out, started)


def _label(args) -> str:
    return f'{args.randomization}-sysid' if args.sysid else args.randomization


def _profile(args, config: dict) -> tuple:
    """``(profile, identified values)`` of the training worlds.

    The profile's name and ``{}``; with --sysid, the profile centred on the file's values, and
    those values.
    """
    from sim2real_bringup.commands.sysid import read_sim_params
    from sim2real_policy.sim.randomization import centred_profile

    if args.sysid is None:
        return args.randomization, {}
    profiles = config.get('profiles', {})
    if args.randomization not in profiles:
        raise ValueError(f'unknown randomization profile {args.randomization!r}; choose from '
                         f'{sorted(profiles)}')
    identified = read_sim_params(args.sysid)
    return centred_profile(profiles[args.randomization] or {}, identified,
                           f'{args.sysid}: sim_params'), identified


def _sysid_extra(args, identified: dict) -> dict:
    """The model's metadata of a --sysid run: what its ranges were centred on."""
    if args.sysid is None:
        return {}
    return {'sysid': {'file': str(args.sysid), 'sim_params': identified}}


def _print_validation(summary: dict) -> None:
    for name, figures in summary['validation'].items():
        print(f'  {name}: mean {figures["mean_px"]:.2f} px, p95 {figures["p95_px"]:.2f} px '
              '(validation worlds, measured)')


def _bundle(args, out: Path, started: float) -> int:
    """Install the model as the bundled policy if asked; the total time."""
    from sim2real_policy.models import BUNDLED

    if args.bundle:
        shutil.copyfile(out / 'keypoints.onnx', BUNDLED)
        print(f'bundled as {BUNDLED}')
    print(f'total {time.perf_counter() - started:.0f} s wall (this call)')
    return 0


def _train_adr(args, out: Path, config: dict, validation: dict, options: dict,
               started: float) -> int:
    """The ADR curriculum (resumable), then the same report and bundling."""
    import numpy as np

    from sim2real_policy.train_keypoints_adr import ADRTrainingConfig, train_keypoints_adr

    out.mkdir(parents=True, exist_ok=True)
    if not (out / 'validation.npz').is_file():
        partial = out / 'validation.partial.npz'
        np.savez_compressed(partial, **validation)
        partial.replace(out / 'validation.npz')     # whole or absent: a resume reads it
    record = out / 'adr_run.json'
    if not record.is_file():
        record.write_text(json.dumps({'randomization': args.randomization, 'seed': args.seed,
                                      'worlds': args.worlds, 'rounds': args.rounds}))
    settings = ADRTrainingConfig(rounds=args.rounds,
                                 worlds_per_round=max(1, args.worlds // args.rounds))

    def round_done(done, total, loss, p95, mastery, updates, seconds):
        moved = ', '.join(f'{u["parameter"]} {u["boundary"]} {u["from"]:.3g}->{u["to"]:.3g}'
                          for u in updates) or 'no range moved'
        print(f'  round {done}/{total}: loss {loss:.3f}, validation p95 {p95:.2f} px, '
              f'mastered {mastery:.0%} of new worlds; {moved} ({seconds:.0f} s)',
              file=sys.stderr, flush=True)

    summary = train_keypoints_adr(
        config, args.randomization, validation, out, settings, seed=args.seed,
        model_id=f'keypoints-{args.randomization}-adr-s{args.seed}', progress=round_done,
        **options)
    _print_validation(summary)
    adr = summary['adr']
    print(f'ADR after {adr["worlds"]} worlds, {adr["updates"]} range updates; round '
          f'{adr["chosen_round"]} of {adr["rounds"]} kept (lowest validation p95):')
    for name, (low, high) in adr['ranges'].items():
        limit_low, limit_high = adr['limits'][name]
        print(f'  {name}: [{low:.4g}, {high:.4g}] (limits [{limit_low:.4g}, {limit_high:.4g}])')
    print(f'{summary["model"]}')
    return _bundle(args, out, started)

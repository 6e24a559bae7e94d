"""Fine-tune a trained policy on a few real episodes, encoder frozen, real and sim mixed.

``--kind keypoints`` (default; the bundled policy): the keypoint network of --model (default
the bundled policy) on the frames of --real-dataset, a folder written by
``sim2real export BAGS --out DATASET --calibration CELL.yaml`` (labels from the robot's held
grasps and measured stage). Its convolutional stem stays frozen; every batch is
--real-fraction real frames, the rest frames rendered fresh from the base model's own
randomization. A fifth of the real episodes is held out: the epoch kept is the one with the
lowest error on them (the base model itself when none is better).

  sim2real collect --phase teleop --episodes 30
  sim2real calibrate-cell --where proxy --out runs/proxy-cell.yaml
  sim2real export runs/collect-teleop-*/bag --out runs/real --calibration runs/proxy-cell.yaml
  sim2real finetune --real-dataset runs/real

``--kind bc``: the end-to-end behaviour-cloning policy (model.pt) on expert demonstrations
collected on the reality proxy (or --real-dataset), the seed's recipe.
"""
from __future__ import annotations

import json
from pathlib import Path
import sys
import time

from sim2real_bringup.commands.rollout_options import add_rollout_arguments, rollout_options


def add_arguments(parser) -> None:
    """Options of ``sim2real finetune``."""
    parser.add_argument('--kind', choices=('keypoints', 'bc'), default='keypoints',
                        help='keypoints (the keypoint network; default) or bc')
    parser.add_argument('--model', default='',
                        help='keypoints: the keypoint model to start from (default bundled)')
    parser.add_argument('--sim-worlds', type=int, default=400,
                        help="keypoints: worlds rendered from the base model's randomization "
                             'for the sim share of the batches (4 frames each; default 400)')
    parser.add_argument('--checkpoint', type=Path, default=None,
                        help='bc: model.pt to start from (default: the bundled bc weights)')
    parser.add_argument('--sim-dataset', type=Path, default=Path('runs/train-heavy-0/dataset'),
                        help='bc: simulated dataset (default runs/train-heavy-0/dataset)')
    parser.add_argument('--real-dataset', type=Path, default=None,
                        help='real episodes (sim2real export); keypoints: required, exported '
                             'with --calibration; bc: default collect --real-episodes on the '
                             'proxy')
    parser.add_argument('--real-episodes', type=int, default=30,
                        help='bc: proxy episodes to collect when no --real-dataset (default 30)')
    parser.add_argument('--real-fraction', type=float, default=None,
                        help='share of real samples in every batch (default: the one stored '
                             'by `sim2real export`, else 0.5, the seed)')
    parser.add_argument('--epochs', type=int, default=None,
                        help='epochs (default 60 keypoints, 30 bc)')
    parser.add_argument('--seed', type=int, default=0, help='seed')
    parser.add_argument('--out', type=Path, default=None,
                        help='output folder (default runs/finetune-<seed>)')
    add_rollout_arguments(parser)


def run(args) -> int:
    """Fine-tune the chosen kind."""
    if args.real_fraction is not None and not 0.0 < args.real_fraction < 1.0:
        raise ValueError(f'--real-fraction must be in (0, 1), got {args.real_fraction}')
    for name in ('epochs', 'sim_worlds'):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f'--{name.replace("_", "-")} must be >= 1, got {value}')
    # the sim worlds are seeds 3 * 10**6 + seed * 10**4 + k: apart from every other run's
    if not 0 <= args.seed < 100:
        raise ValueError(f'--seed must be in [0, 100), got {args.seed}')
    if args.sim_worlds > 10**4:
        raise ValueError(f'--sim-worlds must be at most 10000, got {args.sim_worlds}')
    out = args.out or Path('runs') / f'finetune-{args.seed}'
    if out.exists():
        raise FileExistsError(f'{out} exists already; choose another --out')
    if args.kind == 'keypoints':
        return run_keypoints(args, out)
    return run_bc(args, out)


def run_keypoints(args, out: Path) -> int:
    """Render the sim share, fine-tune the keypoint network, export."""
    from sim2real_bringup.config import load_yaml
    from sim2real_bringup.keypoint_export import load_keypoints
    from sim2real_policy.keypoints import render_dataset
    from sim2real_policy.models import resolve_model
    from sim2real_policy.policy import read_metadata
    from sim2real_policy.rollout import Progress
    from sim2real_policy.train_keypoints import finetune_keypoints

    if args.real_dataset is None:
        raise ValueError('--real-dataset is required for --kind keypoints: a folder written by '
                         '`sim2real export BAGS --out DATASET --calibration CELL.yaml`')
    real = load_keypoints(args.real_dataset)
    stored = args.real_dataset / 'dataset.json'
    real_fraction = args.real_fraction or (
        float(json.loads(stored.read_text()).get('real_fraction', 0.5)) if stored.is_file()
        else 0.5)
    base = resolve_model(args.model)
    profile = read_metadata(base).extra.get('randomization', 'heavy')
    config = load_yaml('randomization.yaml')
    if profile not in config.get('profiles', {}):
        raise ValueError(f'{base}: its randomization {profile!r} is not a profile of '
                         'randomization.yaml')
    started = time.perf_counter()
    options = rollout_options(args)

    # Sim worlds from 3 * 10**6, their validation from 4 * 10**6: apart from training
    # (10**6...), its validation (2 * 10**6...) and every evaluation seed.
    base_seed = args.seed * 10**4
    validation_worlds = max(1, args.sim_worlds // 4)
    sim = render_dataset(config, profile, range(3 * 10**6 + base_seed,
                                                3 * 10**6 + base_seed + args.sim_worlds),
                         progress=Progress(f'{profile} sim worlds', args.sim_worlds), **options)
    validation = render_dataset(config, profile,
                                range(4 * 10**6 + base_seed,
                                      4 * 10**6 + base_seed + validation_worlds),
                                progress=Progress('sim validation worlds', validation_worlds),
                                **options)

    def epoch(done, total, loss, p95, seconds):
        print(f'  epoch {done}/{total}: loss {loss:.3f}, real hold-out p95 {p95:.2f} px '
              f'({seconds:.0f} s)', file=sys.stderr, flush=True)

    summary = finetune_keypoints(base, real, sim, validation, out, epochs=args.epochs or 60,
                                 real_fraction=real_fraction, seed=args.seed,
                                 progress=epoch)
    before, after = summary['holdout_p95_px']['before'], summary['holdout_p95_px']['after']
    sim_before = summary['sim_validation_p95_px']['before']
    sim_after = summary['sim_validation_p95_px']['after']

    def text(p95):
        return ', '.join(f'{k} {v:.2f}' for k, v in p95.items())

    print(f'fine-tuned {base.name} on {summary["real_frames"]} frames of '
          f'{summary["real_episodes"] - summary["holdout_episodes"]} real episodes '
          f'(epoch {summary["chosen_epoch"]} of {summary["epochs"]} kept; 0 = the base) in '
          f'{time.perf_counter() - started:.0f} s wall')
    print(f'  real hold-out ({summary["holdout_episodes"]} episodes, the ones that chose the '
          f'epoch) p95 px: {text(before)} -> {text(after)}')
    print(f'  {profile} sim validation p95 px: {text(sim_before)} -> {text(sim_after)}')
    print(f'  {summary["model"]}')
    return 0


def run_bc(args, out: Path) -> int:
    """Collect (if needed) and fine-tune the behaviour-cloning policy."""
    from sim2real_bringup.config import load_yaml
    from sim2real_bringup.evaluation import PROXY_FILE, PROXY_KEY
    from sim2real_policy import data, train
    from sim2real_policy.models import BUNDLED_BC_CHECKPOINT
    from sim2real_policy.sim.randomization import Randomizer

    checkpoint = args.checkpoint or BUNDLED_BC_CHECKPOINT
    if not checkpoint.is_file():
        raise FileNotFoundError(f'checkpoint {checkpoint} not found (sim2real train --kind bc '
                                '--bundle writes the bundled one)')
    sim = data.load(args.sim_dataset)
    if args.real_dataset:
        real = data.load(args.real_dataset)
    else:
        proxy = Randomizer(load_yaml('randomization.yaml'), load_yaml(PROXY_FILE)[PROXY_KEY])
        real = data.collect(proxy, args.real_episodes, first_seed=5 * 10**5 + args.seed * 10**3,
                            progress=lambda d, t: print(f'  proxy episodes {d}/{t}',
                                                        file=sys.stderr, flush=True))
        data.save(real, out / 'real_dataset', source='reality proxy, expert demonstrations')
    real_fraction = args.real_fraction or float(real['info'].get('real_fraction', 0.5))
    real = train.successful_only(real)
    sim = train.successful_only(sim)
    summary = train.finetune(checkpoint, real, sim, out, epochs=args.epochs or 30,
                             real_fraction=real_fraction, seed=args.seed)
    print(f'fine-tuned on {summary["real_samples"]} real samples in {summary["seconds"]:.0f} s:'
          f' {summary["model"]}')
    return 0

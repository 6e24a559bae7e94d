"""Fine-tune a trained policy on a few episodes from the reality proxy (the seed's recipe).

The encoder is frozen and the head trained on real and sim samples mixed (--real-fraction of
every batch real). Here the "real" episodes are expert demonstrations on the reality proxy,
standing in for teleoperated episodes on the robot; with collected bags, export them to a
dataset folder and pass it as --real-dataset.
"""
from __future__ import annotations

from pathlib import Path
import sys


def add_arguments(parser) -> None:
    """Options of ``sim2real finetune``."""
    parser.add_argument('--checkpoint', type=Path, default=None,
                        help='model.pt to start from (default: the bundled policy)')
    parser.add_argument('--sim-dataset', type=Path, default=Path('runs/train-heavy-0/dataset'),
                        help='simulated dataset (default runs/train-heavy-0/dataset)')
    parser.add_argument('--real-dataset', type=Path, default=None,
                        help='real episodes (default: collect --real-episodes on the proxy)')
    parser.add_argument('--real-episodes', type=int, default=30,
                        help='proxy episodes to collect when no --real-dataset (default 30)')
    parser.add_argument('--real-fraction', type=float, default=None,
                        help='share of real samples in every batch (default: the one stored '
                             'by `sim2real export`, else 0.5, the seed)')
    parser.add_argument('--epochs', type=int, default=30, help='epochs (default 30)')
    parser.add_argument('--seed', type=int, default=0, help='seed')
    parser.add_argument('--out', type=Path, default=None,
                        help='output folder (default runs/finetune-<seed>)')


def run(args) -> int:
    """Collect (if needed) and fine-tune."""
    from sim2real_bringup.config import load_yaml
    from sim2real_bringup.evaluation import PROXY_FILE, PROXY_KEY
    from sim2real_policy import data, train
    from sim2real_policy.models import BUNDLED_BC_CHECKPOINT
    from sim2real_policy.sim.randomization import Randomizer

    if args.real_fraction is not None and not 0.0 < args.real_fraction < 1.0:
        raise ValueError(f'--real-fraction must be in (0, 1), got {args.real_fraction}')
    out = args.out or Path('runs') / f'finetune-{args.seed}'
    if out.exists():
        raise FileExistsError(f'{out} exists already; choose another --out')
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
    summary = train.finetune(checkpoint, real, sim, out, epochs=args.epochs,
                             real_fraction=real_fraction, seed=args.seed)
    print(f'fine-tuned on {summary["real_samples"]} real samples in {summary["seconds"]:.0f} s:'
          f' {summary["model"]}')
    return 0

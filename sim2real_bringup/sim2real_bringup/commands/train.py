"""Collect expert demonstrations in the simulator and train a policy by behaviour cloning.

Needs the optional training extra: pip install torch==2.13.0. The result is a folder with
model.onnx (metadata embedded: normalization, action names, horizon, period), model.pt (for
fine-tuning), training_curves.png, training.json and the dataset. The bundled policy is
`sim2real train --randomization light --seed 0 --bundle`.
"""
from __future__ import annotations

from pathlib import Path
import shutil
import sys
import time


def add_arguments(parser) -> None:
    """Options of ``sim2real train``."""
    parser.add_argument('--randomization', default='light',
                        help='profile of randomization.yaml for the demonstrations '
                             "(none, light, heavy; default light, the bundled policy's)")
    parser.add_argument('--episodes', type=int, default=None,
                        help='demonstration episodes (default: 150 none, 200 light, 300 heavy)')
    parser.add_argument('--epochs', type=int, default=25, help='training epochs (default 25)')
    parser.add_argument('--seed', type=int, default=0, help='seed of data and training')
    parser.add_argument('--dataset', type=Path, default=None,
                        help='train on this dataset folder instead of collecting one')
    parser.add_argument('--out', type=Path, default=None,
                        help='output folder (default runs/train-<profile>-<seed>); never '
                             'overwritten')
    parser.add_argument('--bundle', action='store_true',
                        help='also install the model as the bundled policy of sim2real_policy')


DEFAULT_EPISODES = {'none': 150, 'light': 200, 'heavy': 300}


def run(args) -> int:
    """Collect, train, export."""
    from sim2real_bringup.config import load_yaml
    from sim2real_policy import data, train
    from sim2real_policy.models import BUNDLED
    from sim2real_policy.sim.randomization import Randomizer

    out = args.out or Path('runs') / f'train-{args.randomization}-{args.seed}'
    if out.exists():
        raise FileExistsError(f'{out} exists already; choose another --out')
    started = time.perf_counter()
    if args.dataset:
        dataset = data.load(args.dataset)
    else:
        episodes = args.episodes or DEFAULT_EPISODES.get(args.randomization, 150)
        randomizer = Randomizer(load_yaml('randomization.yaml'), args.randomization)

        def collected(done, total, success):
            if done % 10 == 0 or done == total:
                print(f'  demonstrations {done}/{total}', file=sys.stderr, flush=True)

        # Demonstration seeds start at 10**6 so they never coincide with evaluation seeds.
        dataset = data.collect(randomizer, episodes, first_seed=10**6 + args.seed * 10**4,
                               progress=collected)
        data.save(dataset, out / 'dataset', randomization=args.randomization,
                  command=' '.join(sys.argv))
        print(f'collected {len(dataset["images"])} samples from {episodes} episodes, expert '
              f'success {dataset["success"].mean():.0%} ({time.perf_counter() - started:.0f} s)')

    def epoch(done, total, loss, val):
        if done % 5 == 0 or done == total:
            print(f'  epoch {done}/{total}: train {loss:.4f}, validation {val:.4f}',
                  file=sys.stderr, flush=True)

    summary = train.train(dataset, out, epochs=args.epochs, seed=args.seed,
                          model_id=f'grasp-{args.randomization}-s{args.seed}',
                          extra={'randomization': args.randomization}, progress=epoch)
    print(f'trained in {summary["seconds"]:.0f} s on {summary["samples"]} samples: '
          f'{out / "model.onnx"} (curves: {out / "training_curves.png"})')
    if args.bundle:
        shutil.copyfile(out / 'model.onnx', BUNDLED)
        shutil.copyfile(out / 'model.pt', BUNDLED.with_suffix('.pt'))
        print(f'bundled as {BUNDLED}')
    print(f'total {time.perf_counter() - started:.0f} s')
    return 0

"""Collected bags to a training set that `sim2real finetune --real-dataset` reads directly.

  sim2real export runs/collect-*/bag --out runs/real-dataset [--real-fraction 0.5]

Episodes, labels (an operator's label wins over the automatic one), interventions and grasp
attempts are read from each bag's /collect/events; samples are the processed images, robot
states and executed commands every 0.1 s. --real-fraction is stored with the dataset: the
share of real samples per fine-tuning batch (the rest from --sim-dataset).
"""
from __future__ import annotations

import json
from pathlib import Path


def add_arguments(parser) -> None:
    """Options of ``sim2real export``."""
    parser.add_argument('bags', type=Path, nargs='+', help='collection bags')
    parser.add_argument('--out', type=Path, required=True, help='new dataset folder')
    parser.add_argument('--real-fraction', type=float, default=0.5,
                        help='share of these samples in every fine-tuning batch (default 0.5)')


def run(args) -> int:
    """Export and print the summary."""
    from sim2real_bringup.export import export

    if args.out.exists():
        raise FileExistsError(f'{args.out} exists already; datasets are never overwritten')
    summary = export(args.bags, args.out, args.real_fraction,
                     progress=lambda bag, n: print(f'  {bag}: {n} episodes so far', flush=True))
    (args.out / 'summary.json').write_text(json.dumps(summary, indent=1))
    print(f'{summary["episodes"]} episodes ({summary["successes"]} successful, '
          f'{summary["failures"]} failed; {summary["operator_labels"]} operator labels, '
          f'{summary["overridden"]} overriding the automatic one), '
          f'{summary["interventions"]} interventions, {summary["hours"]:.3f} h, '
          f'{summary["samples"]} samples -> {args.out}')
    print(f'next: sim2real finetune --real-dataset {args.out} --sim-dataset SIM_DATASET')
    return 0

"""Collected bags to a training set that `sim2real finetune --real-dataset` reads directly.

  sim2real export runs/collect-*/bag --out runs/real-dataset [--real-fraction 0.5]

Episodes, labels (an operator's label wins over the automatic one), interventions and grasp
attempts are read from each bag's /collect/events; samples are the processed images, robot
states and executed commands every 0.1 s. --real-fraction is stored with the dataset: the
share of real samples per fine-tuning batch (the rest from --sim-dataset).

With --calibration (the cell's calibration file, `sim2real calibrate-cell` or the robot's),
the folder also gets keypoints.npz: raw camera frames of successful episodes labelled with
the object's footprint (where the fingers held it) and the TCP (the measured stage), projected
through the calibration; `sim2real finetune` fine-tunes the keypoint network on them.
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
    parser.add_argument('--calibration', type=Path, default=None,
                        help="the cell's calibration (YAML): also write keypoint labels "
                             '(keypoints.npz) for fine-tuning the keypoint policy')


def run(args) -> int:
    """Export and print the summary."""
    import shutil

    from sim2real_bringup.export import export
    from sim2real_bringup.keypoint_export import keypoint_labels, write_keypoints
    from sim2real_safety.cell_file import read_cell_file

    if args.out.exists():
        raise FileExistsError(f'{args.out} exists already; datasets are never overwritten')
    if not 0.0 < args.real_fraction < 1.0:
        raise ValueError(f'--real-fraction must be in (0, 1), got {args.real_fraction}')
    calibration = read_cell_file(args.calibration) if args.calibration else None
    if calibration is not None and calibration.table_height is None:
        raise ValueError(f'calibration file {args.calibration}: table_height is null (the '
                         'touch-off found no table); object labels need it')
    # everything is read and checked before anything is written; the folder appears whole
    keypoints = keypoint_labels(args.bags, calibration) if calibration is not None else None
    partial = args.out.with_name(f'.{args.out.name}.partial')
    shutil.rmtree(partial, ignore_errors=True)
    try:
        summary = export(args.bags, partial, args.real_fraction,
                         progress=lambda bag, n: print(f'  {bag}: {n} episodes so far',
                                                       flush=True))
        if keypoints is not None:
            summary.update(write_keypoints(keypoints, partial))
        (partial / 'summary.json').write_text(json.dumps(summary, indent=1))
        partial.rename(args.out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    print(f'{summary["episodes"]} episodes ({summary["successes"]} successful, '
          f'{summary["failures"]} failed; {summary["operator_labels"]} operator labels, '
          f'{summary["overridden"]} overriding the automatic one), '
          f'{summary["interventions"]} interventions, {summary["hours"]:.3f} h, '
          f'{summary["samples"]} samples -> {args.out}')
    if calibration is not None:
        print(f'{summary["keypoint_frames"]} frames of {summary["keypoint_episodes"]} held '
              f'grasps labelled with {" and ".join(summary["labelled"])}')
        print(f'next: sim2real finetune --real-dataset {args.out} [--model KEYPOINTS.onnx]')
    else:
        print(f'next: sim2real finetune --kind bc --real-dataset {args.out} '
              '--sim-dataset SIM_DATASET')
    return 0

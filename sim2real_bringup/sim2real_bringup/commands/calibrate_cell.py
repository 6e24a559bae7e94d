"""Commission a simulated cell by the robot's own procedure and node; write the cell file.

The commissioning node (the one ``commission.launch.py`` runs on a robot) touches the table
off with the closed gripper through the safety node's commissioning mode, then shows the TCP
at a grid of known stage positions to the keypoint network and fits the camera; the stage's
response gives the actuation delay. The result is the ``calibration_file`` of the policy,
control and safety nodes. Here the cell is the MuJoCo world of a randomization profile (or
the reality proxy) at a seed, on the in-process runtime; the simulator's truth is read only
to print how far off the calibration is, labelled as such.
"""
from __future__ import annotations

from pathlib import Path
import sys
import time


def add_arguments(parser) -> None:
    """Options of ``sim2real calibrate-cell``."""
    parser.add_argument('--out', type=Path, required=True,
                        help='cell file to write (never overwritten without --replace)')
    parser.add_argument('--replace', action='store_true',
                        help='replace --out, keeping the old file beside it')
    parser.add_argument('--where', default='none',
                        help='the cell: a randomization profile (none, light, heavy) or proxy '
                             '(default none, the nominal scene of sim.launch.py)')
    parser.add_argument('--seed', type=int, default=0, help="the world's seed (default 0)")
    parser.add_argument('--model', default='',
                        help='keypoint policy whose network finds the TCP (default bundled)')


def run(args) -> int:
    """Run the commissioning node on the simulated cell and write the cell file."""
    from sim2real_bringup.commission import commission_sim_cell
    from sim2real_bringup.evaluation import episode_source
    from sim2real_policy.keypoint_policy import KeypointDetector
    from sim2real_policy.models import resolve_model

    if args.out.exists() and not args.replace:
        raise FileExistsError(f'{args.out} exists already; choose another --out or --replace')
    detector = KeypointDetector(resolve_model(args.model))
    params = episode_source(args.where)(args.seed)
    started = time.perf_counter()
    result = commission_sim_cell(
        params, args.out, f'sim2real sim, {args.where}, seed {args.seed}', detector,
        overrides={'commissioning_node': {'model_path': args.model}} if args.model else None,
        replace=args.replace, progress=lambda line: print(f'  {line}', flush=True))
    wall = time.perf_counter() - started
    calibration = result['calibration']
    if calibration is None:
        print(f'calibrate-cell: commissioning failed: {result["error"]}', file=sys.stderr)
        return 1
    table_text = ("below the gripper's reach (bounded: at most "
                  f'{calibration.table_height_max * 1e3:+.1f} mm)'
                  if calibration.table_height is None
                  else f'{calibration.table_height * 1e3:+.1f} mm')
    delay_text = ('not measured' if calibration.actuation_delay is None
                  else f'{calibration.actuation_delay * 1e3:.0f} ms')
    print(f'table {table_text}; camera from {calibration.points_used} of '
          f'{calibration.points_seen} poses, reprojection rms '
          f'{calibration.reprojection_rms_px:.2f} px; actuation delay {delay_text}')
    truth = result['truth']
    print(f"checked against the simulator's truth: table {params.table_height * 1e3:+.1f} mm; "
          f'table points mapped within {truth["table_point_error_m_p95"] * 1e3:.1f} mm (p95); '
          f'actuation delay {params.action_delay * 1e3:.0f} ms')
    print(f"{result['sim_time']:.1f} s of robot time (simulated), {wall:.1f} s wall "
          f"(measured); the TCP's lowest true height {result['lowest_tcp_z'] * 1e3:+.1f} mm; "
          f'wrote {args.out}')
    return 0

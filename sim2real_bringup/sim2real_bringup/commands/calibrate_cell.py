"""Calibrate a simulated cell's camera and table by the robot's own procedure; write the file.

The procedure (sim2real_policy.cell_calibration) touches the table off with the closed
gripper, then shows the TCP at a grid of known stage positions to the keypoint network and
fits the camera. The result is the ``calibration_file`` of policy_node. Here the cell is the
MuJoCo world of a randomization profile (or the reality proxy) at a seed; the simulator's
truth is read only to print how far off the calibration is, labelled as such.
"""
from __future__ import annotations

from pathlib import Path
import time


def add_arguments(parser) -> None:
    """Options of ``sim2real calibrate-cell``."""
    parser.add_argument('--out', type=Path, required=True,
                        help='calibration YAML to write (never overwritten)')
    parser.add_argument('--where', default='none',
                        help='the cell: a randomization profile (none, light, heavy) or proxy '
                             '(default none, the nominal scene of sim.launch.py)')
    parser.add_argument('--seed', type=int, default=0, help="the world's seed (default 0)")
    parser.add_argument('--model', default='',
                        help='keypoint policy whose network finds the TCP (default bundled)')


def run(args) -> int:
    """Run the procedure on the simulated cell and write the calibration."""
    import numpy as np

    from sim2real_bringup.evaluation import episode_source
    from sim2real_policy.cell_calibration import calibrate_cell, provenance, SimCellRobot
    from sim2real_policy.keypoint_policy import KeypointDetector
    from sim2real_policy.keypoints import FRAME_SIZE, table_point_errors
    from sim2real_policy.models import resolve_model
    from sim2real_policy.sim.randomization import VisualRandomizer
    from sim2real_policy.sim.robot import GripperSim
    from sim2real_safety.cell_file import write_cell_file

    if args.out.exists():
        raise FileExistsError(f'{args.out} exists already; choose another --out')
    detector = KeypointDetector(resolve_model(args.model))
    params = episode_source(args.where)(args.seed)
    started = time.perf_counter()
    with GripperSim(params) as sim:
        visual = VisualRandomizer(params.image, params.seed)
        calibration = calibrate_cell(SimCellRobot(sim, visual, FRAME_SIZE), detector,
                                     cell=f'sim2real sim, {args.where}, seed {args.seed}')
        simulated = sim.time
        error = table_point_errors(sim, visual, calibration.matrix)
    table = params.table_height
    calibration.provenance = provenance(resolve_model(args.model), 'MuJoCo (simulated)')
    calibration.extra['model'] = detector.meta.model_id
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_cell_file(calibration, args.out)
    table_text = ("below the gripper's reach" if calibration.table_height is None
                  else f'{calibration.table_height * 1e3:+.1f} mm')
    delay_text = ('not measured' if calibration.actuation_delay is None
                  else f'{calibration.actuation_delay * 1e3:.0f} ms (control.yaml '
                  'actuation_delay)')
    print(f'table {table_text}; camera from {calibration.points_used} of '
          f'{calibration.points_seen} poses, reprojection rms '
          f'{calibration.reprojection_rms_px:.2f} px; actuation delay {delay_text}')
    print(f"checked against the simulator's truth: table {table * 1e3:+.1f} mm; table points "
          f'mapped within {np.mean(error) * 1e3:.1f} mm mean, {np.max(error) * 1e3:.1f} mm max; '
          f'actuation delay {params.action_delay * 1e3:.0f} ms')
    print(f'{simulated:.1f} s of robot time (simulated), {time.perf_counter() - started:.1f} s '
          f'wall; wrote {args.out}')
    return 0

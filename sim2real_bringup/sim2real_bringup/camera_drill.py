"""The bumped-camera drill: is a camera moved after commissioning caught before a grasp.

Each trial: a world of the heavy ranges is commissioned as it is (the cell file), then an
episode runs through the full in-process stack on the same world with its camera tilted by
``tilt_deg`` or moved by ``shift_m`` without turning (along y: sideways to its view) after
commissioning. The keypoint policy checks the cell file against the camera before its first
grasp (:mod:`sim2real_policy.calibration_check`): caught is the supervisor in HUMAN_REQUIRED for
``camera_calibration`` with the check's reason, before any grasp. The safety auditor judges
every command the robot was sent. The same trial without the bump is the control: the check
must pass and the policy go on. Times are on the simulated clock.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from sim2real_bringup.drills import Observer
from sim2real_bringup.evaluation import episode_source
from sim2real_bringup.pipeline import load_runner, NS, Pipeline, PipelineConfig
from sim2real_policy.camera_geometry import GeometryError
from sim2real_policy.cell_calibration import calibrate_cell, SimCellRobot
from sim2real_policy.keypoints import FRAME_SIZE
from sim2real_policy.sim.randomization import VisualRandomizer
from sim2real_policy.sim.robot import GripperSim
from sim2real_safety.audit import OutputAuditor
from sim2real_safety.cell_file import commissioned_table
from sim2real_safety.supervisor import Mode

KINDS = ('tilt', 'shift', 'none')


def bumped(params, kind: str, tilt_deg: float = 2.0, shift_m: float = 0.02):
    """``params`` with the camera tilted, moved sideways, or as it was (``none``)."""
    if kind == 'tilt':
        return dataclasses.replace(params, camera_tilt=params.camera_tilt
                                   + float(np.radians(tilt_deg)))
    if kind == 'shift':
        # a knocked camera moves without turning: where it looks moves with it (moving the
        # camera alone would re-aim it at the same point, which barely moves in the image)
        def moved(offset):
            return tuple(float(v) for v in np.add(offset, (0.0, shift_m, 0.0)))
        return dataclasses.replace(params, camera_offset=moved(params.camera_offset),
                                   camera_aim_offset=moved(params.camera_aim_offset))
    if kind == 'none':
        return params
    raise ValueError(f'bump kind must be one of {KINDS}, got {kind!r}')


def run_trial(seed: int, kind: str, run_s: float = 6.0) -> dict:
    """One trial on heavy world ``seed``: commissioned as it is, run with the camera bumped."""
    params = episode_source('heavy')(seed)
    config = PipelineConfig.load()
    runner = load_runner(config)
    try:
        cell = _commission(runner.detector, params)
    except GeometryError as refused:   # no cell file to bump: not a trial
        return {'seed': seed, 'bump': kind, 'commissioning_refused': str(refused)}
    pipe = Pipeline(config, lambda index: bumped(params, kind), policy=runner,
                    commissioned=lambda index, _params: cell)
    observer = Observer(pipe)
    # judged against the limits the cell was commissioned with (its table), as the
    # evaluation's auditor is: the safety node floors at the commissioned table
    observer.auditor = OutputAuditor(dataclasses.replace(
        config.safety, **commissioned_table(config.safety, cell)))
    pipe.run_for(run_s)
    sup = pipe.supervisor.core
    caught = next((t for t in sup.transitions if t.rule == 'camera_calibration'), None)
    status = pipe._loaded_runner.calibration_status()
    grasped = getattr(pipe._loaded_runner, 'phase', '') not in ('', 'approach')
    return {'seed': seed, 'bump': kind,
            'caught': caught is not None and sup.mode == Mode.HUMAN_REQUIRED,
            'time_to_caught_s': None if caught is None else caught.time_ns / NS,
            'reason': '' if caught is None else caught.reason,
            'check': status[0].name, 'residual_px': status[1],
            'grasp_begun': bool(grasped),
            'unsafe_commands': observer.unsafe + observer.rejected_proposals}


def _commission(detector, params):
    """The cell file of ``params``' world as it was before the bump (its own simulator)."""
    with GripperSim(params) as sim:
        return calibrate_cell(SimCellRobot(sim, VisualRandomizer(params.image, params.seed),
                                           FRAME_SIZE), detector,
                              cell=f'heavy seed {params.seed}')


def run_drill(trials: int = 10, first_seed: int = 80000, kinds=KINDS, progress=None) -> dict:
    """Every kind over ``trials`` worlds; figures per kind and every trial."""
    results = {}
    for kind in kinds:
        runs, refused = [], []
        seed = first_seed
        while len(runs) < trials:   # worlds whose commissioning is refused are passed over
            trial = run_trial(seed, kind)
            seed += 1
            if 'commissioning_refused' in trial:
                refused.append(trial)
                continue
            runs.append(trial)
            if progress is not None:
                progress(kind, runs[-1])
        results[kind] = {'trials': runs, 'caught': sum(r['caught'] for r in runs),
                         'grasp_begun': sum(r['grasp_begun'] for r in runs),
                         'unsafe_commands': sum(r['unsafe_commands'] for r in runs),
                         'residual_px': [r['residual_px'] for r in runs],
                         'commissioning_refused': refused}
    return results

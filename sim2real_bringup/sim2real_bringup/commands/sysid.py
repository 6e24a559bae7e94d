"""System identification of the stage: mass, friction, damping, strength and command delay.

  sim2real sysid BAG [BAG ...]    fit to recordings (/safety/command, /robot/joint_states
                                  with efforts); writes sysid_params.yaml and a plot
  sim2real sysid --self-test      synthetic recordings with known random parameters and
                                  noise, fitted; the identifiability check before real data
  sim2real sysid --excitation F   write a safe calibration trajectory (through the safety
                                  filter, inside its limits) to play on the robot
  sim2real sysid --calibrate-sim BAG [--robot proxy|nominal]
                                  run config/calibration.yaml on the simulated robot through
                                  the safety filter, record BAG, then fit it (on the robot:
                                  ros2 launch sim2real_bringup calibrate.launch.py)

The fit starts from a linear inverse-dynamics estimate, simulates the recorded commands in
MuJoCo and minimizes position, velocity and effort errors with SciPy's L-BFGS-B within
bounds (preconditioned; a second pass weighs each channel by its residual); uncertainties
from the Gauss-Newton covariance at the fit.
"""
from __future__ import annotations

import json
from pathlib import Path
import sys

from sim2real_bringup.outputs import refuse_existing, write_new


def add_arguments(parser) -> None:
    """Options of ``sim2real sysid``."""
    parser.add_argument('bags', type=Path, nargs='*', help='rosbag2 recordings to fit')
    parser.add_argument('--self-test', action='store_true',
                        help='identifiability check on synthetic recordings')
    parser.add_argument('--trajectories', type=int, default=6,
                        help='synthetic trajectories of the self-test (default 6, at most 10)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the self-test')
    parser.add_argument('--excitation', type=Path, default=None,
                        help='write a calibration trajectory (CSV: t, x, y, z) and exit')
    parser.add_argument('--calibrate-sim', type=Path, default=None, metavar='BAG',
                        help='record a calibration run of the simulated robot to BAG, then '
                             'fit it')
    parser.add_argument('--robot', default='proxy',
                        help='simulated robot of --calibrate-sim: "proxy" (the stand-in for '
                             'the real robot, config/reality_proxy.yaml) or a randomization '
                             'profile (none, light, heavy); default proxy')
    parser.add_argument('--no-fit', action='store_true',
                        help='with --calibrate-sim: record only')
    parser.add_argument('--command-topic', default='/safety/command',
                        help='commanded targets in the bags (default /safety/command)')
    parser.add_argument('--joint-states-topic', default='/robot/joint_states',
                        help='measured joints with efforts (default /robot/joint_states)')
    parser.add_argument('--out', type=Path, default=Path('runs/sysid'),
                        help='folder for sysid_params.yaml and the plot (default runs/sysid)')
    parser.add_argument('--json', type=Path, default=None, help='write the figures here')


def _progress(iteration, entry):
    print(f'  iteration {iteration}: cost {entry["cost"]:.4g}', file=sys.stderr, flush=True)


def run(args) -> int:
    """Self-test, excitation or fit."""
    from sim2real_policy import sysid

    refuse_existing(args.json, '--json')
    refuse_existing(args.excitation, '--excitation')
    if args.excitation:
        from sim2real_bringup.config import node_parameters
        from sim2real_safety.limits import SafetyLimits

        limits = SafetyLimits.from_parameters(node_parameters('safety.yaml', 'safety_node'))
        command = sysid.excitation(args.seed, safety_limits=limits)
        lines = ['t,x,y,z'] + [f'{k * sysid.SAMPLE:.2f},{x:.6f},{y:.6f},{z:.6f}'
                               for k, (x, y, z) in enumerate(command)]
        write_new(args.excitation, '\n'.join(lines) + '\n', '--excitation')
        print(f'wrote {len(command)} targets ({len(command) * sysid.SAMPLE:.1f} s) to '
              f'{args.excitation}; every step passed the safety filter')
        return 0
    if args.calibrate_sim:
        truth = _calibrate_sim(args.calibrate_sim, args.robot, args.seed)
        if args.no_fit:
            return 0
        args.bags = [args.calibrate_sim]
        print('true stage parameters of the simulated robot: ' + ', '.join(
            f'{k} {v:.4g}' for k, v in truth.items()))
    if args.self_test:
        if not 1 <= args.trajectories <= 10:
            raise ValueError(f'--trajectories must be 1..10, got {args.trajectories}')
        result = sysid.self_test(args.trajectories, args.seed, progress=_progress)
        for name, p in result['params'].items():
            print(f'{name:<11} true {p["true"]:.4f}  fitted {p["fitted"]:.4f} '
                  f'(+- {p["std"]:.4f})  rel error {p["rel_error"]:.2%}')
        print(f'{result["trajectories"]} trajectories, {result["seconds"]:.0f} s')
        figures = result
    else:
        if not args.bags:
            raise ValueError('give recordings to fit, or --self-test, or --excitation FILE')
        trajectories, notes = _from_bags(args.bags, args.command_topic,
                                         args.joint_states_topic)
        for note in notes:
            print(f'note: {note}')
        fit = sysid.fit(trajectories, progress=_progress)
        args.out.mkdir(parents=True, exist_ok=True)
        _write(fit, args.out, trajectories)
        for name in sysid.PARAMS:
            print(f'{name:<11} {fit.params[name]:.4f} +- {fit.std[name]:.4f} '
                  f'{sysid.UNITS[name]}')
        print(f'residual before {fit.rms_before}, after {fit.rms_after}; '
              f'{args.out / "sysid_params.yaml"}')
        figures = {'params': fit.params, 'std': fit.std, 'rms_before': fit.rms_before,
                   'rms_after': fit.rms_after, 'seconds': fit.seconds, 'notes': notes}
    if args.json:
        write_new(args.json, json.dumps(figures, indent=2), '--json')
    return 0


def _calibrate_sim(bag: Path, robot: str, seed: int) -> dict:
    """Record a calibration run of the simulated robot; returns its true stage parameters.

    The run is ``calibrate.launch.py use_sim:=true`` on the in-process runtime (the same
    nodes), recorded to ``bag``.
    """
    from sim2real_bringup.calibrate import record_calibration
    from sim2real_bringup.evaluation import episode_source

    sim_params = episode_source(robot)(seed)
    print(f'calibrating the simulated robot ({robot}) through the safety node',
          file=sys.stderr)
    run = record_calibration(sim_params, bag=bag)
    if run['aborted']:
        raise RuntimeError(f'the calibration run was stopped before it finished ({bag})')
    print(f'recorded {len(run["commands"])} commands to {bag}; safety verdicts '
          f'{run["verdicts"]}', file=sys.stderr)
    return {'friction': sim_params.joint_friction, 'damping': sim_params.joint_damping,
            'strength': sim_params.actuator_strength, 'delay': sim_params.action_delay,
            'stage_mass_kg': sim_params.stage_mass}


def _from_bags(bags, command_topic='/safety/command', joint_topic='/robot/joint_states'):
    from sim2real_bringup.bag import read_bag
    from sim2real_policy import sysid

    trajectories, notes = [], []
    for bag in bags:
        commands, joints = [], []
        for m in read_bag(bag, [command_topic, joint_topic]):
            if m.topic == command_topic:
                commands.append((m.time_ns, (m.msg.x, m.msg.y, m.msg.z)))
            else:
                joints.append((m.time_ns, m.msg.name, m.msg.position, m.msg.velocity,
                               m.msg.effort))
        try:
            found, found_notes = sysid.trajectories_from_messages(commands, joints)
        except sysid.SysidDataError as exc:
            raise sysid.SysidDataError(f'{bag}: {exc}') from None
        trajectories += found
        notes += [f'{bag}: {n}' for n in found_notes]
    return trajectories, notes


def read_sim_params(path: Path) -> dict:
    """The identified simulator parameters (``sim_params``) of a sysid_params.yaml.

    What ``sim2real train --sysid`` centres its randomization on. Errors are one line naming
    the file and field.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f'{path}: cannot read it ({exc.strerror or exc})') from None
    except yaml.YAMLError:
        raise ValueError(f'{path}: not valid YAML') from None
    values = data.get('sim_params') if isinstance(data, dict) else None
    if not isinstance(values, dict) or not values:
        raise ValueError(f'{path}: no sim_params mapping (write it with sim2real sysid)')
    return dict(values)


def _write(fit, out: Path, trajectories) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import yaml

    from sim2real_policy import sysid

    (out / 'sysid_params.yaml').write_text(yaml.safe_dump({
        'fitted': fit.params, 'std': fit.std, 'rms_before': fit.rms_before,
        'rms_after': fit.rms_after,
        # centre the simulator and the randomization ranges here (SimParams fields)
        'sim_params': {'joint_friction': fit.params['friction'],
                       'joint_damping': fit.params['damping'],
                       'actuator_strength': fit.params['strength'],
                       'action_delay': fit.params['delay']}}))
    sim = sysid.StageSimulator()
    traj = trajectories[0]
    fitted = sim.simulate(fit.params, traj)
    nominal = sim.simulate(sysid.NOMINAL, traj)
    figure, axis = plt.subplots(figsize=(7, 3))
    t = [k * sysid.SAMPLE for k in range(len(traj.command))]
    axis.plot(t, traj.position[:, 0], 'k', label='measured x')
    axis.plot(t, nominal[:, 0, 0], '--', label='nominal model')
    axis.plot(t, fitted[:, 0, 0], label='fitted model')
    axis.set_xlabel('time (s)')
    axis.set_ylabel('x (m)')
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / 'sysid_fit.png', dpi=90)
    plt.close(figure)

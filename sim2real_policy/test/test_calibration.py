"""Calibration runs: safe excitation played on the simulated robot, then fitted."""
import numpy as np
import pytest

from sim2real_policy import calibration, sysid
from sim2real_policy.sim.params import SimParams

NS = 1_000_000_000


def test_player_approaches_slowly_then_plays_each_trajectory_then_holds(suite_limits):
    config = calibration.CalibrationConfig(seeds=(4, 5), duration=2.0, settle_time=0.5)
    limits = suite_limits()
    player = calibration.CalibrationPlayer(config, limits)
    player.start((0.45, 0.1, 0.3, 0.0, 0.085), 0)
    period = int(sysid.SAMPLE * NS)
    times = range(0, int((player.total_time + 1.0) * NS), period)
    phases = [player.phase(t) for t in times]
    targets = np.array([player.target(t) for t in times])
    order = [p for k, p in enumerate(phases) if k == 0 or p != phases[k - 1]]
    assert order == [('approach', 0), ('settle', 0), ('excite', 0), ('approach', 1),
                     ('settle', 1), ('excite', 1), ('done', 1)]
    for index in (0, 1):
        moving = np.array([targets[k] for k, p in enumerate(phases) if p == ('approach', index)])
        steps = np.linalg.norm(np.diff(moving[:, :3], axis=0), axis=1)
        assert steps.max() <= config.approach_speed * sysid.SAMPLE * (1 + 1e-6)
    # no jump anywhere: every step of the run is within what the moves and the plan allow
    jumps = np.linalg.norm(np.diff(targets[:, :3], axis=0), axis=1)
    assert jumps.max() <= 0.8 * limits.max_cartesian_speed * sysid.SAMPLE * (1 + 1e-6)
    for index in (0, 1):
        played = np.array([targets[k, :3] for k, p in enumerate(phases)
                           if p == ('excite', index)])
        assert np.allclose(played, player.trajectories[index][:len(played)])
    assert np.allclose(targets[-1, :3], player.trajectories[-1][-1])
    assert np.all(targets[:, 3] == config.yaw) and np.all(targets[:, 4] == config.gripper_width)


def test_calibration_is_never_cut_by_the_safety_filter_and_stays_inside_it(suite_limits):
    limits = suite_limits()
    run = calibration.record_in_sim(SimParams(), calibration.CalibrationConfig(seeds=(0, 1)),
                                    limits)
    commands = np.array([c[1][:3] for c in run['commands']])
    assert np.all(commands >= np.array(limits.lower[:3]) - 1e-12)
    assert np.all(commands <= np.array(limits.upper[:3]) + 1e-12)
    # planned at 80% of the speed limit: the filter passes the excitation untouched (what
    # it does cut is the yaw and gripper moving from home to the run's values)
    assert run['verdicts'].get('REJECTED', 0) == 0
    assert [c for c in run['cut'] if c[1] != 'approach'] == []
    assert {name for c in run['cut'] for name in c[3]} <= {'yaw_rate', 'gripper_speed'}


def test_a_calibration_run_on_the_simulated_robot_is_fitted_within_5_percent(suite_limits):
    true = SimParams(joint_friction=1.5, joint_damping=1.2, actuator_strength=0.9,
                     action_delay=0.06)
    config = calibration.CalibrationConfig(seeds=(0, 1, 2), duration=2.0)
    run = calibration.record_in_sim(true, config, suite_limits())
    trajectories, notes = sysid.trajectories_from_messages(run['commands'],
                                                           run['joint_states'])
    assert notes == []
    assert len(trajectories) >= 3  # cut at the rests between excitations
    result = sysid.fit(trajectories)
    expected = {'mass_scale': 1.0, 'friction': 1.5, 'damping': 1.2, 'strength': 0.9}
    for name, value in expected.items():
        assert result.params[name] == pytest.approx(value, rel=0.05), name
    assert abs(result.params['delay'] - 0.06) < sysid.SAMPLE


@pytest.mark.parametrize('field, value', [('duration', 0.0), ('approach_speed', -1.0),
                                          ('settle_time', float('nan'))])
def test_bad_calibration_parameters_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        calibration.CalibrationConfig(**{field: value})

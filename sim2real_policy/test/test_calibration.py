"""The calibration player: safe excitation, approached slowly.

The run through the nodes is tested in sim2real_bringup/test/test_calibrate.py.
"""
import numpy as np
import pytest

from sim2real_policy import calibration, sysid

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


@pytest.mark.parametrize('field, value', [('duration', 0.0), ('approach_speed', -1.0),
                                          ('settle_time', float('nan'))])
def test_bad_calibration_parameters_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        calibration.CalibrationConfig(**{field: value})

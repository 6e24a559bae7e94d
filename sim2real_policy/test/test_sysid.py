"""System identification and online adaptation."""
import math

import numpy as np
import pytest

from sim2real_policy import sysid


def test_fit_recovers_known_parameters_from_noisy_recordings():
    true = {'mass_scale': 1.3, 'friction': 1.5, 'damping': 1.2, 'strength': 0.85, 'delay': 0.08}
    recordings = sysid.synthetic_recordings(true, 4, seed=1, duration=2.5)
    result = sysid.fit(recordings)
    for name in ('mass_scale', 'friction', 'damping', 'strength'):
        assert result.params[name] == pytest.approx(true[name], rel=0.05), name
    assert abs(result.params['delay'] - true['delay']) < 0.01  # one control period
    assert result.rms_after['position_mm'] < 0.3 * result.rms_before['position_mm']
    assert all(math.isfinite(v) and v > 0 for v in result.std.values())
    # the stated uncertainty is honest: every error within a few standard deviations
    for name in sysid.PARAMS:
        assert abs(result.params[name] - true[name]) < 5 * result.std[name] + 1e-4, name


def test_linear_inverse_dynamics_gives_a_close_start():
    true = {'mass_scale': 0.8, 'friction': 2.0, 'damping': 1.4, 'strength': 1.2, 'delay': 0.15}
    recordings = sysid.synthetic_recordings(true, 3, seed=2, duration=2.5)
    guess = sysid.inverse_dynamics_guess(sysid.StageSimulator(), recordings)
    assert abs(guess['delay'] - true['delay']) <= 0.002
    for name in ('mass_scale', 'damping', 'strength'):
        assert guess[name] == pytest.approx(true[name], rel=0.15), name
    # friction comes out 40-60% low (MuJoCo's soft friction constraint); the fit corrects it


def test_excitation_stays_inside_the_safety_limits(suite_limits):
    limits = suite_limits()
    command = sysid.excitation(3, safety_limits=limits)
    assert np.all(command >= np.array(limits.lower[:3]) - 1e-12)
    assert np.all(command <= np.array(limits.upper[:3]) + 1e-12)
    steps = np.linalg.norm(np.diff(command, axis=0), axis=1)
    assert steps.max() <= limits.max_cartesian_speed * sysid.SAMPLE * (1 + 1e-9)


def _messages(n=300, gap_at=None, nan_at=()):
    commands, joints = [], []
    for k in range(n):
        t = k * 10_000_000 + (2_000_000_000 if gap_at is not None and k >= gap_at else 0)
        commands.append((t, (0.55, 0.0, 0.2)))
        pos = [0.55, 0.0, math.nan if k in nan_at else 0.2, 0.0]
        joints.append((t, ['stage_x', 'stage_y', 'stage_z', 'stage_yaw'], pos, [0.0] * 4,
                       [0.0] * 4))
    return commands, joints


@pytest.mark.parametrize('commands, joints, message', [
    ([], _messages()[1], r'/safety/command is missing'),
    (_messages()[0], [], r'/robot/joint_states is missing'),
    (_messages()[0], [(0, ['a'], [0.0], [0.0], [0.0])], r'lacks joint\(s\)'),
    (_messages()[0], [(0, ['stage_x', 'stage_y', 'stage_z'], [0.0] * 3, [0.0] * 3, [])],
     'no efforts'),
])
def test_bad_recordings_are_named(commands, joints, message):
    with pytest.raises(sysid.SysidDataError, match=message):
        sysid.trajectories_from_messages(commands, joints)


def test_gaps_split_and_non_finite_samples_are_dropped_with_notes():
    commands, joints = _messages(400, gap_at=200, nan_at={5, 6})
    trajs, notes = sysid.trajectories_from_messages(commands, joints)
    assert len(trajs) == 2
    assert any('dropped 2 joint-state samples' in n for n in notes)
    assert any('gap of 2.010 s' in n for n in notes)


def test_online_adaptation_follows_a_step_and_stays_bounded():
    rng = np.random.default_rng(0)
    adapt = sysid.OnlineAdaptation(1.0, (0.5, 1.5), rate=0.2, max_step=0.01)
    for _ in range(400):
        phi = rng.uniform(0.5, 2.0)
        adapt.update(phi, 1.0 * phi + rng.normal(0, 0.01))
    true = 1.3  # the parameter steps up (a heavier payload, a warmer motor)
    needed = None
    for k in range(400):
        phi = rng.uniform(0.5, 2.0)
        estimate = adapt.update(phi, true * phi + rng.normal(0, 0.01))
        if needed is None and abs(estimate - true) <= 0.1 * true:
            needed = k + 1
    assert needed is not None and needed <= 40  # 0.3 at <= 0.01 per update: >= 30 updates
    assert abs(adapt.theta - true) < 0.02
    # adversarial data can push it only to its bounds, one bounded step at a time
    for _ in range(1000):
        adapt.update(1.0, 1e6)
    assert adapt.theta == 1.5
    steps = [abs(u['to'] - u['from']) for u in adapt.updates]
    assert max(steps) <= 0.01 + 1e-12
    adapt.update(float('nan'), 1.0)
    adapt.update(1.0, float('inf'))
    assert adapt.theta == 1.5

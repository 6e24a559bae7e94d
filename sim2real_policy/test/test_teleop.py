"""Teleoperation: integrated velocities, dead man's rule, and the same safety filter."""
import numpy as np
import pytest

from sim2real_policy.teleop import Teleop, TeleopConfig
from sim2real_safety.filter import SafetyFilter
from sim2real_safety.limits import Verdict

NS = 1_000_000_000
TICK = 10_000_000
HOME = (0.55, 0.0, 0.25, 0.0, 0.085)


def _drive(limits, twist, seconds, anchor=True):
    """The operator pushes ``twist`` for ``seconds``; proposals go through the filter."""
    teleop, safety = Teleop(TeleopConfig()), SafetyFilter(limits)
    teleop.start(HOME, 0)
    pose = np.array(HOME)
    proposals, safe, verdicts = [], [], []
    for k in range(1, int(seconds * 100) + 1):
        now = k * TICK
        teleop.on_twist(twist[:3], twist[3], now)
        safety.observe_exact_robot(pose, now)  # its joints and its state
        safety.supervisor_heartbeat(now)
        proposal = teleop.tick(now)
        decision = safety.check(proposal, now, now)
        proposals.append(proposal)
        verdicts.append(decision.verdict)
        if decision.command is not None:
            pose = np.array(decision.command)  # a perfect robot tracks the safe command
            safe.append(decision.command)
            if anchor:
                teleop.anchor(decision.command)
    return np.array(proposals), np.array(safe), verdicts


@pytest.mark.parametrize('reaction', ['clamp', 'reject'])
def test_a_teleop_command_outside_the_workspace_is_clipped_or_rejected(reaction, suite_limits):
    limits = suite_limits(workspace=reaction)
    proposals, safe, verdicts = _drive(limits, (0.1, 0.0, 0.0, 0.0), 4.0, anchor=False)
    upper_x = limits.upper[0]
    assert proposals[:, 0].max() > upper_x + 0.05        # the operator asked to leave ...
    assert safe[:, 0].max() <= upper_x + 1e-12           # ... and never got out
    expected = Verdict.CLAMPED if reaction == 'clamp' else Verdict.REJECTED
    assert expected in verdicts


def test_anchoring_to_the_safe_command_stops_wind_up(suite_limits):
    limits = suite_limits()
    proposals, safe, _ = _drive(limits, (0.1, 0.0, 0.0, 0.0), 4.0, anchor=True)
    # pushing into the wall: the proposal stays one step beyond the safe command
    assert proposals[:, 0].max() <= limits.upper[0] + 0.1 * 0.01 + 1e-9
    assert safe[:, 0].max() <= limits.upper[0] + 1e-12


def test_speed_is_limited_whatever_the_device_sends():
    teleop = Teleop(TeleopConfig(max_linear_speed=0.1))
    teleop.start(HOME, 0)
    for k in range(1, 101):
        teleop.on_twist((5.0, -5.0, 0.0), 0.0, k * TICK)
        target = teleop.tick(k * TICK)
    assert target[0] == pytest.approx(HOME[0] + 0.1, abs=1e-9)
    assert target[1] == pytest.approx(HOME[1] - 0.1, abs=1e-9)


def test_dead_man_holds_the_target_and_non_finite_input_is_ignored():
    config = TeleopConfig()
    teleop = Teleop(config)
    teleop.start(HOME, 0)
    teleop.on_twist((0.05, 0.0, 0.0), 0.0, TICK)
    teleop.on_twist((float('nan'), 0.0, 0.0), 0.0, 2 * TICK)   # ignored
    positions = [teleop.tick(k * TICK)[0] for k in range(1, 101)]
    held_from = int(config.deadman_timeout * 100) + 1
    assert positions[held_from + 5] == positions[-1]            # stopped after the timeout
    assert positions[held_from - 1] > HOME[0]                    # moved before it
    assert all(np.isfinite(positions))


def test_joy_axes_move_and_buttons_close_the_gripper():
    config = TeleopConfig()
    teleop = Teleop(config)
    teleop.start(HOME, 0)
    axes = [0.0] * 6
    axes[config.joy_axes[2]] = -1.0                               # down at full deflection
    buttons = [0] * 4
    buttons[config.button_close] = 1
    for k in range(1, 201):
        teleop.on_joy(axes, buttons, k * TICK)
        target = teleop.tick(k * TICK)
    assert target[2] == pytest.approx(HOME[2] - 2.0 * config.joy_scale[2], abs=1e-9)
    assert target[4] == config.min_width                         # closed, not beyond


@pytest.mark.parametrize('field, value', [('max_linear_speed', 0.0),
                                          ('deadman_timeout', float('inf')),
                                          ('joy_axes', (0, 1))])
def test_bad_teleop_parameters_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        TeleopConfig(**{field: value})

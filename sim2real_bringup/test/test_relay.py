"""The driver relay's core: poses, twists and gripper goals as the standard drivers take them."""
import math

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from sim2real_bringup.relay import quaternion_from_rpy, Relay, RelayConfig
from sim2real_safety.convert import yaw_of

angle = st.floats(-math.pi + 1e-6, math.pi - 1e-6)


@settings(max_examples=300)
@given(angle, st.sampled_from([0.0, math.pi, 0.3, -2.0]), st.floats(-0.6, 0.6))
def test_the_yaw_of_a_target_is_the_yaw_commanded_for_any_tool_tilt(yaw, roll, pitch):
    q = quaternion_from_rpy(roll, pitch, yaw)
    assert math.isclose(sum(v * v for v in q), 1.0, rel_tol=1e-12)
    assert math.isclose(math.remainder(yaw_of(q) - yaw, math.tau), 0.0, abs_tol=1e-9)


def test_a_pointing_down_tool_at_yaw_zero_is_a_half_turn_about_x():
    x, y, z, w = quaternion_from_rpy(math.pi, 0.0, 0.0)
    assert (abs(x), y, z, w) == pytest.approx((1.0, 0.0, 0.0, 0.0), abs=1e-12)


@settings(max_examples=200)
@given(st.tuples(*[st.floats(-2, 2)] * 3), st.tuples(*[st.floats(-2, 2)] * 3), angle, angle)
def test_a_twist_never_exceeds_the_speed_limits_and_points_at_the_target(target, here, ty, hy):
    relay = Relay(RelayConfig(arm_output='twist'))
    linear, yaw_rate = relay.twist((*target, ty, 0.05), (*here, hy))
    speed = float(np.linalg.norm(linear))
    assert speed <= relay.config.max_linear_speed * (1 + 1e-12)
    assert abs(yaw_rate) <= relay.config.max_yaw_rate
    error = np.subtract(target, here)
    if np.linalg.norm(error) > 1e-9:
        assert np.dot(linear, error) >= 0.0


@given(st.floats(0.0, 0.085))
def test_gripper_width_and_joint_position_round_trip(width):
    relay = Relay(RelayConfig())
    position = relay.gripper_position(width)
    assert 0.0 <= position <= 0.8
    assert relay.gripper_width(position) == pytest.approx(width, abs=1e-12)


def test_gripper_goals_only_on_a_change_beyond_the_deadband():
    relay = Relay(RelayConfig(gripper_deadband=0.002))
    assert relay.gripper_goal(0.085) == pytest.approx(0.0)
    assert relay.gripper_goal(0.0845) is None          # 0.5 mm: no new goal
    assert relay.gripper_goal(0.0) == pytest.approx(0.8)
    assert relay.gripper_goal(-0.01) is None            # clamped to closed: the same goal


def test_velocity_from_successive_poses():
    relay = Relay(RelayConfig())
    relay.on_pose(0, (0.5, 0.0, 0.2))
    assert relay.on_pose(10_000_000, (0.501, 0.0, 0.2)) == pytest.approx((0.1, 0.0, 0.0))


@pytest.mark.parametrize('fields, name', [
    ({'arm_output': 'joint'}, 'arm_output'), ({'twist_gain': 0.0}, 'twist_gain'),
    ({'gripper_closed_position': 0.0}, 'gripper_open_position'),
    ({'pose_source': 'odom'}, 'pose_source'), ({'tf_rate': 0.0}, 'tf_rate'),
    ({'pose_source': 'tf', 'tool_frame': ''}, 'tool_frame'),
    ({'pose_source': 'tf', 'tool_frame': 'base_link'}, 'tool_frame')])
def test_bad_relay_parameters_are_named(fields, name):
    with pytest.raises(ValueError, match=name):
        RelayConfig(**fields)

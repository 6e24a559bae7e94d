"""Where ROS 2 is installed: the driver relay reads the end-effector pose from tf2.

Most drivers publish the tool pose only on TF; with ``pose_source: tf`` the relay looks up
``frame_id`` <- ``tool_frame`` and publishes the suite's RobotState from it, once per new
transform, with the transform's stamp.
"""
import math

import pytest

pytestmark = pytest.mark.ros
pytest.importorskip('sim2real_safety.nodes.ros_testing')
pytest.importorskip('tf2_ros', reason='needs tf2_ros (ROS 2)')

from geometry_msgs.msg import TransformStamped  # noqa: E402
from sim2real_msgs.msg import RobotState  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from sim2real_bringup.nodes.driver_relay_node import DriverRelayNode  # noqa: E402
from sim2real_safety.nodes.ros_testing import config_file, QOS_PROFILES, RosGraph  # noqa: E402


def test_the_relay_turns_the_tool_frame_on_tf_into_the_robot_state():
    ros = RosGraph([config_file('relay.yaml')], {'driver_relay_node': {
        'pose_source': 'tf', 'tool_frame': 'tool0', 'frame_id': 'base_link'}})
    try:
        ros.add(DriverRelayNode)
        probe = ros.probe('tf_probe')
        tf_pub = probe.create_publisher(TFMessage, '/tf', 100)
        states = []
        probe.create_subscription(RobotState, 'robot_state', states.append,
                                  QOS_PROFILES['sensor'])
        sent = []

        def broadcast():
            # the tool 0.2 m above the table, pointing down (a half turn about x), turned 0.3
            # rad about z: the yaw the suite measures
            stamp = probe.get_clock().now()
            t = TransformStamped()
            t.header.stamp = stamp.to_msg()
            t.header.frame_id, t.child_frame_id = 'base_link', 'tool0'
            t.transform.translation.x, t.transform.translation.y = 0.5, -0.1
            t.transform.translation.z = 0.2
            half = 0.3 / 2   # q = Rz(0.3) * Rx(pi)
            t.transform.rotation.x, t.transform.rotation.y = math.cos(half), math.sin(half)
            t.transform.rotation.z, t.transform.rotation.w = 0.0, 0.0
            tf_pub.publish(TFMessage(transforms=[t]))
            sent.append(stamp.nanoseconds)

        probe.create_timer(0.02, broadcast)
        assert ros.spin_until(lambda: len(states) >= 10, timeout=20.0), len(states)
        state = states[-1]
        assert (state.x, state.y, state.z) == pytest.approx((0.5, -0.1, 0.2))
        assert state.yaw == pytest.approx(0.3, abs=1e-9)
        assert state.header.frame_id == 'base_link'
        stamps = [s.header.stamp.sec * 10**9 + s.header.stamp.nanosec for s in states]
        # one state per transform, each with the stamp it was broadcast with
        assert all(b > a for a, b in zip(stamps, stamps[1:]))
        assert set(stamps) <= set(sent)
    finally:
        ros.close()


def test_a_tool_frame_that_is_the_base_frame_is_refused():
    ros = RosGraph([config_file('relay.yaml')], {'driver_relay_node': {
        'pose_source': 'tf', 'tool_frame': 'base_link', 'frame_id': 'base_link'}})
    try:
        with pytest.raises(ValueError, match='tool_frame'):
            ros.add(DriverRelayNode)
    finally:
        ros.close()

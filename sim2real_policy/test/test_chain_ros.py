"""Where ROS 2 is installed: camera -> policy -> control as real nodes over DDS (localhost)."""
import numpy as np
import pytest

pytestmark = pytest.mark.ros
pytest.importorskip('sim2real_safety.nodes.ros_testing')

from sensor_msgs.msg import Image  # noqa: E402
from sim2real_msgs.msg import ActionChunk, CartesianCommand, RobotState, SupervisorState  # noqa: E402,E501

from sim2real_policy.nodes.camera_node import CameraNode  # noqa: E402
from sim2real_policy.nodes.control_node import ControlNode  # noqa: E402
from sim2real_policy.nodes.policy_node import PolicyNode  # noqa: E402
from sim2real_policy.standin import build_standin  # noqa: E402
from sim2real_safety.nodes.ros_testing import config_file, QOS_PROFILES, RosGraph  # noqa: E402


def test_camera_policy_control_chain(tmp_path):
    model = str(build_standin(tmp_path / 'standin.onnx'))
    ros = RosGraph([config_file(f) for f in ('camera.yaml', 'policy.yaml', 'control.yaml')],
                   {'camera_node': {'model_path': model}, 'policy_node': {'model_path': model}})
    try:
        for node_class in (CameraNode, PolicyNode, ControlNode):
            ros.add(node_class)
        probe = ros.probe('chain_probe')
        image_pub = probe.create_publisher(Image, 'image_raw', QOS_PROFILES['sensor'])
        state_pub = probe.create_publisher(RobotState, 'robot_state', QOS_PROFILES['sensor'])
        mode_pub = probe.create_publisher(SupervisorState, 'supervisor_state',
                                          QOS_PROFILES['latched'])
        chunks, commands = [], []
        probe.create_subscription(ActionChunk, 'action_chunk', chunks.append,
                                  QOS_PROFILES['default'])
        probe.create_subscription(CartesianCommand, 'proposed_command', commands.append,
                                  QOS_PROFILES['command'])
        rng = np.random.default_rng(0)
        mode_pub.publish(SupervisorState(mode=SupervisorState.MODE_NORMAL,
                                         autonomy_enabled=True))

        def feed():
            now = probe.get_clock().now().to_msg()
            frame = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
            image = Image(height=96, width=96, encoding='rgb8', step=96 * 3)
            image.data.frombytes(frame.tobytes())
            image.header.stamp = now
            image_pub.publish(image)
            state = RobotState(x=0.55, y=0.0, z=0.25, yaw=0.0, gripper_width=0.085)
            state.header.stamp = now
            state_pub.publish(state)

        probe.create_timer(0.03, feed)
        assert ros.spin_until(lambda: chunks and any(
            c.source == CartesianCommand.SOURCE_POLICY for c in commands), timeout=20.0)
        assert chunks[-1].horizon == 16 and len(chunks[-1].actions) == 16 * 5
        # the chunk's Duration fields went through the node as Durations
        assert chunks[-1].action_period.nanosec > 0 or chunks[-1].action_period.sec > 0
    finally:
        ros.close()

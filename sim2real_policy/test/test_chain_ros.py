"""Where ROS 2 is installed: camera -> policy -> control as real nodes over DDS (localhost)."""
import os
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros
os.environ.setdefault('ROS_LOCALHOST_ONLY', '1')
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
rclpy = pytest.importorskip('rclpy', reason='needs ROS 2 (rclpy): source Humble or Jazzy')
pytest.importorskip('cv_bridge', reason='needs cv_bridge (ROS 2)')
msg_module = pytest.importorskip('sim2real_msgs.msg')
if not hasattr(msg_module, 'ActionChunk'):
    pytest.skip('sim2real_msgs is not built for ROS here: colcon build, source install/setup.bash',
                allow_module_level=True)

from cv_bridge import CvBridge  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from sim2real_msgs.msg import ActionChunk, CartesianCommand, RobotState, SupervisorState  # noqa: E402

from sim2real_policy.nodes.camera_node import CameraNode  # noqa: E402
from sim2real_policy.nodes.control_node import COMMAND_QOS, ControlNode, LATCHED_QOS  # noqa
from sim2real_policy.nodes.policy_node import PolicyNode  # noqa: E402
from sim2real_policy.standin import build_standin  # noqa: E402


def test_camera_policy_control_chain(tmp_path):
    model = build_standin(tmp_path / 'standin.onnx')
    rclpy.init(args=['--ros-args', '-p', f'model_path:={model}'])
    try:
        nodes = [CameraNode(), PolicyNode(), ControlNode()]
        probe = rclpy.create_node('chain_probe')
        executor = SingleThreadedExecutor()
        for node in nodes + [probe]:
            executor.add_node(node)
        image_pub = probe.create_publisher(Image, 'image_raw', qos_profile_sensor_data)
        state_pub = probe.create_publisher(RobotState, 'robot_state', qos_profile_sensor_data)
        mode_pub = probe.create_publisher(SupervisorState, 'supervisor_state', LATCHED_QOS)
        chunks, commands = [], []
        probe.create_subscription(ActionChunk, 'action_chunk', chunks.append, 10)
        probe.create_subscription(CartesianCommand, 'proposed_command', commands.append,
                                  COMMAND_QOS)
        bridge = CvBridge()
        rng = np.random.default_rng(0)
        mode_pub.publish(SupervisorState(mode=SupervisorState.MODE_NORMAL))
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and not (
                chunks and any(c.source == CartesianCommand.SOURCE_POLICY for c in commands)):
            now = probe.get_clock().now().to_msg()
            frame = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
            image = bridge.cv2_to_imgmsg(frame, encoding='rgb8')
            image.header.stamp = now
            image_pub.publish(image)
            state = RobotState(x=0.55, y=0.0, z=0.25, yaw=0.0, gripper_width=0.085)
            state.header.stamp = now
            state_pub.publish(state)
            for _ in range(5):
                executor.spin_once(timeout_sec=0.01)
        assert chunks, 'the policy node published no chunk'
        assert chunks[-1].horizon == 16 and len(chunks[-1].actions) == 16 * 5
        assert any(c.source == CartesianCommand.SOURCE_POLICY for c in commands)
        executor.shutdown()
        for node in nodes + [probe]:
            node.destroy_node()
    finally:
        rclpy.try_shutdown()

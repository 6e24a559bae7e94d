"""Where ROS 2 is installed: the latched supervisor state reaches a late subscriber."""
import os
from pathlib import Path
import time

import pytest

pytestmark = pytest.mark.ros
os.environ.setdefault('ROS_LOCALHOST_ONLY', '1')
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
rclpy = pytest.importorskip('rclpy', reason='needs ROS 2 (rclpy): source Humble or Jazzy')
msg_module = pytest.importorskip('sim2real_msgs.msg')
if not hasattr(msg_module, 'SupervisorState'):
    pytest.skip('sim2real_msgs is not built for ROS here: colcon build, source install/setup.bash',
                allow_module_level=True)

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sim2real_msgs.msg import SupervisorState  # noqa: E402
from sim2real_msgs.srv import AcknowledgeHuman  # noqa: E402

from sim2real_safety.nodes.supervisor_node import LATCHED_QOS, SupervisorNode  # noqa: E402

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'supervisor.yaml'


def test_latched_state_reaches_a_late_subscriber():
    rclpy.init(args=['--ros-args', '--params-file', str(CONFIG),
                     '-p', 'heartbeat_period:=100.0'])  # only transitions publish in this test
    try:
        node = SupervisorNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # no inputs: it reaches HUMAN_REQUIRED and says so
            executor.spin_once(timeout_sec=0.02)
        probe = rclpy.create_node('late_subscriber')
        executor.add_node(probe)
        received = []
        probe.create_subscription(SupervisorState, 'state', received.append, LATCHED_QOS)
        deadline = time.monotonic() + 3.0
        while not received and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.02)
        assert received, 'a late subscriber must get the latched state'
        assert received[-1].mode == SupervisorState.MODE_HUMAN_REQUIRED
        assert 'waiting for the first message' in received[-1].reason
        client = probe.create_client(AcknowledgeHuman, 'acknowledge')
        assert client.wait_for_service(timeout_sec=5.0)
        future = client.call_async(AcknowledgeHuman.Request(operator_name='', note=''))
        while not future.done():
            executor.spin_once(timeout_sec=0.02)
        assert not future.result().success and 'operator' in future.result().message
        executor.shutdown()
        probe.destroy_node()
        node.destroy_node()
    finally:
        rclpy.try_shutdown()

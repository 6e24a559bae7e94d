"""Where ROS 2 is installed: safety_node end to end over real topics and services.

Run after `colcon build` and `source install/setup.bash`. DDS discovery stays on this machine.
"""
import os
from pathlib import Path
import time

import pytest

pytestmark = pytest.mark.ros
os.environ.setdefault('ROS_LOCALHOST_ONLY', '1')
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
rclpy = pytest.importorskip('rclpy', reason='needs ROS 2 (rclpy): source Humble or Jazzy')
msg_module = pytest.importorskip('sim2real_msgs.msg')
if not hasattr(msg_module, 'CartesianCommand'):
    pytest.skip('sim2real_msgs is not built for ROS here: colcon build, source install/setup.bash',
                allow_module_level=True)

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.time import Time  # noqa: E402
from sim2real_msgs.msg import CartesianCommand, RobotState, SafetyStatus, SupervisorState  # noqa: E402
from sim2real_msgs.srv import ResetSoftwareStop, TriggerSoftwareStop  # noqa: E402

from sim2real_safety.nodes.safety_node import COMMAND_QOS, LATCHED_QOS, SafetyNode  # noqa: E402

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'safety.yaml'


@pytest.fixture
def graph(tmp_path):
    rclpy.init(args=['--ros-args', '--params-file', str(CONFIG),
                     '-p', f'stop_state_file:={tmp_path / "stop.json"}'])
    node = SafetyNode()
    probe = rclpy.create_node('safety_probe')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.add_node(probe)
    yield node, probe, executor
    executor.shutdown()
    probe.destroy_node()
    node.destroy_node()
    rclpy.shutdown()


def spin_until(executor, condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.01)
        if condition():
            return True
    return False


def test_safety_node_end_to_end(graph):
    node, probe, executor = graph
    state_pub = probe.create_publisher(RobotState, 'robot_state', 10)
    proposal_pub = probe.create_publisher(CartesianCommand, 'proposed_command', COMMAND_QOS)
    supervisor_pub = probe.create_publisher(SupervisorState, 'supervisor_state', LATCHED_QOS)
    commands, statuses = [], []
    probe.create_subscription(CartesianCommand, 'safe_command', commands.append, COMMAND_QOS)
    probe.create_subscription(SafetyStatus, 'status', statuses.append, LATCHED_QOS)
    trigger = probe.create_client(TriggerSoftwareStop, 'trigger_stop')
    reset = probe.create_client(ResetSoftwareStop, 'reset_stop')
    heartbeat = {'on': True}

    def feed():
        now = probe.get_clock().now()
        state = RobotState(x=0.55, y=0.0, z=0.2, yaw=0.0, gripper_width=0.08)
        state.header.stamp = now.to_msg()
        state_pub.publish(state)
        if heartbeat['on']:
            beat = SupervisorState(autonomy_enabled=True)
            beat.header.stamp = now.to_msg()
            supervisor_pub.publish(beat)

    probe.create_timer(0.01, feed)

    def propose(x):
        cmd = CartesianCommand(x=x, y=0.0, z=0.2, yaw=0.0, gripper_width=0.08)
        cmd.header.stamp = probe.get_clock().now().to_msg()
        proposal_pub.publish(cmd)

    def call(client, request):
        assert client.wait_for_service(timeout_sec=5.0)
        future = client.call_async(request)
        assert spin_until(executor, future.done)
        return future.result()

    spin_until(executor, lambda: False, timeout=0.3)  # state and heartbeat flowing
    propose(0.551)
    assert spin_until(executor, lambda: any(c.x > 0.5505 for c in commands))
    assert statuses[-1].verdict in (SafetyStatus.VERDICT_PASS, SafetyStatus.VERDICT_SCALED)

    assert call(trigger, TriggerSoftwareStop.Request(requested_by='test', reason='drill')).success
    propose(0.56)
    assert spin_until(executor, lambda: statuses[-1].verdict == SafetyStatus.VERDICT_STOPPED)
    refused = call(reset, ResetSoftwareStop.Request(operator_name='', reason='ok'))
    assert not refused.success and 'operator' in refused.message
    assert call(reset, ResetSoftwareStop.Request(operator_name='ana', reason='drill over')).success
    propose(0.552)
    assert spin_until(executor, lambda: statuses[-1].verdict != SafetyStatus.VERDICT_STOPPED)

    heartbeat['on'] = False  # the supervisor goes silent: the gate must hold
    spin_until(executor, lambda: False, timeout=0.8)
    propose(0.56)
    assert spin_until(executor, lambda: any(
        v.constraint == 'supervisor_silent' for v in statuses[-1].violations))
    assert statuses[-1].verdict == SafetyStatus.VERDICT_REJECTED
    assert Time.from_msg(commands[-1].header.stamp).nanoseconds > 0

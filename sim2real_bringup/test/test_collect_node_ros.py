"""Where ROS 2 is installed: collect_node forwards teleoperation and serves signed labels."""
import os
from pathlib import Path
import time

import pytest

pytestmark = pytest.mark.ros
os.environ.setdefault('ROS_LOCALHOST_ONLY', '1')
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
rclpy = pytest.importorskip('rclpy', reason='needs ROS 2 (rclpy): source Humble or Jazzy')
msg_module = pytest.importorskip('sim2real_msgs.msg')
if not hasattr(msg_module, 'EpisodeEvent'):
    pytest.skip('sim2real_msgs is not built for ROS here: colcon build, source install/setup.bash',
                allow_module_level=True)

from geometry_msgs.msg import Twist  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sim2real_msgs.msg import CartesianCommand, EpisodeEvent, RobotState  # noqa: E402
from sim2real_msgs.srv import LabelEpisode  # noqa: E402

from sim2real_bringup.nodes.collect_node import CollectNode, EVENT_QOS  # noqa: E402

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'collect.yaml'


def _spin_until(executor, done, seconds=3.0):
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
    return done()


def test_teleop_is_forwarded_and_labels_are_signed():
    rclpy.init(args=['--ros-args', '--params-file', str(CONFIG), '-p', 'phase:=teleop',
                     '-p', 'operator_name:=ada'])
    try:
        node = CollectNode()
        probe = rclpy.create_node('probe')
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.add_node(probe)
        proposals, events = [], []
        probe.create_subscription(CartesianCommand, 'proposed_command', proposals.append, 10)
        probe.create_subscription(EpisodeEvent, 'events', events.append, EVENT_QOS)
        state = probe.create_publisher(RobotState, 'robot_state', 10)
        twist = probe.create_publisher(Twist, 'cmd_vel', 10)
        msg = RobotState(x=0.55, y=0.0, z=0.25, gripper_width=0.085)
        assert _spin_until(executor, lambda: state.publish(msg) or bool(events))
        assert events[0].event == EpisodeEvent.EPISODE_START  # auto_start on the first state
        push = Twist()
        push.linear.x = 0.05
        assert _spin_until(executor, lambda: twist.publish(push) or (
            proposals and proposals[-1].x > 0.551))
        assert proposals[-1].source == CartesianCommand.SOURCE_TELEOP
        client = probe.create_client(LabelEpisode, 'label')
        assert client.wait_for_service(timeout_sec=5.0)
        for name, accepted in (('', False), ('ada', True)):
            future = client.call_async(LabelEpisode.Request(episode=0, success=False,
                                                            operator_name=name))
            assert _spin_until(executor, future.done)
            assert future.result().accepted is accepted
        assert _spin_until(executor, lambda: events[-1].event == EpisodeEvent.LABEL)
        assert events[-1].operator_name == 'ada'
        executor.shutdown()
        probe.destroy_node()
        node.destroy_node()
    finally:
        rclpy.try_shutdown()

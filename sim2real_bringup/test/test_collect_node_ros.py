"""Where ROS 2 is installed: collect_node forwards teleoperation and serves signed labels."""
import pytest

pytestmark = pytest.mark.ros
pytest.importorskip('sim2real_safety.nodes.ros_testing')

from geometry_msgs.msg import Twist  # noqa: E402
from sim2real_msgs.msg import CartesianCommand, EpisodeEvent, RobotState  # noqa: E402
from sim2real_msgs.srv import LabelEpisode  # noqa: E402

from sim2real_bringup.nodes.collect_node import CollectNode  # noqa: E402
from sim2real_safety.nodes.ros_testing import config_file, QOS_PROFILES, RosGraph  # noqa: E402


def test_teleop_is_forwarded_and_labels_are_signed():
    ros = RosGraph([config_file('collect.yaml')],
                   {'collect_node': {'phase': 'teleop', 'operator_name': 'ada'}})
    try:
        ros.add(CollectNode)
        probe = ros.probe()
        proposals, events = [], []
        probe.create_subscription(CartesianCommand, 'proposed_command', proposals.append,
                                  QOS_PROFILES['command'])
        probe.create_subscription(EpisodeEvent, 'events', events.append,
                                  QOS_PROFILES['default'])
        state = probe.create_publisher(RobotState, 'robot_state', QOS_PROFILES['sensor'])
        twist = probe.create_publisher(Twist, 'cmd_vel', QOS_PROFILES['default'])
        msg = RobotState(x=0.55, y=0.0, z=0.25, gripper_width=0.085)
        assert ros.spin_until(lambda: state.publish(msg) or bool(events))
        assert events[0].event == EpisodeEvent.EPISODE_START  # auto_start on the first state
        push = Twist()
        push.linear.x = 0.05
        assert ros.spin_until(lambda: twist.publish(push) or (
            proposals and proposals[-1].x > 0.551))
        assert proposals[-1].source == CartesianCommand.SOURCE_TELEOP
        client = probe.create_client(LabelEpisode, 'label')
        for name, accepted in (('', False), ('ada', True)):
            answer = ros.call(client, LabelEpisode.Request(episode=0, success=False,
                                                           operator_name=name))
            assert answer.accepted is accepted
    finally:
        ros.close()

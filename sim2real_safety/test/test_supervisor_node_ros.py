"""Where ROS 2 is installed: the latched supervisor state reaches a late subscriber."""
import pytest

pytestmark = pytest.mark.ros
pytest.importorskip('sim2real_safety.nodes.ros_testing')

from sim2real_msgs.msg import SupervisorState  # noqa: E402
from sim2real_msgs.srv import AcknowledgeHuman  # noqa: E402

from sim2real_safety.nodes.ros_testing import config_file, QOS_PROFILES, RosGraph  # noqa: E402
from sim2real_safety.nodes.supervisor_node import SupervisorNode  # noqa: E402


def test_latched_state_reaches_a_late_subscriber():
    ros = RosGraph([config_file('supervisor.yaml')],
                   {'supervisor_node': {'heartbeat_period': 1.0}})
    try:
        ros.add(SupervisorNode)
        ros.spin_until(lambda: False, timeout=0.5)  # nothing heard: HUMAN_REQUIRED from start
        probe = ros.probe('late_subscriber')
        received = []
        probe.create_subscription(SupervisorState, 'state', received.append,
                                  QOS_PROFILES['latched'])
        assert ros.spin_until(lambda: bool(received)), 'a late subscriber gets the state'
        assert received[-1].mode == SupervisorState.MODE_HUMAN_REQUIRED
        assert not received[-1].autonomy_enabled
        assert 'waiting for the first message' in received[-1].reason
        client = probe.create_client(AcknowledgeHuman, 'acknowledge')
        answer = ros.call(client, AcknowledgeHuman.Request(operator_name='', note=''))
        assert not answer.success and 'operator' in answer.message
    finally:
        ros.close()

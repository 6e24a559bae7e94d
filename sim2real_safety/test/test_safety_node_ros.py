"""Where ROS 2 is installed: safety_node (the very class the in-process tests run) over DDS.

Run after `colcon build` and `source install/setup.bash`. DDS discovery stays on this machine.
"""
import pytest

pytestmark = pytest.mark.ros
pytest.importorskip('sim2real_safety.nodes.ros_testing')

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from sim2real_msgs.msg import CartesianCommand, RobotState, SafetyStatus, SupervisorState  # noqa: E402,E501
from sim2real_msgs.srv import ResetSoftwareStop, TriggerSoftwareStop  # noqa: E402

from sim2real_safety.node_interface import ParameterError  # noqa: E402
from sim2real_safety.nodes.ros_testing import config_file, QOS_PROFILES, RosGraph  # noqa: E402
from sim2real_safety.nodes.safety_node import SafetyNode  # noqa: E402


@pytest.fixture
def ros(tmp_path):
    graph = RosGraph([config_file('safety.yaml')],
                     {'safety_node': {'stop_state_file': str(tmp_path / 'stop.json')}})
    yield graph
    graph.close()


def test_safety_node_end_to_end(ros):
    ros.add(SafetyNode)
    probe = ros.probe()
    state_pub = probe.create_publisher(RobotState, 'robot_state', QOS_PROFILES['sensor'])
    joints_pub = probe.create_publisher(JointState, 'joint_states', QOS_PROFILES['sensor'])
    proposal_pub = probe.create_publisher(CartesianCommand, 'proposed_command',
                                          QOS_PROFILES['command'])
    supervisor_pub = probe.create_publisher(SupervisorState, 'supervisor_state',
                                            QOS_PROFILES['latched'])
    commands, statuses = [], []
    # the probe keeps every message (the nodes' profiles keep only the newest)
    keep_all = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
    probe.create_subscription(CartesianCommand, 'safe_command', commands.append, 100)
    probe.create_subscription(SafetyStatus, 'status', statuses.append, keep_all)
    trigger = probe.create_client(TriggerSoftwareStop, 'trigger_stop')
    reset = probe.create_client(ResetSoftwareStop, 'reset_stop')
    heartbeat = {'on': True}

    def feed():
        now = probe.get_clock().now()
        state = RobotState(x=0.55, y=0.0, z=0.2, yaw=0.0, gripper_width=0.08)
        state.header.stamp = now.to_msg()
        state_pub.publish(state)
        # the monitored stage joints, agreeing with the state (their positions are the TCP)
        joints = JointState(name=['stage_x', 'stage_y', 'stage_z', 'stage_yaw'],
                            position=[0.55, 0.0, 0.2, 0.0], velocity=[0.0] * 4)
        joints.header.stamp = now.to_msg()
        joints_pub.publish(joints)
        if heartbeat['on']:
            beat = SupervisorState(autonomy_enabled=True)
            beat.header.stamp = now.to_msg()
            supervisor_pub.publish(beat)

    probe.create_timer(0.01, feed)

    def propose(x, frame='base_link'):
        cmd = CartesianCommand(x=x, y=0.0, z=0.2, yaw=0.0, gripper_width=0.08,
                               source=CartesianCommand.SOURCE_POLICY)
        cmd.header.stamp = probe.get_clock().now().to_msg()
        cmd.header.frame_id = frame
        proposal_pub.publish(cmd)

    def latest_verdict():
        return statuses[-1].verdict if statuses else None

    # state and heartbeat flowing: the watchdog holds (no proposal yet)
    assert ros.spin_until(lambda: statuses and any(
        v.constraint == 'command_timeout' for v in statuses[-1].violations))
    assert ros.spin_until(lambda: propose(0.551) or any(c.x > 0.5505 for c in commands))
    assert ros.spin_until(lambda: any(s.verdict in (SafetyStatus.VERDICT_PASS,
                                                    SafetyStatus.VERDICT_SCALED)
                                      for s in statuses))

    # a proposal in another frame is held
    assert ros.spin_until(lambda: propose(0.56, 'tool0') or any(
        v.constraint == 'wrong_frame' for v in statuses[-1].violations))

    assert ros.call(trigger, TriggerSoftwareStop.Request(requested_by='test',
                                                         reason='drill')).success
    assert ros.spin_until(lambda: propose(0.56) or latest_verdict() ==
                          SafetyStatus.VERDICT_STOPPED)
    refused = ros.call(reset, ResetSoftwareStop.Request(operator_name='', reason='ok'))
    assert not refused.success and 'operator' in refused.message
    assert ros.call(reset, ResetSoftwareStop.Request(operator_name='ana',
                                                     reason='drill over')).success
    assert ros.spin_until(lambda: propose(0.552) or latest_verdict() not in (
        SafetyStatus.VERDICT_STOPPED, None) and not statuses[-1].software_stop_active)

    heartbeat['on'] = False  # the supervisor goes silent: the gate must hold
    assert ros.spin_until(lambda: propose(0.56) or any(
        v.constraint == 'supervisor_silent' for v in statuses[-1].violations))
    assert statuses[-1].verdict == SafetyStatus.VERDICT_REJECTED


def test_a_typo_in_a_safety_parameter_stops_the_node(tmp_path):
    graph = RosGraph([config_file('safety.yaml')],
                     {'safety_node': {'max_cartesian_sped': 0.01}})
    try:
        with pytest.raises(ParameterError, match='max_cartesian_sped'):
            graph.add(SafetyNode)
    finally:
        graph.close()


def test_a_limit_out_of_its_declared_range_is_refused_by_rclpy():
    graph = RosGraph([config_file('safety.yaml')],
                     {'safety_node': {'max_cartesian_speed': 1.0e+9}})
    try:
        with pytest.raises(Exception, match='max_cartesian_speed'):
            graph.add(SafetyNode)
    finally:
        graph.close()


# a camera at (1.12, 0, 0.52) m looking back along -x, 116 px focal length: inside the
# cells' camera hull, as a commissioned one is
CAMERA = [[-48.0, -116.0, 0.0, 53.76], [-48.0, 0.0, -116.0, 114.08], [-1.0, 0.0, 0.0, 1.12]]


def _cell_file(tmp_path, table):
    from sim2real_safety.cell_file import CellCalibration, write_cell_file
    path = tmp_path / f'cell_{table}.yaml'
    write_cell_file(CellCalibration(CAMERA, table,
                                    0.4, 17, 17, actuation_delay=0.03, cell='bench-2'), path)
    return str(path)


def test_the_cell_file_sets_the_table_on_rclpy_over_the_parameter_file(tmp_path):
    # the parameter file says one table, the cell file another: the cell's is used and shown
    graph = RosGraph([config_file('safety.yaml')], {'safety_node': {
        'calibration_file': _cell_file(tmp_path, 0.013), 'table_height': 0.05}})
    try:
        safety = graph.add(SafetyNode)
        assert safety.node.node.get_parameter('table_height').value == 0.013
        assert safety.core.limits.table_height == 0.013
    finally:
        graph.close()


def test_a_cell_file_the_safety_node_cannot_use_stops_it_on_rclpy(tmp_path):
    from sim2real_safety.cell_file import CellFileError
    path = _cell_file(tmp_path, -0.3)
    graph = RosGraph([config_file('safety.yaml')], {'safety_node': {'calibration_file': path}})
    try:
        with pytest.raises(CellFileError, match=f'{path}: table_height -0.3 m is below'):
            graph.add(SafetyNode)
    finally:
        graph.close()

"""driver_relay_node: the safe command to standard driver interfaces; their state to the suite.

Between the safety node and real drivers, so no user writes their own relay:
  - the arm: a ``geometry_msgs/PoseStamped`` target (Cartesian controllers, MoveIt Servo's
    pose tracking) or, with ``arm_output: twist``, a ``geometry_msgs/TwistStamped`` for MoveIt
    Servo (a gain times the remaining error, clipped to the speed limits);
  - the gripper: ``control_msgs/action/GripperCommand`` goals (ros2_control's gripper action
    controller, the Robotiq 2F-85 driver), one per width change beyond ``gripper_deadband``;
    an aborted or refused goal, or no action server, is the gripper fault flag; only the
    latest goal's outcome counts (a goal that a newer one preempted ends canceled on
    ros2_control, aborted on some drivers: neither is a fault);
  - back: ``sim2real_msgs/RobotState`` from the driver's end-effector pose (a PoseStamped
    topic, or with ``pose_source: tf`` the transform ``frame_id`` <- ``tool_frame`` from tf2,
    as most drivers publish it) and the gripper joint of its JointState (width, effort).

Names (relative; ``launch_graph.RELAY`` remaps them):
  sub  command (CartesianCommand: the safe command), ee_pose (PoseStamped, sensor QoS),
       joint_states (sensor_msgs/JointState, sensor QoS)
  pub  arm_target (PoseStamped) or arm_twist (TwistStamped), robot_state (RobotState)
  action client  gripper_action (control_msgs/action/GripperCommand)
Parameters: config/relay.yaml (read-only). Runs on ROS 2 only (actions).
"""
from __future__ import annotations

from sim2real_bringup.relay import ARM_OUTPUTS, POSE_SOURCES, Relay, RelayConfig
from sim2real_safety import convert
from sim2real_safety.node_interface import dataclass_parameters, ns_of

M = 'sim2real_msgs/msg/'
ACTION = 'control_msgs/action/GripperCommand'
SUCCEEDED, CANCELED, ABORTED = 4, 5, 6   # action_msgs/GoalStatus.STATUS_*
DOCS = {
    'arm_output': ('pose: a PoseStamped target; twist: a TwistStamped velocity (MoveIt Servo)',
                   None, ARM_OUTPUTS),
    'frame_id': ('frame of the targets and of the measured pose (the robot base)', None),
    'tool_roll': ('rad: tool orientation at yaw 0 (pi: pointing down)', (-6.3, 6.3)),
    'tool_pitch': ('rad', (-6.3, 6.3)),
    'twist_gain': ('1/s: twist = gain x remaining error', (0.01, 100.0)),
    'max_linear_speed': ('m/s of twist output (keep at the safety limit)', (0.001, 5.0)),
    'max_yaw_rate': ('rad/s of twist output', (0.001, 20.0)),
    'gripper_joint': ("the gripper joint in the driver's JointState", None),
    'gripper_open_position': ('joint position at gripper_width_max', (-10.0, 10.0)),
    'gripper_closed_position': ('joint position at width 0 (2F-85: 0.8)', (-10.0, 10.0)),
    'gripper_width_max': ('m: the widest opening', (0.001, 0.5)),
    'gripper_max_effort': ("max_effort of each GripperCommand goal (the driver's units)",
                           (0.0, 10000.0)),
    'gripper_deadband': ('m: a new gripper goal only when the width moves this much',
                         (0.0, 0.1)),
    'pose_source': ('where the measured end-effector pose comes from: topic (ee_pose, a '
                    'PoseStamped) or tf (tf2: frame_id <- tool_frame)', None, POSE_SOURCES),
    'tool_frame': ("the end-effector frame on tf (pose_source tf; the driver's TCP frame)",
                   None),
    'tf_rate': ('Hz of tf2 lookups (pose_source tf); a transform seen before is not '
                'republished', (1.0, 1000.0)),
}
PARAMETERS = dataclass_parameters(RelayConfig, DOCS)


class DriverRelayNode:
    """Thin node around Relay."""

    NAME = 'driver_relay_node'

    def __init__(self, node):
        self.node = node
        self.config = RelayConfig(**node.declare_parameters(PARAMETERS))
        self.core = Relay(self.config)
        self.msgs = node.messages
        self.measured = None            # (x, y, z, yaw) of the last end-effector pose
        self.gripper = (self.config.gripper_width_max, 0.0)   # width (m), effort
        self.gripper_fault = ''
        self.gripper_goals = 0          # goals sent; the latest is the one whose outcome counts
        if self.config.arm_output == 'pose':
            self.arm_pub = node.create_publisher('arm_target', 'geometry_msgs/msg/PoseStamped',
                                                 'command')
        else:
            self.arm_pub = node.create_publisher('arm_twist', 'geometry_msgs/msg/TwistStamped',
                                                 'command')
        self.state_pub = node.create_publisher('robot_state', M + 'RobotState', 'sensor')
        node.create_subscription('command', M + 'CartesianCommand', self.on_command, 'command')
        self._tf_stamp = -1
        if self.config.pose_source == 'topic':
            node.create_subscription('ee_pose', 'geometry_msgs/msg/PoseStamped', self.on_pose,
                                     'sensor')
        else:
            self.lookup = node.create_transform_lookup()
            node.create_timer(1.0 / self.config.tf_rate, self.on_tf_tick)
        node.create_subscription('joint_states', 'sensor_msgs/msg/JointState', self.on_joints,
                                 'sensor')
        self.gripper_client = node.create_action_client('gripper_action', ACTION)

    def on_command(self, msg) -> None:
        """A safe command: the arm's target (or twist) now, a gripper goal on a change."""
        msgs, now = self.msgs, self.node.now_ns()
        command = convert.command_pose(msg)
        header = msgs.header(now, self.config.frame_id)
        if self.config.arm_output == 'pose':
            position, q = self.core.target_pose(command)
            self.arm_pub.publish(msgs.make('geometry_msgs/msg/PoseStamped', header=header,
                                           pose=self._pose(position, q)))
        elif self.measured is not None:
            linear, yaw_rate = self.core.twist(command, self.measured)
            twist = msgs.make('geometry_msgs/msg/Twist',
                              linear=msgs.make('geometry_msgs/msg/Vector3', x=linear[0],
                                               y=linear[1], z=linear[2]),
                              angular=msgs.make('geometry_msgs/msg/Vector3', z=yaw_rate))
            self.arm_pub.publish(msgs.make('geometry_msgs/msg/TwistStamped', header=header,
                                           twist=twist))
        position = self.core.gripper_goal(command[4])
        if position is not None:
            self._send_gripper(position)

    def _pose(self, position, q):
        msgs = self.msgs
        return msgs.make('geometry_msgs/msg/Pose',
                         position=msgs.make('geometry_msgs/msg/Point', x=position[0],
                                            y=position[1], z=position[2]),
                         orientation=msgs.make('geometry_msgs/msg/Quaternion', x=q[0], y=q[1],
                                               z=q[2], w=q[3]))

    def _send_gripper(self, position: float) -> None:
        if not self.gripper_client.ready():
            self._fault('the gripper action server is not available')
            self.core.forget_gripper_goal()  # send again once it is
            return
        msgs = self.msgs
        goal = msgs.make(ACTION + '_Goal', command=msgs.make(
            'control_msgs/msg/GripperCommand', position=position,
            max_effort=self.config.gripper_max_effort))
        self.gripper_goals += 1
        number = self.gripper_goals
        self.gripper_client.send(goal, lambda feedback: None,
                                 lambda accepted, status, result: self.on_gripper_done(
                                     number, accepted, status, result))

    def on_gripper_done(self, number: int, accepted: bool, status: int, result) -> None:
        """Goal ``number``'s outcome: refused or aborted is a gripper fault, a success clears it.

        The outcome of a goal a newer one has superseded says only that it was preempted.
        """
        if number != self.gripper_goals:
            return
        if not accepted:
            self._fault('the gripper refused the goal')
        elif status == SUCCEEDED:
            self.gripper_fault = ''
        elif status == ABORTED:
            self._fault('the gripper aborted the goal')
        elif status == CANCELED:
            # canceled by the driver, not by us: the next width is sent whatever it is
            self.core.forget_gripper_goal()

    def _fault(self, reason: str) -> None:
        if reason != self.gripper_fault:
            self.node.logger.error(f'gripper fault: {reason}')
        self.gripper_fault = reason

    def on_joints(self, msg) -> None:
        """The gripper joint's position and effort, when the JointState carries it."""
        names = list(msg.name)
        if self.config.gripper_joint not in names:
            return
        index = names.index(self.config.gripper_joint)
        position = msg.position[index] if index < len(msg.position) else None
        effort = msg.effort[index] if index < len(msg.effort) else 0.0
        if position is not None:
            self.gripper = (self.core.gripper_width(position), float(effort))

    def on_pose(self, msg) -> None:
        """The measured end-effector pose (a PoseStamped): the suite's RobotState."""
        p, q = msg.pose.position, msg.pose.orientation
        self._publish_state(ns_of(msg.header.stamp), (p.x, p.y, p.z), (q.x, q.y, q.z, q.w),
                            msg.header.frame_id or self.config.frame_id)

    def on_tf_tick(self) -> None:
        """The newest frame_id <- tool_frame transform on tf2, once per new stamp."""
        found = self.lookup(self.config.frame_id, self.config.tool_frame)
        if found is None or found[0] <= self._tf_stamp:
            return   # none yet (the safety node holds on a stale state), or seen already
        self._tf_stamp, position, quaternion = found
        self._publish_state(self._tf_stamp, position, quaternion, self.config.frame_id)

    def _publish_state(self, stamp: int, position, quaternion, frame_id: str) -> None:
        x, y, z = position
        yaw = convert.yaw_of(quaternion)
        self.measured = (x, y, z, yaw)
        vx, vy, vz = self.core.on_pose(stamp, (x, y, z))
        width, effort = self.gripper
        self.state_pub.publish(convert.robot_state_msg(
            self.msgs, (x, y, z, yaw, vx, vy, vz, width, effort), stamp,
            fault=bool(self.gripper_fault), frame_id=frame_id))


def main(args=None):
    """Run the driver relay node on ROS 2 until shutdown."""
    from sim2real_safety.nodes.rclpy_node import run
    run(DriverRelayNode, args)


if __name__ == '__main__':
    main()

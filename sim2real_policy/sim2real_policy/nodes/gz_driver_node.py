"""gz_driver_node: the Gazebo robot behind the standard driver interfaces (ROS 2 only).

What a real arm's and 2F-85's drivers serve, from the Gazebo world's joints
(``sim2real_policy.sim.gazebo_world``), so ``gazebo.launch.py`` runs the suite through the same
driver relay as ``robot.launch.py``:
  sub  arm_target (geometry_msgs/PoseStamped: a Cartesian controller's target),
       gz_joint_states (sensor_msgs/JointState from ros_gz_bridge: the world's joints, as
       offsets from HOME)
  pub  ee_pose (geometry_msgs/PoseStamped), joint_states (sensor_msgs/JointState: the stage
       joints as TCP coordinates and the 2F-85's knuckle joint, with efforts),
       gz/<joint>/cmd_pos (std_msgs/Float64, bridged to the joints' position controllers)
  action server  gripper_action (control_msgs/action/GripperCommand): the knuckle position
       (0 open .. 0.8 closed, as the 2F-85 driver's), done when reached or stalled
The stage's joints are the TCP (a Cartesian stage): the target's position and yaw are their
setpoints, clamped to their travel. Time is the world's (``use_sim_time``).
"""
from __future__ import annotations

from sim2real_policy.gripper_goals import GRIPPER_PARAMETERS, GripperGoals, GripperJoint
from sim2real_policy.sim.gazebo_world import FINGER_JOINTS
from sim2real_policy.sim.robot import GRIPPER_MAX_WIDTH, HOME
from sim2real_policy.sim.scene import STAGE_JOINTS, STAGE_RANGE
from sim2real_safety import convert
from sim2real_safety.node_interface import ns_of, Param

PARAMETERS = (
    Param('frame_id', 'base_link', 'frame of ee_pose and of the targets'),
    *GRIPPER_PARAMETERS,
)


class GzDriverNode:
    """The Gazebo stage and fingers behind a pose target, a pose topic and a gripper action."""

    NAME = 'gz_driver_node'

    def __init__(self, node):
        self.node = node
        p = self.p = node.declare_parameters(PARAMETERS)
        self.msgs = node.messages
        self.joint = GripperJoint(p['gripper_open_position'], p['gripper_closed_position'],
                                  GRIPPER_MAX_WIDTH)
        self.goals = GripperGoals(p['gripper_tolerance'], p['gripper_stall_time'])
        self.width = GRIPPER_MAX_WIDTH
        self.effort = 0.0
        self.command_pubs = {
            joint: node.create_publisher(f'gz/{joint}/cmd_pos', 'std_msgs/msg/Float64',
                                         'command')
            for joint in (*STAGE_JOINTS, *FINGER_JOINTS)}
        self.pose_pub = node.create_publisher('ee_pose', 'geometry_msgs/msg/PoseStamped',
                                              'sensor')
        self.joint_pub = node.create_publisher('joint_states', 'sensor_msgs/msg/JointState',
                                               'sensor')
        node.create_subscription('arm_target', 'geometry_msgs/msg/PoseStamped', self.on_target,
                                 'command')
        node.create_subscription('gz_joint_states', 'sensor_msgs/msg/JointState',
                                 self.on_joints, 'sensor')
        node.create_action_server('gripper_action', 'control_msgs/action/GripperCommand',
                                  self.execute)

    def _send(self, joint: str, value: float) -> None:
        self.command_pubs[joint].publish(self.msgs.make('std_msgs/msg/Float64',
                                                        data=float(value)))

    def on_target(self, msg) -> None:
        """A Cartesian target: the stage joints' setpoints (offsets from HOME)."""
        q = msg.pose.orientation
        # the yaw of a tool pointing down (roll pi): the relay's target orientation
        yaw = convert.yaw_of((q.x, q.y, q.z, q.w))
        position = msg.pose.position
        for index, (joint, value) in enumerate(zip(STAGE_JOINTS,
                                                   (position.x, position.y, position.z, yaw))):
            low, high = STAGE_RANGE[index]
            self._send(joint, min(max(value, low), high) - HOME[index])

    async def execute(self, goal_handle):
        """A gripper goal: both fingers to the opening, finished when reached or stalled."""
        from rclpy.task import Future
        width = self.joint.width(goal_handle.request.command.position)
        travel = (GRIPPER_MAX_WIDTH - width) / 2.0   # each finger's closing from fully open
        for joint in FINGER_JOINTS:
            self._send(joint, travel)
        future = Future()
        self.goals.start(width, self.node.now_ns(), self.width, future.set_result)
        outcome = await future
        result = self.msgs.make('control_msgs/action/GripperCommand_Result',
                                position=self.joint.position(self.width),
                                effort=float(self.effort), stalled=outcome == 'stalled',
                                reached_goal=outcome == 'reached')
        if outcome == 'preempted':
            goal_handle.abort()
        else:
            goal_handle.succeed()
        return result

    def on_joints(self, msg) -> None:
        """The world's joints: the measured TCP, the opening and the grip force."""
        index = {name: i for i, name in enumerate(msg.name)}
        if any(name not in index for name in (*STAGE_JOINTS, *FINGER_JOINTS)):
            return  # not this world's robot: nothing to report rather than a wrong pose
        stamp = ns_of(msg.header.stamp)
        tcp = [msg.position[index[j]] + HOME[i] for i, j in enumerate(STAGE_JOINTS)]
        fingers = [index[j] for j in FINGER_JOINTS]
        self.width = max(0.0, GRIPPER_MAX_WIDTH - sum(msg.position[i] for i in fingers))
        # each finger's position controller pushes along its closing axis: the grip force
        self.effort = (sum(msg.effort[i] for i in fingers) / 2.0
                       if len(msg.effort) == len(msg.name) else 0.0)
        self.pose_pub.publish(convert.tool_pose_msg(self.msgs, tcp, stamp,
                                                    self.p['frame_id']))
        velocities = ([msg.velocity[index[j]] for j in STAGE_JOINTS]
                      if len(msg.velocity) == len(msg.name) else [0.0] * len(STAGE_JOINTS))
        efforts = ([msg.effort[index[j]] for j in STAGE_JOINTS]
                   if len(msg.effort) == len(msg.name) else [0.0] * len(STAGE_JOINTS))
        self.joint_pub.publish(convert.joint_state_msg(
            self.msgs, [*STAGE_JOINTS, self.p['gripper_joint']],
            [*tcp, self.joint.position(self.width)], [*velocities, 0.0], stamp,
            [*efforts, self.effort]))
        self.goals.update(stamp, self.width)


def main(args=None):
    """Run the Gazebo driver on ROS 2 until shutdown."""
    from sim2real_safety.nodes.rclpy_node import run
    run(GzDriverNode, args)


if __name__ == '__main__':
    main()

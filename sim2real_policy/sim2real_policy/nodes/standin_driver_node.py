"""standin_driver_node: the MuJoCo gripper behind the standard driver interfaces (ROS 2 only).

What the robot's own drivers would serve, so ``robot.launch.py`` (with the driver relay) can be
run and tested without hardware:
  sub  arm_target (geometry_msgs/PoseStamped: a Cartesian controller's target)
  pub  ee_pose (geometry_msgs/PoseStamped, the measured end effector), joint_states
       (sensor_msgs/JointState: stage joints and the gripper joint, with efforts),
       image_raw (sensor_msgs/Image rgb8: the scene camera), grasp_result (GraspResult: the
       simulator's verdict, with ``episode_timeout`` > 0)
  action server  gripper_action (control_msgs/action/GripperCommand): the goal position is the
       gripper joint's (open .. closed, 0 .. 0.8 as the 2F-85's), done when reached or stalled
It runs in real time on the node's clock. By default the world is one long episode, as a
robot's is; with ``episode_timeout`` > 0 an episode ends when the object has been held up for
``success_hold_time`` or after the timeout, and the next object (seed + episode) is put on the
same cell (camera, table and delay unchanged: what commissioning measured), around the stage
where it stands, as an operator would.
"""
from __future__ import annotations

from sim2real_policy.episodes import EpisodeJudge, next_object, stage_pose
from sim2real_policy.gripper_goals import GRIPPER_PARAMETERS, GripperGoals, GripperJoint
from sim2real_policy.sim.randomization import scene_params, VisualRandomizer
from sim2real_policy.sim.robot import GripperSim, HOME
from sim2real_safety import convert
from sim2real_safety.node_interface import Param

PARAMETERS = (
    Param('state_rate', 100.0, 'Hz of ee_pose and joint_states', (1.0, 1000.0)),
    Param('randomization_file', '', 'randomization ranges file ("" = the nominal scene): a '
          'randomized cell to commission and run on'),
    Param('randomization', 'none', 'profile of the randomization file (none, light, heavy)'),
    Param('camera_rate', 10.0, 'Hz of image_raw', (0.1, 100.0)),
    Param('image_width', 96, 'px', (16, 4096)),
    Param('image_height', 96, 'px', (16, 4096)),
    Param('seed', 0, 'seed of the simulated scene (episode i: its object from seed + i)',
          (0, 2**31 - 1)),
    Param('episode_timeout', 0.0, 's before an episode counts as failed and the next object '
          'is put down (0: one long episode, as on a robot)', (0.0, 3600.0)),
    Param('success_hold_time', 0.5, 's the object must stay lifted to count as grasped',
          (0.0, 60.0)),
    Param('frame_id', 'base_link', 'frame of ee_pose'),
    Param('gripper_width_max', 0.085, 'm: the widest opening', (0.001, 0.5)),
    *GRIPPER_PARAMETERS,
)


class StandinDriverNode:
    """GripperSim behind a Cartesian target topic, a pose topic and a gripper action."""

    NAME = 'standin_driver_node'

    def __init__(self, node):
        self.node = node
        p = self.p = node.declare_parameters(PARAMETERS)
        self.msgs = node.messages
        self.cell = scene_params(p['randomization_file'], p['randomization'], p['seed'])
        self.sim = GripperSim(self.cell)
        self.visual = VisualRandomizer(self.cell.image, self.cell.seed)
        node.on_shutdown(lambda: self.sim.close())
        self.judge = (EpisodeJudge(p['episode_timeout'], p['success_hold_time'])
                      if p['episode_timeout'] > 0.0 else None)
        if self.judge is not None:
            self.judge.begin(node.now_ns())
        self.target = list(HOME)          # x, y, z, yaw, gripper width
        self.goals = GripperGoals(p['gripper_tolerance'], p['gripper_stall_time'])
        self.joint = GripperJoint(p['gripper_open_position'], p['gripper_closed_position'],
                                  p['gripper_width_max'])
        self.period = 1.0 / p['state_rate']
        self.steps_per_frame = max(1, round(p['state_rate'] / p['camera_rate']))
        self.steps = 0
        self.pose_pub = node.create_publisher('ee_pose', 'geometry_msgs/msg/PoseStamped',
                                              'sensor')
        self.joint_pub = node.create_publisher('joint_states', 'sensor_msgs/msg/JointState',
                                               'sensor')
        self.image_pub = node.create_publisher('image_raw', 'sensor_msgs/msg/Image', 'sensor')
        self.result_pub = node.create_publisher('grasp_result', 'sim2real_msgs/msg/GraspResult',
                                                'default')
        node.create_subscription('arm_target', 'geometry_msgs/msg/PoseStamped', self.on_target,
                                 'command')
        node.create_action_server('gripper_action', 'control_msgs/action/GripperCommand',
                                  self.execute)
        node.create_timer(self.period, self.on_step)

    def on_target(self, msg) -> None:
        """A Cartesian target: position and the yaw of its orientation."""
        q = msg.pose.orientation
        yaw = convert.yaw_of((q.x, q.y, q.z, q.w))
        self.target[:4] = [msg.pose.position.x, msg.pose.position.y, msg.pose.position.z, yaw]
        self.sim.command(tuple(self.target))

    async def execute(self, goal_handle):
        """A gripper goal: move, and finish when reached or stalled (awaited, not blocking)."""
        from rclpy.task import Future
        width = self.joint.width(goal_handle.request.command.position)
        self.target[4] = width
        self.sim.command(tuple(self.target))
        future = Future()
        self.goals.start(width, self.node.now_ns(), self.sim.gripper_width(), future.set_result)
        outcome = await future
        result = self.msgs.make('control_msgs/action/GripperCommand_Result',
                                position=self.joint.position(self.sim.gripper_width()),
                                effort=float(self.sim.gripper_effort()),
                                stalled=outcome == 'stalled', reached_goal=outcome == 'reached')
        if outcome == 'preempted':
            goal_handle.abort()
        else:
            goal_handle.succeed()
        return result

    def on_step(self) -> None:
        """Advance one period; publish the pose, the joints and (every few steps) a frame."""
        sim, msgs, now = self.sim, self.msgs, self.node.now_ns()
        sim.step(self.period)
        self.pose_pub.publish(convert.tool_pose_msg(
            msgs, [float(v) for v in sim.tcp(noisy=True)[:4]], now, self.p['frame_id']))
        names, positions, velocities = sim.joint_state()
        width = sim.gripper_width()
        self.joint_pub.publish(convert.joint_state_msg(
            msgs, [*names, self.p['gripper_joint']], [*positions, self.joint.position(width)],
            [*velocities, 0.0], now, [*sim.joint_efforts(), sim.gripper_effort()]))
        self.steps += 1
        if self.steps % self.steps_per_frame == 0:
            self.image_pub.publish(convert.image_msg(
                msgs, self.visual.apply(sim.render(self.p['image_width'],
                                                   self.p['image_height'])), now))
        self.goals.update(now, width)
        if self.judge is not None:
            verdict = self.judge.verdict(sim, now)
            if verdict is not None:
                self.next_episode(verdict, now)

    def next_episode(self, success: bool, now: int) -> None:
        """Publish the verdict; the next object on the same cell, the stage where it stands."""
        result = self.judge.result_msg(self.msgs, self.sim, success, now)
        self.result_pub.publish(result)
        self.node.logger.info(f'episode {self.judge.episode}: '
                              f'{"success" if success else "failure"} in {result.duration:.1f} s')
        p = self.p
        drawn = scene_params(p['randomization_file'], p['randomization'],
                             p['seed'] + self.judge.episode + 1)
        params = next_object(self.cell, drawn)
        pose = stage_pose(self.sim)
        self.sim.close()
        self.sim = GripperSim(params, start=pose)
        self.sim.command(tuple(self.target))
        self.visual = VisualRandomizer(params.image, params.seed)
        self.judge.begin(now)


def main(args=None):
    """Run the stand-in driver on ROS 2 until shutdown."""
    from sim2real_safety.nodes.rclpy_node import run
    run(StandinDriverNode, args)


if __name__ == '__main__':
    main()

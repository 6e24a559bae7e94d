"""gz_episode_node: episodes on the Gazebo world -- the verdict and the object's next pose.

What ``sim_robot_node`` does for the MuJoCo world, for Gazebo (ROS 2 only):
  sub  object_pose (geometry_msgs/PoseStamped: the object's pose from ros_gz_bridge),
       robot_state (RobotState: the measured TCP and gripper opening)
  pub  grasp_result (GraspResult: the simulator's verdict, as sim_robot_node's)
An episode succeeds when the object has been lifted ``LIFT_HEIGHT`` above where it rested and
held between the fingers for ``success_hold_time``; it fails after ``episode_timeout``. Then the
object is set to the next episode's pose (task randomization of the randomization file, seed +
episode) through Gazebo's ``set_pose`` service, by the ``gz service`` command on a worker
thread: nothing else moves, so the robot goes on from where it stands, as on a real cell.
"""
from __future__ import annotations

import math
import subprocess

from sim2real_policy.sim.gazebo_world import OBJECT, WORLD
from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.robot import LIFT_HEIGHT
from sim2real_policy.sim.scene import object_half_height
from sim2real_safety.node_interface import NS, ns_of, Param

M = 'sim2real_msgs/msg/'
PARAMETERS = (
    Param('randomization_file', '', 'randomization ranges file ("" = the nominal pose)'),
    Param('randomization', 'none', 'profile of the randomization file'),
    Param('seed', 0, 'seed of the first episode (episode i uses seed + i)', (0, 2**31 - 1)),
    Param('episode_timeout', 20.0, 's before an episode counts as failed', (0.1, 3600.0)),
    Param('success_hold_time', 0.5, 's the object must stay lifted to count as grasped',
          (0.0, 60.0)),
    Param('held_distance', 0.04, 'm: the object centre this close to the TCP is in the hand',
          (0.001, 0.5)),
)


def set_pose_command(x: float, y: float, z: float, yaw: float) -> list[str]:
    """The ``gz service`` call that puts the object at ``(x, y, z)`` turned by ``yaw``."""
    request = (f'name: "{OBJECT}" position {{ x: {x} y: {y} z: {z} }} orientation '
               f'{{ z: {math.sin(yaw / 2)} w: {math.cos(yaw / 2)} }}')
    return ['gz', 'service', '-s', f'/world/{WORLD}/set_pose', '--reqtype', 'gz.msgs.Pose',
            '--reptype', 'gz.msgs.Boolean', '--timeout', '3000', '--req', request]


class GzEpisodeNode:
    """Judges each episode from the object's pose and starts the next one."""

    NAME = 'gz_episode_node'

    def __init__(self, node):
        self.node = node
        self.p = node.declare_parameters(PARAMETERS)
        self.msgs = node.messages
        self.sample = self._sampler()
        self.episode = 0
        self.start_ns = None        # the episode's first object pose
        self.rest_z = None          # where the object rested at the start
        self.held_since_ns = None
        self.tcp = None             # (x, y, z, gripper width)
        self.resetting = False      # the set_pose call is under way
        self.result_pub = node.create_publisher('grasp_result', M + 'GraspResult', 'default')
        node.create_subscription('object_pose', 'geometry_msgs/msg/PoseStamped',
                                 self.on_object, 'sensor')
        node.create_subscription('robot_state', M + 'RobotState', self.on_robot, 'sensor')

    def _sampler(self):
        p = self.p
        if not p['randomization_file']:
            return None
        import yaml

        from sim2real_policy.sim.randomization import Randomizer
        with open(p['randomization_file']) as handle:
            randomizer = Randomizer(yaml.safe_load(handle), p['randomization'])
        return lambda index: randomizer.sample(p['seed'] + index)

    def on_robot(self, msg) -> None:
        """The measured TCP and opening: where the hand is."""
        self.tcp = (msg.x, msg.y, msg.z, msg.gripper_width)

    def on_object(self, msg) -> None:
        """The object moved (50 Hz): bookkeep the episode."""
        if self.resetting:
            return
        now = ns_of(msg.header.stamp)
        position = msg.pose.position
        if self.start_ns is None:
            self.start_ns, self.rest_z, self.held_since_ns = now, position.z, None
            return
        lifted = position.z - self.rest_z >= LIFT_HEIGHT
        held = self.tcp is not None and math.dist(
            (position.x, position.y, position.z), self.tcp[:3]) <= self.p['held_distance']
        if lifted and held:
            if self.held_since_ns is None:
                self.held_since_ns = now
            if now - self.held_since_ns >= self.p['success_hold_time'] * NS:
                self._end(True, now, position.z)
                return
        else:
            self.held_since_ns = None
        if now - self.start_ns >= self.p['episode_timeout'] * NS:
            self._end(False, now, position.z)

    def _end(self, success: bool, now: int, z: float) -> None:
        msgs = self.msgs
        duration = (now - self.start_ns) / NS
        self.result_pub.publish(msgs.make(
            M + 'GraspResult', header=msgs.header(now), episode=self.episode, attempts=1,
            success=bool(success), label_source=0, duration=duration,
            lift_height=float(z - self.rest_z),
            final_gripper_width=float(self.tcp[3]) if self.tcp else 0.0,
            seed=int(self.p['seed'] + self.episode),
            failure_reason='' if success else 'not lifted in time'))
        self.node.logger.info(f'episode {self.episode}: {"success" if success else "failure"}'
                              f' in {duration:.1f} s (simulated clock)')
        self.episode += 1
        self.resetting = True
        params = self.sample(self.episode) if self.sample else None
        params = params or SimParams()
        pose = (params.object_x, params.object_y,
                params.table_height + object_half_height(params) + 0.0005, params.object_yaw)
        self.node.run_async(lambda: subprocess.run(set_pose_command(*pose), capture_output=True,
                                                   text=True, timeout=10),
                            self._reset_done, self._reset_failed)

    def _reset_done(self, completed, seconds: float) -> None:
        if completed.returncode != 0 or 'true' not in completed.stdout:
            self.node.logger.error(f'set_pose of the object failed: '
                                   f'{(completed.stderr or completed.stdout).strip()[:200]}')
        self.resetting = False
        self.start_ns = None  # the next pose received starts the episode

    def _reset_failed(self, exc: Exception) -> None:
        self.node.logger.error(f'set_pose of the object failed: {exc}')
        self.resetting = False
        self.start_ns = None


def main(args=None):
    """Run the Gazebo episode node on ROS 2 until shutdown."""
    from sim2real_safety.nodes.rclpy_node import run
    run(GzEpisodeNode, args)


if __name__ == '__main__':
    main()

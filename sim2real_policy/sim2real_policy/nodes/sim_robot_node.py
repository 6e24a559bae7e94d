"""sim_robot_node: the MuJoCo gripper standing in for the real drivers (both runtimes).

Names (relative; the launch graph remaps them onto the suite's topics):
  sub  command (CartesianCommand: the safe command, the only one it takes)
  pub  robot_state (RobotState, sensor QoS; the jammed-gripper fault flag as a Robotiq
       driver reports it), joint_states (sensor_msgs/JointState with efforts, sensor QoS),
       image_raw (sensor_msgs/Image rgb8, sensor QoS), grasp_result (GraspResult: the
       simulator's verdict), /clock (rosgraph_msgs/Clock, when ``publish_clock``)
Parameters: config/sim.yaml (read-only).

On ROS it drives simulated time itself (steady-clock timers, ``/clock`` for the other nodes'
``use_sim_time``). An episode ends when the object has been held up for
``success_hold_time`` or after ``episode_timeout``; then the next world is built around the
stage where it stands (no jump: the safety filter's rate limits and joint monitoring stay
quiet). The in-process runtime replaces ``on_episode_end`` to reset the cell between episodes
its own way (``sim2real_bringup.pipeline``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sim2real_policy.episodes import EpisodeJudge, stage_pose
from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.randomization import scene_params, VisualRandomizer
from sim2real_policy.sim.robot import GripperSim, HOME
from sim2real_safety import convert
from sim2real_safety.node_interface import NS, Param

M = 'sim2real_msgs/msg/'
PARAMETERS = (
    Param('state_rate', 100.0, 'Hz of RobotState and JointState (and physics advance)',
          (1.0, 1000.0)),
    Param('camera_rate', 10.0, 'Hz of rendered frames (a whole fraction of state_rate)',
          (0.1, 1000.0)),
    Param('image_width', 96, 'px of rendered frames', (16, 4096)),
    Param('image_height', 96, 'px of rendered frames', (16, 4096)),
    Param('randomization_file', '', 'randomization ranges file ("" = the nominal scene)'),
    Param('randomization', 'none', 'profile of the randomization file'),
    Param('episode_timeout', 12.0, 's before an episode counts as failed', (0.1, 3600.0)),
    Param('success_hold_time', 0.5, 's the object must stay lifted to count as grasped',
          (0.0, 60.0)),
    Param('seed', 0, 'seed of the first episode (episode i uses seed + i)', (0, 2**31 - 1)),
    Param('publish_clock', True, 'publish /clock (the other nodes run on use_sim_time)'),
)


@dataclass
class SimFaults:
    """Faults the simulator can be told to have (drills flip them mid-run)."""

    gripper_stuck: bool = False   # the gripper ignores commands; its driver flags a fault
    gripper_stalled: bool = False  # the gripper ignores commands; its driver does not notice
                                   # (no fault flag: only the supervisor's stall check can tell)


class SimRobotNode:
    """Thin node around GripperSim."""

    NAME = 'sim_robot_node'

    def __init__(self, node, episode_params: Callable[[int], SimParams] | None = None,
                 faults: SimFaults | None = None, start: bool = True):
        self.node = node
        p = self.params = node.declare_parameters(PARAMETERS)
        self.episode_params = episode_params or self._params_from_file()
        self.faults = faults or SimFaults()
        self.msgs = node.messages
        self.state_pub = node.create_publisher('robot_state', M + 'RobotState', 'sensor')
        self.joint_pub = node.create_publisher('joint_states', 'sensor_msgs/msg/JointState',
                                               'sensor')
        self.image_pub = node.create_publisher('image_raw', 'sensor_msgs/msg/Image', 'sensor')
        self.result_pub = node.create_publisher('grasp_result', M + 'GraspResult', 'default')
        self.clock_pub = (node.create_publisher('/clock', 'rosgraph_msgs/msg/Clock', 'default')
                          if p['publish_clock'] else None)
        node.create_subscription('command', M + 'CartesianCommand', self.on_command, 'command')
        self.period = 1.0 / p['state_rate']
        self.period_ns = int(round(self.period * NS))
        self.size = (p['image_width'], p['image_height'])
        self.sim_ns = node.now_ns()
        self.sim: GripperSim | None = None
        self.visual: VisualRandomizer | None = None
        self.judge = EpisodeJudge(p['episode_timeout'], p['success_hold_time'])
        # what happens when an episode ends (the in-process runtime puts its own reset here)
        self.on_episode_end: Callable[[bool], None] = self.reset_in_place
        # Frames are rendered on the physics step they show (every steps_per_frame-th step),
        # stamped with its time: a frame is never older or younger than its stamp says.
        self.steps_per_frame = max(1, round(p['state_rate'] / p['camera_rate']))
        self.step_count = 0
        node.on_shutdown(self.stop)
        node.create_timer(self.period, self.on_step, steady=True)
        if start:
            self.start(self.episode_params(0))

    def _params_from_file(self) -> Callable[[int], SimParams]:
        p = self.params
        return lambda index: scene_params(p['randomization_file'], p['randomization'],
                                          p['seed'] + index)

    # ----------------------------------------------------------------------- episodes
    def start(self, params: SimParams, pose=HOME) -> None:
        """A new episode: a fresh world with the stage at ``pose``."""
        self.stop()
        self.sim = GripperSim(params, start=pose)
        self.sim.stuck_gripper = self.faults.gripper_stuck or getattr(
            self.faults, 'gripper_stalled', False)
        self.visual = VisualRandomizer(params.image, params.seed)
        self.judge.begin(self.sim_ns)

    def stop(self) -> None:
        """The world is gone until the next episode starts."""
        if self.sim is not None:
            self.sim.close()
        self.sim = None

    @property
    def active(self) -> bool:
        """True while an episode's world exists."""
        return self.sim is not None

    @property
    def episode(self) -> int:
        """Index of the current episode (0 the first)."""
        return self.judge.episode

    def result_msg(self, success: bool):
        """The episode's GraspResult (the simulator's verdict)."""
        return self.judge.result_msg(self.msgs, self.sim, success, self.sim_ns)

    def reset_in_place(self, success: bool) -> None:
        """Publish the verdict; the next world is built around the stage where it stands."""
        result = self.result_msg(success)
        self.result_pub.publish(result)
        self.node.logger.info(f'episode {self.episode}: {"success" if success else "failure"}'
                              f' in {result.duration:.1f} s')
        self.start(self.episode_params(self.episode + 1), stage_pose(self.sim))

    # ---------------------------------------------------------------------- callbacks
    def on_command(self, msg) -> None:
        """The safe command is the only command the robot takes."""
        if self.sim is not None:
            self.sim.command(convert.command_pose(msg))

    def on_step(self) -> None:
        """Advance one state period, publish clock and state, bookkeep the episode."""
        self.sim_ns += self.period_ns
        msgs, now = self.msgs, self.sim_ns
        if self.clock_pub is not None:
            self.clock_pub.publish(msgs.make('rosgraph_msgs/msg/Clock', clock=msgs.stamp(now)))
        sim = self.sim
        if sim is None:
            return
        flagged = self.faults.gripper_stuck
        # the in-process pipeline hands over its own fault switches, which may lack this one
        silent = getattr(self.faults, 'gripper_stalled', False)
        sim.stuck_gripper = flagged or silent
        sim.step(self.period)
        self.state_pub.publish(convert.robot_state_msg(msgs, sim.robot_state(), now,
                                                       fault=flagged))
        names, positions, velocities = sim.joint_state()
        self.joint_pub.publish(convert.joint_state_msg(msgs, names, positions, velocities,
                                                       now, sim.joint_efforts()))
        self.step_count += 1
        if self.step_count % self.steps_per_frame == 0:
            self.image_pub.publish(convert.image_msg(
                msgs, self.visual.apply(sim.render(*self.size)), now))
        verdict = self.judge.verdict(sim, now)
        if verdict is not None:
            self.on_episode_end(verdict)


def main(args=None):
    """Run the simulated robot node on ROS 2 until shutdown."""
    from sim2real_safety.nodes.rclpy_node import run
    run(SimRobotNode, args)


if __name__ == '__main__':
    main()

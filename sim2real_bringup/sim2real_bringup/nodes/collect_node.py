"""collect_node: data collection between the controller and the safety node (both runtimes).

Forwards the controller's proposal, or the operator's teleoperation (phase 1, and during an
intervention in phase 2), to the safety node; keeps the episode book and publishes its
events; gives each episode its automatic label (the gripper check) as a GraspResult; serves
operator labels. Nothing it forwards bypasses the safety node: it only chooses the proposal.

Names (relative; remapped by collect.launch.py and the in-process collection alike,
``sim2real_bringup.launch_graph.COLLECT_REMAPS``):
  sub  policy_command (CartesianCommand, the controller's), cmd_vel (geometry_msgs/Twist),
       joy (sensor_msgs/Joy), intervention (std_msgs/Bool), robot_state (RobotState),
       safe_command (CartesianCommand), episode_done (GraspResult: the simulator's reset)
  pub  proposed_command (CartesianCommand, to the safety node), events (EpisodeEvent),
       grasp_result (GraspResult, the automatic label; the supervisor counts these)
  srv  label (LabelEpisode), start_episode, end_episode (std_srvs/Trigger: the operator
       marks boundaries on the robot)
Parameters: config/collect.yaml (collection, ``teleop.*``; read-only).
"""
from __future__ import annotations

from sim2real_bringup.collection import CollectConfig, CommandArbiter, EpisodeBook, PHASES
from sim2real_policy.teleop import Teleop, TeleopConfig
from sim2real_safety import convert
from sim2real_safety.node_interface import dataclass_parameters, ns_of, Param

M = 'sim2real_msgs/msg/'
SOURCE_TELEOP = 5     # CartesianCommand.SOURCE_TELEOP (checked against the .msg by a test)
LABEL_AUTOMATIC = 0   # GraspResult.LABEL_AUTOMATIC (checked against the .msg by a test)
COLLECT_DOCS = {
    'phase': ('teleop: human-driven grasps (phase 1); policy: the policy tries (phase 2)',
              None, tuple(PHASES)),
    'operator_name': ('who is at the station: recorded with every intervention', None),
    'handback_time': ("s to fade from the human's target to the policy's after a hand-back",
                      (0.0, 10.0)),
    'close_below': ('m: a commanded gripper width below this starts a grasp attempt',
                    (0.0, 0.5)),
    'open_above': ('m: a commanded gripper width above this ends it', (0.0, 0.5)),
    'lift_check': ('m the gripper must rise after closing for a success', (0.0, 1.0)),
}
TELEOP_DOCS = {
    'max_linear_speed': ('m/s per axis, whatever the device sends', (0.001, 1.0)),
    'max_yaw_rate': ('rad/s', (0.001, 10.0)),
    'gripper_speed': ('m/s of fingertip opening/closing while a button is held',
                      (0.001, 1.0)),
    'deadman_timeout': ('s without device input before the target holds', (0.01, 10.0)),
    'max_step_time': ('s integrated at most per tick (no leap after a pause)', (0.001, 1.0)),
    'joy_axes': ('Joy axes driving x, y, z, yaw (-1: unused)', (-1, 64)),
    'joy_scale': ('m/s (rad/s for yaw) at full deflection', (-10.0, 10.0)),
    'button_close': ('Joy button closing the gripper while held', (0, 64)),
    'button_open': ('Joy button opening it', (0, 64)),
    'min_width': ('m: narrowest opening the operator can command', (0.0, 0.5)),
    'max_width': ('m: widest opening', (0.0, 0.5)),
}
PARAMETERS = (
    *dataclass_parameters(CollectConfig, COLLECT_DOCS),
    Param('auto_start', True, 'start the next episode when one ends (simulator); on the robot '
          'the operator calls start_episode after resetting the scene'),
    Param('tick_period', 0.01, "s between the human's proposals while they drive",
          (0.001, 1.0)),
    *dataclass_parameters(TeleopConfig, TELEOP_DOCS, 'teleop.'),
)


class CollectNode:
    """Thin node around CommandArbiter, Teleop and EpisodeBook."""

    NAME = 'collect_node'

    def __init__(self, node):
        self.node = node
        p = node.declare_parameters(PARAMETERS)
        self.config = CollectConfig(**{k: p[k] for k in COLLECT_DOCS})
        self.teleop = Teleop(TeleopConfig(**{k: p['teleop.' + k] for k in TELEOP_DOCS}))
        self.arbiter = CommandArbiter(self.config)
        self.book = EpisodeBook(self.config)
        self.auto_start = p['auto_start']
        self.msgs = node.messages
        self.last_safe = None        # the last safe command (or the state that seeded it)
        self.next_episode = 0
        self.cmd_pub = node.create_publisher('proposed_command', M + 'CartesianCommand',
                                             'command')
        self.event_pub = node.create_publisher('events', M + 'EpisodeEvent', 'default')
        self.result_pub = node.create_publisher('grasp_result', M + 'GraspResult', 'default')
        for name, typename, callback, qos in (
                ('policy_command', M + 'CartesianCommand', self.on_policy, 'command'),
                ('cmd_vel', 'geometry_msgs/msg/Twist', self.on_twist, 'default'),
                ('joy', 'sensor_msgs/msg/Joy', self.on_joy, 'default'),
                ('intervention', 'std_msgs/msg/Bool', self.on_intervention, 'default'),
                ('robot_state', M + 'RobotState', self.on_state, 'sensor'),
                ('safe_command', M + 'CartesianCommand', self.on_safe, 'command'),
                ('episode_done', M + 'GraspResult', self.on_done, 'default')):
            node.create_subscription(name, typename, callback, qos)
        node.create_service('label', 'sim2real_msgs/srv/LabelEpisode', self.on_label)
        node.create_service('start_episode', 'std_srvs/srv/Trigger', self.on_start)
        node.create_service('end_episode', 'std_srvs/srv/Trigger', self.on_end)
        node.create_timer(p['tick_period'], self.on_tick)

    def publish_event(self, event) -> None:
        """An EpisodeEvent from the book."""
        if event is None:
            return
        msgs = self.msgs
        self.event_pub.publish(msgs.make(
            M + 'EpisodeEvent', header=msgs.header(event.time_ns), episode=event.episode,
            event=event.event, phase=event.phase, success=bool(event.success),
            attempt=event.attempt, operator_name=event.operator_name, note=event.note))

    def start_episode(self) -> str:
        """A new episode; the device is seeded at the robot's next state."""
        if self.book.current is not None:
            self.end_episode()
        index, self.next_episode = self.next_episode, self.next_episode + 1
        self.publish_event(self.book.start(index, self.node.now_ns()))
        self.last_safe = None  # the world may have been reset: re-seed from the robot
        self.teleop.target = None
        return f'episode {index} started'

    def end_episode(self) -> str:
        """The automatic label, published as the episode's GraspResult."""
        now, msgs = self.node.now_ns(), self.msgs
        self.arbiter.set_intervention(False, now)
        event, episode = self.book.end(now)
        self.publish_event(event)
        success = bool(episode.automatic)
        self.result_pub.publish(msgs.make(
            M + 'GraspResult', header=msgs.header(now), episode=episode.index,
            attempts=max(1, len(episode.attempts)), success=success,
            label_source=LABEL_AUTOMATIC, duration=(now - episode.start_ns) / 1e9,
            interventions=episode.interventions,
            failure_reason='' if success else event.note))
        return f'episode {episode.index} ended: {"success" if success else "failure"}'

    def on_start(self, request, response):
        """Trigger: the operator has reset the scene."""
        response.message = self.start_episode()
        response.success = True
        return response

    def on_end(self, request, response):
        """Trigger: the operator ends the trial."""
        if self.book.current is None:
            response.success, response.message = False, 'no episode running'
        else:
            response.success, response.message = True, self.end_episode()
        return response

    def on_done(self, msg) -> None:
        """The simulator ended its episode (its verdict only marks the reset)."""
        if self.book.current is not None:
            self.end_episode()
        if self.auto_start:
            self.start_episode()

    def on_label(self, request, response):
        """LabelEpisode: signed labels that win over the automatic one."""
        response.accepted, response.message, event = self.book.label(
            request.episode, request.success, request.operator_name, request.reason,
            self.node.now_ns())
        self.publish_event(event)
        return response

    def on_policy(self, msg) -> None:
        """Forwarded unless a human is in control (faded in after a hand-back)."""
        if self.arbiter.human_in_control or self.last_safe is None:
            return
        pose, _ = self.arbiter.select(convert.command_pose(msg), None, self.node.now_ns())
        if pose is not None:
            self.cmd_pub.publish(convert.command_msg(self.msgs, pose, ns_of(msg.header.stamp),
                                                     msg.source, msg.header.frame_id))

    def on_tick(self) -> None:
        """The human's proposal at the control rate while they are in control."""
        if not self.arbiter.human_in_control or not self.teleop.started:
            return
        now = self.node.now_ns()
        pose, _ = self.arbiter.select(None, self.teleop.tick(now), now)
        self.cmd_pub.publish(convert.command_msg(self.msgs, pose, now, SOURCE_TELEOP))

    def on_twist(self, msg) -> None:
        """Operator motion."""
        self.teleop.on_twist((msg.linear.x, msg.linear.y, msg.linear.z), msg.angular.z,
                             self.node.now_ns())

    def on_joy(self, msg) -> None:
        """Operator buttons (and axes for gamepads)."""
        self.teleop.on_joy(list(msg.axes), list(msg.buttons), self.node.now_ns())

    def on_intervention(self, msg) -> None:
        """A human takes over from the last safe command, or hands back."""
        now = self.node.now_ns()
        if self.arbiter.set_intervention(bool(msg.data), now):
            if msg.data and self.last_safe is not None:
                self.teleop.start(self.last_safe, now)
            self.publish_event(self.book.intervention(bool(msg.data),
                                                      self.config.operator_name, now))

    def on_state(self, msg) -> None:
        """Gripper check of the current attempt; a state after a (re)start seeds the device."""
        now = self.node.now_ns()
        if self.last_safe is None:
            self.last_safe = convert.state_pose(msg)
            self.teleop.start(self.last_safe, now)
            if self.auto_start and self.book.current is None:
                self.start_episode()
                self.last_safe = convert.state_pose(msg)
                self.teleop.start(self.last_safe, now)
        self.publish_event(self.book.on_state(now, msg.z, msg.gripper_width,
                                              msg.gripper_effort))

    def on_safe(self, msg) -> None:
        """What the robot was told: anchors the device, starts and ends attempts."""
        self.last_safe = convert.command_pose(msg)
        if self.arbiter.human_in_control:
            self.teleop.anchor(self.last_safe)
        self.book.on_command(msg.gripper_width)


def main(args=None):
    """Run the collection node on ROS 2 until shutdown."""
    from sim2real_safety.nodes.rclpy_node import run
    run(CollectNode, args)


if __name__ == '__main__':
    main()

"""collect_node: data collection between the controller and the safety node (collect.launch.py).

Forwards the controller's proposal, or the operator's teleoperation (phase 1, and during an
intervention in phase 2), to the safety node; keeps the episode book and publishes its
events; gives each episode its automatic label (the gripper check) as a GraspResult; serves
operator labels. Nothing it forwards bypasses the safety node: it only chooses the proposal.

Names (relative; remapped by collect.launch.py):
  sub  policy_command (CartesianCommand, the controller's), cmd_vel (geometry_msgs/Twist),
       joy (sensor_msgs/Joy), intervention (std_msgs/Bool), robot_state (RobotState),
       safe_command (CartesianCommand), episode_done (GraspResult: the simulator's reset)
  pub  proposed_command (CartesianCommand, to the safety node), events (EpisodeEvent),
       grasp_result (GraspResult, the automatic label; the supervisor counts these)
  srv  label (LabelEpisode), start_episode, end_episode (std_srvs/Trigger: the operator
       marks boundaries on the robot)
Parameters: config/collect.yaml (collection, ``teleop.*``).
"""
from geometry_msgs.msg import Twist
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import Joy
from sim2real_msgs.msg import CartesianCommand, EpisodeEvent, GraspResult, RobotState
from sim2real_msgs.srv import LabelEpisode
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from sim2real_bringup.collection import CollectConfig, CommandArbiter, EpisodeBook
from sim2real_policy.teleop import Teleop, TeleopConfig
from sim2real_safety.nodes.parameters import declare_config
from sim2real_safety.nodes.qos import COMMAND_QOS
from sim2real_safety.nodes.runner import run_node

EVENT_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


class CollectNode(Node):
    """Thin node around CommandArbiter, Teleop and EpisodeBook."""

    def __init__(self):
        super().__init__('collect_node')
        self.config = declare_config(self, CollectConfig, description='see config/collect.yaml')
        self.arbiter = CommandArbiter(self.config)
        self.book = EpisodeBook(self.config)
        self.teleop = Teleop(declare_config(self, TeleopConfig, 'teleop.',
                                           'see config/collect.yaml'))
        self.declare_parameter('auto_start', True, ParameterDescriptor(
            description='start the next episode when one ends (simulator); on the robot the '
                        'operator calls start_episode after resetting the scene'))
        self.auto_start = self.get_parameter('auto_start').value
        self.last_safe = None
        self.next_episode = 0
        self.cmd_pub = self.create_publisher(CartesianCommand, 'proposed_command', COMMAND_QOS)
        self.event_pub = self.create_publisher(EpisodeEvent, 'events', EVENT_QOS)
        self.result_pub = self.create_publisher(GraspResult, 'grasp_result', 10)
        self.create_subscription(CartesianCommand, 'policy_command', self.on_policy,
                                 COMMAND_QOS)
        self.create_subscription(Twist, 'cmd_vel', self.on_twist, 10)
        self.create_subscription(Joy, 'joy', self.on_joy, 10)
        self.create_subscription(Bool, 'intervention', self.on_intervention, 10)
        self.create_subscription(RobotState, 'robot_state', self.on_state,
                                 qos_profile_sensor_data)
        self.create_subscription(CartesianCommand, 'safe_command', self.on_safe, COMMAND_QOS)
        self.create_subscription(GraspResult, 'episode_done', self.on_done, 10)
        self.create_service(LabelEpisode, 'label', self.on_label)
        self.create_service(Trigger, 'start_episode', self.on_start)
        self.create_service(Trigger, 'end_episode', self.on_end)
        self.create_timer(0.01, self.on_tick)

    def now_ns(self) -> int:
        """The node clock (sim time when use_sim_time is set)."""
        return self.get_clock().now().nanoseconds

    def publish_event(self, event) -> None:
        """An EpisodeEvent from the book."""
        if event is None:
            return
        msg = EpisodeEvent()
        msg.header.stamp = Time(nanoseconds=event.time_ns).to_msg()
        msg.episode, msg.event, msg.phase = event.episode, event.event, event.phase
        msg.success, msg.attempt = bool(event.success), event.attempt
        msg.operator_name, msg.note = event.operator_name, event.note
        self.event_pub.publish(msg)

    def start_episode(self) -> str:
        """A new episode from the last safe command (or the first state)."""
        if self.book.current is not None:
            self.end_episode()
        index, self.next_episode = self.next_episode, self.next_episode + 1
        self.publish_event(self.book.start(index, self.now_ns()))
        if self.last_safe is not None:
            self.teleop.start(self.last_safe, self.now_ns())
        return f'episode {index} started'

    def end_episode(self) -> str:
        """The automatic label, published as the episode's GraspResult."""
        now = self.now_ns()
        self.arbiter.set_intervention(False, now)
        event, episode = self.book.end(now)
        self.publish_event(event)
        result = GraspResult()
        result.header.stamp = Time(nanoseconds=now).to_msg()
        result.episode = episode.index
        result.attempts = max(1, len(episode.attempts))
        result.success = bool(episode.automatic)
        result.label_source = GraspResult.LABEL_AUTOMATIC
        result.duration = (now - episode.start_ns) / 1e9
        result.interventions = episode.interventions
        result.failure_reason = '' if episode.automatic else event.note
        self.result_pub.publish(result)
        return f'episode {episode.index} ended: {"success" if result.success else "failure"}'

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

    def on_done(self, msg: GraspResult) -> None:
        """The simulator reset its world: end this episode and start the next."""
        if self.book.current is not None:
            self.end_episode()
        if self.auto_start:
            self.start_episode()

    def on_label(self, request, response):
        """LabelEpisode: signed labels that win over the automatic one."""
        response.accepted, response.message, event = self.book.label(
            request.episode, request.success, request.operator_name, request.reason,
            self.now_ns())
        self.publish_event(event)
        return response

    def on_policy(self, msg: CartesianCommand) -> None:
        """Forwarded unless a human is in control (faded in after a hand-back)."""
        if self.arbiter.human_in_control:
            return
        pose, _ = self.arbiter.select((msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width),
                                      None, self.now_ns())
        if pose is not None:
            out = CartesianCommand(header=msg.header, source=msg.source)
            out.x, out.y, out.z, out.yaw, out.gripper_width = pose
            self.cmd_pub.publish(out)

    def on_tick(self) -> None:
        """The human's proposal at 100 Hz while they are in control."""
        if not self.arbiter.human_in_control or not self.teleop.started:
            return
        now = self.get_clock().now()
        pose, _ = self.arbiter.select(None, self.teleop.tick(now.nanoseconds), now.nanoseconds)
        out = CartesianCommand(source=CartesianCommand.SOURCE_TELEOP)
        out.header.stamp = now.to_msg()
        out.header.frame_id = 'base_link'
        out.x, out.y, out.z, out.yaw, out.gripper_width = pose
        self.cmd_pub.publish(out)

    def on_twist(self, msg: Twist) -> None:
        """Operator motion."""
        self.teleop.on_twist((msg.linear.x, msg.linear.y, msg.linear.z), msg.angular.z,
                             self.now_ns())

    def on_joy(self, msg: Joy) -> None:
        """Operator buttons (and axes for gamepads)."""
        self.teleop.on_joy(list(msg.axes), list(msg.buttons), self.now_ns())

    def on_intervention(self, msg: Bool) -> None:
        """A human takes over from the last safe command, or hands back."""
        now = self.now_ns()
        if self.arbiter.set_intervention(msg.data, now):
            if msg.data and self.last_safe is not None:
                self.teleop.start(self.last_safe, now)
            self.publish_event(self.book.intervention(msg.data, self.config.operator_name,
                                                      now))

    def on_state(self, msg: RobotState) -> None:
        """Gripper check of the current attempt; the first state seeds the device."""
        if self.last_safe is None:
            self.last_safe = (msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width)
            self.teleop.start(self.last_safe, self.now_ns())
            if self.auto_start and self.book.current is None:
                self.start_episode()
        self.publish_event(self.book.on_state(self.now_ns(), msg.z, msg.gripper_width,
                                              msg.gripper_effort))

    def on_safe(self, msg: CartesianCommand) -> None:
        """What the robot was told: anchors the device, starts and ends attempts."""
        self.last_safe = (msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width)
        if self.arbiter.human_in_control:
            self.teleop.anchor(self.last_safe)
        self.book.on_command(msg.gripper_width)


def main(args=None):
    """Run the collection node until shutdown."""
    run_node(CollectNode, args)


if __name__ == '__main__':
    main()

"""safety_node: the ROS 2 wrapper of :class:`sim2real_safety.filter.SafetyFilter`.

Subscribes to the proposed command, the robot state, joint states and the supervisor state;
publishes the safe command (the only command that may reach the driver) and a latched
safety status; serves the software stop and its reset. All logic is in the core.

Names (relative; the launch files remap them onto the suite graph of topics.py):
  sub  proposed_command (CartesianCommand), robot_state (RobotState),
       joint_states (sensor_msgs/JointState), supervisor_state (SupervisorState),
       trigger_stop_topic (std_msgs/String: the reason)
  pub  safe_command (CartesianCommand), status (SafetyStatus, latched)
  srv  trigger_stop (TriggerSoftwareStop), reset_stop (ResetSoftwareStop)
Parameters: config/safety.yaml (declared with descriptions and ranges from limits.PARAMETERS).
"""
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    qos_profile_sensor_data,
)
from rclpy.time import Time
from sensor_msgs.msg import JointState
from sim2real_msgs.msg import (
    CartesianCommand,
    ConstraintViolation,
    RobotState,
    SafetyStatus,
    SupervisorState,
)
from sim2real_msgs.srv import ResetSoftwareStop, TriggerSoftwareStop
from std_msgs.msg import String

from sim2real_safety.filter import SafetyFilter
from sim2real_safety.limits import PARAMETERS, SafetyLimits, Verdict
from sim2real_safety.nodes.qos import COMMAND_QOS, LATCHED_QOS
from sim2real_safety.nodes.runner import run_node
from sim2real_safety.software_stop import ResetRefusedError, SoftwareStopLatch

_TYPES = {'double': Parameter.Type.DOUBLE, 'double_array': Parameter.Type.DOUBLE_ARRAY,
          'string': Parameter.Type.STRING, 'string_array': Parameter.Type.STRING_ARRAY}


class SafetyNode(Node):
    """Thin node: parameters, QoS, topics and services around the safety core."""

    def __init__(self):
        super().__init__('safety_node')
        for name, (kind, text, bounds) in PARAMETERS.items():
            descriptor = ParameterDescriptor(description=text)
            if bounds is not None:
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=bounds[0], to_value=bounds[1], step=0.0)]
            self.declare_parameter(name, _TYPES[kind], descriptor)
        self.declare_parameter('frame_id', 'base_link', ParameterDescriptor(
            description='frame of the safe command (the robot base frame)'))
        self.declare_parameter('stop_state_file', '', ParameterDescriptor(
            description='file persisting the software-stop latch across restarts ("" = off)'))
        params = {name: self.get_parameter_or(name, Parameter(name, value=None)).value
                  for name in PARAMETERS}
        params = {name: value for name, value in params.items() if value is not None}
        limits = SafetyLimits.from_parameters(params)  # raises LimitsError naming the field
        self.frame_id = self.get_parameter('frame_id').value
        stop_file = self.get_parameter('stop_state_file').value or None
        self.core = SafetyFilter(limits, SoftwareStopLatch(stop_file))
        if self.core.stop_active:
            self.get_logger().warning(f'software stop restored: {self.core.latch.cause}')

        self.command_pub = self.create_publisher(CartesianCommand, 'safe_command', COMMAND_QOS)
        self.status_pub = self.create_publisher(SafetyStatus, 'status', LATCHED_QOS)
        self.create_subscription(CartesianCommand, 'proposed_command', self.on_proposal,
                                 COMMAND_QOS)
        self.create_subscription(RobotState, 'robot_state', self.on_robot_state,
                                 qos_profile_sensor_data)
        self.create_subscription(JointState, 'joint_states', self.on_joint_state,
                                 qos_profile_sensor_data)
        self.create_subscription(SupervisorState, 'supervisor_state', self.on_supervisor,
                                 LATCHED_QOS)
        self.create_subscription(String, 'trigger_stop_topic', self.on_stop_topic, 10)
        self.create_service(TriggerSoftwareStop, 'trigger_stop', self.on_trigger_stop)
        self.create_service(ResetSoftwareStop, 'reset_stop', self.on_reset_stop)
        self.create_timer(limits.control_period, self.on_watchdog)

    def now_ns(self) -> int:
        """The node clock (sim time when use_sim_time is set)."""
        return self.get_clock().now().nanoseconds

    def on_proposal(self, msg: CartesianCommand) -> None:
        """Filter one proposal and publish the result."""
        stamp = Time.from_msg(msg.header.stamp).nanoseconds
        self.publish(self.core.check((msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width), stamp,
                                     self.now_ns()), msg.source)

    def on_robot_state(self, msg: RobotState) -> None:
        """Feed the measured pose; a non-finite one latches the stop inside the core."""
        was_active = self.core.stop_active
        self.core.update_robot_state((msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width),
                                     self.now_ns())
        self._log_new_stop(was_active)

    def on_joint_state(self, msg: JointState) -> None:
        """Joint limit monitoring."""
        was_active = self.core.stop_active
        self.core.update_joint_state(msg.name, msg.position, msg.velocity, self.now_ns())
        self._log_new_stop(was_active)

    def on_supervisor(self, msg: SupervisorState) -> None:
        """Every supervisor state is a heartbeat."""
        self.core.supervisor_heartbeat(self.now_ns())

    def on_watchdog(self) -> None:
        """Hold when the proposal stream went quiet; re-publish the stop hold."""
        decision = self.core.tick(self.now_ns())
        if decision is not None:
            self.publish(decision, CartesianCommand.SOURCE_SAFETY)

    def on_stop_topic(self, msg: String) -> None:
        """A software-stop request on a topic (e.g. from a button driver)."""
        self.core.trigger_stop('topic', msg.data or 'stop requested on topic', self.now_ns())
        self.get_logger().warning(f'software stop latched: {self.core.latch.cause}')

    def on_trigger_stop(self, request, response):
        """Service: latch the software stop."""
        self.core.trigger_stop(request.requested_by, request.reason or 'no reason given',
                               self.now_ns())
        self.get_logger().warning(f'software stop latched: {self.core.latch.cause}')
        response.success = True
        response.message = f'software stop latched: {self.core.latch.cause}'
        return response

    def on_reset_stop(self, request, response):
        """Service: clear the stop if an operator, a reason and healthy inputs allow it."""
        try:
            self.core.reset_stop(request.operator_name, request.reason, self.now_ns())
        except ResetRefusedError as exc:
            self.get_logger().warning(str(exc))
            response.success = False
            response.message = str(exc)
            return response
        self.get_logger().info(f'software stop reset by {request.operator_name}: '
                               f'{request.reason}; motion resumes on a new command')
        response.success = True
        response.message = 'software stop reset; motion resumes on a new command'
        return response

    def _log_new_stop(self, was_active: bool) -> None:
        if self.core.stop_active and not was_active:
            self.get_logger().error(f'software stop latched: {self.core.latch.cause}')

    def publish(self, decision, source: int) -> None:
        """Publish the safe command (if any) and the status of one decision."""
        stamp = Time(nanoseconds=decision.stamp_ns).to_msg()
        if decision.command is not None:
            out = CartesianCommand()
            out.header.stamp = stamp
            out.header.frame_id = self.frame_id
            out.x, out.y, out.z, out.yaw, out.gripper_width = decision.command
            passed = decision.verdict in (Verdict.PASS, Verdict.SCALED, Verdict.CLAMPED)
            out.source = source if passed else CartesianCommand.SOURCE_SAFETY
            self.command_pub.publish(out)
        status = SafetyStatus()
        status.header.stamp = stamp
        status.header.frame_id = self.frame_id
        status.verdict = int(decision.verdict)
        status.violations = [ConstraintViolation(
            constraint=v.constraint, field=v.field, value=float(v.value), limit=float(v.limit),
            reaction=int(v.reaction)) for v in decision.violations]
        status.software_stop_active = self.core.stop_active
        status.software_stop_cause = self.core.latch.cause
        status.supervisor_alive = self.core.supervisor_alive(decision.stamp_ns)
        status.command_age = float(decision.command_age)  # NaN when no proposal applies
        status.checked_count = self.core.checked_count
        self.status_pub.publish(status)


def main(args=None):
    """Run the safety node until shutdown."""
    run_node(SafetyNode, args)


if __name__ == '__main__':
    main()

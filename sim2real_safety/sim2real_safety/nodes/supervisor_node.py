"""supervisor_node: the ROS 2 wrapper of :class:`sim2real_safety.supervisor.Supervisor`.

Names (relative; the launch files remap them onto the suite graph of topics.py):
  sub  camera_health (CameraHealth), policy_health (PolicyHealth), robot_state (RobotState),
       safe_command (CartesianCommand), control_diagnostics (ControlDiagnostics),
       safety_status (SafetyStatus), grasp_result (GraspResult)
  pub  state (SupervisorState; transient local, on every transition and every
       heartbeat_period: it is the heartbeat the safety gate watches)
  srv  acknowledge (AcknowledgeHuman)
Parameters: config/supervisor.yaml.
"""
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    qos_profile_sensor_data,
)
from rclpy.time import Time
from sim2real_msgs.msg import (
    CameraHealth,
    CartesianCommand,
    ControlDiagnostics,
    GraspResult,
    PolicyHealth,
    RobotState,
    SafetyStatus,
    SupervisorState,
)
from sim2real_msgs.srv import AcknowledgeHuman

from sim2real_safety.nodes.qos import LATCHED_QOS
from sim2real_safety.nodes.runner import run_node
from sim2real_safety.supervisor import (
    AcknowledgeRefusedError,
    Mode,
    PARAMETERS,
    Supervisor,
    SupervisorConfig,
)

_TYPES = {'double': Parameter.Type.DOUBLE, 'integer': Parameter.Type.INTEGER}
# How often the rules are evaluated (s): a fault is seen within this of its threshold.
UPDATE_PERIOD = 0.02


class SupervisorNode(Node):
    """Thin node: health inputs in, latched mode out, acknowledge service."""

    def __init__(self):
        super().__init__('supervisor_node')
        for name, (kind, text) in PARAMETERS.items():
            self.declare_parameter(name, _TYPES[kind], ParameterDescriptor(description=text))
        params = {name: self.get_parameter_or(name, Parameter(name, value=None)).value
                  for name in PARAMETERS}
        config = SupervisorConfig.from_parameters(
            {k: v for k, v in params.items() if v is not None})
        self.core = Supervisor(config, start_ns=self.now_ns())
        self.state_pub = self.create_publisher(SupervisorState, 'state', LATCHED_QOS)
        self.create_subscription(CameraHealth, 'camera_health', self.on_camera, 10)
        self.create_subscription(PolicyHealth, 'policy_health', self.on_policy, 10)
        self.create_subscription(RobotState, 'robot_state', self.on_robot,
                                 qos_profile_sensor_data)
        self.create_subscription(CartesianCommand, 'safe_command', self.on_command, 1)
        self.create_subscription(ControlDiagnostics, 'control_diagnostics',
                                 lambda _: self.core.on_control(self.now_ns()), 10)
        self.create_subscription(SafetyStatus, 'safety_status', self.on_safety, LATCHED_QOS)
        self.create_subscription(GraspResult, 'grasp_result', self.on_grasp, 10)
        self.create_service(AcknowledgeHuman, 'acknowledge', self.on_acknowledge)
        self.create_timer(UPDATE_PERIOD, self.on_update)
        self.create_timer(config.heartbeat_period, self.publish_state)

    def now_ns(self) -> int:
        """The node clock (sim time when use_sim_time is set)."""
        return self.get_clock().now().nanoseconds

    def on_camera(self, msg: CameraHealth) -> None:
        """Camera liveness and quality."""
        self.core.on_camera_health(msg.healthy, msg.frame_age, msg.frozen_duration,
                                   self.now_ns(), msg.last_error)

    def on_policy(self, msg: PolicyHealth) -> None:
        """Inference latency and errors."""
        self.core.on_policy_health(msg.healthy, msg.inference_latency, msg.chunk_age,
                                   self.now_ns(), msg.last_error)

    def on_robot(self, msg: RobotState) -> None:
        """Gripper width, effort and fault flag."""
        self.core.on_robot_state(msg.gripper_width, msg.gripper_effort, msg.gripper_fault,
                                 self.now_ns())

    def on_command(self, msg: CartesianCommand) -> None:
        """The commanded gripper width (stall detection)."""
        self.core.on_command(msg.gripper_width, self.now_ns())

    def on_safety(self, msg: SafetyStatus) -> None:
        """The software-stop latch as the safety node reports it."""
        self.core.on_safety_status(msg.software_stop_active, msg.software_stop_cause,
                                   self.now_ns())

    def on_grasp(self, msg: GraspResult) -> None:
        """Grasp outcomes count toward HUMAN_REQUIRED."""
        self.core.on_grasp_result(msg.success, self.now_ns())

    def on_update(self) -> None:
        """Evaluate the rules; publish and log at once on a transition."""
        transition = self.core.update(self.now_ns())
        if transition is None:
            return
        log = self.get_logger().warning if transition.mode > transition.previous \
            else self.get_logger().info
        log(f'{transition.previous.name} -> {transition.mode.name}: {transition.reason}')
        self.publish_state()

    def on_acknowledge(self, request, response):
        """Service: a named operator re-enables autonomy after HUMAN_REQUIRED."""
        try:
            response.message = self.core.acknowledge(request.operator_name, request.note,
                                                     self.now_ns())
            response.success = True
            self.get_logger().info(response.message)
            self.publish_state()
        except AcknowledgeRefusedError as exc:
            response.success = False
            response.message = str(exc)
            self.get_logger().warning(str(exc))
        return response

    def publish_state(self) -> None:
        """The latched mode (also the heartbeat)."""
        core = self.core
        msg = SupervisorState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.mode = int(core.mode)
        msg.previous_mode = int(core.previous_mode)
        msg.reason = core.reason
        msg.mode_since = Time(nanoseconds=core.mode_since_ns).to_msg()
        msg.consecutive_failures = core.consecutive_failures
        msg.autonomy_enabled = core.mode < Mode.HUMAN_REQUIRED
        self.state_pub.publish(msg)


def main(args=None):
    """Run the supervisor node until shutdown."""
    run_node(SupervisorNode, args)


if __name__ == '__main__':
    main()

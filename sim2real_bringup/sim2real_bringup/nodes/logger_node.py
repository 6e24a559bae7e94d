"""logger_node: rolling metrics and anomaly checks as diagnostics.

Recording itself is rosbag2's job: the launch files start `ros2 bag record -s mcap` next to
this node (every suite topic, custom definitions embedded, split by size or duration). This
node subscribes to the same topics and publishes /diagnostics once a second.
Names: sub action_chunk, control_diagnostics, safe_command, supervisor_state, grasp_result;
pub /diagnostics (diagnostic_msgs/DiagnosticArray).
"""
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from sim2real_msgs.msg import (
    ActionChunk,
    CartesianCommand,
    ControlDiagnostics,
    GraspResult,
    SupervisorState,
)

from sim2real_bringup.metrics import RollingMetrics
from sim2real_safety.nodes.qos import LATCHED_QOS
from sim2real_safety.nodes.runner import run_node

MODES = {v: k[len('MODE_'):] for k, v in vars(SupervisorState).items()
         if k.startswith('MODE_') and isinstance(v, int)}


class LoggerNode(Node):
    """Thin node around RollingMetrics."""

    def __init__(self):
        super().__init__('logger_node')
        self.declare_parameter('latency_budget', 0.5, ParameterDescriptor(
            description='inference latency p95 above this raises a warning (s)'))
        self.declare_parameter('publish_period', 1.0, ParameterDescriptor(
            description='s between diagnostics'))
        self.metrics = RollingMetrics(latency_budget=self.get_parameter('latency_budget').value)
        self.pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        m = self.metrics
        self.create_subscription(ActionChunk, 'action_chunk',
                                 lambda msg: m.on_chunk(msg.inference_latency), 10)
        self.create_subscription(ControlDiagnostics, 'control_diagnostics',
                                 lambda msg: m.on_control(msg.period, msg.deadline_misses), 10)
        self.create_subscription(CartesianCommand, 'safe_command', lambda msg: m.on_command(
            (msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width)), 10)
        self.create_subscription(SupervisorState, 'supervisor_state', self.on_mode, LATCHED_QOS)
        self.create_subscription(GraspResult, 'grasp_result',
                                 lambda msg: m.on_result(msg.success), 10)
        self.create_timer(self.get_parameter('publish_period').value, self.publish)

    def on_mode(self, msg: SupervisorState) -> None:
        """Time in each mode."""
        self.metrics.on_mode(MODES.get(msg.mode, str(msg.mode)),
                             self.get_clock().now().nanoseconds / 1e9)

    def publish(self) -> None:
        """The snapshot as a DiagnosticArray."""
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        for name, level, message, values in self.metrics.snapshot():
            array.status.append(DiagnosticStatus(
                level=bytes([level]), name=f'sim2real/{name}', message=message,
                hardware_id='sim2real',
                values=[KeyValue(key=k, value=f'{v:.6g}' if isinstance(v, float) else str(v))
                        for k, v in values.items()]))
        self.pub.publish(array)


def main(args=None):
    """Run the logger node until shutdown."""
    run_node(LoggerNode, args)


if __name__ == '__main__':
    main()

"""logger_node: rolling metrics and anomaly checks as diagnostics (both runtimes).

Recording itself is rosbag2's job: the launch files start `ros2 bag record -s mcap` next to
this node (the in-process runtime taps its graph into the same kind of bag). This node
subscribes to the topics that feed :class:`sim2real_bringup.metrics.RollingMetrics` and
publishes /diagnostics every ``publish_period``.

Names (relative; the launch graph remaps them onto the suite's topics):
  sub  action_chunk, control_diagnostics, safe_command, supervisor_state (latched),
       grasp_result
  pub  /diagnostics (diagnostic_msgs/DiagnosticArray)
Parameters: config/logger.yaml (read-only).
"""
from __future__ import annotations

from sim2real_bringup.metrics import RollingMetrics
from sim2real_safety import convert
from sim2real_safety.node_interface import NS, Param
from sim2real_safety.supervisor import Mode

M = 'sim2real_msgs/msg/'
PARAMETERS = (
    Param('latency_budget', 0.5, 's: inference latency p95 above this raises a warning',
          (0.0, 60.0)),
    Param('publish_period', 1.0, 's between /diagnostics messages', (0.01, 3600.0)),
)


class LoggerNode:
    """Thin node around RollingMetrics."""

    NAME = 'logger_node'

    def __init__(self, node):
        self.node = node
        p = node.declare_parameters(PARAMETERS)
        self.metrics = m = RollingMetrics(latency_budget=p['latency_budget'])
        self.msgs = node.messages
        self.pub = node.create_publisher('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray',
                                         'default')
        node.create_subscription('action_chunk', M + 'ActionChunk',
                                 lambda msg: m.on_chunk(msg.inference_latency), 'default')
        node.create_subscription('control_diagnostics', M + 'ControlDiagnostics',
                                 lambda msg: m.on_control(msg.period, msg.deadline_misses,
                                                          msg.tick), 'default')
        node.create_subscription('safe_command', M + 'CartesianCommand',
                                 lambda msg: m.on_command(convert.command_pose(msg)), 'command')
        node.create_subscription('supervisor_state', M + 'SupervisorState', self.on_mode,
                                 'latched')
        node.create_subscription('grasp_result', M + 'GraspResult',
                                 lambda msg: m.on_result(msg.success), 'default')
        node.create_timer(p['publish_period'], self.publish)

    def on_mode(self, msg) -> None:
        """Time in each mode."""
        try:
            name = Mode(msg.mode).name
        except ValueError:
            name = str(msg.mode)
        self.metrics.on_mode(name, self.node.now_ns() / NS)

    def publish(self) -> None:
        """The snapshot as a DiagnosticArray."""
        msgs = self.msgs
        status = [msgs.make(
            'diagnostic_msgs/msg/DiagnosticStatus', level=msgs.byte(level),
            name=f'sim2real/{name}', message=message, hardware_id='sim2real',
            values=[msgs.make('diagnostic_msgs/msg/KeyValue', key=k,
                              value=f'{v:.6g}' if isinstance(v, float) else str(v))
                    for k, v in values.items()])
            for name, level, message, values in self.metrics.snapshot()]
        self.pub.publish(msgs.make('diagnostic_msgs/msg/DiagnosticArray',
                                   header=msgs.header(self.node.now_ns()), status=status))


def main(args=None):
    """Run the logger node on ROS 2 until shutdown."""
    from sim2real_safety.nodes.rclpy_node import run
    run(LoggerNode, args)


if __name__ == '__main__':
    main()

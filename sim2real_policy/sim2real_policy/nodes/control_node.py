"""control_node: the 100 Hz loop, predictive action chunking, obeying the supervisor.

Names (relative; remapped by the launch files):
  sub  action_chunk (ActionChunk), supervisor_state (SupervisorState, transient local),
       robot_state (RobotState: the first one seeds the controller)
  pub  proposed_command (CartesianCommand, to the safety node), diagnostics
       (ControlDiagnostics: period, jitter, chunk age, latency, fallback in use)
Parameters: config/control.yaml. The tick never waits: chunks arrive asynchronously and the
tick only reads what is there. Nothing is logged per tick.
"""
import numpy as np
from rclpy.node import Node
from rclpy.qos import (
    qos_profile_sensor_data,
)
from rclpy.time import Time
from sim2real_msgs.msg import (
    ActionChunk,
    CartesianCommand,
    ControlDiagnostics,
    RobotState,
    SupervisorState,
)

from sim2real_policy.control import Chunk, ControlConfig, Controller
from sim2real_safety.nodes.parameters import declare_config
from sim2real_safety.nodes.qos import COMMAND_QOS, LATCHED_QOS
from sim2real_safety.nodes.runner import run_node
from sim2real_safety.supervisor import Mode


class ControlNode(Node):
    """Thin node around Controller."""

    def __init__(self):
        super().__init__('control_node')
        self.config = declare_config(self, ControlConfig,
                                     description='see config/control.yaml')
        self.core = None
        self.mode = (Mode.NORMAL, 0)
        self.cmd_pub = self.create_publisher(CartesianCommand, 'proposed_command', COMMAND_QOS)
        self.diag_pub = self.create_publisher(ControlDiagnostics, 'diagnostics', 10)
        self.create_subscription(ActionChunk, 'action_chunk', self.on_chunk, 10)
        self.create_subscription(SupervisorState, 'supervisor_state', self.on_mode, LATCHED_QOS)
        self.create_subscription(RobotState, 'robot_state', self.on_state,
                                 qos_profile_sensor_data)
        self.create_timer(self.config.control_period, self.on_tick)

    def now_ns(self) -> int:
        """The node clock (sim time when use_sim_time is set)."""
        return self.get_clock().now().nanoseconds

    def on_state(self, msg: RobotState) -> None:
        """The first state seeds the controller: it starts by holding where the robot is."""
        if self.core is None:
            self.core = Controller(self.config, (msg.x, msg.y, msg.z, msg.yaw,
                                                 msg.gripper_width))
            self.core.on_mode(self.mode[0], self.mode[1], self.now_ns())

    def on_chunk(self, msg: ActionChunk) -> None:
        """Align and keep a chunk."""
        if self.core is None:
            return
        now = self.now_ns()
        try:
            chunk = Chunk(Time.from_msg(msg.header.stamp).nanoseconds,
                          np.asarray(msg.actions).reshape(msg.horizon, msg.action_dim),
                          Time.from_msg(msg.action_period).nanoseconds / 1e9,
                          Time.from_msg(msg.start_offset).nanoseconds / 1e9,
                          msg.inference_latency, msg.sequence, now)
        except ValueError as exc:
            self.get_logger().warning(f'chunk {msg.sequence} refused: {exc}',
                                      throttle_duration_sec=1.0)
            return
        self.core.on_chunk(chunk, now)

    def on_mode(self, msg: SupervisorState) -> None:
        """Obey the supervisor."""
        self.mode = (Mode(msg.mode), Time.from_msg(msg.mode_since).nanoseconds)
        if self.core is not None:
            self.core.on_mode(self.mode[0], self.mode[1], self.now_ns())

    def on_tick(self) -> None:
        """One control tick: a command, always."""
        if self.core is None:
            return
        now = self.get_clock().now()
        out = self.core.tick(now.nanoseconds)
        cmd = CartesianCommand()
        cmd.header.stamp = now.to_msg()
        cmd.header.frame_id = 'base_link'
        cmd.x, cmd.y, cmd.z, cmd.yaw, cmd.gripper_width = out.command
        cmd.source = out.source
        self.cmd_pub.publish(cmd)
        diag = ControlDiagnostics()
        diag.header.stamp = cmd.header.stamp
        diag.tick = out.tick
        diag.period, diag.jitter = float(out.period), float(out.jitter)
        diag.chunk_age, diag.latency = float(out.chunk_age), float(out.latency)
        diag.command_source = out.source
        diag.deadline_misses = out.deadline_misses
        diag.mode = out.mode
        self.diag_pub.publish(diag)


def main(args=None):
    """Run the control node until shutdown."""
    run_node(ControlNode, args)


if __name__ == '__main__':
    main()

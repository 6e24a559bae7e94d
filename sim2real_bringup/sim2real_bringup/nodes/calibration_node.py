"""calibration_node: plays a safe excitation for system identification (``calibrate.launch.py``).

It stands in for control_node during a calibration run: its 100 Hz targets go to the safety
node as proposals (source SOURCE_CALIBRATION) and are limited like any other command. The
run starts from the first robot state; a supervisor mode that stops autonomy
(GRIPPER_FAULT, HUMAN_REQUIRED, SOFTWARE_STOP) ends it for good (restart the node to repeat).
Record ``/safety/command`` and ``/robot/joint_states`` (the launch file does) and fit them
with ``sim2real sysid BAG``.

Names (relative): sub robot_state (RobotState), supervisor_state (SupervisorState, latched);
pub proposed_command (CartesianCommand). Parameters: config/calibration.yaml.
"""
from dataclasses import replace

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sim2real_msgs.msg import CartesianCommand, RobotState, SupervisorState

from sim2real_bringup.config import node_parameters
from sim2real_policy.calibration import CalibrationConfig, CalibrationPlayer, DONE
from sim2real_policy.sysid import SAMPLE
from sim2real_safety.limits import SafetyLimits
from sim2real_safety.nodes.parameters import declare_config
from sim2real_safety.nodes.qos import COMMAND_QOS, LATCHED_QOS
from sim2real_safety.nodes.runner import run_node

STOPPING_MODES = (SupervisorState.MODE_GRIPPER_FAULT, SupervisorState.MODE_HUMAN_REQUIRED,
                  SupervisorState.MODE_SOFTWARE_STOP)


class CalibrationNode(Node):
    """Thin node around CalibrationPlayer."""

    def __init__(self):
        super().__init__('calibration_node')
        self.declare_parameter('safety_config', 'safety.yaml', ParameterDescriptor(
            description="the safety node's parameter file: the excitation is planned inside "
                        'its limits'))
        config = declare_config(self, CalibrationConfig,
                                description='see config/calibration.yaml')
        config = replace(config, seeds=tuple(int(s) for s in config.seeds))
        limits = SafetyLimits.from_parameters(
            node_parameters(self.get_parameter('safety_config').value, 'safety_node'))
        self.player = CalibrationPlayer(config, limits)
        self.started = False
        self.stopped = False
        self.pub = self.create_publisher(CartesianCommand, 'proposed_command', COMMAND_QOS)
        self.create_subscription(RobotState, 'robot_state', self.on_state,
                                 qos_profile_sensor_data)
        self.create_subscription(SupervisorState, 'supervisor_state', self.on_mode, LATCHED_QOS)
        self.create_timer(SAMPLE, self.on_tick)

    def on_state(self, msg: RobotState) -> None:
        """The first state starts the run from where the robot is."""
        if not self.started and not self.stopped:
            self.player.start((msg.x, msg.y, msg.z), self.get_clock().now().nanoseconds)
            self.started = True
            self.get_logger().info(f'calibration started: {len(self.player.trajectories)} '
                                   f'trajectories, {self.player.total_time:.1f} s')

    def on_mode(self, msg: SupervisorState) -> None:
        """Autonomy stopped: the run ends (the safety node holds the robot)."""
        if msg.mode in STOPPING_MODES and not self.stopped:
            self.stopped = True
            self.get_logger().error(f'calibration aborted: supervisor mode {msg.mode} '
                                    f'({msg.reason})')

    def on_tick(self) -> None:
        """One target per period."""
        if not self.started or self.stopped:
            return
        now = self.get_clock().now()
        target = self.player.target(now.nanoseconds)
        cmd = CartesianCommand()
        cmd.header.stamp = now.to_msg()
        cmd.header.frame_id = 'base_link'
        cmd.x, cmd.y, cmd.z, cmd.yaw, cmd.gripper_width = target
        cmd.source = CartesianCommand.SOURCE_CALIBRATION
        self.pub.publish(cmd)
        if self.player.phase(now.nanoseconds)[0] == DONE:
            self.get_logger().info('calibration finished, holding; fit the recording with '
                                   '`sim2real sysid BAG`', once=True)


def main(args=None):
    """Run the calibration node until shutdown."""
    run_node(CalibrationNode, args)


if __name__ == '__main__':
    main()

"""calibration_node: plays a safe excitation for system identification (both runtimes).

It stands in for control_node during a calibration run (``calibrate.launch.py``, and
``sim2real sysid --calibrate-sim`` in-process): its 100 Hz targets go to the safety node as
proposals (source SOURCE_CALIBRATION) and are limited like any other command, and it reports
ControlDiagnostics as the controller does (the supervisor watches the controller's liveness).
The run starts from the robot's state once the supervisor enables autonomy; a mode that
stops autonomy afterwards (GRIPPER_FAULT, HUMAN_REQUIRED, SOFTWARE_STOP) ends it for good
(restart the node to repeat). Record ``/safety/command`` and ``/robot/joint_states`` (the
launch file does) and fit them with ``sim2real sysid BAG``.

Names (relative; the launch graph remaps them onto the suite's topics):
  sub  robot_state (RobotState), supervisor_state (SupervisorState, latched)
  pub  proposed_command (CartesianCommand), diagnostics (ControlDiagnostics)
Parameters: config/calibration.yaml (read-only).
"""
from __future__ import annotations

from sim2real_bringup.config import node_parameters
from sim2real_policy.calibration import CalibrationConfig, CalibrationPlayer, DONE
from sim2real_policy.sysid import SAMPLE
from sim2real_safety import convert
from sim2real_safety.limits import SafetyLimits
from sim2real_safety.node_interface import dataclass_parameters, Param
from sim2real_safety.supervisor import Mode

M = 'sim2real_msgs/msg/'
SOURCE_CALIBRATION = 6   # CartesianCommand.SOURCE_CALIBRATION (checked against the .msg)
DOCS = {
    'seeds': ('one sum-of-sines trajectory per seed (up to 10 are fitted well)', (0, 2**31 - 1)),
    'duration': ('s per trajectory', (0.1, 600.0)),
    'start_x': ('m: centre of the excitation, base frame (REP-103)', (-10.0, 10.0)),
    'start_y': ('m', (-10.0, 10.0)),
    'start_z': ('m: well above the table, nothing to touch', (-10.0, 10.0)),
    'yaw': ('rad, held during the run', (-6.3, 6.3)),
    'gripper_width': ('m, held open', (0.0, 0.5)),
    'approach_speed': ("m/s to each trajectory's start, well under the speed limit",
                       (0.001, 1.0)),
    'settle_time': ('s of stillness before each trajectory (the fit cuts the run there)',
                    (0.0, 60.0)),
}
PARAMETERS = (
    *dataclass_parameters(CalibrationConfig, DOCS),
    Param('safety_config', 'safety.yaml', "the safety node's parameter file: the excitation "
          'is planned inside its limits (a path, or a name in the config folder)'),
)


class CalibrationNode:
    """Thin node around CalibrationPlayer."""

    NAME = 'calibration_node'

    def __init__(self, node):
        self.node = node
        p = node.declare_parameters(PARAMETERS)
        config = CalibrationConfig(**{k: p[k] for k in DOCS})
        safety = node_parameters(p['safety_config'], 'safety_node')
        safety.pop('stop_state_file', None)
        self.player = CalibrationPlayer(config, SafetyLimits.from_parameters(safety))
        self.msgs = node.messages
        self.pose = None            # the latest measured pose
        self.autonomy = False       # the supervisor's latest word
        self.started = False
        self.stopped = False
        self.finished = False
        self.ticks = 0
        self.last_tick_ns = None
        self.pub = node.create_publisher('proposed_command', M + 'CartesianCommand', 'command')
        self.diag_pub = node.create_publisher('diagnostics', M + 'ControlDiagnostics',
                                              'default')
        node.create_subscription('robot_state', M + 'RobotState', self.on_state, 'sensor')
        node.create_subscription('supervisor_state', M + 'SupervisorState', self.on_mode,
                                 'latched')
        node.create_timer(SAMPLE, self.on_tick)

    def on_state(self, msg) -> None:
        """The latest measured pose (the run starts from it)."""
        self.pose = convert.state_pose(msg)

    def on_mode(self, msg) -> None:
        """Autonomy enabled: the run may start; lost after the start: the run ends."""
        self.autonomy = bool(msg.autonomy_enabled)
        if self.started and not self.autonomy and not self.stopped:
            self.stopped = True
            self.node.logger.error(f'calibration aborted: supervisor mode '
                                   f'{Mode(msg.mode).name} ({msg.reason})')

    def on_tick(self) -> None:
        """One target per period once started; diagnostics always (the liveness)."""
        now, msgs = self.node.now_ns(), self.msgs
        if not self.started and not self.stopped and self.autonomy and self.pose is not None:
            self.player.start(self.pose, now)
            self.started = True
            self.node.logger.info(f'calibration started: {len(self.player.trajectories)} '
                                  f'trajectories, {self.player.total_time:.1f} s')
        period = 0.0 if self.last_tick_ns is None else (now - self.last_tick_ns) / 1e9
        self.last_tick_ns = now
        self.ticks += 1
        running = self.started and not self.stopped
        if running:
            self.pub.publish(convert.command_msg(msgs, self.player.target(now), now,
                                                 SOURCE_CALIBRATION))
        self.diag_pub.publish(msgs.make(
            M + 'ControlDiagnostics', header=msgs.header(now), tick=self.ticks,
            period=period, jitter=abs(period - SAMPLE) if period else 0.0,
            chunk_age=float('nan'), latency=float('nan'),
            command_source=SOURCE_CALIBRATION, deadline_misses=0, mode=0,
            actuation_delay=0.0))
        if running and not self.finished and self.player.phase(now)[0] == DONE:
            self.finished = True
            self.node.logger.info('calibration finished, holding; fit the recording with '
                                  '`sim2real sysid BAG`')


def main(args=None):
    """Run the calibration node on ROS 2 until shutdown."""
    from sim2real_safety.nodes.rclpy_node import run
    run(CalibrationNode, args)


if __name__ == '__main__':
    main()

"""control_node: the 100 Hz loop, predictive action chunking, obeying the supervisor.

Names (relative; the launch graph remaps them onto the suite's topics):
  sub  action_chunk (ActionChunk), supervisor_state (SupervisorState, latched),
       robot_state (RobotState: the first one seeds the controller, which starts by holding
       where the robot is)
  pub  proposed_command (CartesianCommand, to the safety node), diagnostics
       (ControlDiagnostics: period, jitter, chunk age, observation-to-command latency,
       deadline misses, command source; all on the node's clock: wall time on a robot, the
       simulated clock in-process, where ticks fall exactly on control_period)
With ``estimate_delay`` the node estimates the stage's actuation delay from the commands it
sends and the robot states it receives (:mod:`sim2real_policy.delay_estimation`: the tick
writes one row; four times a second the robot-state callback hands a copy of the window to
the node's worker thread, whose fit comes back as a callback) and leads the chunks' stage axes
by it; the diagnostics carry the delay in use.
Parameters: config/control.yaml (``sim2real_policy.control.PARAMETERS``, and
``realtime_priority``; read-only), and ``calibration_file``/``cell_name``
(:mod:`sim2real_safety.cell_file`): a commissioned cell's measured actuation delay replaces
``actuation_delay`` (``ros2 param get`` shows it), so the chunks are led by it from the first
tick. The tick never waits: chunks arrive asynchronously and the
tick only reads what is there. On ROS (wall clock) the tick runs on a precise timer of its own
thread (sleep to just before the deadline, wait out the rest), serialized with the node's
other callbacks. Nothing is logged per tick; a refused chunk is logged at most once a second.
"""
from __future__ import annotations

from sim2real_policy.control import Chunk, ControlConfig, Controller
from sim2real_policy.delay_estimation import DelayEstimationConfig, DelayEstimator
from sim2real_safety import convert
from sim2real_safety.cell_file import (
    CELL_PARAMETERS,
    CellFileError,
    commissioned_values,
    load_cell_parameters,
)
from sim2real_safety.node_interface import NS, ns_of, Param
from sim2real_safety.supervisor import Mode

M = 'sim2real_msgs/msg/'
PARAMETERS = (
    *ControlConfig.parameters(),
    Param('realtime_priority', 0, 'SCHED_FIFO priority of the tick thread on ROS (0: ordinary '
          'scheduling; needs the rtprio limit, e.g. /etc/security/limits.d)', (0, 99)),
)


class ControlNode:
    """Thin node around Controller."""

    NAME = 'control_node'

    def __init__(self, node, delay_estimator: DelayEstimator | None = None):
        """Declare parameters and topics.

        ``delay_estimator``: carry an estimate over (the in-process cell restarts the node
        every episode; a robot's node runs on): its history is dropped, its estimate kept.
        """
        self.node = node
        cell_parameters = node.declare_parameters(CELL_PARAMETERS, final=False)
        cell = load_cell_parameters(cell_parameters)
        path = cell_parameters['calibration_file']
        commissioned = {} if cell is None or cell.actuation_delay is None else \
            commissioned_values(node.name, path, PARAMETERS,
                                {'actuation_delay': cell.actuation_delay})
        p = node.declare_parameters(PARAMETERS, commissioned)
        if commissioned and p['actuation_delay'] > p['max_actuation_delay']:
            raise CellFileError(f'cell file {path}: actuation_delay {p["actuation_delay"]!r} s '
                                f'is above max_actuation_delay {p["max_actuation_delay"]!r} s')
        priority = p.pop('realtime_priority')
        self.config = ControlConfig(**p)
        if cell is not None:
            node.logger.info(f'cell {cell.cell!r} ({path}): actuation delay '
                             + ('not measured, ' if not commissioned else '')
                             + f'{self.config.actuation_delay:.3f} s in use')
        self.msgs = node.messages
        self.core: Controller | None = None
        self.mode = (Mode.NORMAL, 0)
        self.refused = 0
        self.delay_estimator = None
        self._fitting = False
        self._fit_failure_logged_ns = -60 * NS
        if self.config.estimate_delay and delay_estimator is not None:
            self.delay_estimator = delay_estimator
            delay_estimator.restart()
        elif self.config.estimate_delay:
            self.delay_estimator = DelayEstimator(
                DelayEstimationConfig(initial=self.config.actuation_delay,
                                      max_delay=self.config.max_actuation_delay),
                self.config.control_period)
        self._refused_logged_ns = -NS
        self._action_bounds = (self.config.action_min, self.config.action_max)
        self._unknown_mode_logged = False
        self._tick_error_logged_ns = -NS
        self.cmd_pub = node.create_publisher('proposed_command', M + 'CartesianCommand',
                                             'command')
        self.diag_pub = node.create_publisher('diagnostics', M + 'ControlDiagnostics',
                                              'default')
        node.create_subscription('action_chunk', M + 'ActionChunk', self.on_chunk, 'default')
        node.create_subscription('supervisor_state', M + 'SupervisorState', self.on_mode,
                                 'latched')
        node.create_subscription('robot_state', M + 'RobotState', self.on_state, 'sensor')
        node.create_timer(self.config.control_period, self.on_tick, precise=True,
                          priority=priority)

    def on_state(self, msg) -> None:
        """The first state seeds the controller: it starts by holding where the robot is."""
        if self.core is None:
            self.core = Controller(self.config, convert.state_pose(msg))
            self.core.on_mode(self.mode[0], self.mode[1], self.node.now_ns())
            if self.delay_estimator is not None:
                self.core.set_actuation_delay(self.delay_estimator.delay)
        estimator = self.delay_estimator
        if estimator is not None:
            estimator.add_state(ns_of(msg.header.stamp), (msg.x, msg.y, msg.z))
            now = self.node.now_ns()
            if estimator.due(now) and not self._fitting:
                # a few milliseconds of fitting: on the worker thread, never under the lock the
                # tick shares with this callback
                self._fitting = True
                window = estimator.snapshot(now)
                self.node.run_async(lambda: estimator.fit(window), self._on_delay_fit,
                                    self._on_delay_fit_failed)

    def _on_delay_fit(self, fit, _seconds) -> None:
        self._fitting = False
        delay = self.delay_estimator.accept(fit, self.node.now_ns())
        if self.core is not None:
            self.core.set_actuation_delay(delay)

    def _on_delay_fit_failed(self, exc) -> None:
        """A fit that raised changes nothing (the lead stays); said once a minute at most."""
        self._fitting = False
        now = self.node.now_ns()
        if now - self._fit_failure_logged_ns >= 60 * NS:
            self._fit_failure_logged_ns = now
            self.node.logger.warning(f'actuation delay fit failed, lead kept at '
                                     f'{self.core.lead_ns / NS if self.core else 0.0:.3f} s: '
                                     f'{exc}')

    def on_chunk(self, msg) -> None:
        """Align and keep a chunk; a malformed, non-finite or future one is refused."""
        if self.core is None:
            return
        now = self.node.now_ns()
        try:
            chunk = Chunk(ns_of(msg.header.stamp), convert.chunk_actions(msg),
                          convert.duration_s(msg.action_period),
                          convert.duration_s(msg.start_offset), msg.inference_latency,
                          msg.sequence, now, self._action_bounds)
            kept = self.core.on_chunk(chunk, now)
            problem = '' if kept else 'stale, from the future, or not newer than the last'
        except ValueError as exc:
            problem = str(exc)
        if problem:
            self.refused += 1
            if now - self._refused_logged_ns >= NS:
                self._refused_logged_ns = now
                self.node.logger.warning(f'chunk {msg.sequence} refused: {problem} '
                                         f'({self.refused} refused so far)')

    def on_mode(self, msg) -> None:
        """Obey the supervisor."""
        if msg.mode in Mode._value2member_map_:
            mode = Mode(msg.mode)
        else:  # a newer supervisor, or a corrupt message: the safest mode, said once
            mode = Mode.SOFTWARE_STOP
            if not self._unknown_mode_logged:
                self._unknown_mode_logged = True
                self.node.logger.error(f'unknown supervisor mode {msg.mode}: holding as in '
                                       'SOFTWARE_STOP')
        self.mode = (mode, ns_of(msg.mode_since))
        if self.core is not None:
            self.core.on_mode(self.mode[0], self.mode[1], self.node.now_ns())

    def on_tick(self) -> None:
        """One control tick: a command, always (once the robot state seeded the core)."""
        if self.core is None:
            return
        now = self.node.now_ns()
        try:
            out = self.core.tick(now)
        except Exception as exc:  # noqa: BLE001 -- the 100 Hz path never dies: it holds
            out = self.core.hold_after_error(now)
            if now - self._tick_error_logged_ns >= NS:
                self._tick_error_logged_ns = now
                self.node.logger.error(f'control tick failed, holding: '
                                       f'{type(exc).__name__}: {exc}')
        msgs = self.msgs
        self.cmd_pub.publish(convert.command_msg(msgs, out.command, now, out.source))
        if self.delay_estimator is not None:
            self.delay_estimator.add_command(now, out.command)
        self.diag_pub.publish(msgs.make(
            M + 'ControlDiagnostics', header=msgs.header(now), tick=out.tick,
            period=float(out.period), jitter=float(out.jitter),
            chunk_age=float(out.chunk_age), latency=float(out.latency),
            command_source=out.source, deadline_misses=out.deadline_misses, mode=out.mode,
            actuation_delay=self.core.lead_ns / NS))


def main(args=None):
    """Run the control node on ROS 2 until shutdown."""
    from sim2real_safety.nodes.rclpy_node import run
    run(ControlNode, args)


if __name__ == '__main__':
    main()

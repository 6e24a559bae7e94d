"""safety_node: the safety filter between the controller and the robot (both runtimes).

Subscribes to the proposed command, the robot state, joint states and the supervisor state;
publishes the safe command (the only command that may reach the driver) and a latched safety
status; serves the software stop and its reset. All logic is in
:class:`sim2real_safety.filter.SafetyFilter`.

Names (relative; the launch graph remaps them onto the suite's topics):
  sub  proposed_command (CartesianCommand), robot_state (RobotState), joint_states
       (sensor_msgs/JointState), supervisor_state (SupervisorState, latched),
       trigger_stop_topic (std_msgs/String: the reason)
  pub  safe_command (CartesianCommand), status (SafetyStatus, latched)
  srv  trigger_stop (TriggerSoftwareStop), reset_stop (ResetSoftwareStop)
Parameters: config/safety.yaml (``sim2real_safety.limits.PARAMETERS``; all read-only), and
``calibration_file``/``cell_name`` (:mod:`sim2real_safety.cell_file`): a commissioned cell's
touched-off table (or its upper bound) replaces ``table_height`` (``ros2 param get`` shows
it); the workspace box stays the configured one.
"""
from __future__ import annotations

from sim2real_safety import convert
from sim2real_safety.cell_file import (
    CELL_PARAMETERS,
    CellFileError,
    commissioned_table,
    commissioned_values,
    load_cell_parameters,
)
from sim2real_safety.filter import SafetyFilter
from sim2real_safety.limits import LimitsError, parameters, SafetyLimits, Verdict
from sim2real_safety.node_interface import ns_of
from sim2real_safety.software_stop import ResetRefusedError, SoftwareStopLatch

M = 'sim2real_msgs/msg/'
SOURCE_SAFETY = 7  # CartesianCommand.SOURCE_SAFETY (checked against the .msg by a test)
_PASSED = (Verdict.PASS, Verdict.SCALED, Verdict.CLAMPED)


class SafetyNode:
    """Parameters, topics and services around the safety core."""

    NAME = 'safety_node'

    def __init__(self, node, latch: SoftwareStopLatch | None = None):
        # latch: the in-process runtime hands a restarted node the same latch object, which
        # is what stop_state_file does across a restart on the robot.
        self.node = node
        cell_parameters = node.declare_parameters(CELL_PARAMETERS, final=False)
        cell = load_cell_parameters(cell_parameters)
        path = cell_parameters['calibration_file']
        declared = parameters()
        table = {} if cell is None else commissioned_values(
            node.name, path, declared, {'table_height': cell.table})
        p = node.declare_parameters(declared, table)
        stop_file = p.pop('stop_state_file') or None
        try:
            limits = SafetyLimits.from_parameters({k: v for k, v in p.items()
                                                   if v is not None})
        except LimitsError as exc:
            if not table:
                raise
            raise CellFileError(f'cell file {path}: table_height {cell.table!r} m: '
                                f'{exc}') from None
        if cell is not None:
            commissioned_table(limits, cell, path)   # a table no fingertip could touch: refused
            node.logger.info(f'cell {cell.cell!r} ({path}): table_height {cell.table:.4f} m '
                             + ('(measured)' if cell.table_height is not None else
                                '(its upper bound: the touch-off found no contact)'))
        self.frame_id = limits.frame_id
        self.latch = latch if latch is not None else SoftwareStopLatch(stop_file)
        self.core = SafetyFilter(limits, self.latch)
        self.msgs = node.messages
        self._violation = 'sim2real_msgs/msg/ConstraintViolation'
        if self.core.stop_active:
            node.logger.warning(f'software stop restored: {self.latch.cause}')

        self.command_pub = node.create_publisher('safe_command', M + 'CartesianCommand',
                                                 'command')
        self.status_pub = node.create_publisher('status', M + 'SafetyStatus', 'latched')
        node.create_subscription('proposed_command', M + 'CartesianCommand', self.on_proposal,
                                 'command')
        node.create_subscription('robot_state', M + 'RobotState', self.on_robot_state,
                                 'sensor')
        node.create_subscription('joint_states', 'sensor_msgs/msg/JointState',
                                 self.on_joint_state, 'sensor')
        node.create_subscription('supervisor_state', M + 'SupervisorState', self.on_supervisor,
                                 'latched')
        node.create_subscription('trigger_stop_topic', 'std_msgs/msg/String',
                                 self.on_stop_topic, 'default')
        node.create_service('trigger_stop', 'sim2real_msgs/srv/TriggerSoftwareStop',
                            self.on_trigger_stop)
        node.create_service('reset_stop', 'sim2real_msgs/srv/ResetSoftwareStop',
                            self.on_reset_stop)
        node.create_timer(limits.control_period, self.on_watchdog)

    def on_proposal(self, msg) -> None:
        """Filter one proposal (its frame and source too) and publish the result."""
        self.publish(self.core.check(convert.command_pose(msg), ns_of(msg.header.stamp),
                                     self.node.now_ns(), msg.header.frame_id, msg.source),
                     msg.source)

    def on_robot_state(self, msg) -> None:
        """Feed the measured pose; a non-finite one latches the stop inside the core."""
        was_active = self.core.stop_active
        self.core.update_robot_state(convert.state_pose(msg), self.node.now_ns())
        self._log_new_stop(was_active)

    def on_joint_state(self, msg) -> None:
        """Joint limit monitoring."""
        was_active = self.core.stop_active
        self.core.update_joint_state(msg.name, msg.position, msg.velocity, self.node.now_ns())
        self._log_new_stop(was_active)

    def on_supervisor(self, msg) -> None:
        """Every supervisor state is a heartbeat, and says whether a commissioning runs."""
        if bool(msg.commissioning) != self.core.commissioning:
            self.node.logger.info(
                f'commissioning {"began" if msg.commissioning else "ended"}'
                + (f' ({msg.commissioning_operator}): only the commissioning source moves the '
                   f'robot, down to z {self.core.limits.commissioning_floor:.4f} m at '
                   f'{self.core.limits.commissioning_speed} m/s near the table'
                   if msg.commissioning else ''))
        self.core.set_commissioning(msg.commissioning)
        self.core.supervisor_heartbeat(self.node.now_ns())

    def on_watchdog(self) -> None:
        """Hold when the proposal stream went quiet; re-publish the stop hold."""
        decision = self.core.tick(self.node.now_ns())
        if decision is not None:
            self.publish(decision, SOURCE_SAFETY)

    def on_stop_topic(self, msg) -> None:
        """A software-stop request on a topic (e.g. from a button driver)."""
        self._trigger('topic', msg.data or 'stop requested on topic')

    def on_trigger_stop(self, request, response):
        """Service: latch the software stop."""
        self._trigger(request.requested_by, request.reason or 'no reason given')
        response.success = True
        response.message = f'software stop latched: {self.latch.cause}'
        return response

    def _trigger(self, who: str, reason: str) -> None:
        was_active = self.core.stop_active
        self.core.trigger_stop(who, reason, self.node.now_ns())
        self.node.logger.warning(f'software stop latched: {self.latch.cause}')
        if not was_active:  # the hold is published at once, not at the next watchdog tick
            decision = self.core.tick(self.node.now_ns(), force=True)
            if decision is not None:
                self.publish(decision, SOURCE_SAFETY)

    def on_reset_stop(self, request, response):
        """Service: clear the stop if an operator, a reason and healthy inputs allow it."""
        try:
            self.core.reset_stop(request.operator_name, request.reason, self.node.now_ns())
        except ResetRefusedError as exc:
            self.node.logger.warning(str(exc))
            response.success = False
            response.message = str(exc)
            return response
        self.node.logger.info(f'software stop reset by {request.operator_name.strip()}: '
                              f'{request.reason.strip()}; motion resumes on a new command')
        response.success = True
        response.message = 'software stop reset; motion resumes on a new command'
        return response

    def _log_new_stop(self, was_active: bool) -> None:
        if self.core.stop_active and not was_active:
            self.node.logger.error(f'software stop latched: {self.latch.cause}')

    def publish(self, decision, source: int) -> None:
        """Publish the safe command (if any) and the status of one decision."""
        msgs, now = self.msgs, self.node.now_ns()
        if decision.command is not None:
            self.command_pub.publish(convert.command_msg(
                msgs, decision.command, now,
                source if decision.verdict in _PASSED else SOURCE_SAFETY, self.frame_id))
        self.status_pub.publish(msgs.make(
            M + 'SafetyStatus', header=msgs.header(now, self.frame_id),
            verdict=int(decision.verdict),
            violations=[msgs.make(self._violation, constraint=v.constraint, field=v.field,
                                  value=float(v.value), limit=float(v.limit),
                                  reaction=int(v.reaction)) for v in decision.violations],
            software_stop_active=self.core.stop_active,
            software_stop_cause=self.latch.cause,
            supervisor_alive=self.core.supervisor_alive(now),
            command_age=float(decision.command_age),  # NaN when no proposal applies
            checked_count=self.core.checked_count))


def main(args=None):
    """Run the safety node on ROS 2 until shutdown."""
    from sim2real_safety.nodes.rclpy_node import run
    run(SafetyNode, args)


if __name__ == '__main__':
    main()

"""supervisor_node: degraded modes from every health input; the latched state is the heartbeat.

Names (relative; the launch graph remaps them onto the suite's topics):
  sub  camera_health (CameraHealth), policy_health (PolicyHealth), robot_state (RobotState),
       safe_command (CartesianCommand), control_diagnostics (ControlDiagnostics),
       safety_status (SafetyStatus, latched), grasp_result (GraspResult)
  pub  state (SupervisorState, latched: published on every transition and every
       ``heartbeat_period``)
  srv  acknowledge (AcknowledgeHuman), commission (Commission: an operator begins the cell's
       commissioning mode; the commissioning node ends it)
Parameters: config/supervisor.yaml (``sim2real_safety.supervisor.PARAMETERS``; read-only).
All logic is in :class:`sim2real_safety.supervisor.Supervisor`.
"""
from __future__ import annotations

from sim2real_safety.filter import STATE_FAULTS
from sim2real_safety.supervisor import (
    AcknowledgeRefusedError,
    CommissioningRefusedError,
    Supervisor,
    SupervisorConfig,
)

M = 'sim2real_msgs/msg/'
# How often the rules are evaluated (s): a fault is seen within this of its threshold.
UPDATE_PERIOD = 0.02
CALIBRATION_SUSPECT = 3   # PolicyHealth.CALIBRATION_SUSPECT (checked against the .msg)


class SupervisorNode:
    """Health inputs in, latched mode out, acknowledge service."""

    NAME = 'supervisor_node'

    def __init__(self, node):
        self.node = node
        config = SupervisorConfig(**node.declare_parameters(SupervisorConfig.parameters()))
        self.core = Supervisor(config, start_ns=node.now_ns())
        self.msgs = node.messages
        self._stop_active = False
        self._state_fault = ''
        self.state_pub = node.create_publisher('state', M + 'SupervisorState', 'latched')
        core, now = self.core, node.now_ns
        subs = (
            ('camera_health', 'CameraHealth', 'default', lambda m: core.on_camera_health(
                m.healthy, m.frame_age, m.frozen_duration, now(), m.last_error)),
            ('policy_health', 'PolicyHealth', 'default', lambda m: core.on_policy_health(
                m.healthy, m.inference_latency, m.chunk_age, now(), m.last_error,
                m.calibration_reason if m.calibration_check == CALIBRATION_SUSPECT else '')),
            ('robot_state', 'RobotState', 'sensor', lambda m: core.on_robot_state(
                m.gripper_width, m.gripper_effort, m.gripper_fault, now())),
            ('safe_command', 'CartesianCommand', 'command',
             lambda m: core.on_command(m.gripper_width, now())),
            ('control_diagnostics', 'ControlDiagnostics', 'default',
             lambda m: core.on_control(now())),
            ('safety_status', 'SafetyStatus', 'latched', self.on_safety_status),
            ('grasp_result', 'GraspResult', 'default',
             lambda m: core.on_grasp_result(m.success, now())),
        )
        for name, typename, qos, callback in subs:
            node.create_subscription(name, M + typename, callback, qos)
        node.create_service('acknowledge', 'sim2real_msgs/srv/AcknowledgeHuman',
                            self.on_acknowledge)
        node.create_service('commission', 'sim2real_msgs/srv/Commission', self.on_commission)
        node.create_timer(UPDATE_PERIOD, self.on_update)
        node.create_timer(config.heartbeat_period, self.publish_state)
        self.publish_state()  # the state is there from the start (latched)

    def on_safety_status(self, msg) -> None:
        """The software-stop latch as the safety node reports it.

        A change of the latch is evaluated at once: the stop reaches the controller without
        waiting for the next periodic update.
        """
        was_active, had_fault = self._stop_active, self._state_fault
        self._stop_active = msg.software_stop_active
        self._state_fault = next((f'{v.constraint} {v.field}' for v in msg.violations
                                  if v.constraint in STATE_FAULTS), '')
        self.core.on_safety_status(msg.software_stop_active, msg.software_stop_cause,
                                   self.node.now_ns(), self._state_fault)
        if msg.software_stop_active != was_active or bool(self._state_fault) != bool(had_fault):
            self.on_update()

    def on_update(self) -> None:
        """Evaluate the rules; publish and log at once on a transition."""
        was_commissioning = self.core.commissioning
        transition = self.core.update(self.node.now_ns())
        if was_commissioning and not self.core.commissioning:
            self.node.logger.warning(self._last_commissioning_event())
            if transition is None:
                self.publish_state()
        if transition is None:
            return
        text = f'{transition.previous.name} -> {transition.mode.name}: {transition.reason}'
        if transition.mode > transition.previous:
            self.node.logger.warning(text)
        else:
            self.node.logger.info(text)
        self.publish_state()

    def on_acknowledge(self, request, response):
        """Service: a named operator re-enables autonomy after HUMAN_REQUIRED."""
        try:
            response.message = self.core.acknowledge(request.operator_name, request.note,
                                                     self.node.now_ns())
        except AcknowledgeRefusedError as exc:
            response.success = False
            response.message = str(exc)
            self.node.logger.warning(response.message)
            return response
        response.success = True
        self.node.logger.info(response.message)
        self.publish_state()
        return response

    def on_commission(self, request, response):
        """Service: a named operator begins commissioning; ``begin: false`` ends it."""
        now = self.node.now_ns()
        if request.begin:
            try:
                response.message = self.core.begin_commissioning(
                    request.operator_name, request.reason, now)
            except CommissioningRefusedError as exc:
                response.success, response.message = False, str(exc)
                self.node.logger.warning(response.message)
                return response
        else:
            response.message = self.core.end_commissioning(
                request.reason.strip() or 'ended on request', now)
        response.success = True
        self.node.logger.info(response.message)
        self.publish_state()
        return response

    def _last_commissioning_event(self) -> str:
        _, _, operator, reason = self.core.commissioning_log[-1]
        return f'commissioning by {operator} ended: {reason}'

    def publish_state(self) -> None:
        """The latched mode (also the heartbeat)."""
        core, msgs = self.core, self.msgs
        self.state_pub.publish(msgs.make(
            M + 'SupervisorState', header=msgs.header(self.node.now_ns()), mode=int(core.mode),
            previous_mode=int(core.previous_mode), reason=core.reason,
            mode_since=msgs.stamp(core.mode_since_ns),
            consecutive_failures=core.consecutive_failures,
            autonomy_enabled=core.autonomy_enabled, commissioning=core.commissioning,
            commissioning_operator=core.commissioning_operator))


def main(args=None):
    """Run the supervisor node on ROS 2 until shutdown."""
    from sim2real_safety.nodes.rclpy_node import run
    run(SupervisorNode, args)


if __name__ == '__main__':
    main()

"""policy_node: action chunks from the latest image and state; inference off the callbacks.

Names (relative; the launch graph remaps them onto the suite's topics):
  sub  image_processed (sensor_msgs/Image, sensor QoS), robot_state (RobotState)
  pub  action_chunk (ActionChunk, stamped with the observation's time), health (PolicyHealth)
Parameters: config/policy.yaml (read-only). A model whose metadata disagrees with the
expected action names, horizon or period is refused at start-up with a message naming the
field.

Inference runs through ``node.run_async``: on ROS a worker thread (no callback, and no other
node, ever waits for it); on the simulated clock at once, delivered after the runtime's charged
latency. ``ActionChunk.inference_latency`` is the time from the start of the inference to the
chunk on the node's clock (measured on ROS; charged in-process); the wall time the model
really took is kept in ``wall_latencies`` either way (s, measured).
"""
from __future__ import annotations

import math
import threading

from sim2real_policy.calibration_check import CheckState
from sim2real_policy.keypoint_policy import load_policy
from sim2real_policy.models import resolve_model
from sim2real_policy.policy import BACKENDS
from sim2real_safety import convert
from sim2real_safety.cell_file import CELL_PARAMETERS, load_cell_parameters
from sim2real_safety.node_interface import NS, ns_of, Param

M = 'sim2real_msgs/msg/'
CALIBRATION_SUSPECT = int(CheckState.SUSPECT)   # PolicyHealth.CALIBRATION_SUSPECT
PARAMETERS = (
    *CELL_PARAMETERS,   # the camera and table of a keypoint policy ("" = none: an end-to-end
                        # network needs none)
    Param('model_path', '', 'ONNX policy ("" = the bundled one)'),
    Param('backend', 'onnxruntime', 'inference backend', choices=BACKENDS),
    Param('inference_period', 0.1, 's between the starts of two inferences', (0.001, 10.0)),
    Param('verify_calibration', True, 'check the cell file against the camera before the '
          'first grasp and all along (the fingertips where it puts them); false: trust it'),
    Param('expected_action_names', ('x', 'y', 'z', 'yaw', 'gripper_width'),
          'action names the model must declare, in order'),
    Param('expected_horizon', 16, 'horizon the model must declare (actions per chunk)',
          (1, 1000)),
    Param('expected_action_period', 0.05, 's between actions the model must declare',
          (0.001, 1.0)),
)
# Wall latencies kept for the report (the newest; a long run does not grow without bound).
MAX_WALL_LATENCIES = 100_000


class PolicyNode:
    """Thin node around PolicyRunner."""

    NAME = 'policy_node'

    def __init__(self, node, runner=None):
        # runner: a loaded model handed in by the in-process runtime (a restarted node keeps
        # it, as a process keeps its loaded model), or a test's privileged expert.
        self.node = node
        p = node.declare_parameters(PARAMETERS)
        self.action_names = list(p['expected_action_names'])
        cell = load_cell_parameters(p)
        self.runner = runner or load_policy(
            resolve_model(p['model_path']), p['backend'], expected={
                'action_names': self.action_names, 'horizon': p['expected_horizon'],
                'action_period': p['expected_action_period']}, calibration=cell)
        if hasattr(self.runner, 'calibrate'):
            # a loaded model handed in, on a newly commissioned cell; checked or trusted
            self.runner.calibrate(cell if cell is not None else self.runner.calibration,
                                  verify=p['verify_calibration'])
        note = getattr(self.runner, 'check_note', '')
        if note:
            node.logger.warning(note)
        if hasattr(self.runner, 'reset'):
            self.runner.reset()  # a (re)started node knows nothing of the object yet
        meta = getattr(self.runner, 'meta', None)
        self.action_period = meta.action_period if meta else p['expected_action_period']
        self.start_offset = meta.start_offset if meta else 0.0
        node.logger.info(f'policy {self.runner.model_id} ({p["backend"]})')
        if cell is not None:
            table = 'not reached' if cell.table is None else f'{cell.table:.4f} m'
            node.logger.info(f'cell {cell.cell!r} ({p["calibration_file"]}): camera from '
                             f'{cell.points_used} of {cell.points_seen} poses, rms '
                             f'{cell.reprojection_rms_px:.2f} px; table {table}')
        self.msgs = node.messages
        self.chunk_pub = node.create_publisher('action_chunk', M + 'ActionChunk', 'default')
        self.health_pub = node.create_publisher('health', M + 'PolicyHealth', 'default')
        node.create_subscription('image_processed', 'sensor_msgs/msg/Image', self.on_image,
                                 'sensor')
        node.create_subscription('robot_state', M + 'RobotState', self.on_state, 'sensor')
        self.lock = threading.Lock()
        self.image = None
        self.stamp_ns = 0
        self.proprio = None
        self.busy = False
        self.started_ns = 0
        self.sequence = 0
        self.errors = 0
        self.last_error = ''
        self.last_chunk_ns: int | None = None
        self.wall_latencies: list[float] = []
        self.suspect_reason = ''
        node.create_timer(p['inference_period'], self.on_timer)

    def on_image(self, msg) -> None:
        """Keep the newest image (the last good one if the camera fails)."""
        frame = convert.image_array(msg)
        with self.lock:
            self.image, self.stamp_ns = frame, ns_of(msg.header.stamp)

    def on_state(self, msg) -> None:
        """Keep the newest proprioception."""
        with self.lock:
            self.proprio = convert.proprio(msg)

    def on_timer(self) -> None:
        """Hand the newest observation to the worker unless it is still busy."""
        with self.lock:
            if self.busy or self.image is None or self.proprio is None:
                return
            self.busy = True
            image, stamp, proprio = self.image, self.stamp_ns, self.proprio
        self.started_ns = self.node.now_ns()
        self.node.run_async(
            lambda: self.runner.predict(image, proprio, preprocessed=True, stamp_ns=stamp),
            lambda actions, wall_s: self.on_result(actions, stamp, wall_s), self.on_failure)

    def on_result(self, actions, stamp_ns: int, wall_s: float) -> None:
        """A chunk: publish it stamped with its observation's time."""
        now = self.node.now_ns()
        latency = (now - self.started_ns) / NS
        self.sequence += 1
        self.chunk_pub.publish(convert.chunk_msg(
            self.msgs, actions, stamp_ns, self.runner.model_id, self.sequence,
            self.action_period, self.start_offset, latency, self.action_names))
        self.wall_latencies.append(wall_s)
        del self.wall_latencies[:-MAX_WALL_LATENCIES]
        self.last_chunk_ns = now
        self.publish_health(latency, healthy=True)
        with self.lock:
            self.busy = False

    def on_failure(self, exc: Exception) -> None:
        """A failing model is a health fault the supervisor handles, not a crash."""
        self.errors += 1
        self.last_error = f'{type(exc).__name__}: {exc}'
        self.publish_health(math.nan, healthy=False)
        with self.lock:
            self.busy = False

    def publish_health(self, latency: float, healthy: bool) -> None:
        """PolicyHealth after every attempt."""
        now, msgs = self.node.now_ns(), self.msgs
        chunk_age = math.inf if self.last_chunk_ns is None else (now - self.last_chunk_ns) / NS
        status = getattr(self.runner, 'calibration_status', None)
        check, residual, reason = status() if status is not None else (0, math.nan, '')
        if int(check) == CALIBRATION_SUSPECT and reason != self.suspect_reason:
            self.node.logger.error(reason)   # once, when it turns suspect
        self.suspect_reason = reason if int(check) == CALIBRATION_SUSPECT else ''
        self.health_pub.publish(msgs.make(
            M + 'PolicyHealth', header=msgs.header(now), model_id=self.runner.model_id,
            inference_latency=float(latency), chunk_age=float(chunk_age),
            error_count=self.errors, last_error=self.last_error, healthy=healthy,
            calibration_check=int(check), camera_residual_px=float(residual),
            calibration_reason=reason))


def main(args=None):
    """Run the policy node on ROS 2 until shutdown."""
    from sim2real_safety.nodes.rclpy_node import run
    run(PolicyNode, args)


if __name__ == '__main__':
    main()

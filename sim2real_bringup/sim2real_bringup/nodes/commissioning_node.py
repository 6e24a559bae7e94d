"""commissioning_node: commissions a cell through the suite's own graph (both runtimes).

The procedure of :mod:`sim2real_policy.cell_calibration` (touch-off, the TCP shown to the
camera at a grid of poses, the camera fit, the actuation delay from the stage's response)
driven by this node's 100 Hz timer instead of a simulator: its motions go to the safety node
as proposals from SOURCE_COMMISSIONING, the camera node's processed frames are its images
and the robot state is its measured TCP. So it commissions any robot the driver relay drives
(``commission.launch.py``) and the MuJoCo robot in-process (``sim2real calibrate-cell``).

It moves only while the supervisor's commissioning mode is on: an operator asks for it (the
``operator_name`` parameter makes the node ask on the operator's behalf at start; or
``ros2 service call /supervisor/commission``), and the safety node then lets the touch-off
below the table clearance within its commissioning bounds. The node ends the mode when the
procedure ends or fails; a stop or fault ends it from the supervisor's side, and the node then
gives up (restart it to try again). On success it writes ``output_file`` atomically (never
over an existing file unless ``replace``; the old one is kept beside it).

Names (relative; the launch graph remaps them onto the suite's topics):
  sub  robot_state (RobotState), image_processed (sensor_msgs/Image),
       supervisor_state (SupervisorState, latched)
  pub  proposed_command (CartesianCommand), diagnostics (ControlDiagnostics: the supervisor
       watches the controller's liveness), progress (std_msgs/String, latched)
  cli  commission (Commission)
Parameters: config/commissioning.yaml (read-only).
"""
from __future__ import annotations

import enum
import math
from pathlib import Path

from sim2real_policy.camera_geometry import GeometryError
from sim2real_policy.cell_calibration import (
    calibrate_cell_steps,
    CellCalibrationConfig,
    CellRobot,
    CONTROL_PERIOD,
    provenance,
)
from sim2real_safety import convert
from sim2real_safety.cell_file import write_cell_file
from sim2real_safety.node_interface import NS, Param

M = 'sim2real_msgs/msg/'
SOURCE_COMMISSIONING = 8   # CartesianCommand.SOURCE_COMMISSIONING (checked against the .msg)
MODE_GRIPPER_FAULT = 3     # SupervisorState.MODE_GRIPPER_FAULT: at and above, no commissioning
PARAMETERS = (
    Param('output_file', '', 'the cell file to write (required; a path)'),
    Param('replace', False, 'replace an existing output_file (the old one is kept beside it '
          'as NAME.previous-<UTC>.yaml); false: refuse to start if it exists'),
    Param('cell_name', '', 'name of the cell in the file (the nodes refuse another '
          "cell's file when their cell_name is set; required)"),
    Param('robot_name', '', 'the robot, for the provenance in the file'),
    Param('model_path', '', 'keypoint policy whose network finds the fingertips ("" = the '
          'bundled one)'),
    Param('operator_name', '', 'ask the supervisor for the commissioning mode on this '
          "operator's behalf at start (\"\": wait for an operator's Commission call)"),
    Param('reason', 'commissioning a new cell', 'why, logged with the request'),
    Param('touch_floor_z', -0.005, 'lowest TCP z the touch-off commands (m): at the safety '
          "node's commissioning floor; a table whose contact lies below is bounded, not "
          'measured', (-0.5, 0.5)),
    Param('start_timeout', 60.0, 'give up if the commissioning mode has not begun this long '
          'after the inputs are up (s)', (1.0, 3600.0)),
)


class Phase(enum.Enum):
    """Where the node is."""

    WAITING = 'waiting for robot state, camera frames and the commissioning mode'
    RUNNING = 'running the procedure'
    DONE = 'done: the cell file is written'
    FAILED = 'failed'


class _GraphCell(CellRobot):
    """The robot as the commissioning node sees it through the graph."""

    def __init__(self, owner: 'CommissioningNode'):
        self.owner = owner

    def command(self, target) -> None:
        self.owner.propose(target)

    def measured_tcp(self):
        import numpy as np
        return np.asarray(self.owner.pose[:4], dtype=float)

    def frame(self):
        return self.owner.image

    def frame_size(self) -> tuple:
        height, width = self.owner.image.shape[:2]
        return (width, height)


class CommissioningNode:
    """Thin node around :func:`calibrate_cell_steps`."""

    NAME = 'commissioning_node'

    def __init__(self, node, detector=None):
        # detector: a loaded keypoint network handed in by the in-process runtime
        self.node = node
        p = node.declare_parameters(PARAMETERS)
        if not p['output_file']:
            raise ValueError(f'{self.NAME}: parameter output_file is required (the cell file '
                             'to write)')
        if not str(p['cell_name']).strip():
            raise ValueError(f'{self.NAME}: parameter cell_name is required (the cell the '
                             'file is for)')
        self.output = Path(p['output_file']).expanduser()
        if self.output.exists() and not p['replace']:
            raise FileExistsError(f'{self.output} exists already: set replace:=true to '
                                  'replace it (the old file is kept beside it)')
        self.p = p
        from sim2real_policy.models import resolve_model
        self.model_path = resolve_model(p['model_path'])
        if detector is None:
            from sim2real_policy.keypoint_policy import KeypointDetector
            detector = KeypointDetector(self.model_path)
        self.detector = detector
        self.config = CellCalibrationConfig(touch_floor_z=p['touch_floor_z'])
        self.msgs = node.messages
        self.phase = Phase.WAITING
        self.pose = None
        self.image = None
        self.commissioning = False     # the supervisor's latest word
        self.mode: int | None = None   # ... and its mode
        self.requested = False
        self.inputs_up_ns: int | None = None
        self.steps = None
        self.remaining = 0.0           # s still to wait before the procedure goes on
        self.result = None
        self.error = ''
        self.ticks = 0
        self.last_tick_ns: int | None = None
        self.target: tuple | None = None   # the last target proposed, and when
        self.proposed_ns = 0
        self.pub = node.create_publisher('proposed_command', M + 'CartesianCommand', 'command')
        self.diag_pub = node.create_publisher('diagnostics', M + 'ControlDiagnostics',
                                              'default')
        self.progress_pub = node.create_publisher('progress', 'std_msgs/msg/String', 'latched')
        self.client = node.create_client('commission', 'sim2real_msgs/srv/Commission')
        node.create_subscription('robot_state', M + 'RobotState', self.on_state, 'sensor')
        node.create_subscription('image_processed', 'sensor_msgs/msg/Image', self.on_image,
                                 'sensor')
        node.create_subscription('supervisor_state', M + 'SupervisorState', self.on_mode,
                                 'latched')
        node.create_timer(CONTROL_PERIOD, self.on_tick)
        self.tell('waiting', f'{Phase.WAITING.value}; the file will be {self.output}')

    # ------------------------------------------------------------------------------ inputs
    def on_state(self, msg) -> None:
        """The measured TCP (the procedure's robot state)."""
        self.pose = convert.state_pose(msg)

    def on_image(self, msg) -> None:
        """The newest processed frame."""
        self.image = convert.image_array(msg)

    def on_mode(self, msg) -> None:
        """The commissioning mode on: the procedure may start; off while running: it failed."""
        self.commissioning = bool(msg.commissioning)
        self.mode = int(msg.mode)
        if self.phase is Phase.RUNNING and not self.commissioning:
            self.fail(f'the supervisor ended the commissioning ({msg.reason})', end=False)

    # ------------------------------------------------------------------------------ output
    def tell(self, step: str, text: str) -> None:
        """Progress: logged and published (latched)."""
        line = f'{step}: {text}'
        self.node.logger.info(line)
        self.progress_pub.publish(self.msgs.make('std_msgs/msg/String', data=line))

    def propose(self, target) -> None:
        """One commissioning proposal to the safety node, stamped now."""
        now = self.node.now_ns()
        self.target = tuple(float(v) for v in target)
        self.proposed_ns = now
        self.pub.publish(convert.command_msg(self.msgs, self.target, now,
                                             SOURCE_COMMISSIONING))

    def fail(self, why: str, end: bool = True) -> None:
        """Give up: no file; the commissioning mode is left."""
        self.phase, self.error = Phase.FAILED, why
        self.steps = None
        self.node.logger.error(f'commissioning failed: {why}')
        self.progress_pub.publish(self.msgs.make('std_msgs/msg/String',
                                                 data=f'failed: {why}'))
        if end:
            self._end(f'procedure failed: {why}')

    def _end(self, reason: str) -> None:
        if self.client.ready():
            self.client.call(lambda response: None, begin=False, operator_name='',
                             reason=reason)

    # ------------------------------------------------------------------------------- ticks
    def on_tick(self) -> None:
        """Diagnostics always (the liveness); the procedure one control period at a time."""
        now, msgs = self.node.now_ns(), self.msgs
        period = 0.0 if self.last_tick_ns is None else (now - self.last_tick_ns) / NS
        self.last_tick_ns = now
        self.ticks += 1
        self.diag_pub.publish(msgs.make(
            M + 'ControlDiagnostics', header=msgs.header(now), tick=self.ticks,
            period=period, jitter=abs(period - CONTROL_PERIOD) if period else 0.0,
            chunk_age=math.nan, latency=math.nan, command_source=SOURCE_COMMISSIONING,
            deadline_misses=0, mode=0, actuation_delay=0.0))
        if self.phase is Phase.WAITING:
            self._wait_for_start(now)
        elif self.phase is Phase.RUNNING:
            self._advance(period if period > 0.0 else CONTROL_PERIOD)
            if (self.phase is Phase.RUNNING and self.target is not None
                    and self.proposed_ns != now):
                # while the procedure waits, its last target stands, commanded every period
                # as a controller does (the safety node would hold on a silent stream)
                self.propose(self.target)

    def _wait_for_start(self, now: int) -> None:
        if self.pose is None or self.image is None:
            return
        if self.inputs_up_ns is None:
            self.inputs_up_ns = now
        if self.commissioning:
            self.phase = Phase.RUNNING
            # the camera node's frames are processed already (cropped, resized): the fit is
            # in their pixels, the ones the policy node projects into
            detector = self.detector
            self.steps = calibrate_cell_steps(
                _GraphCell(self), lambda frame: detector(frame, preprocessed=True), self.config,
                self.p['cell_name'], self.tell)
            self.remaining = 0.0
            self._advance(0.0)
            return
        # asked once the supervisor could grant it: past start-up, no stop, no fault
        if (self.p['operator_name'] and not self.requested and self.client.ready()
                and self.mode is not None and self.mode < MODE_GRIPPER_FAULT):
            self.requested = True
            self.client.call(self._on_begin, begin=True, operator_name=self.p['operator_name'],
                             reason=self.p['reason'])
        if (now - self.inputs_up_ns) / NS > self.p['start_timeout']:
            self.fail(f'the commissioning mode did not begin within start_timeout '
                      f'{self.p["start_timeout"]} s (ask: ros2 service call '
                      '/supervisor/commission sim2real_msgs/srv/Commission '
                      '"{begin: true, operator_name: NAME, reason: WHY}")', end=False)

    def _on_begin(self, response) -> None:
        if response is None or not response.success:
            self.fail('the supervisor refused the commissioning: '
                      + ('no answer' if response is None else response.message), end=False)

    def _advance(self, elapsed: float) -> None:
        """Let ``elapsed`` s pass; run the procedure on to its next wait."""
        self.remaining -= elapsed
        while self.remaining <= 1e-9 and self.steps is not None:
            try:
                self.remaining += next(self.steps)
            except StopIteration as done:
                self.steps = None
                self._finish(done.value)
            except GeometryError as exc:
                self.fail(str(exc))
            except Exception as exc:  # noqa: BLE001 -- any error ends it, never the node
                self.fail(f'{type(exc).__name__}: {exc}')

    def _finish(self, calibration) -> None:
        calibration.provenance = provenance(self.model_path, self.p['robot_name'])
        calibration.extra['model'] = getattr(getattr(self.detector, 'meta', None),
                                             'model_id', '')
        try:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            write_cell_file(calibration, self.output, replace=self.p['replace'])
        except OSError as exc:
            self.fail(f'cannot write {self.output}: {exc}')
            return
        self.result = calibration
        self.phase = Phase.DONE
        self._end(f'procedure done: {self.output}')   # the mode is left before it says done
        self.tell('done', f'cell file written: {self.output}')


def main(args=None):
    """Run the commissioning node on ROS 2 until shutdown."""
    from sim2real_safety.nodes.rclpy_node import run
    run(CommissioningNode, args)


if __name__ == '__main__':
    main()

"""The deployed grasping policy: keypoints, a calibrated camera, and a grasp planner.

``KeypointGraspPolicy`` honours the runner contract of :class:`policy.PolicyRunner`
(``predict(image, proprio) -> horizon x 5`` absolute targets, ``meta``, ``model_id``,
``last_latency``). Inside:

1. the keypoint network (ONNX Runtime, one thread) finds the object's base and top and the TCP;
2. the cell calibration (:mod:`cell_calibration`: projection matrix, table height) maps the
   base pixel onto the table plane and the top pixel onto the object's vertical axis, which
   gives the object's position and height in the base frame;
3. estimates are kept only while the gripper is clear of the object (closer, the fingers hide
   it) and their median is the object; a fresh run of estimates after a pause (a re-grasp, a
   new episode) replaces the old ones;
4. :class:`GraspPlanner` (the reactive scripted grasp, told the estimate instead of the
   simulator's truth) turns it into the chunk.

The chunk's targets are bounded by construction: inside the stage's reach and the gripper's
range, never faster than the planner's speed; the safety filter stays the last line.
"""
from __future__ import annotations

from collections import deque
import math
import time

import numpy as np

from sim2real_policy.calibration_check import CalibrationCheck, CheckState
from sim2real_policy.camera import ImagePreprocessor
from sim2real_policy.camera_geometry import height_on_vertical, pixel_to_plane
from sim2real_policy.cell_calibration import CellCalibrationConfig, TOUCH_OFF_TCP_HEIGHT
from sim2real_policy.policy import ModelError, ort_session, read_metadata
from sim2real_policy.sim.expert import GRASP_DEPTH, Plan, ReactiveExpert
from sim2real_safety.cell_file import CellCalibration

KIND = 'keypoint_planner'
SQUEEZE = 0.006   # m the gripper is commanded inside its measured width while closing
GRIP_TIME = 0.3   # s the fingers must stand still on an object before it counts as held
# A descent is held up (the safety node's floor over a table lower than the cell was
# commissioned for, a stiff stage) when, over the last STALL_TIME of it, the measured TCP
# fell less than STALL_DESCENT between the window's halves (means: encoder noise of a few mm
# per reading must not hide a stop). STALL_TIME is longer than the actuation delay (up to
# 0.25 s in the heavy ranges), so a descent that has not started yet is never taken for one.
STALL_TIME = 0.6      # s
STALL_DESCENT = 0.003  # m; a moving descent falls 10 times that in half the window
# N of closing effort that says the fingers press on something
GRIP_EFFORT = 40.0
# What was held is lost (it slipped out of the lift) when, over a whole GRIP_TIME, the fingers
# pressed on nothing (effort under GRIP_EFFORT at every reading) and still closed SLIP_CLOSE:
# fingers on an object stand still; empty, they follow the grip floor shut at about 13 mm/s.
# Waiting instead for them to shut below the narrowest object took 2-3 s of a 12 s episode.
SLIP_CLOSE = 0.003  # m
# N of a firm grip: the closing floor stops following the fingers in (see the close) once
# they grip this hard, and fingers stopped wider than any object's width (a box across its
# corners: its yaw is not estimated) begin a lift only this hard (lifted at 60 N, in a
# trace, the box turned out of them); lifting, GRIP_EFFORT keeps them a grip, so one lighter
# reading does not open them. Near the grip SQUEEZE makes (about 170 N in traces), under the
# weakest heavy gripper's full force (164 N), well under the supervisor's max_gripper_effort
# (250 N).
HOLD_EFFORT = 120.0
AIM_GAIN = 0.2     # share of the remaining x, y error added to the aim per settled inference
AIM_RADIUS = 0.03  # m: the aim is corrected within this of the object, and by at most this
# Lowest object centre the planner aims at above the table (m): the grasp TCP (GRASP_DEPTH
# below the centre) keeps the closed fingertips 4 mm off the table.
FINGERTIP_GRASP_HEIGHT = TOUCH_OFF_TCP_HEIGHT + 0.004 + GRASP_DEPTH
NS = 1_000_000_000
# m/s: slower than this between inferences, a frame and its reading show the TCP at the same
# place (2 mm of encoder noise over 0.1 s is 0.03 m/s): its keypoint checks the cell file
CHECK_SPEED = 0.05
CHECK_APPROACH_SPEED = 0.1   # m/s to the check pose while the cell file is not verified


class KeypointDetector:
    """The keypoint network: frame in, ``{name: (u, v, confidence)}`` out."""

    def __init__(self, path, threads: int = 1):
        self.meta = read_metadata(path)
        self.names = tuple(self.meta.extra.get('keypoints', ()))
        if self.meta.extra.get('kind') != KIND or not self.names:
            raise ModelError(f'{path}: not a keypoint model (metadata extra.kind is '
                             f'{self.meta.extra.get("kind")!r}, expected {KIND!r})')
        self.session = ort_session(path, threads)
        self.preprocessor = ImagePreprocessor.from_metadata(self.meta)

    def __call__(self, frame: np.ndarray, preprocessed: bool = False) -> dict:
        """Keypoints of one frame (pixels of the processed image, OpenCV convention)."""
        image = (self.preprocessor.normalize(frame) if preprocessed
                 else self.preprocessor.tensor(frame))
        out = self.session.run([self.meta.output], {self.meta.image_input: image})[0][0]
        return {name: tuple(float(v) for v in row) for name, row in zip(self.names, out)}


class GraspPlanner(ReactiveExpert):
    """The reactive grasp for an object known only by its estimated position.

    The object's width is not measured, so the phases use the range of widths the policy was
    trained for and what the fingers do: the grasp is lifted only once they grip
    (``gripping``: see :meth:`KeypointGraspPolicy.predict`); fingers closed below the
    narrowest object, or closing on nothing in the lift (``lost``), mean an empty grasp
    (re-grasp), and a re-grasp goes on until the gripper is open again.
    """

    # m above the grasp height where a stage that stopped descending (stiff joints, weak
    # gains) closes anyway: the fingers then hold the object's upper part
    STOPPED_SHORT = 0.015

    def __init__(self, position, min_width: float, max_width: float, gripping: bool = False,
                 previous_phase: str = '', open_width: float = 0.085, settled: bool = False,
                 aim_offset=(0.0, 0.0), stalled: bool = False, lost: bool = False):
        super().__init__(position, 0.0, 'cylinder', max_width, open_width)
        self.min_width = min_width
        self.gripping = gripping
        self.lost = lost     # the lift's fingers close on nothing (see SLIP_CLOSE)
        self.previous_phase = previous_phase
        self.settled = settled
        # the descent stopped falling over STALL_TIME (or a close began so goes on): something
        # holds the stage up (the safety node's floor over a table lower than the cell was
        # commissioned for, a stiff stage), so it will get no lower
        self.stalled = stalled
        # x, y added to every commanded target (not to the phase's errors): the integral of
        # a compliant stage's steady offset from the object, kept by the policy
        self.aim_offset = np.asarray(aim_offset, float)

    def phase(self, tcp, width: float) -> str:
        """As :meth:`ReactiveExpert.phase`, with the width band and the fingers' motion."""
        if self.previous_phase == 'regrasp' and width < self.object_width + 0.01:
            return 'regrasp'          # still opening after an empty grasp
        if self.previous_phase == 'lift' and self.lost:
            return 'regrasp'          # it slipped out: open, and try again
        phase = super().phase(tcp, width)
        held = self.gripping and width >= self.min_width - 0.008
        if self.previous_phase == 'lift' and (
                held or self.min_width - 0.008 <= width <= self.object_width + 0.006):
            return 'lift'             # lifting what is held: the grip settling is no reason
            # to go back down
        if held and phase in ('close', 'descend'):
            return 'lift'             # still fingers pressing on something at grasp height
        if phase == 'descend' and self.settled \
                and tcp[2] <= self.position[2] - GRASP_DEPTH + self.STOPPED_SHORT \
                and math.hypot(tcp[0] - self.position[0], tcp[1] - self.position[1]) \
                < self.DESCEND_TOLERANCE:
            return 'close'            # the stage stopped short of the grasp height
        if phase == 'descend' and self.stalled and self.previous_phase in ('descend', 'close') \
                and math.hypot(tcp[0] - self.position[0], tcp[1] - self.position[1]) \
                < self.DESCEND_TOLERANCE:
            return 'close'            # held up above it: grip as low as the stage gets
        if phase == 'regrasp' and width >= self.min_width - 0.008:
            phase = 'lift'            # narrower than the widest object, not empty
        if phase == 'lift' and not self.gripping:
            ox, oy, _ = self.position
            near = math.hypot(tcp[0] - ox, tcp[1] - oy) < 0.02
            return 'close' if near else 'approach'
        return phase

    def plan(self, tcp, width: float, settled: bool = False) -> Plan:
        """As :meth:`ReactiveExpert.plan`; closing holds the stage on the grasp point.

        The reactive close holds the stage where it is measured; a compliant stage (stiff
        joints, weak gains) then springs away from the object and out of the close. Here the
        close aims at the object (with the same integral push as the approach) and, in z, no
        higher than the grasp height.
        """
        # the integral offset replaces the reactive expert's one-step push when settled
        plan = super().plan(tcp, width, settled and not np.any(self.aim_offset))
        phase = self.phase(tcp, width)
        if phase not in ('approach', 'descend', 'close'):
            return plan
        waypoints = plan.waypoints.copy()
        waypoints[1:, :2] += self.aim_offset
        if phase == 'close':
            ox, oy, oz = self.position
            waypoints[1:, :2] = (ox + self.aim_offset[0], oy + self.aim_offset[1])
            low = waypoints[1:, 2] <= tcp[2] + 1e-9          # not the lift at the end
            waypoints[1:, 2] = np.where(low, np.minimum(waypoints[1:, 2], oz - GRASP_DEPTH),
                                        waypoints[1:, 2])
        return Plan(waypoints)


class KeypointGraspPolicy:
    """Observation in, chunk of absolute targets out (see the module docstring)."""

    def __init__(self, path, calibration: CellCalibration | None = None, threads: int = 1):
        self.path = path
        self.detector = KeypointDetector(path, threads)
        self.meta = self.detector.meta
        planner = dict(self.meta.extra.get('planner', {}))
        self.min_width = float(planner.get('min_object_width', 0.034))
        self.max_width = float(planner.get('max_object_width', 0.052))
        self.min_confidence = float(planner.get('min_confidence', 0.02))
        self.clearance = float(planner.get('clear_height', 0.06))
        self.workspace = np.asarray(planner.get('object_region', [[0.30, -0.30], [0.80, 0.30]]))
        self.preprocessor = self.detector.preprocessor
        self.last_latency = float('nan')
        self.verify_calibration = True
        self.calibrate(calibration)

    @property
    def model_id(self) -> str:
        """The id declared in the metadata."""
        return self.meta.model_id

    def calibrate(self, calibration: CellCalibration | None, verify: bool | None = None) -> None:
        """Map through a newly commissioned cell from now on (and forget the object).

        The cell file is checked against the camera first (:mod:`calibration_check`): no
        grasp until it is verified (``verify``: False turns the check off).
        """
        if verify is not None:
            self.verify_calibration = bool(verify)
        self.calibration = calibration
        self.check = (CalibrationCheck(calibration.matrix, calibration.check_points)
                      if calibration is not None and calibration.check_points
                      and self.verify_calibration else None)
        self.check_note = ('the cell file has no check point (commissioned before the '
                           'check existed): not checked against the camera; commission the '
                           'cell again' if calibration is not None and self.verify_calibration
                           and not calibration.check_points else '')
        self.reset()

    def calibration_status(self) -> tuple[CheckState, float, str]:
        """The cell file's check: state, median residual (px), what it means."""
        if self.check is None:
            return CheckState.NONE, float('nan'), self.check_note
        return self.check.state, self.check.residual_px, self.check.reason

    def reset(self) -> None:
        """Forget the object (a new episode)."""
        self.estimates: list[tuple[int, np.ndarray]] = []
        self.last_accepted_ns: int | None = None
        self.previous: tuple[int, np.ndarray] | None = None
        self.last_keypoints: dict = {}
        self.phase = ''
        self.regrasps = 0       # empty grasps retried since the reset
        self.lifted = False     # a lift began since the reset (see first_contact_width)
        # (stamp_ns, measured gripper width, effort) over the last GRIP_TIME (and one before)
        self.widths: deque = deque()
        self.close_floor: float | None = None   # lowest grip floor of this close (m)
        self.aim_offset = np.zeros(2)   # m, see GraspPlanner
        self.descent: deque = deque()   # (stamp_ns, measured z) of this descent and close
        # a close begun because the descent was held up goes on until it holds or misses:
        # the noisy window would otherwise, now and then, send it back to the descent and
        # open the fingers in the middle of the grip
        self.closing_held_up = False

    def _held_up(self, stamp_ns: int, z: float) -> bool:
        """Whether the descent stopped falling (see STALL_TIME); keeps its window."""
        if self.phase not in ('descend', 'close'):
            self.descent.clear()
            return False
        if self.descent and stamp_ns - self.descent[-1][0] > STALL_TIME * NS / 2:
            # a pause (slow or missing inferences: the controller held the stage): what
            # follows must show a whole window of its own
            self.descent.clear()
        self.descent.append((stamp_ns, z))
        # keep one reading at least STALL_TIME old, so the window spans all of STALL_TIME
        while len(self.descent) > 1 and stamp_ns - self.descent[1][0] >= STALL_TIME * NS:
            self.descent.popleft()
        if stamp_ns - self.descent[0][0] < STALL_TIME * NS or len(self.descent) < 4:
            return False
        heights = [h for _, h in self.descent]
        half = len(heights) // 2
        return float(np.mean(heights[:half]) - np.mean(heights[half:])) < STALL_DESCENT

    def table_height(self) -> float:
        """The calibrated table; below the touch-off's reach, the stage's lowest reach.

        A planning guess, for projecting pixels onto the table: the table is somewhere below
        there. The safety bound is the calibration's ``table_height_max``: at least 6 mm
        higher, more if the stage ended its descent above its floor.
        """
        table = self.calibration.table_height
        if table is None:
            return CellCalibrationConfig().touch_floor_z - TOUCH_OFF_TCP_HEIGHT
        return table

    def first_contact_width(self) -> float:
        """The widest (m) the closing fingers can first touch the object at.

        The fingers go there at once, then on at SQUEEZE inside their measured width, so the
        command is never inside a contact and no close presses harder than SQUEEZE does.
        The object stands as it was placed until it was lifted: its footprint is widest
        across a box's diagonal (its yaw is not estimated). Once lifted (and perhaps dropped)
        it may lie on its side (a footprint as long as it is tall, and the trained heights
        reach past the widths): no shortcut then.
        """
        if self.lifted or self.regrasps:
            return math.inf
        return self.max_width * math.sqrt(2.0) + 0.002

    def locate(self, keypoints: dict) -> np.ndarray | None:
        """Object centre ``(x, y, z)`` from one frame's keypoints, or None if not credible."""
        base, top = keypoints['object_base'], keypoints['object_top']
        if base[2] < self.min_confidence:
            return None
        proj, table = self.calibration.matrix, self.table_height()
        x, y, _ = pixel_to_plane(proj, base[:2], table)
        (x0, y0), (x1, y1) = self.workspace
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            return None
        if top[2] >= self.min_confidence:
            top_z = height_on_vertical(proj, (x, y), top[:2])
            half = float(np.clip((top_z - table) / 2.0, 0.012, 0.04))
        else:
            # The top is not found (a network fine-tuned on real frames, which label no top):
            # the height is unknown, so the lowest grasp below.
            half = 0.0
        # The closed fingertips reach TOUCH_OFF_TCP_HEIGHT below the TCP: a low object is
        # gripped higher up (too high costs little; the fingers on the table cost the grasp
        # and load the gripper past its effort limit).
        return np.array([x, y, table + max(half, FINGERTIP_GRASP_HEIGHT)])

    def object_estimate(self, keypoints: dict, tcp, stamp_ns: int) -> np.ndarray | None:
        """The median of the estimates taken while the gripper was clear of the object."""
        located = self.locate(keypoints)
        reference = (np.median([e for _, e in self.estimates], axis=0) if self.estimates
                     else located)
        clear = reference is None or (
            math.hypot(tcp[0] - reference[0], tcp[1] - reference[1]) > 0.08
            or tcp[2] > reference[2] + self.clearance + 0.03)
        if located is not None and clear:
            if self.last_accepted_ns is not None and stamp_ns - self.last_accepted_ns > 2 * NS:
                self.estimates = []   # a pause (grasp, re-grasp, new episode): start over
            self.estimates.append((stamp_ns, located))
            del self.estimates[:-10]
            self.last_accepted_ns = stamp_ns
        if not self.estimates:
            return None
        return np.median([e for _, e in self.estimates], axis=0)

    def predict(self, frame: np.ndarray, proprio, preprocessed: bool = False,
                stamp_ns: int | None = None) -> np.ndarray:
        """Horizon x 5 absolute targets for the observation ``(frame, proprio)``."""
        start = time.perf_counter()
        if self.calibration is None:
            raise ModelError('no cell calibration: the keypoint policy needs the camera and '
                             'table from the calibration procedure (calibration_file)')
        proprio = np.asarray(proprio, float)
        if proprio.shape != (len(self.meta.proprio_names),) or not np.all(np.isfinite(proprio)):
            raise ModelError(f'proprio must be {len(self.meta.proprio_names)} finite values, '
                             f'got {proprio!r}')
        stamp_ns = int(stamp_ns if stamp_ns is not None else time.monotonic_ns())
        keypoints = self.detector(frame, preprocessed)
        self.last_keypoints = keypoints
        tcp, width = proprio[:4], proprio[4]
        target = self.object_estimate(keypoints, tcp, stamp_ns)
        settled = False
        if self.previous is not None:
            dt = (stamp_ns - self.previous[0]) / NS
            if dt > 0:
                settled = np.linalg.norm(tcp[:3] - self.previous[1][:3]) / dt < 0.01
        if self.check is not None and self.previous is not None and dt > 0 and \
                np.linalg.norm(tcp[:3] - self.previous[1][:3]) / dt < CHECK_SPEED:
            self.check.add(tcp[:3], keypoints['tcp'])
        self.previous = (stamp_ns, tcp.copy(), float(width))
        stalled = self._held_up(stamp_ns, float(tcp[2])) or self.closing_held_up
        # Closing, something is held when the fingers, told to close further, have stood
        # still for GRIP_TIME (longer than the gripper's lag, so a pause of the fingers on
        # their way shut is not taken for a grip) inside the band of object widths, or wider
        # at HOLD_EFFORT. Lifting, it is held while they press (see below) or stand still.
        effort = float(proprio[5])
        self.widths.append((stamp_ns, float(width), effort))
        # keep one reading at least GRIP_TIME old, so the window spans all of GRIP_TIME
        # however far apart the inferences are (up to the supervisor's inference_deadline:
        # trimmed to GRIP_TIME, inferences 0.3 s apart could never see a grip, nor lift)
        while len(self.widths) > 1 and stamp_ns - self.widths[1][0] >= GRIP_TIME * NS:
            self.widths.popleft()
        recent = [w for _, w, _ in self.widths]
        span = (stamp_ns - self.widths[0][0]) / NS
        still = span >= GRIP_TIME and max(recent) - min(recent) < 0.0008
        if self.phase == 'close':
            gripping = (still and self.min_width - 0.008 <= width
                        and (width <= self.max_width + 0.006 or effort >= HOLD_EFFORT))
        elif self.phase == 'lift':
            # lifting, fingers that pressed on something within GRIP_TIME hold it, still or
            # turning in the grip (a box gripped across its corners squares up), and one
            # light reading does not open them in the air: only empty ones may open
            pressed = max(e for _, _, e in self.widths) >= GRIP_EFFORT
            gripping = self.min_width - 0.008 <= width and (
                pressed or (still and width <= self.max_width + 0.006))
        else:
            gripping = False
        # empty fingers close at least SLIP_CLOSE per GRIP_TIME, however long the window
        lost = (self.phase == 'lift' and span >= GRIP_TIME and not gripping
                and recent[0] - recent[-1] >= SLIP_CLOSE * span / GRIP_TIME
                and all(e < GRIP_EFFORT for _, _, e in self.widths))
        horizon, period = self.meta.horizon, self.meta.action_period
        if self.check is not None and self.check.state is not CheckState.VERIFIED:
            target = None   # the cell file not (yet) verified against the camera: no grasp
        check_pose = self.check.check_pose if self.check is not None and \
            self.check.state is CheckState.VERIFYING else None
        if target is None and check_pose is not None:
            # the cell file not verified yet: to its check pose (home), gripper open, slowly
            goal = np.array([*check_pose, 0.0, self.max_width + 0.033])
            start_pose = np.array([*tcp[:4], self.max_width + 0.033])
            gap = float(np.linalg.norm(goal[:3] - start_pose[:3]))
            reach = CHECK_APPROACH_SPEED * period * np.arange(1, horizon + 1)
            share = np.minimum(1.0, reach / gap) if gap > 1e-9 else np.ones(horizon)
            actions = start_pose + share[:, None] * (goal - start_pose)
            self.closing_held_up = False
        elif target is None:
            # nothing credible seen yet: hold where the robot is, gripper open
            hold = np.array([*tcp[:4], self.max_width + 0.033])
            actions = np.tile(hold, (horizon, 1))
            self.closing_held_up = False
        else:
            error = target[:2] - tcp[:2]
            if settled and self.phase in ('approach', 'descend', 'close') \
                    and math.hypot(*error) < AIM_RADIUS:
                # a stage that stops short (joint springs, weak gains) is aimed past the
                # object by the integral of what is left
                self.aim_offset = np.clip(self.aim_offset + AIM_GAIN * error, -AIM_RADIUS,
                                          AIM_RADIUS)
            planner = GraspPlanner(target, self.min_width, self.max_width, gripping,
                                   self.phase, settled=settled, aim_offset=self.aim_offset,
                                   stalled=stalled, lost=lost)
            phase = planner.phase(tcp, width)
            if phase == 'regrasp' and self.phase != 'regrasp':
                self.regrasps += 1   # an empty grasp: open, rise, try again
            self.phase = phase
            self.lifted = self.lifted or phase == 'lift'
            self.closing_held_up = phase == 'close' and stalled
            actions = planner.chunk(tcp, width, horizon, period, settled)
            if phase in ('approach', 'descend'):
                # The fingers close only once the TCP is measured at grasp height. A chunk
                # tail that closed them on the way down ran ahead of a delayed stage: they shut
                # above the grasp, and the grip's floor below then asked them to open while
                # they pressed on the object (a stall, to the supervisor).
                actions[:, 4] = np.maximum(actions[:, 4], planner.open_width)
                self.close_floor = None
            elif phase in ('close', 'lift'):
                # Close toward SQUEEZE inside the fingers' measured width, never to zero: the
                # fingers follow it shut, and on the object it becomes a force-limited grip
                # (about 170 N in traces of the simulated 2F-85, less for the weakest ones)
                # instead of the gripper's full force, which can exceed the supervisor's
                # effort limit. The
                # floor only falls: a width measured before the gripper's lag caught up must
                # not ask fingers that have closed further to open again. Gripping at
                # HOLD_EFFORT, the floor holds: the fingers give a little under the load, and a
                # floor following them down tightened the grip to the gripper's full force
                # (measured: 250 N at strength 1.08, past max_gripper_effort: GRIPPER_FAULT).
                floor = min(width - SQUEEZE, self.first_contact_width())
                if self.close_floor is not None:
                    floor = (self.close_floor if effort >= HOLD_EFFORT
                             else min(floor, self.close_floor))
                self.close_floor = floor
                actions[:, 4] = np.maximum(actions[:, 4], floor)
            else:
                self.close_floor = None
        actions[:, 4] = np.clip(actions[:, 4], 0.0, 0.085)
        if not np.all(np.isfinite(actions)):
            raise ModelError('the planner produced non-finite targets')
        self.last_latency = time.perf_counter() - start
        return actions


def load_policy(path, backend: str = 'onnxruntime', expected: dict | None = None,
                calibration: CellCalibration | None = None):
    """The runner for a model file: a keypoint policy or an end-to-end network."""
    from sim2real_policy.policy import check_metadata, PolicyRunner

    meta = read_metadata(path)
    if meta.extra.get('kind') == KIND:
        if backend != 'onnxruntime':
            raise ModelError(f'{path}: the keypoint policy runs on onnxruntime only, not '
                             f'{backend!r}')
        check_metadata(meta, expected or {}, str(path))
        return KeypointGraspPolicy(path, calibration)
    return PolicyRunner(path, backend, expected)

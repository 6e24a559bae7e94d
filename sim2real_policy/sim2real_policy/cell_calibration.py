"""Calibrating a cell from what the robot can do: show its fingertips, touch the table.

* **Camera**: the stage visits known positions (a low ring beside the objects' region and a
  layer high above it); at each the keypoint network finds the tool centre point in a few
  frames; the measured TCP positions and those pixels give the camera's focal length and pose
  (:func:`camera_geometry.fit_pinhole`; the nominal field of view is only the start).
* **Actuation delay**: every command the procedure sends and the stage position measured
  every control period while it waits go through :class:`DelayEstimator`; the median of its
  window fits is the delay from command to stage motion (None: too few informative windows).
  The control node leads its chunks by it from the first tick.
* **Table height**: a touch-off. The closed gripper descends slowly beside the workspace until
  the stage stops following its target; the contact height minus the tool's own height below
  the TCP (:data:`TOUCH_OFF_TCP_HEIGHT`, a property of the gripper) is the table. A descent to
  the stage's lowest reach without a contact bounds the table from above instead
  (:func:`out_of_reach_table`).

Nothing here reads the simulator's camera pose or table: the procedure uses commands, the
measured TCP and camera frames, the same as on a robot. It talks to the robot through
:class:`CellRobot`; :class:`SimCellRobot` is the MuJoCo robot behind that interface. On a
robot the touch-off goes below the safety node's table clearance by design: it is a
commissioning step, run slowly and attended, not part of autonomous operation.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from sim2real_policy.camera_geometry import fit_pinhole, GeometryError, project
from sim2real_policy.delay_estimation import DelayEstimationConfig, DelayEstimator
from sim2real_safety.cell_file import CellCalibration

CONTROL_PERIOD = 0.01
# Height of the TCP above the surface its closed fingertips touch (m): the 2F-85's geometry,
# measured once by a touch-off on a table of known height (test_cell_calibration checks it).
TOUCH_OFF_TCP_HEIGHT = 0.0179
# m the touch-off's command must be below the measured TCP before a stop counts as a contact:
# a stage that lags its descending command is not resting on anything.
CONTACT_LAG = 0.004
# m added to a height the touch-off bounds the table by: the contact test compares means of
# 25 readings, which spread 0.4 mm (1 sigma) at 2 mm of encoder noise, the heavy ranges' most.
TOUCH_NOISE_MARGIN = 0.002


@dataclass(frozen=True)
class CellCalibrationConfig:
    """Where the stage goes and how slowly (m, s, m/s).

    The grid has a low ring beside the objects' region (``low_height`` above the touched-off
    table) and a high layer above everything: the camera is then fitted close to the table,
    where the objects are. Measured on simulated cameras with 0.3 px of detection noise: 1.5 mm
    mean, 2.9 mm p95 on the table, against 3.1 / 6.2 mm for a grid high above it.

    The gripper is half open on the low ring (``low_width``): the keypoint network placed the
    closed gripper's TCP about 1.3 px high there, which moved every table point by 8-20 mm.
    Chosen on 27 fresh heavy worlds (seeds 70000...; table points' p95 per world): closed 11.4
    mm median before, 40 mm open 4.1 mm median, 4.4 mm mean, 11 mm worst (30, 60 mm and a
    higher ring gave 4.2, 4.0, 3.6 mm median: within the noise of each other).
    """

    low_x: tuple = (0.40, 0.52, 0.64, 0.76)
    low_y: tuple = (-0.21, 0.21)       # outside the objects' |y| <= 0.146
    low_height: float = 0.04           # TCP above the table (the fingertips 22 mm above it)
    low_width: float = 0.04            # gripper opening on the low ring (m)
    high_x: tuple = (0.42, 0.55, 0.68)
    high_y: tuple = (-0.12, 0.0, 0.12)
    high_z: float = 0.20               # above the tallest object on the highest table
    speed: float = 0.15
    settle_time: float = 0.4
    frames_per_pose: int = 5
    frame_interval: float = 0.1
    min_confidence: float = 0.02       # of the TCP heatmap; below: the detection is not used
    outlier_px: float = 2.5            # reprojection error above which a pose is refitted out
    touch_xy: tuple = (0.36, 0.0)      # in front of the workspace: never under an object
    touch_start_z: float = 0.10
    touch_speed: float = 0.02
    touch_floor_z: float = -0.02       # the stage's lowest reach
    # Contact: over stall_window, the means of its two halves fall less than stall_fall. At
    # touch_speed a descent falls 5 mm between them; with 2 mm of encoder noise (the heavy
    # ranges' most) the difference of two 25-reading means spreads 0.6 mm, so a moving stage
    # is never taken for a stopped one (a 0.3 s window and 0.5 mm threshold did, about one
    # touch-off in 14, reporting the table up to 0.1 m high).
    stall_window: float = 0.5          # s
    stall_fall: float = 0.001          # m
    # s commanded on at the floor past a window: the longest actuation delay expected
    touch_linger: float = 0.3
    camera_fovy: float = 45.0          # deg, the camera's nominal vertical field of view
    # Where the fingertips are seen once more at the end (the suite's home, gripper open):
    # the check point the policy compares the live camera with before it grasps.
    check_pose: tuple = (0.55, 0.0, 0.25, 0.0, 0.085)
    # px: a camera fit with more residual than this is refused (its poses disagree: a camera
    # that moved during the run, or fingertips mistaken); fits of the heavy cells leave < 1.
    max_rms_px: float = 2.5


class CellRobot:
    """What the procedure needs of a robot (a driver adapter implements these)."""

    def command(self, target) -> None:
        """Send one ``(x, y, z, yaw, gripper_width)`` target."""
        raise NotImplementedError

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass (one control period at a time on a real robot)."""
        raise NotImplementedError

    def measured_tcp(self) -> np.ndarray:
        """The measured ``(x, y, z, yaw)``."""
        raise NotImplementedError

    def frame(self) -> np.ndarray:
        """The newest camera frame as the keypoint model expects it (RGB uint8)."""
        raise NotImplementedError

    def frame_size(self) -> tuple:
        """``(width, height)`` of :meth:`frame` in pixels."""
        raise NotImplementedError

    def stage_reading(self) -> np.ndarray:
        """The measured ``(x, y, z)`` for the delay probe (by default :meth:`measured_tcp`)."""
        return self.measured_tcp()[:3]


class SimCellRobot(CellRobot):
    """The MuJoCo robot (:class:`GripperSim`) and the episode's image randomization."""

    def __init__(self, sim, visual, size=(96, 96)):
        self.sim, self.visual, self.size = sim, visual, size
        # the delay probe's encoder noise has a generator of its own, so probing leaves the
        # episode's random stream (pushes, camera noise) as it was
        self._probe_rng = np.random.default_rng([sim.params.seed, 0xDE1A])

    def command(self, target) -> None:
        """Queue the target (the episode's delays apply)."""
        self.sim.command(target)

    def wait(self, seconds: float) -> None:
        """Advance the physics."""
        self.sim.step(seconds)

    def measured_tcp(self) -> np.ndarray:
        """Encoder reading, noise included."""
        return self.sim.tcp()

    def frame(self) -> np.ndarray:
        """A rendered, randomized frame."""
        return self.visual.apply(self.sim.render(*self.size))

    def frame_size(self) -> tuple:
        """The rendered size."""
        return tuple(self.size)

    def stage_reading(self) -> np.ndarray:
        """Encoder reading with the episode's encoder noise, from the probe's own generator."""
        noise = self.sim.params.encoder_noise
        return self.sim.tcp(noisy=False)[:3] + self._probe_rng.normal(0.0, noise, 3)


class _Timed:
    """The robot as the procedure sees it: commands and stage readings feed a delay estimator.

    The procedure never blocks: ``yield from timed.wait(s)`` hands each control period to
    whoever drives it (:func:`run_procedure` in-process, a node's timer on ROS), and the stage
    reading of each period waited goes to a :class:`DelayEstimator` on the procedure's own
    clock (the sum of its waits).
    """

    def __init__(self, robot: CellRobot):
        self.robot = robot
        self.estimator = DelayEstimator(DelayEstimationConfig(), CONTROL_PERIOD)
        self.fits: list[float] = []
        self.time_ns = 0

    def command(self, target) -> None:
        self.robot.command(target)
        self.estimator.add_command(self.time_ns, target)

    def wait(self, seconds: float):
        """Yield the wait, one control period at a time where it is on the control grid."""
        periods = int(round(seconds / CONTROL_PERIOD))
        if periods < 1 or abs(periods * CONTROL_PERIOD - seconds) > 1e-9:
            yield seconds   # not on the control grid: no samples
            self.time_ns += int(round(seconds * 1e9))
            return
        for _ in range(periods):
            yield CONTROL_PERIOD
            self.time_ns += int(round(CONTROL_PERIOD * 1e9))
            self.estimator.add_state(self.time_ns, self.robot.stage_reading())
            if self.estimator.due(self.time_ns):
                self.estimator.update(self.time_ns)
                if self.estimator.last_fit is not None:
                    self.fits.append(self.estimator.last_fit['delay'])

    def measured_tcp(self) -> np.ndarray:
        return self.robot.measured_tcp()

    def frame(self) -> np.ndarray:
        return self.robot.frame()

    def frame_size(self) -> tuple:
        return self.robot.frame_size()

    @property
    def delay(self) -> float | None:
        """The median window fit (s); None with fewer than three."""
        return float(np.median(self.fits)) if len(self.fits) >= 3 else None


def run_procedure(robot: CellRobot, steps):
    """Drive a procedure generator on a robot that can block (``robot.wait``); its result."""
    while True:
        try:
            seconds = next(steps)
        except StopIteration as done:
            return done.value
        robot.wait(seconds)


def _move(robot: _Timed, start, goal, speed: float):
    """Straight-line targets from ``start`` to ``goal`` at ``speed``, one per control period."""
    start, goal = np.asarray(start, float), np.asarray(goal, float)
    steps = max(1, int(math.ceil(np.linalg.norm(goal[:3] - start[:3]) / speed / CONTROL_PERIOD)))
    for k in range(1, steps + 1):
        robot.command(start + (goal - start) * (k / steps))
        yield from robot.wait(CONTROL_PERIOD)


def grid_targets(config: CellCalibrationConfig, table_height: float) -> list:
    """The calibration poses in a short path: the low ring, then the high layer."""
    low_z = max(config.touch_floor_z, table_height) + config.low_height
    targets = []
    for j, y in enumerate(config.low_y):
        xs = config.low_x if j % 2 == 0 else config.low_x[::-1]
        targets += [np.array([x, y, low_z, 0.0, config.low_width]) for x in xs]
    for i, x in enumerate(config.high_x[::-1]):
        ys = config.high_y if i % 2 == 0 else config.high_y[::-1]
        targets += [np.array([x, y, config.high_z, 0.0, 0.085]) for y in ys]
    return targets


def observe_tcp(robot: _Timed, detector, config: CellCalibrationConfig):
    """Mean measured TCP and median detected TCP pixel at the current pose (None: unseen)."""
    measured, pixels = [], []
    for _ in range(config.frames_per_pose):
        yield from robot.wait(config.frame_interval)
        measured.append(robot.measured_tcp()[:3])
        u, v, confidence = detector(robot.frame())['tcp']
        if confidence >= config.min_confidence:
            pixels.append((u, v))
    if len(pixels) * 2 <= config.frames_per_pose:
        return np.mean(measured, axis=0), None
    return np.mean(measured, axis=0), np.median(pixels, axis=0)


def touch_off(robot: CellRobot, config: CellCalibrationConfig, start) -> float | None:
    """Height of the TCP where the closed fingertips stop on the table (None: no contact)."""
    return probe_table(robot, config, start)[0]


def probe_table(robot: CellRobot, config: CellCalibrationConfig, start
                ) -> tuple[float | None, float]:
    """The touch-off on a robot that blocks: :func:`touch_off_steps` run to its end."""
    return run_procedure(robot, touch_off_steps(_Timed(robot), config, start))


def touch_off_steps(robot: _Timed, config: CellCalibrationConfig, start):
    """The touch-off: TCP contact height (None: no contact) and where the descent ended (m).

    Where it ended: the mean measured TCP height over the last half stall window.
    """
    x, y = config.touch_xy
    above = np.array([x, y, config.touch_start_z, 0.0, 0.0])
    yield from _move(robot, start, above, config.speed)
    yield from robot.wait(config.settle_time)
    window = max(2, int(round(config.stall_window / CONTROL_PERIOD)))
    heights = []
    z = config.touch_start_z
    # at the floor, commanded on for a window plus the longest actuation delay: a stage that
    # stops more than 4 mm above the floor (the contact test below) stops late
    linger = window + int(round(config.touch_linger / CONTROL_PERIOD))
    while linger > 0:
        z = max(config.touch_floor_z, z - config.touch_speed * CONTROL_PERIOD)
        if z <= config.touch_floor_z:
            linger -= 1
        robot.command((x, y, z, 0.0, 0.0))
        yield from robot.wait(CONTROL_PERIOD)
        heights.append(float(robot.measured_tcp()[2]))
        if len(heights) <= window:
            continue
        # Only once the stage has been seen descending: before that, a command delay (up to
        # a quarter second) looks like a stall and would report the table in mid-air. Means
        # of half windows, never single readings: the encoder's noise (2 mm in the heavy
        # ranges) made the first reading minus the lowest one look like a descent.
        recent = np.asarray(heights[-window:])
        now = float(np.mean(recent[window // 2:]))
        descended = float(np.mean(heights[:window // 2])) - now > 0.005
        if descended and z < now - CONTACT_LAG:
            # commanded well below where it is, and no descent over the window: contact
            if np.mean(recent[:window // 2]) - now < config.stall_fall:
                # The contact is the window's mean plus three standard errors of it, so the
                # encoder's noise can only put the table higher than it is, never lower (the
                # floor the safety node keeps above it stays above the real table); measured
                # before: up to 0.55 mm low at 2 mm noise.
                height = float(np.mean(recent) + 3.0 * np.std(recent) / math.sqrt(window))
                robot.command((x, y, height + 0.05, 0.0, 0.0))
                yield from robot.wait(0.5)
                return height, height
    ended = float(np.mean(heights[-(window // 2):]))
    robot.command((x, y, config.touch_start_z, 0.0, 0.0))
    yield from robot.wait(1.0)
    return None, ended


def out_of_reach_table(config: CellCalibrationConfig, ended_z: float | None = None) -> float:
    """The highest a table can be when the touch-off found none (m).

    The command went down to ``touch_floor_z``; a stage stopped by the table at least
    :data:`CONTACT_LAG` above that would have been taken for a contact (give or take the
    noise of the test's means, :data:`TOUCH_NOISE_MARGIN`). A stage that had not got there
    when the touch-off ended (slower than its servo should be, delayed past the linger) says
    only that the table is below where it ended: ``ended_z``, the TCP's height then.
    Whichever is higher.
    """
    bound = config.touch_floor_z + CONTACT_LAG
    if ended_z is not None:
        if not math.isfinite(ended_z):
            # max() would drop a NaN and keep the floor's bound, which needs the stage there
            raise GeometryError(f'the touch-off ended at a TCP height of {ended_z} m: no '
                                'bound on the table')
        bound = max(bound, float(ended_z))
    return bound + TOUCH_NOISE_MARGIN - TOUCH_OFF_TCP_HEIGHT


def provenance(model_path, robot: str = '') -> dict:
    """Where a cell file came from: date (UTC), suite version, robot, fingertip model."""
    import datetime
    from importlib import metadata

    from sim2real_policy.policy import model_digest

    try:
        version = metadata.version('sim2real_policy')
    except metadata.PackageNotFoundError:
        version = 'unknown (not installed)'
    return {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
            'suite_version': version, 'robot': robot,
            'policy_sha256': model_digest(model_path) if model_path else 'no model file'}


def calibrate_cell(robot: CellRobot, detector, config: CellCalibrationConfig | None = None,
                   cell: str = 'unnamed cell', progress=None) -> CellCalibration:
    """Run the procedure on a robot that blocks (``robot.wait``).

    ``detector(frame)`` gives ``{'tcp': (u, v, confidence), ...}``. ``cell`` names the cell in
    the result (a node with ``cell_name`` set refuses another's).
    The same procedure as :func:`calibrate_cell_steps`, which a node's timer drives.
    """
    return run_procedure(robot, calibrate_cell_steps(robot, detector, config, cell, progress))


def calibrate_cell_steps(robot: CellRobot, detector,
                         config: CellCalibrationConfig | None = None,
                         cell: str = 'unnamed cell', progress=None):
    """The procedure as a generator: it yields each wait (s), and returns the calibration.

    ``progress(step, text)`` is told each step as it begins ('touch-off', 'poses', 'fit') and
    each pose as it is seen. The touch-off comes first: the low ring of the grid is placed
    from the table it finds. The robot ends where it began. Raises :class:`GeometryError`
    when the TCP is seen at too few poses or the camera fit's residual is too large.
    """
    config = config or CellCalibrationConfig()
    tell = progress or (lambda step, text: None)
    robot = probe = _Timed(robot)
    start = np.concatenate([robot.measured_tcp(), [0.085]])
    tell('touch-off', f'closed gripper down at {config.touch_speed} m/s beside the workspace '
         f'(x {config.touch_xy[0]} m, y {config.touch_xy[1]} m) to z {config.touch_floor_z} m')
    contact, ended = yield from touch_off_steps(robot, config, start)
    table = None if contact is None else contact - TOUCH_OFF_TCP_HEIGHT
    tell('touch-off', 'no contact: the table is below the reach, bounded from above'
         if table is None else f'table at {table:.4f} m')
    reach = config.touch_floor_z - TOUCH_OFF_TCP_HEIGHT   # a lower table is out of reach
    here = np.concatenate([robot.measured_tcp(), [0.0]])
    lifted = here.copy()
    lifted[2] = config.high_z
    yield from _move(robot, here, lifted, config.speed)
    here = lifted
    world, pixels = [], []
    targets = grid_targets(config, reach if table is None else table)
    tell('poses', f'showing the TCP to the camera at {len(targets)} poses')
    for index, target in enumerate(targets):
        if target[2] < here[2] - 1e-9 and abs(target[1] - here[1]) > 0.05:
            # change sides high up, never low across the objects' region
            over = here.copy()
            over[2] = config.high_z
            yield from _move(robot, here, over, config.speed)
            here = over
            over = target.copy()
            over[2] = config.high_z
            yield from _move(robot, here, over, config.speed)
            here = over
        yield from _move(robot, here, target, config.speed)
        here = target
        yield from robot.wait(config.settle_time)
        measured, pixel = yield from observe_tcp(robot, detector, config)
        if pixel is not None:
            world.append(measured)
            pixels.append(pixel)
        tell('poses', f'pose {index + 1}/{len(targets)}: TCP '
             + ('not found' if pixel is None else f'at ({pixel[0]:.1f}, {pixel[1]:.1f}) px'))
    check = np.asarray(config.check_pose, dtype=float)
    yield from _move(robot, here, check, config.speed)
    yield from robot.wait(config.settle_time)
    measured, pixel = yield from observe_tcp(robot, detector, config)
    check_points = [] if pixel is None else [[*map(float, measured), *map(float, pixel)]]
    tell('poses', 'check pose (home): TCP ' + ('not found' if pixel is None
                                               else f'at ({pixel[0]:.1f}, {pixel[1]:.1f}) px'))
    yield from _move(robot, check, start, config.speed)        # back where it began
    yield from robot.wait(1.0)
    world, pixels = np.asarray(world), np.asarray(pixels)
    if len(world) < 6:
        raise GeometryError(f'the TCP was found at {len(world)} of {len(targets)} calibration '
                            'poses; need 6 (is the gripper in view?)')
    size = robot.frame_size()
    proj, rms = fit_pinhole(world, pixels, size, config.camera_fovy)
    keep = np.linalg.norm(project(proj, world) - pixels, axis=1) <= config.outlier_px
    if keep.sum() >= 6 and not keep.all():
        proj, rms = fit_pinhole(world[keep], pixels[keep], size, config.camera_fovy)
    else:
        keep[:] = True
    if not rms <= config.max_rms_px:
        raise GeometryError(f'the camera fit leaves {rms:.2f} px rms over {int(keep.sum())} '
                            f'poses, more than max_rms_px {config.max_rms_px} (a moving '
                            'camera, or the fingertips mistaken)')
    tell('fit', f'camera from {int(keep.sum())} of {len(targets)} poses, {rms:.2f} px rms; '
         f'delay {"not measured" if probe.delay is None else f"{probe.delay * 1e3:.0f} ms"}')
    return CellCalibration(proj.tolist(), table, rms, int(keep.sum()), len(targets),
                           actuation_delay=probe.delay,
                           table_height_max=out_of_reach_table(config, ended)
                           if table is None else None, cell=cell, check_points=check_points)

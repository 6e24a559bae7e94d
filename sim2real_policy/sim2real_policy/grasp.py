"""Grasp verification and bounded retry (the seed's ``execute_grasp_safely``).

A grasp is checked from what the gripper reports, as on the real 2F-85: after closing, the
fingers must stop at a width no smaller than ``min_object_width`` while squeezing with at
least ``min_effort`` (something is between them); while lifting and holding, the width must
not shrink by more than ``slip_width_drop`` below where it stopped nor the effort fade (the
object is sliding out). A failed check re-opens, moves to a shifted grasp and closes again,
at most ``max_retries`` times (the object is located again first; if the estimate has not
moved, the grip is shifted by a small search pattern); only when every attempt failed does
the grasp count as one failure toward the supervisor's "more than 3 in a row" rule. Every
attempt is logged.

:class:`GraspVerifier` is the check on a stream of gripper states (used by the collection
runtime for the automatic label); :class:`ImageCheck` the camera's (the object's spot is
uncovered by the lift); :func:`execute_grasp_safely` runs a whole verified grasp on a robot
through the safety filter.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
import math

import numpy as np

NS = 1_000_000_000
HELD, EMPTY, SLIPPED, PENDING, LEFT = 'held', 'empty', 'slipped', 'pending', 'left'


@dataclass(frozen=True)
class GraspCheckConfig:
    """Thresholds of the grasp check and the retry budget (SI units)."""

    min_object_width: float = 0.006    # m: closing further means nothing is held
    min_effort: float = 5.0            # N at the fingertips while holding
    settle_time: float = 0.25          # s the width must be still before a verdict
    still_width: float = 0.0005        # m of width change within settle_time counted as still
    slip_width_drop: float = 0.004     # m the width may shrink below the grasp width
    max_retries: int = 2               # re-grasps after the first attempt
    retry_shift: float = 0.01          # m of the search pattern around the estimate
    lift_height: float = 0.08          # m above the grasp height to lift and check
    hold_time: float = 0.5             # s held at the top for the grasp to count

    def __post_init__(self):
        for name in ('min_object_width', 'min_effort', 'settle_time', 'still_width',
                     'slip_width_drop', 'retry_shift', 'lift_height', 'hold_time'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f'grasp check {name} must be a finite number >= 0, '
                                 f'got {value!r}')
        if not isinstance(self.max_retries, int) or not 0 <= self.max_retries <= 10:
            raise ValueError(f'grasp check max_retries must be an integer in 0..10, '
                             f'got {self.max_retries!r}')


class GraspVerifier:
    """The check on a stream of ``(time, width, effort)`` gripper states.

    :meth:`on_close` once the close has been commanded; then :meth:`update` for every state:
    ``pending`` until the fingers settle, then ``held`` or ``empty``; once held, ``slipped``
    as soon as the width drops below the grasp width by ``slip_width_drop`` or the effort
    fades below half of ``min_effort``.
    """

    def __init__(self, config: GraspCheckConfig):
        self.config = config
        self.verdict = PENDING
        self.grasp_width = math.nan
        self._history: list[tuple[int, float]] = []

    def on_close(self) -> None:
        """A close was commanded: a new verdict is due."""
        self.verdict = PENDING
        self.grasp_width = math.nan
        self._history = []

    def update(self, now_ns: int, width: float, effort: float) -> str:
        """The verdict after this gripper state."""
        c = self.config
        if not (math.isfinite(width) and math.isfinite(effort)):
            return self.verdict  # a garbled sample decides nothing
        if self.verdict == PENDING:
            self._history.append((now_ns, width))
            window = [w for t, w in self._history if now_ns - t <= c.settle_time * NS]
            if (now_ns - self._history[0][0] >= c.settle_time * NS
                    and max(window) - min(window) <= c.still_width):
                if width >= c.min_object_width and effort >= c.min_effort:
                    self.verdict, self.grasp_width = HELD, width
                else:
                    self.verdict = EMPTY
        elif self.verdict == HELD:
            if (width < self.grasp_width - c.slip_width_drop or width < c.min_object_width
                    or effort < 0.5 * c.min_effort):
                self.verdict = SLIPPED
        return self.verdict


class ImageCheck:
    """The camera's view of a grasp: whether the object left the spot where it stood.

    ``frame()`` returns the current RGB image, ``project(point)`` the pixel of a base-frame
    point (the camera's calibration). The patch around the object's estimated position is
    taken before the attempt and again after the lift: a lifted object uncovers the table
    (the patch changes); an object left behind leaves it as it was. Complements the gripper,
    which cannot tell a held object from fingers stopped on something else.
    """

    def __init__(self, frame, project, radius_px: int = 4, min_change: float = 20.0):
        self.frame, self.project = frame, project
        self.radius_px, self.min_change = radius_px, min_change
        self._patch: np.ndarray | None = None
        self._where: tuple | None = None

    def _cut(self, image: np.ndarray) -> np.ndarray | None:
        u, v = self._where
        r = self.radius_px
        h, w = image.shape[:2]
        if not (r <= u < w - r and r <= v < h - r):
            return None   # the spot is out of view: the camera cannot say
        return image[v - r:v + r + 1, u - r:u + r + 1].astype(np.float32)

    def before(self, point) -> None:
        """Remember the spot (before the gripper comes down on it)."""
        u, v = self.project(point)
        self._where = (int(round(u)), int(round(v)))
        self._patch = self._cut(self.frame())

    def moved(self) -> tuple[bool | None, float]:
        """``(object left its spot, mean absolute change)``; None when it cannot tell."""
        if self._patch is None:
            return None, math.nan
        after = self._cut(self.frame())
        change = float(np.mean(np.abs(after - self._patch)))
        return change >= self.min_change, change


@dataclass
class GraspAttempt:
    """One attempt of a verified grasp, as logged."""

    attempt: int
    estimate: tuple        # (x, y) of the object as located before the attempt (m)
    target: tuple          # (x, y, yaw) of the grasp (m, m, rad)
    verdict: str           # held (and kept to the end), empty, slipped, left (on the table)
    grasp_width: float     # m where the fingers stopped (nan when empty)
    started_s: float
    ended_s: float
    image_change: float = math.nan   # the camera's patch change (nan without a camera)


@dataclass
class GraspOutcome:
    """Result of :func:`execute_grasp_safely`."""

    success: bool
    attempts: list = field(default_factory=list)
    failure_reason: str = ''

    @property
    def retries(self) -> int:
        """Attempts after the first."""
        return max(0, len(self.attempts) - 1)

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {'success': self.success, 'retries': self.retries,
                'failure_reason': self.failure_reason,
                'attempts': [asdict(a) for a in self.attempts]}


def search_offset(attempt: int, shift: float) -> np.ndarray:
    """Offset of attempt ``attempt`` (0: none) in a small cross around the estimate."""
    pattern = ((0.0, 0.0), (shift, 0.0), (-shift, 0.0), (0.0, shift), (0.0, -shift))
    return np.array(pattern[attempt % len(pattern)]) * (1 + attempt // len(pattern))


def execute_grasp_safely(robot, safety, locate, config: GraspCheckConfig,
                         approach_height: float = 0.09, grasp_depth: float = 0.004,
                         speed: float = 0.12, open_width: float = 0.085,
                         period: float = 0.01, log=None,
                         camera: ImageCheck | None = None) -> GraspOutcome:
    """Grasp, verify, and re-grasp with an adjusted grip at most ``max_retries`` times.

    ``robot``: ``command(pose)``, ``step(seconds)``, ``robot_state()`` (x, y, z, yaw, vx, vy,
    vz, width, effort) -- a :class:`GripperSim` or a driver adapter. ``safety``: a
    :class:`SafetyFilter`; every target goes through it. ``locate(attempt)`` returns the
    object's estimated ``(x, y, z, yaw)`` before each attempt (the camera on the robot; a
    re-grasp looks again); an unchanged estimate is shifted by :func:`search_offset`.
    ``log(attempt)`` is called with each finished :class:`GraspAttempt`. With a ``camera``
    (:class:`ImageCheck`), a grasp the gripper calls held must also have uncovered the
    object's spot, or its verdict is ``left`` (the object stayed on the table).
    """
    from sim2real_policy.sim.expert import CLOSE_TIME, SETTLE_TIME

    clock = {'ns': 0}
    outcome = GraspOutcome(False)

    def state():
        s = robot.robot_state()
        return np.asarray(s, float)

    def send(target) -> np.ndarray:
        now = clock['ns']
        s = state()
        names, positions, velocities = robot.joint_state()
        safety.update_joint_state(names, positions.tolist(), velocities.tolist(), now)
        safety.update_robot_state((*s[:4], s[7]), now)
        safety.supervisor_heartbeat(now)
        decision = safety.check(tuple(float(v) for v in target), now, now)
        if decision.command is not None:
            robot.command(decision.command)
        robot.step(period)
        clock['ns'] += int(period * NS)
        return state()

    def move(goal, duration=None, until=None):
        """Straight line at ``speed`` from the last target; ``until(state)`` may stop early."""
        start = last[0]
        goal = np.asarray(goal, float)
        distance = float(np.linalg.norm(goal[:3] - start[:3]))
        seconds = duration if duration is not None else max(distance / speed, period)
        steps = max(1, int(math.ceil(seconds / period)))
        for k in range(1, steps + 1):
            s = send(start + (goal - start) * (k / steps))
            if until is not None and until(s):
                break
        last[0] = goal
        return s

    first = state()
    last = [np.array([*first[:4], first[7]])]  # the last target sent
    for attempt in range(config.max_retries + 1):
        started = clock['ns'] / NS
        ox, oy, oz, yaw = (float(v) for v in locate(attempt))
        x, y = ox, oy
        if outcome.attempts:
            # a fresh estimate that moved is trusted as it is; one that did not move would
            # repeat the failed grasp, so the grip is shifted by the search pattern
            previous = outcome.attempts[-1]
            if math.hypot(ox - previous.estimate[0], oy - previous.estimate[1]) < \
                    0.5 * config.retry_shift:
                dx, dy = search_offset(attempt, config.retry_shift)
                x, y = ox + dx, oy + dy
        above = (x, y, oz + approach_height, yaw, open_width)
        down = (x, y, oz - grasp_depth, yaw, open_width)
        if camera is not None:
            camera.before((ox, oy, oz))
        move(above)
        move(down)
        verifier = GraspVerifier(config)
        verifier.on_close()
        closed = (x, y, oz - grasp_depth, yaw, 0.0)
        move(closed, duration=CLOSE_TIME)
        verdict = PENDING
        deadline = clock['ns'] + int((SETTLE_TIME + 2.0) * NS)
        while verdict == PENDING and clock['ns'] < deadline:
            s = send(closed)
            verdict = verifier.update(clock['ns'], s[7], s[8])
        if verdict == HELD:
            lifted = (x, y, oz - grasp_depth + config.lift_height, yaw, 0.0)

            def slipped(s, check=verifier):
                return check.update(clock['ns'], s[7], s[8]) == SLIPPED
            move(lifted, until=slipped)
            end = clock['ns'] + int(config.hold_time * NS)
            while verifier.verdict == HELD and clock['ns'] < end:
                s = send(lifted)
                verifier.update(clock['ns'], s[7], s[8])
            verdict = verifier.verdict
        change = math.nan
        if camera is not None and verdict == HELD:
            moved, change = camera.moved()
            if moved is False:
                verdict = LEFT
        if verdict == PENDING:
            verdict = EMPTY  # never settled: nothing trustworthy is held
        record = GraspAttempt(attempt, (ox, oy), (x, y, yaw), verdict,
                              float(verifier.grasp_width), started, clock['ns'] / NS, change)
        outcome.attempts.append(record)
        if log:
            log(record)
        if verdict == HELD:
            outcome.success = True
            return outcome
        # re-open where we are, then rise clear before the next attempt
        s = state()
        here = (s[0], s[1], s[2], yaw, open_width)
        move(here, duration=CLOSE_TIME)
        move((s[0], s[1], oz + approach_height, yaw, open_width))
    outcome.failure_reason = ', '.join(a.verdict for a in outcome.attempts)
    return outcome

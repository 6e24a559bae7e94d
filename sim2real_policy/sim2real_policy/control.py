"""The 100 Hz controller: predictive action chunking with a latency budget.

Every tick (``Controller.tick``) chooses one command from the chunks received so far:

* each chunk is aligned to its observation time: action ``k`` is meant for
  ``stamp + start_offset + k * period`` and is interpolated between actions, so the actions
  already in the past when the chunk arrives are skipped (delay-aware start);
* overlapping chunks are blended so a new chunk never causes a jump: ``crossfade`` (default;
  the new chunk fades in over ``crossfade_time``, as real-time chunking does), ``ensemble``
  (ACT's temporal ensembling: every chunk covering the tick, exponentially weighted) or
  ``naive`` (the newest chunk only, the baseline);
* the stage's actuation delay is led: a command reaches the stage ``actuation_delay`` after
  it is sent, so the stage axes (x, y, z, yaw) take the chunk's action for that much later
  and the stage is where the chunk meant it to be when the chunk meant it (the gripper width
  is not led: the gripper's own lag is another figure). The delay is ``actuation_delay`` or,
  with ``estimate_delay``, the control node's online estimate
  (:mod:`sim2real_policy.delay_estimation`) through :meth:`Controller.set_actuation_delay`;
* the output follows the target jerk-limited (``motion: ruckig``, :mod:`motion`: per-axis
  velocity, acceleration and jerk limits inside the safety node's) or by the seed's
  exponential smoothing (``motion: smoothing``; ``smoothing`` = weight of the new target);
* the latency budget: a chunk older than ``max_chunk_age`` (from its observation stamp) is
  never used; a command from a chunk older than ``fresh_chunk_age`` is the chunk's tail and
  counts as a deadline miss, and so does a tick that should follow the policy but has no
  usable chunk (the controller holds);
* what each tick reports about time is on the clock it is given (``now_ns``: wall time on a
  robot, the simulated clock in-process): the period since the previous tick, the chunk's
  age (the tick's time minus the chunk's observation stamp) and the observation-to-command
  latency (the time of the first tick that took its command from that chunk minus its
  observation stamp: how long an observation took to reach a command, the same for every
  tick the chunk serves, where the age keeps growing);
* the supervisor's mode is obeyed through ``sim2real_safety.fallbacks``: home after the
  vision grace period, stop-release-raise on a gripper fault, hold when a human is required
  or the software stop is latched.

The tick does no I/O, no logging, and allocates only its small result.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from sim2real_safety.fallbacks import GoHome, Hold, StopReleaseRaise
from sim2real_safety.node_interface import dataclass_parameters
from sim2real_safety.supervisor import Mode

NS = 1_000_000_000

# Command sources (values of CartesianCommand.SOURCE_* / ControlDiagnostics.SOURCE_*).
SOURCE_POLICY = 0
SOURCE_CHUNK_TAIL = 1
SOURCE_HOLD = 2
SOURCE_HOME = 3
SOURCE_RELEASE_RAISE = 4
BLENDINGS = ('crossfade', 'ensemble', 'naive')
MOTIONS = ('ruckig', 'smoothing')


@dataclass(frozen=True)
class ControlConfig:
    """Parameters of the controller (``config/control.yaml``)."""

    control_period: float = 0.01
    max_chunk_age: float = 1.0
    fresh_chunk_age: float = 0.4
    blending: str = 'crossfade'
    crossfade_time: float = 0.1
    ensemble_decay: float = 0.5
    smoothing: float = 0.6
    home: tuple = (0.55, 0.0, 0.25, 0.0, 0.085)
    fallback_speed: float = 0.1
    safe_height: float = 0.2
    open_width: float = 0.085
    vision_grace_period: float = 1.0
    max_chunks: int = 8
    future_tolerance: float = 0.005
    motion: str = 'ruckig'
    max_velocity: tuple = (0.16, 0.16, 0.16, 0.9, 0.14)
    max_acceleration: tuple = (1.5, 1.5, 1.5, 4.0, 1.5)
    max_jerk: tuple = (30.0, 30.0, 30.0, 60.0, 30.0)
    actuation_delay: float = 0.0
    estimate_delay: bool = False
    max_actuation_delay: float = 0.3
    # A chunk with an action outside these is refused: a policy's target that far outside
    # the safety node's workspace is a broken output, not a motion to clamp.
    action_min: tuple = (0.2, -0.35, -0.1, -1.7, -0.01)
    action_max: tuple = (0.9, 0.35, 0.55, 1.7, 0.1)

    def __post_init__(self):
        if self.blending not in BLENDINGS:
            raise ValueError(f'blending must be one of {BLENDINGS}, got {self.blending!r}')
        for name in ('control_period', 'max_chunk_age', 'fresh_chunk_age', 'fallback_speed'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f'control parameter {name} must be > 0, got {value!r}')
        if not 0.0 < self.smoothing <= 1.0:
            raise ValueError(f'smoothing must be in (0, 1], got {self.smoothing!r}')
        if self.fresh_chunk_age > self.max_chunk_age:
            raise ValueError(f'fresh_chunk_age {self.fresh_chunk_age} must not exceed '
                             f'max_chunk_age {self.max_chunk_age}')
        if len(self.home) != 5:
            raise ValueError(f'home must be [x, y, z, yaw, gripper_width], got {self.home!r}')
        if not (math.isfinite(self.max_actuation_delay) and self.max_actuation_delay >= 0.0
                and 0.0 <= self.actuation_delay <= self.max_actuation_delay):
            raise ValueError(f'actuation_delay must be in [0, max_actuation_delay '
                             f'{self.max_actuation_delay!r}], got {self.actuation_delay!r}')
        if self.motion not in MOTIONS:
            raise ValueError(f'motion must be one of {MOTIONS}, got {self.motion!r}')
        if len(self.action_min) != 5 or len(self.action_max) != 5 or not all(
                math.isfinite(lo) and math.isfinite(hi) and lo < hi
                for lo, hi in zip(self.action_min, self.action_max)):
            raise ValueError(f'action_min < action_max, 5 finite values each, got '
                             f'{self.action_min!r}, {self.action_max!r}')
        for name in ('max_velocity', 'max_acceleration', 'max_jerk'):
            value = getattr(self, name)
            if len(value) != 5 or not all(math.isfinite(v) and v > 0 for v in value):
                raise ValueError(f'{name} must be 5 values > 0 (x, y, z, yaw, gripper_width), '
                                 f'got {value!r}')

    @classmethod
    def parameters(cls) -> tuple:
        """The control node's parameter declarations (defaults from this class)."""
        return dataclass_parameters(cls, PARAMETERS)

    @classmethod
    def from_parameters(cls, params: dict) -> 'ControlConfig':
        """From ``ros__parameters`` (unknown keys are an error naming them)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f'unknown control parameter(s) {unknown}')
        values = dict(params)
        for name in ('home', 'max_velocity', 'max_acceleration', 'max_jerk', 'action_min',
                     'action_max'):
            if name in values:
                values[name] = tuple(float(v) for v in values[name])
        return cls(**values)


# Every parameter of config/control.yaml: (description with unit, allowed range[, choices]).
PARAMETERS = {
    'control_period': ('s between ticks (0.01: 100 Hz)', (0.001, 0.1)),
    'max_chunk_age': ('s from the observation stamp; an older chunk is never used',
                      (0.01, 10.0)),
    'fresh_chunk_age': ('s; commands from older chunks are the tail (a deadline miss)',
                        (0.01, 10.0)),
    'blending': ('how a new chunk takes over', None, BLENDINGS),
    'crossfade_time': ('s over which a new chunk fades in', (0.0, 5.0)),
    'ensemble_decay': ('ACT weight decay per chunk (ensemble only)', (0.0, 10.0)),
    'smoothing': ('exponential smoothing: weight of the new target (1 = off)', (0.001, 1.0)),
    'home': ('home pose [x, y, z (m), yaw (rad), gripper_width (m)], base frame',
             (-10.0, 10.0)),
    'fallback_speed': ('m/s of home and raise motions', (0.001, 1.0)),
    'safe_height': ('m: TCP height a gripper-fault fallback raises to', (0.0, 2.0)),
    'open_width': ('m: gripper opening of a release', (0.0, 0.5)),
    'vision_grace_period': ("s on the last good image before homing (= supervisor's)",
                            (0.0, 60.0)),
    'max_chunks': ('chunks kept for blending', (1, 64)),
    'future_tolerance': ("s a chunk's observation stamp may lie ahead of the clock "
                         '(clock skew); later ones are refused', (0.0, 1.0)),
    'motion': ('how the output follows the target: ruckig (jerk-limited, the limits below) '
               'or smoothing (exponential, weight smoothing)', None, MOTIONS),
    'max_velocity': ('ruckig: per axis [x, y, z (m/s), yaw (rad/s), gripper_width (m/s)]',
                     (0.0, 10.0)),
    'max_acceleration': ('ruckig: per axis (m/s^2, rad/s^2)', (0.0, 100.0)),
    'max_jerk': ('ruckig: per axis (m/s^3, rad/s^3)', (0.0, 10000.0)),
    'actuation_delay': ('s from sending a command to the stage acting on it; the stage axes '
                        'lead the chunk by it (the start value when estimate_delay)',
                        (0.0, 1.0)),
    'estimate_delay': ('estimate actuation_delay online from the commands sent and the robot '
                       'state (sim2real_policy.delay_estimation)', None),
    'max_actuation_delay': ('s: the most the stage axes are ever led by', (0.0, 1.0)),
    'action_min': ('lowest chunk action [x, y, z (m), yaw (rad), gripper_width (m)]; a chunk '
                   'beyond it is refused (the safety workspace plus a margin)', (-10.0, 10.0)),
    'action_max': ('highest chunk action, as action_min', (-10.0, 10.0)),
}


class Chunk:
    """One action chunk, aligned to the time its observation was taken."""

    __slots__ = ('stamp_ns', 'start_ns', 'period_ns', 'actions', 'latency', 'sequence',
                 'received_ns', 'end_ns', 'first_command_ns')

    def __init__(self, stamp_ns: int, actions: np.ndarray, period: float, start_offset: float,
                 latency: float, sequence: int, received_ns: int, bounds=None):
        actions = np.asarray(actions, dtype=float)
        if actions.ndim != 2 or actions.shape[1] != 5 or len(actions) == 0:
            raise ValueError(f'a chunk is horizon x 5 actions, got shape {actions.shape}')
        if not np.all(np.isfinite(actions)):
            raise ValueError('a chunk with non-finite actions')
        if bounds is not None:
            outside = np.flatnonzero(np.any((actions < bounds[0]) | (actions > bounds[1]),
                                            axis=0))
            if outside.size:
                i = int(outside[0])
                raise ValueError(f'a chunk action outside [action_min, action_max]: field {i} '
                                 f'in [{actions[:, i].min():.4g}, {actions[:, i].max():.4g}], '
                                 f'allowed [{bounds[0][i]}, {bounds[1][i]}]')
        self.stamp_ns = int(stamp_ns)
        self.period_ns = int(round(period * NS))
        if self.period_ns <= 0:
            raise ValueError(f'action period must be > 0 s, got {period}')
        self.start_ns = self.stamp_ns + int(round(start_offset * NS))
        self.actions = actions
        self.latency = float(latency)
        self.sequence = int(sequence)
        self.received_ns = int(received_ns)
        self.end_ns = self.start_ns + (len(actions) - 1) * self.period_ns
        self.first_command_ns: int | None = None  # the first tick that followed it

    def covers(self, t_ns: int) -> bool:
        """True while the chunk still has an action for ``t_ns``."""
        return t_ns <= self.end_ns

    def at(self, t_ns: int) -> np.ndarray:
        """The action for ``t_ns``, interpolated; the first action before the chunk starts."""
        position = (t_ns - self.start_ns) / self.period_ns
        if position <= 0.0:
            return self.actions[0]
        index = int(position)
        if index >= len(self.actions) - 1:
            return self.actions[-1]
        frac = position - index
        return self.actions[index] + frac * (self.actions[index + 1] - self.actions[index])


class TickResult:
    """What one tick decided (the node turns it into a command and diagnostics).

    Times in s on the controller's clock: ``period`` since the previous tick (NaN at the
    first) and ``jitter`` its deviation from control_period; ``chunk_age``: this tick's time
    minus the observation stamp of the chunk the command came from; ``latency``: the
    observation-to-command latency of that chunk, the time of the first tick that took its
    command from it minus its observation stamp (both NaN when the command came from no
    chunk).
    ``deadline_misses``: ticks so far whose command was a chunk's tail or, while the policy
    was to drive, a hold for want of a usable chunk.
    """

    __slots__ = ('command', 'source', 'chunk_age', 'latency', 'period', 'jitter',
                 'deadline_misses', 'mode', 'tick')

    def __init__(self, command, source, chunk_age, latency, period, jitter, deadline_misses,
                 mode, tick):
        self.command = command
        self.source = source
        self.chunk_age = chunk_age
        self.latency = latency
        self.period = period
        self.jitter = jitter
        self.deadline_misses = deadline_misses
        self.mode = mode
        self.tick = tick


class Controller:
    """Chooses a command every tick; never waits for anything."""

    def __init__(self, config: ControlConfig, initial_pose):
        self.config = config
        self._max_age_ns = int(config.max_chunk_age * NS)
        self._future_ns = int(config.future_tolerance * NS)
        self._fresh_ns = int(config.fresh_chunk_age * NS)
        self._fade_ns = int(config.crossfade_time * NS)
        self._grace_ns = int(config.vision_grace_period * NS)
        self.chunks: list[Chunk] = []
        self.output = np.array(initial_pose, dtype=float)
        self._fade_from: Chunk | None = None
        self._fade_pose: np.ndarray | None = None
        self._switch_start_ns = 0
        self._resume_start_ns = 0
        self.mode = Mode.NORMAL
        self._mode_since_ns = 0
        self._fallback = None
        self._last_tick_ns: int | None = None
        self._was_chunk = False
        self.deadline_misses = 0
        self.tick_errors = 0
        self.ticks = 0
        self.motion = None
        if config.motion == 'ruckig':
            from sim2real_policy.motion import JerkLimitedMotion
            self.motion = JerkLimitedMotion(config.control_period, config.max_velocity,
                                            config.max_acceleration, config.max_jerk,
                                            self.output)
        self._velocity_ns = int(config.control_period * NS)
        self._max_lead_ns = int(config.max_actuation_delay * NS)
        self.lead_ns = int(config.actuation_delay * NS)

    def set_actuation_delay(self, delay_s: float) -> None:
        """Lead the stage axes by ``delay_s`` from now on (clamped to [0, max]; NaN ignored)."""
        if math.isfinite(delay_s):
            self.lead_ns = min(self._max_lead_ns, max(0, int(delay_s * NS)))

    def _action(self, chunk: Chunk, now_ns: int) -> np.ndarray:
        """The chunk's action for this tick: stage axes led by the actuation delay."""
        led = chunk.at(now_ns + self.lead_ns)
        if self.lead_ns == 0:
            return led
        target = led.copy()
        target[4] = chunk.at(now_ns)[4]
        return target

    # ----------------------------------------------------------------------------- inputs
    def on_chunk(self, chunk: Chunk, now_ns: int) -> bool:
        """Accept a chunk unless stale, from the future, or not newer; True if kept.

        A future stamp is refused: its observation cannot have been taken yet, and kept as
        the newest it would shut out every real chunk after it.
        """
        if now_ns - chunk.stamp_ns > self._max_age_ns:
            return False
        if chunk.stamp_ns - now_ns > self._future_ns:
            return False
        if self.chunks and chunk.stamp_ns <= self.chunks[-1].stamp_ns:
            return False
        if self.chunks and self._fade_ns > 0:
            self._fade_from = self.chunks[-1]
            self._switch_start_ns = now_ns
        self.chunks.append(chunk)
        if len(self.chunks) > self.config.max_chunks:
            del self.chunks[0]
        return True

    def on_mode(self, mode: Mode, mode_since_ns: int, now_ns: int) -> None:
        """The supervisor's mode (call on every SupervisorState).

        An unknown mode is taken as the safest, SOFTWARE_STOP (hold).
        """
        mode = Mode(mode) if mode in Mode._value2member_map_ else Mode.SOFTWARE_STOP
        if mode == self.mode and mode_since_ns == self._mode_since_ns:
            return
        self.mode = mode
        self._mode_since_ns = mode_since_ns
        self._fallback = None  # re-chosen at the next tick from the current output
        if mode == Mode.NORMAL or mode == Mode.INFERENCE_SLOW:
            self._resume_from_output(now_ns)

    def _resume_from_output(self, now_ns: int) -> None:
        self._fade_from = None
        self._fade_pose = self.output.copy()
        self._resume_start_ns = now_ns

    # ------------------------------------------------------------------------------- tick
    def _usable(self, chunk: Chunk, now_ns: int) -> bool:
        return now_ns - chunk.stamp_ns <= self._max_age_ns and chunk.covers(now_ns)

    def _from_chunks(self, now_ns: int):
        """(target, chunk) from the usable chunks, blended; (None, None) if none."""
        newest = None
        for chunk in reversed(self.chunks):
            if self._usable(chunk, now_ns):
                newest = chunk
                break
        if newest is None:
            return None, None
        blending = self.config.blending
        if blending == 'ensemble':
            total, weight_sum = np.zeros(5), 0.0
            usable = [c for c in self.chunks if self._usable(c, now_ns)]
            for age_rank, chunk in enumerate(usable):  # oldest first, as ACT weights them
                weight = math.exp(-self.config.ensemble_decay * age_rank)
                total += weight * self._action(chunk, now_ns)
                weight_sum += weight
            target = total / weight_sum
        else:
            target = self._action(newest, now_ns)
        # A chunk switch fades from the previous chunk; then a resume (after a hold or a
        # fallback) fades from where the output was. Each has its own clock.
        if (blending == 'crossfade' and now_ns - self._switch_start_ns < self._fade_ns
                and self._fade_from is not None and self._fade_from is not newest
                and self._usable(self._fade_from, now_ns)):
            beta = (now_ns - self._switch_start_ns) / self._fade_ns
            target = (1.0 - beta) * self._action(self._fade_from, now_ns) + beta * target
        if (self._fade_pose is not None and blending != 'naive'
                and now_ns - self._resume_start_ns < self._fade_ns):
            beta = (now_ns - self._resume_start_ns) / self._fade_ns
            target = (1.0 - beta) * self._fade_pose + beta * target
        return target, newest

    def _fallback_target(self, now_ns: int):
        cfg = self.config
        mode = self.mode
        if mode == Mode.GRIPPER_FAULT:
            kind = StopReleaseRaise
        elif mode == Mode.VISION_DEGRADED and now_ns - self._mode_since_ns >= self._grace_ns:
            kind = GoHome
        else:
            kind = Hold
        if not isinstance(self._fallback, kind):
            pose = tuple(float(v) for v in self.output)
            if kind is StopReleaseRaise:
                self._fallback = StopReleaseRaise(pose, now_ns, cfg.open_width, cfg.safe_height,
                                                  cfg.fallback_speed)
            elif kind is GoHome:
                self._fallback = GoHome(pose, now_ns, cfg.home, cfg.fallback_speed)
            else:
                self._fallback = Hold(pose, now_ns)
        source = {StopReleaseRaise: SOURCE_RELEASE_RAISE, GoHome: SOURCE_HOME,
                  Hold: SOURCE_HOLD}[kind]
        return np.asarray(self._fallback.step(now_ns), dtype=float), source

    def hold_after_error(self, now_ns: int) -> TickResult:
        """A hold where the output is, for a tick that raised (counted in ``tick_errors``)."""
        self.tick_errors += 1
        self._fallback = Hold(tuple(float(v) for v in self.output), now_ns)
        self._was_chunk = False
        if self.motion is not None:
            self.motion.reset(self.output)
        return TickResult(tuple(float(v) for v in self.output), SOURCE_HOLD, math.nan, math.nan,
                          math.nan, math.nan, self.deadline_misses, int(self.mode), self.ticks)

    def tick(self, now_ns: int) -> TickResult:
        """Choose this tick's command."""
        self.ticks += 1
        period = math.nan if self._last_tick_ns is None else (now_ns - self._last_tick_ns) / NS
        self._last_tick_ns = now_ns
        jitter = period - self.config.control_period if math.isfinite(period) else math.nan
        chunk_age = math.nan
        mode = self.mode
        follow_policy = mode in (Mode.NORMAL, Mode.INFERENCE_SLOW) or (
            mode == Mode.VISION_DEGRADED and now_ns - self._mode_since_ns < self._grace_ns)
        target, chunk = (self._from_chunks(now_ns) if follow_policy else (None, None))
        latency = math.nan
        if target is not None:
            chunk_age = (now_ns - chunk.stamp_ns) / NS
            if chunk.first_command_ns is None:
                chunk.first_command_ns = now_ns
            latency = (chunk.first_command_ns - chunk.stamp_ns) / NS
            fresh = now_ns - chunk.stamp_ns <= self._fresh_ns
            source = SOURCE_POLICY if fresh else SOURCE_CHUNK_TAIL
            if not fresh:
                self.deadline_misses += 1
            if not self._was_chunk:
                # Coming back from a hold or a fallback: blend from where the output is.
                self._resume_from_output(now_ns)
                target = self.output.copy()
            self._fallback = None
            if self.motion is not None:
                # the chunk's own velocity here, so a moving target is tracked, not chased
                ahead = self._action(chunk, now_ns + self._velocity_ns)
                velocity = (ahead - self._action(chunk, now_ns)) / self.config.control_period
                if not self._was_chunk:
                    self.motion.reset(self.output)
                self.output = self.motion.step(target, velocity)  # never raises: holds
            else:
                alpha = self.config.smoothing
                self.output = self.output + alpha * (target - self.output)
            self._was_chunk = True
        else:
            if follow_policy:
                self.deadline_misses += 1
            if self._was_chunk and follow_policy:
                self._fallback = None
            target, source = self._fallback_target(now_ns)
            self.output = target
            self._was_chunk = False
        if self._fade_pose is not None and now_ns - self._resume_start_ns >= self._fade_ns:
            self._fade_pose = None
        return TickResult(tuple(float(v) for v in self.output), source, chunk_age, latency,
                          period, jitter, self.deadline_misses, int(mode), self.ticks)

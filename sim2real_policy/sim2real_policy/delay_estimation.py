"""The stage's actuation delay, estimated online from the commands sent and the state measured.

Model: every axis of the stage follows its command ``u`` delayed by ``delay`` through three
equal first-order lags (the position servo), each ``x[k+1] = x[k] + g (input[k] - x[k])``,
with one gain ``g`` for the three axes. Each estimate simulates that model over the last ``window``
seconds for a grid of delays and gains, starting from the measured position (an output-error
fit: encoder noise stays in the residual instead of biasing the fit, as differentiating it
would), keeps the best pair, and refines the delay between grid points with a parabola
through the costs.

A stage at rest says nothing about delay: an estimate is made only when the command, and the
stage after it, moved at least ``min_excursion`` along some axis inside the window (a window
that ends as the stage starts out of a still spell holds too little of its response: its fit
trades the delay for a slower servo), and a window whose best fit is the
slowest servo on the grid is dropped (the stage did not follow its command: it pressed on
the table or the object). The median of the last three window fits (those made within one
``window`` of each other: after a still spell, a fit from before it does not vote) feeds
:class:`sim2real_policy.sysid.OnlineAdaptation` (the delay seen as a constant, ``phi = 1``):
bounded, rate-limited steps, every update recorded. One bad window among three overlapping
good ones moves nothing; the first window after a still spell votes alone, then as one of
two, so a bad one there moves the delay by at most ``max_step`` per update, at most twice,
before the windows after it bring it back (tested).

The buffers are allocated once; :meth:`DelayEstimator.add_command` and
:meth:`DelayEstimator.add_state` write one row each, so the control node can feed them from its
100 Hz tick. The fit takes about 2.5 ms (measured here): the control node runs it on its worker
thread (:meth:`DelayEstimator.snapshot` -> :meth:`DelayEstimator.fit` there ->
:meth:`DelayEstimator.accept`), never in a callback the tick waits for.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
from scipy.signal import lfilter

from sim2real_policy.sysid import OnlineAdaptation

NS = 1_000_000_000


@dataclass(frozen=True)
class DelayEstimationConfig:
    """Parameters of the estimator, constants of the suite.

    The control node sets ``initial`` from ``actuation_delay`` and ``max_delay`` from
    ``max_actuation_delay``.
    """

    window: float = 1.0            # s of history one estimate fits
    interval: float = 0.25         # s between estimates
    max_delay: float = 0.4         # s, the largest delay the grid covers
    resolution: float = 0.005      # s between delays on the grid (a parabola refines)
    min_excursion: float = 0.02    # m the command must move in a window to say anything
    max_step: float = 0.05         # s an estimate may move the delay per update
    rate: float = 0.5              # share of a window's disagreement taken per update
    initial: float = 0.0           # s, the delay assumed before any estimate

    def __post_init__(self):
        for name in ('window', 'interval', 'max_delay', 'resolution', 'min_excursion',
                     'max_step', 'rate'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'delay estimation {name} must be > 0, got {value}')
        if self.rate > 1.0:
            raise ValueError(f'delay estimation rate must be <= 1, got {self.rate}')
        if not 0.0 <= self.initial <= self.max_delay:
            raise ValueError(f'delay estimation initial must be in [0, max_delay], '
                             f'got {self.initial}')
        if self.window <= self.max_delay:
            raise ValueError(f'delay estimation window ({self.window} s) must be longer than '
                             f'max_delay ({self.max_delay} s)')


GAINS = np.geomspace(0.02, 0.8, 16)  # per 10 ms sample: servo time constants 12 ms .. 0.5 s
# Three equal first-order lags in a row: a servo's response starts with zero slope, which one
# lag cannot show and a delay then absorbs. Measured on recorded grasps of the nominal cell
# (approach windows, delays 50 and 150 ms): one lag reads 17 ms long, two 7 ms, three 3 ms.
POLES = 3
MEDIAN_OF = 3   # window fits whose median updates the estimate


class DelayEstimator:
    """Streams of commanded and measured stage positions in, an actuation delay out."""

    def __init__(self, config: DelayEstimationConfig, sample_period: float = 0.01):
        self.config = config
        self.sample = float(sample_period)
        # room for a window and the largest delay before it, at the stream's rate, twice
        # over (jittered streams on a robot)
        rows = int(math.ceil(2.0 * (config.window + config.max_delay) / sample_period)) + 8
        self._commands = np.full((rows, 4), np.nan)   # t (s), x, y, z
        self._states = np.full((rows, 4), np.nan)
        self._command_row = 0
        self._state_row = 0
        self._delays = np.arange(0.0, config.max_delay + 0.5 * config.resolution,
                                 config.resolution)
        self.adaptation = OnlineAdaptation(config.initial, (0.0, config.max_delay),
                                           rate=config.rate, max_step=config.max_step)
        self._next_ns: int | None = None
        self._fits = np.zeros(MEDIAN_OF)
        self._fit_times = np.full(MEDIAN_OF, -np.inf)   # s, when each fit was made
        self._fit_count = 0
        self.last_fit: dict | None = None   # the last window's fit: delay, gain, rms (m)

    def restart(self) -> None:
        """Forget the streams (a new episode, a restarted node); keep the estimate."""
        self._commands[:] = np.nan
        self._states[:] = np.nan
        self._command_row = self._state_row = 0
        self._next_ns = None

    @property
    def delay(self) -> float:
        """The current estimate (s)."""
        return self.adaptation.theta

    def add_command(self, time_ns: int, position) -> None:
        """A command sent to the stage (x, y, z in m) at ``time_ns``; non-finite is dropped."""
        if self._write(self._commands, self._command_row, time_ns, position):
            self._command_row += 1

    def add_state(self, time_ns: int, position) -> None:
        """The stage position measured (x, y, z in m) at ``time_ns``; non-finite is dropped."""
        if self._write(self._states, self._state_row, time_ns, position):
            self._state_row += 1

    @staticmethod
    def _write(table: np.ndarray, count: int, time_ns: int, position) -> bool:
        """Row ``count`` of the ring ``table``; False (nothing written) for non-finite input."""
        x, y, z = position[0], position[1], position[2]   # every tick: no generator, no copy
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z)):
            return False
        row = table[count % len(table)]
        row[0] = time_ns / NS
        row[1], row[2], row[3] = x, y, z
        return True

    def due(self, now_ns: int) -> bool:
        """True when the next estimate is due."""
        if self._next_ns is None:
            self._next_ns = now_ns + int(self.config.window * NS)
        return now_ns >= self._next_ns

    def update(self, now_ns: int) -> float:
        """Fit the last window if it is due and informative; returns the current estimate.

        Synchronous: :meth:`snapshot`, :meth:`fit` and :meth:`accept` in a row. A node whose
        callbacks must stay short runs :meth:`fit` on another thread instead.
        """
        if not self.due(now_ns):
            return self.delay
        return self.accept(self.fit(self.snapshot(now_ns)), now_ns)

    def snapshot(self, now_ns: int) -> tuple:
        """The window's streams, copied (the fit may run while new rows arrive)."""
        self._next_ns = now_ns + int(self.config.interval * NS)
        return (now_ns / NS, self._ordered(self._states, self._state_row),
                self._ordered(self._commands, self._command_row))

    def accept(self, fit: dict | None, now_ns: int) -> float:
        """Take a window's fit (None: uninformative); returns the current estimate."""
        self.last_fit = fit
        if fit is not None:
            # the median of the last few windows: one window spoiled by a contact or a
            # push among good ones moves nothing. Only windows that overlap this one vote:
            # after the stage stood still (a grasp closing, a reset), fits from before the
            # spell describe the stage as it was then (measured in the delay drill: two
            # such stale fits outvoted the first fit of a new delay and held the estimate
            # back 2.5 s). The price, bounded in the module's docstring: a spoiled first
            # window after a spell votes alone.
            now_s = now_ns / NS
            slot = self._fit_count % len(self._fits)
            self._fits[slot], self._fit_times[slot] = fit['delay'], now_s
            self._fit_count += 1
            recent = self._fits[self._fit_times > now_s - self.config.window]
            self.adaptation.update(1.0, float(np.median(recent)), now_s)
        return self.delay

    def _costs(self, costs, gains, delays, t, commands, measured, start) -> None:
        """Fill ``costs[g, d]``: mean squared error of the model for those gains and delays."""
        # the delayed commands: (delays, samples, axes); a command is held until the next
        # (zero-order hold, as a drive applies it)
        shifted = t[None, :] - self._delays[delays, None]
        index = np.searchsorted(commands[:, 0], shifted, side='right') - 1
        delayed = commands[np.clip(index, 0, len(commands) - 1), 1:] - start
        for g in gains:
            gain = GAINS[g]
            # x[k+1] - s = (1 - g)(x[k] - s) + g (u[k] - s), from x[0] = measured start
            response = lfilter([0.0, gain], [1.0, gain - 1.0], delayed, axis=1)
            for _ in range(POLES - 1):
                response = lfilter([gain], [1.0, gain - 1.0], response, axis=1)
            costs[g, delays] = np.mean((response + start - measured) ** 2, axis=(1, 2))

    def _ordered(self, table: np.ndarray, rows: int) -> np.ndarray:
        count = min(rows, len(table))
        index = np.arange(rows - count, rows) % len(table)
        return table[index]

    def fit(self, snapshot: tuple) -> dict | None:
        """The best (delay, gain) over a :meth:`snapshot`'s window; None if uninformative.

        Reads only the snapshot and the estimator's constants: safe on another thread.
        """
        cfg = self.config
        now_s, states, commands = snapshot
        states = states[states[:, 0] > now_s - cfg.window]
        commands = commands[commands[:, 0] > now_s - cfg.window - cfg.max_delay]
        if len(states) < 0.5 * cfg.window / self.sample or len(commands) < 2:
            return None
        recent = commands[commands[:, 0] > now_s - cfg.window]
        if len(recent) < 2 or np.max(np.ptp(recent[:, 1:], axis=0)) < cfg.min_excursion:
            return None
        if np.max(np.ptp(states[:, 1:], axis=0)) < cfg.min_excursion:
            # the stage's response is not in the window yet. Measured in the delay drill:
            # the first window of each grasp's lift, the stage just starting, read 98 ms
            # (with a servo 2.7 times slower) against 150 ms, and moved the estimate 25 ms
            # off after it had tracked; without such windows every tick after tracking
            # stayed within 10 %.
            return None
        if commands[0, 0] > states[0, 0] - cfg.max_delay:
            return None   # not enough command history behind the window's first state
        t = states[:, 0]
        measured = states[:, 1:]
        start = measured[0]
        # coarse to fine: every gain on every fourth delay, then the neighbourhood of the best
        # pair on every delay (a third of the full grid's cost, the same optimum: the cost is
        # smooth in both)
        coarse = np.arange(0, len(self._delays), 4)
        costs = np.full((len(GAINS), len(self._delays)), np.inf)
        self._costs(costs, range(len(GAINS)), coarse, t, commands, measured, start)
        g, d = np.unravel_index(np.argmin(costs), costs.shape)
        gains = range(max(0, g - 2), min(len(GAINS), g + 3))
        delays = np.arange(max(0, d - 4), min(len(self._delays), d + 5))
        self._costs(costs, gains, delays, t, commands, measured, start)
        g, d = np.unravel_index(np.argmin(costs), costs.shape)
        if g == 0:
            return None   # the slowest servo fits best: the stage did not follow (a contact)
        cost = float(costs[g, d])
        delay = float(self._delays[d])
        if 0 < d < len(self._delays) - 1 and np.isfinite(costs[g, d - 1:d + 2]).all():
            left, mid, right = costs[g, d - 1], costs[g, d], costs[g, d + 1]
            curvature = left - 2.0 * mid + right
            if curvature > 0.0:
                delay += 0.5 * (left - right) / curvature * self.config.resolution
        return {'delay': delay, 'gain': float(GAINS[g]), 'rms': math.sqrt(cost)}

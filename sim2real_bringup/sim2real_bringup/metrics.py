"""Rolling metrics and anomaly checks of a running system (the logger's core).

Fed with the same topics the bag records; ``snapshot()`` returns the figures and the anomaly
checks (the seed's monitor: action-magnitude spikes within an episode, success degradation;
plus latency and jitter regressions) as diagnostics: ``(name, level, message, values)``,
level 0 OK, 1 WARN, 2 ERROR as in diagnostic_msgs/DiagnosticStatus.
"""
from __future__ import annotations

from collections import Counter, deque
import math

import numpy as np

OK, WARN, ERROR = 0, 1, 2


class RollingMetrics:
    """Windows of recent samples; cheap to feed, computed on demand.

    ``latency``: the last ``window`` chunks' ``inference_latency`` (s, as the policy node
    reports it); ``periods``: the last ``window`` control ticks' ``period`` (s, on the control
    node's clock: the simulated clock in-process); ``deadline_misses``: control ticks since
    the start whose command missed the freshness budget, summed over controller restarts (see
    :meth:`on_control`).
    """

    def __init__(self, window: int = 1000, latency_budget: float = 0.5,
                 period: float = 0.01, jitter_budget: float = 0.001,
                 spike_step: float = 0.01, min_success_rate: float = 0.5,
                 results_window: int = 20):
        self.latency = deque(maxlen=window)
        self.periods = deque(maxlen=window)
        self.results = deque(maxlen=results_window)
        self.deadline_misses = 0
        self._misses_before = 0      # misses of controllers that have since restarted
        self._misses_current = 0     # the running controller's own count
        self._tick: int | None = None
        self.spikes = 0
        self.interventions = 0
        self.mode_time = Counter()
        self._mode = None
        self._last_command = None
        self.latency_budget = latency_budget
        self.period = period
        self.jitter_budget = jitter_budget
        self.spike_step = spike_step
        self.min_success_rate = min_success_rate

    def on_chunk(self, inference_latency: float) -> None:
        """An ActionChunk."""
        if math.isfinite(inference_latency):
            self.latency.append(inference_latency)

    def on_control(self, period: float, deadline_misses: int, tick: int | None = None) -> None:
        """ControlDiagnostics: the tick's period and the controller's deadline-miss count.

        ``deadline_misses`` is the controller's running count of ticks whose command missed
        the freshness budget: served from the tail of a chunk older than fresh_chunk_age, or,
        while the policy was to drive, from no usable chunk (a hold). Not the fallbacks a
        degraded mode orders. A tick counter (or a count) lower than the last one means the
        controller restarted (a new episode in-process, a restarted node): the counts of
        earlier controllers are kept and added.
        """
        if math.isfinite(period):
            self.periods.append(period)
        restarted = deadline_misses < self._misses_current or (
            tick is not None and self._tick is not None and tick <= self._tick)
        if restarted:
            self._misses_before += self._misses_current
        self._misses_current = deadline_misses
        self._tick = tick
        self.deadline_misses = self._misses_before + deadline_misses

    def on_command(self, pose) -> None:
        """A safe command: a step larger than spike_step in one tick is an action spike.

        The safety filter lets at most max_cartesian_step (3 mm) through per tick, so a
        spike means a command that did not come from the filter's rate limits. The first
        command after an episode's end (:meth:`on_result`) starts the next episode's reference
        instead: the cell is reset between episodes (in-process: a new world, the stage at
        home), so the step from the last command of one episode to the first of the next is
        the reset, not a command step.
        """
        if self._last_command is not None and math.dist(pose[:3],
                                                         self._last_command[:3]) > self.spike_step:
            self.spikes += 1
        self._last_command = tuple(pose)

    def on_mode(self, mode_name: str, now_s: float) -> None:
        """SupervisorState: time in each mode; leaving HUMAN_REQUIRED is an intervention."""
        if self._mode is not None:
            previous, since = self._mode
            self.mode_time[previous] += max(0.0, now_s - since)
            if previous == 'HUMAN_REQUIRED' and mode_name != previous:
                self.interventions += 1
        self._mode = (mode_name, now_s)

    def on_result(self, success: bool) -> None:
        """GraspResult: the episode ended; the next command is the next episode's first."""
        self.results.append(bool(success))
        self._last_command = None

    def snapshot(self) -> list[tuple]:
        """Figures and anomaly checks."""
        out = []
        lat = np.asarray(self.latency) * 1e3
        values = {'mean': lat.mean() if lat.size else math.nan}
        for q in (50, 95, 99):
            values[f'p{q}'] = float(np.percentile(lat, q)) if lat.size else math.nan
        slow = lat.size and values['p95'] > self.latency_budget * 1e3
        out.append(('inference_latency_ms', WARN if slow else OK,
                    'p95 over budget' if slow else 'ok', values))
        periods = np.asarray(self.periods) * 1e3
        jitter = np.abs(periods - self.period * 1e3) if periods.size else periods
        jittery = periods.size and float(np.percentile(jitter, 99)) > self.jitter_budget * 1e3
        out.append(('control_period_ms', WARN if jittery else OK,
                    'jitter p99 over budget' if jittery else 'ok',
                    {'mean': float(periods.mean()) if periods.size else math.nan,
                     'jitter_p99': float(np.percentile(jitter, 99)) if periods.size else math.nan,
                     'deadline_misses': self.deadline_misses}))
        rate = sum(self.results) / len(self.results) if self.results else math.nan
        degraded = self.results and len(self.results) >= 5 and rate < self.min_success_rate
        out.append(('grasp_success', WARN if degraded else OK,
                    'success degraded' if degraded else 'ok',
                    {'success_rate': rate, 'failure_rate': 1 - rate if self.results else math.nan,
                     'episodes': len(self.results), 'interventions': self.interventions}))
        out.append(('action_spikes', WARN if self.spikes else OK,
                    f'{self.spikes} command steps over {self.spike_step} m' if self.spikes
                    else 'ok', {'spikes': self.spikes}))
        out.append(('supervisor_modes', OK, 'time in each mode (s)', dict(self.mode_time)))
        return out

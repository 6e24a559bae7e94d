"""A deterministic discrete-event scheduler on a simulated clock.

Time is an integer number of nanoseconds, as in ROS 2 (``rclpy.time.Time.nanoseconds``), so
timer periods never accumulate floating-point drift and two runs with the same inputs visit
the same instants in the same order: events due at the same instant run in the order they were
scheduled.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import heapq
import math
from typing import Callable

NS_PER_S = 1_000_000_000


def seconds_to_ns(seconds: float) -> int:
    """Round a duration in seconds to integer nanoseconds (rejecting NaN, Inf and < 0)."""
    if not math.isfinite(seconds) or seconds < 0.0:
        raise ValueError(f'a duration must be finite and >= 0 s, got {seconds!r}')
    return int(round(seconds * NS_PER_S))


@dataclass(order=True)
class _Event:
    time_ns: int
    order: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Timer:
    """A periodic callback; first fires one period after creation (like ``rclpy`` timers)."""

    def __init__(self, scheduler: 'Scheduler', period_ns: int, callback: Callable[[], None],
                 name: str):
        self.period_ns = period_ns
        self.callback = callback
        self.name = name
        self._scheduler = scheduler
        self._next_ns = scheduler.now_ns + period_ns
        self._event = scheduler.call_at(self._next_ns, self._fire)

    def _fire(self) -> None:
        # Reschedule before the callback so a callback that cancels its own timer wins.
        self._next_ns += self.period_ns
        self._event = self._scheduler.call_at(self._next_ns, self._fire)
        self.callback()

    def cancel(self) -> None:
        """Stop the timer; pending firings are dropped."""
        self._event.cancelled = True

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.cancelled


class Scheduler:
    """Runs callbacks in simulated-time order; the clock only moves between events."""

    def __init__(self, start_ns: int = 0):
        if start_ns < 0:
            raise ValueError(f'start_ns must be >= 0, got {start_ns}')
        self._now_ns = int(start_ns)
        self._queue: list[_Event] = []
        self._order = 0

    @property
    def now_ns(self) -> int:
        """Current simulated time (ns)."""
        return self._now_ns

    @property
    def now(self) -> float:
        """Current simulated time (s)."""
        return self._now_ns / NS_PER_S

    def call_at(self, time_ns: int, callback: Callable[[], None]) -> _Event:
        """Run ``callback`` at simulated time ``time_ns`` (not before now)."""
        if time_ns < self._now_ns:
            raise ValueError(f'cannot schedule in the past: {time_ns} ns < now {self._now_ns} ns')
        self._order += 1
        event = _Event(int(time_ns), self._order, callback)
        heapq.heappush(self._queue, event)
        return event

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> _Event:
        """Run ``callback`` after ``delay_s`` seconds of simulated time."""
        return self.call_at(self._now_ns + seconds_to_ns(delay_s), callback)

    def create_timer(self, period_s: float, callback: Callable[[], None], name: str = '') -> Timer:
        """A timer firing every ``period_s`` seconds of simulated time."""
        period_ns = seconds_to_ns(period_s)
        if period_ns <= 0:
            raise ValueError(f'timer {name!r}: period must be > 0 s, got {period_s!r}')
        return Timer(self, period_ns, callback, name)

    def run_until(self, end_ns: int) -> int:
        """Run every event due up to and including ``end_ns``; return how many ran."""
        ran = 0
        while self._queue and self._queue[0].time_ns <= end_ns:
            event = heapq.heappop(self._queue)
            if event.cancelled:
                continue
            self._now_ns = event.time_ns
            event.callback()
            ran += 1
        self._now_ns = max(self._now_ns, int(end_ns))
        return ran

    def run_for(self, duration_s: float) -> int:
        """Advance the clock by ``duration_s`` seconds, running every event on the way."""
        return self.run_until(self._now_ns + seconds_to_ns(duration_s))

    @property
    def pending(self) -> int:
        """Number of events still queued (cancelled ones included until they surface)."""
        return len(self._queue)

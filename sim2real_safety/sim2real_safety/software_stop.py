"""The software stop: a latched protective hold, cleared only by an explicit, logged reset.

This is not a safety-rated emergency stop. It is the suite's own hold, requested through the
command interface; the robot's hardwired e-stop and safety controller stay the real safety
layer.

The latch state is persisted to a small JSON file (when a path is given) on every trigger and
reset, so a restarted safety node comes back stopped. A file that cannot be read restores a
*latched* stop (fail closed).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import json
import os
from pathlib import Path
import tempfile

# Events kept in memory and in the persisted file (the full history goes to the log/bag).
MAX_EVENTS = 200


@dataclass(frozen=True)
class StopEvent:
    """One trigger or reset of the software stop."""

    kind: str            # 'trigger', 'reset', 'reset_refused' or 'restored'
    time_ns: int
    who: str             # requester of a trigger, operator of a reset
    reason: str


class ResetRefusedError(RuntimeError):
    """A reset that is not allowed (missing operator or reason, unhealthy input)."""


class SoftwareStopLatch:
    """The latch itself: trigger, reset, persistence and the event record."""

    def __init__(self, persist_path: str | Path | None = None):
        self.persist_path = Path(persist_path) if persist_path else None
        self.active = False
        self.cause = ''
        self.since_ns = 0
        self.events: list[StopEvent] = []
        if self.persist_path is not None and self.persist_path.exists():
            self._restore()

    def _restore(self) -> None:
        try:
            data = json.loads(self.persist_path.read_text())
            active = data['active']
            if not isinstance(active, bool):
                raise ValueError(f'"active" must be true or false, got {active!r}')
            self.active = active
            self.cause = str(data.get('cause', ''))
            self.since_ns = int(data.get('since_ns', 0))
            self.events = [StopEvent(**event) for event in data.get('events', [])][-MAX_EVENTS:]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.active = True
            self.cause = f'persisted software-stop state {self.persist_path} unreadable ({exc})'
            self.since_ns = 0
        if self.active:
            self._record(StopEvent('restored', self.since_ns, 'safety', self.cause))

    def _record(self, event: StopEvent) -> StopEvent:
        self.events.append(event)
        del self.events[:-MAX_EVENTS]
        return event

    def _persist(self) -> None:
        if self.persist_path is None:
            return
        payload = json.dumps({'active': self.active, 'cause': self.cause,
                              'since_ns': self.since_ns,
                              'events': [asdict(e) for e in self.events]}, indent=1)
        self.persist_path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename so a crash mid-write leaves the old state, never half a file.
        fd, tmp = tempfile.mkstemp(dir=self.persist_path.parent, prefix='.stop-')
        with os.fdopen(fd, 'w') as handle:
            handle.write(payload)
        os.replace(tmp, self.persist_path)

    def trigger(self, who: str, reason: str, time_ns: int) -> StopEvent:
        """Latch the stop (again, if it already is: the new cause is recorded too)."""
        if not self.active:
            self.active = True
            self.cause = f'{reason} (by {who})' if who else reason
            self.since_ns = int(time_ns)
        event = self._record(StopEvent('trigger', int(time_ns), who, reason))
        self._persist()
        return event

    def reset(self, operator: str, reason: str, time_ns: int,
              unhealthy: list[str] | tuple[str, ...] = ()) -> StopEvent:
        """Clear the stop; raises :class:`ResetRefusedError` with the reason when not allowed."""
        problems = []
        if not operator or not operator.strip():
            problems.append('an operator name is required')
        if not reason or not reason.strip():
            problems.append('a reason is required')
        if unhealthy:
            problems.append('inputs not healthy: ' + ', '.join(unhealthy))
        if problems:
            message = 'reset refused: ' + '; '.join(problems)
            self._record(StopEvent('reset_refused', int(time_ns), operator or '', message))
            raise ResetRefusedError(message)
        was_active = self.active
        self.active = False
        self.cause = ''
        event = self._record(StopEvent('reset', int(time_ns), operator.strip(),
                                       reason.strip() + ('' if was_active else ' (not latched)')))
        self._persist()
        return event

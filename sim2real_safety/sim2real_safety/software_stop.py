"""The software stop: a latched protective hold, cleared only by an explicit, logged reset.

This is not a safety-rated emergency stop. It is the suite's own hold, requested through the
command interface; the robot's hardwired e-stop and safety controller stay the real safety
layer.

The latch state is persisted to a small JSON file (when a path is given) on every trigger and
reset, so a restarted safety node comes back stopped. Every failure fails closed:

- a state file that cannot be read or parsed, or holds anything but a well-formed state
  (directory, dangling or looping symlink, a path under a regular file, 1e400, ...) restores a
  *latched* stop;
- at start, a path with no file yet is proven writable by writing the unlatched state; if that
  write fails, the latch starts latched (a stop it could not persist would not survive a
  restart);
- a trigger latches in memory first; a failed write never unlatches it (the cause says why);
- the trigger's record is written ahead: while the stop is not latched, a latched state
  already waits on disk beside the file (``<file>.latched``, written and synced at start and
  before every reset is persisted). A trigger whose own write fails (a full disk) renames that
  file over the state file, which needs no new space, so a restarted node comes back stopped;
- a state file that says "not latched" without its armed twin beside it may be stale (the
  armed file was used up by a trigger whose rename did not land, or deleted): it restores a
  latched stop;
- a reset is written to disk first and only then cleared in memory: a reset that cannot be
  persisted (or cannot re-arm the write-ahead file) is refused and the stop stays latched.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import json
import math
import os
from pathlib import Path
import tempfile
import unicodedata

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


def name_problem(text: str, what: str) -> str:
    """Why ``text`` is not a usable operator name or reason ('' when it is).

    A name must say who: at least one letter or digit, and nothing invisible or control-like
    (zero-width spaces, NUL, escape sequences), so the log names a person.
    """
    if not isinstance(text, str) or not text.strip():
        return f'{what} is required'
    if any(unicodedata.category(ch)[0] == 'C' for ch in text):
        return f'{what} {text!r} holds control or invisible characters'
    if not any(ch.isalnum() for ch in text):
        return f'{what} {text!r} names nobody (no letter or digit)'
    return ''


def _sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (its entry reaches the disk, not just the cache)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SoftwareStopLatch:
    """The latch itself: trigger, reset, persistence and the event record."""

    def __init__(self, persist_path: str | Path | None = None):
        self.persist_path = Path(persist_path) if persist_path else None
        self.active = False
        self.cause = ''
        self.since_ns = 0
        self.events: list[StopEvent] = []
        self.persist_error = ''   # the last failed write, '' when the file is current
        if self.persist_path is None:
            return
        self.armed_path = self.persist_path.with_name(self.persist_path.name + '.latched')
        if os.path.lexists(self.persist_path):
            self._restore()
            if not self.active and not self.armed_path.is_file():
                self._latch_unusable(f'says not latched, but its write-ahead file '
                                     f'{self.armed_path.name} is missing: a stop may have '
                                     'been triggered that it does not record')
        else:
            # First start on this path: prove it can be written, or start latched.
            try:
                self._arm()
                self._write()
            except Exception as exc:  # noqa: BLE001 -- any failure here fails closed
                self._latch_unusable(f'cannot be written ({type(exc).__name__}: {exc})')

    def _arm(self) -> None:
        """Write the latched state ahead, for a trigger that cannot write its own record."""
        self._write(active=True, cause='a software stop was triggered and its record could '
                    'not be written (disk full?); check the cell before resetting',
                    since_ns=0, events=[], path=self.armed_path)

    def _latch_unusable(self, problem: str) -> None:
        self.active = True
        self.cause = f'persisted software-stop state {self.persist_path} {problem}'
        self.since_ns = 0
        self._record(StopEvent('restored', 0, 'safety', self.cause))

    def _restore(self) -> None:
        try:
            data = json.loads(self.persist_path.read_text())
            active = data['active']
            if not isinstance(active, bool):
                raise ValueError(f'"active" must be true or false, got {active!r}')
            since_ns = data.get('since_ns', 0)
            if isinstance(since_ns, bool) or not isinstance(since_ns, (int, float)) \
                    or not math.isfinite(since_ns) or since_ns < 0:
                raise ValueError(f'"since_ns" must be a time in ns, got {since_ns!r}')
            events = [StopEvent(**event) for event in data.get('events', [])][-MAX_EVENTS:]
            self.active = active
            self.cause = str(data.get('cause', ''))
            self.since_ns = int(since_ns)
            self.events = events
        except Exception as exc:  # noqa: BLE001 -- whatever is wrong, restore latched
            self.events = []
            self._latch_unusable(f'unreadable ({type(exc).__name__}: {exc})')
            return
        if self.active:
            self._record(StopEvent('restored', self.since_ns, 'safety', self.cause))

    def _record(self, event: StopEvent) -> StopEvent:
        self.events.append(event)
        del self.events[:-MAX_EVENTS]
        return event

    def _write(self, active: bool | None = None, cause: str | None = None,
               since_ns: int | None = None, events: list | None = None,
               path: Path | None = None) -> None:
        """Persist a state (the current one by default); raises on any failure."""
        path = path or self.persist_path
        payload = json.dumps({
            'active': self.active if active is None else active,
            'cause': self.cause if cause is None else cause,
            'since_ns': self.since_ns if since_ns is None else since_ns,
            'events': [asdict(e) for e in (self.events if events is None else events)]},
            indent=1)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename so a crash mid-write leaves the old state, never half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix='.stop-')
        try:
            with os.fdopen(fd, 'w') as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            _sync_directory(path.parent)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def trigger(self, who: str, reason: str, time_ns: int) -> StopEvent:
        """Latch the stop (again, if it already is: the new cause is recorded too).

        Never raises for the file: the stop is latched in memory before anything is written,
        and a failed write is kept in ``persist_error`` and in the cause.
        """
        if not self.active:
            self.active = True
            self.cause = f'{reason} (by {who})' if who else reason
            self.since_ns = int(time_ns)
        event = self._record(StopEvent('trigger', int(time_ns), who, reason))
        if self.persist_path is not None:
            try:
                self._write()
                self.persist_error = ''
            except Exception as exc:  # noqa: BLE001 -- latched in memory whatever happens
                self.persist_error = f'{type(exc).__name__}: {exc}'
                try:
                    # the record written ahead: a rename needs no new space on the disk
                    os.replace(self.armed_path, self.persist_path)
                    _sync_directory(self.persist_path.parent)
                    note = 'only the write-ahead "latched" record persisted'
                except OSError as rename_exc:
                    note = f'not persisted: {self.persist_error}; {rename_exc}'
                if note not in self.cause:
                    self.cause += f' [{note}: {self.persist_error}]'
        return event

    def reset(self, operator: str, reason: str, time_ns: int,
              unhealthy: list[str] | tuple[str, ...] = ()) -> StopEvent:
        """Clear the stop; raises :class:`ResetRefusedError` with the reason when not allowed.

        The unlatched state reaches the disk before the latch opens in memory, so a reset
        that cannot be persisted leaves the stop latched.
        """
        problems = [p for p in (name_problem(operator, 'an operator name'),
                                name_problem(reason, 'a reason')) if p]
        if unhealthy:
            problems.append('inputs not healthy: ' + ', '.join(unhealthy))
        who = operator.strip() if isinstance(operator, str) else ''
        if not problems and self.persist_path is not None:
            event = StopEvent('reset', int(time_ns), who,
                              reason.strip() + ('' if self.active else ' (not latched)'))
            try:
                self._arm()  # the next trigger's record, before the latch may open
                self._write(active=False, cause='', events=(self.events + [event])[-MAX_EVENTS:])
            except Exception as exc:  # noqa: BLE001 -- cannot persist: stay latched
                problems.append(f'the state file cannot be written ({type(exc).__name__}: '
                                f'{exc}); the stop stays latched')
        if problems:
            message = 'reset refused: ' + '; '.join(problems)
            self._record(StopEvent('reset_refused', int(time_ns), who, message))
            raise ResetRefusedError(message)
        was_active = self.active
        self.active = False
        self.cause = ''
        self.persist_error = ''
        return self._record(StopEvent('reset', int(time_ns), who,
                                      reason.strip() + ('' if was_active else ' (not latched)')))

"""Data collection on the robot: who commands, episode boundaries, interventions and labels.

The cores of ``collect_node`` and of ``sim2real collect`` (ROS-free):

* :class:`CommandArbiter` picks the proposal that goes to the safety node: the human's
  (teleoperation) in phase 1, the policy's in phase 2 unless a human intervenes. On hand-back
  it fades from the human's last target to the policy's over ``handback_time`` so the robot
  does not jump (the safety node would limit a jump anyway; this keeps it from having to).
* :class:`EpisodeBook` keeps the session's events as :data:`EVENT_*` records (they become
  ``sim2real_msgs/EpisodeEvent`` messages in the bag): episode start and end, interventions
  with the operator's name, every grasp attempt the gripper check judged, and operator labels,
  which win over the automatic one. The automatic label is the gripper check of
  :mod:`sim2real_policy.grasp` (fingers stopped on something, squeezing, lifted), not the
  simulator's privileged truth.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math

import numpy as np

from sim2real_policy.grasp import EMPTY, GraspCheckConfig, GraspVerifier, HELD, PENDING, SLIPPED

NS = 1_000_000_000
# EpisodeEvent constants (checked against the .msg by a test)
EPISODE_START, EPISODE_END, INTERVENTION_START, INTERVENTION_END, LABEL, GRASP_ATTEMPT = range(6)
PHASE_TELEOP, PHASE_POLICY = 1, 2
PHASES = {'teleop': PHASE_TELEOP, 'policy': PHASE_POLICY}


@dataclass(frozen=True)
class CollectConfig:
    """Parameters of a collection session (``collect_node``; config/collect.yaml)."""

    phase: str = 'policy'          # teleop: human-driven grasps; policy: the policy tries
    operator_name: str = ''        # the person at the station (interventions are theirs)
    handback_time: float = 0.5     # s to fade from the human's target to the policy's
    close_below: float = 0.01      # m: a commanded width below this is a close (an attempt)
    open_above: float = 0.05       # m: a commanded width above this re-opens
    lift_check: float = 0.03       # m the gripper must rise after closing for a success

    def __post_init__(self):
        if self.phase not in PHASES:
            raise ValueError(f'collection phase must be one of {sorted(PHASES)}, '
                             f'got {self.phase!r}')
        for name in ('handback_time', 'close_below', 'open_above', 'lift_check'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f'collection {name} must be a finite number >= 0, '
                                 f'got {value!r}')
        if self.close_below >= self.open_above:
            raise ValueError(f'collection close_below {self.close_below} must be below '
                             f'open_above {self.open_above}')


class CommandArbiter:
    """The policy's or the human's proposal, one per control tick."""

    def __init__(self, config: CollectConfig):
        self.config = config
        self.intervening = False
        self._handback_ns: int | None = None
        self._human_last: np.ndarray | None = None

    @property
    def human_in_control(self) -> bool:
        """True in phase 1 and during an intervention."""
        return self.config.phase == 'teleop' or self.intervening

    def set_intervention(self, active: bool, now_ns: int) -> bool:
        """Start or end an intervention; returns True if that changed anything.

        In phase 1 the human drives anyway: interventions mean nothing there.
        """
        if self.config.phase == 'teleop' or active == self.intervening:
            return False
        self.intervening = active
        self._handback_ns = None if active else now_ns
        return True

    def select(self, policy, human, now_ns: int):
        """``(pose, from_human)``: the proposal to forward (None when there is none yet)."""
        if self.human_in_control:
            if human is not None:
                self._human_last = np.asarray(human, float)
            return human, True
        if policy is None:
            return None, False
        if self._handback_ns is not None and self._human_last is not None:
            fade = (now_ns - self._handback_ns) / NS / max(self.config.handback_time, 1e-9)
            if fade < 1.0:
                blended = self._human_last + (np.asarray(policy, float) - self._human_last) * fade
                return tuple(float(v) for v in blended), False
            self._handback_ns = None
        return policy, False


@dataclass
class Event:
    """One EpisodeEvent."""

    time_ns: int
    episode: int
    event: int
    phase: int
    success: bool = False
    attempt: int = 0
    operator_name: str = ''
    note: str = ''


@dataclass
class EpisodeSummary:
    """An episode as the book knows it."""

    index: int
    start_ns: int
    end_ns: int | None = None
    automatic: bool | None = None
    label: bool | None = None          # the operator's, when given
    operator_name: str = ''
    interventions: int = 0
    attempts: list = field(default_factory=list)

    @property
    def success(self) -> bool | None:
        """The final label: the operator's if any, else the automatic one."""
        return self.label if self.label is not None else self.automatic


class EpisodeBook:
    """Episode boundaries, interventions, attempts and labels of one session."""

    def __init__(self, config: CollectConfig, check: GraspCheckConfig | None = None):
        self.config = config
        self.phase = PHASES[config.phase]
        self.check = check or GraspCheckConfig()
        self.episodes: dict[int, EpisodeSummary] = {}
        self.current: EpisodeSummary | None = None
        self.events: list[Event] = []
        self._verifier = GraspVerifier(self.check)
        self._closing = False
        self._close_z = math.nan
        self._z = math.nan
        self._intervening = False

    def _event(self, now_ns: int, kind: int, episode: int | None = None, **fields) -> Event:
        episode = self.current.index if episode is None else episode
        event = Event(now_ns, episode, kind, self.phase, **fields)
        self.events.append(event)
        return event

    def start(self, index: int, now_ns: int) -> Event:
        """A new episode (the world is reset); an open one is ended first."""
        if index in self.episodes:
            raise ValueError(f'episode {index} was started already')
        self.current = EpisodeSummary(index, now_ns)
        self.episodes[index] = self.current
        self._verifier = GraspVerifier(self.check)
        self._closing = False
        return self._event(now_ns, EPISODE_START)

    def intervention(self, active: bool, operator: str, now_ns: int) -> Event | None:
        """A human takes over (True) or hands back (False)."""
        if self.current is None or active == self._intervening:
            return None
        self._intervening = active
        if active:
            self.current.interventions += 1
        return self._event(now_ns, INTERVENTION_START if active else INTERVENTION_END,
                           operator_name=operator)

    def on_command(self, gripper_width: float) -> None:
        """The safe command's gripper width: closes start attempts, opens end them."""
        if not math.isfinite(gripper_width):
            return
        if not self._closing and gripper_width < self.config.close_below:
            self._closing = True
            self._close_z = self._z
            self._verifier.on_close()
        elif self._closing and gripper_width > self.config.open_above:
            self._closing = False

    def on_state(self, now_ns: int, z: float, width: float, effort: float) -> Event | None:
        """A robot state; returns a GRASP_ATTEMPT event when the check reaches a verdict."""
        self._z = z
        if self.current is None or not self._closing:
            return None
        before = self._verifier.verdict
        verdict = self._verifier.update(now_ns, width, effort)
        if verdict != before and verdict in (HELD, EMPTY, SLIPPED):
            if before == PENDING:
                self.current.attempts.append(verdict)
            else:
                self.current.attempts[-1] = verdict
            return self._event(now_ns, GRASP_ATTEMPT, success=verdict == HELD,
                               attempt=len(self.current.attempts), note=verdict)
        return None

    def automatic_label(self) -> tuple[bool, str]:
        """``(success, reason)`` from the gripper check: held, and lifted since closing."""
        if not self._closing or self._verifier.verdict == PENDING:
            return False, 'no grasp closed' if not self.current.attempts else 'gripper open'
        if self._verifier.verdict != HELD:
            return False, self._verifier.verdict
        lifted = self._z - self._close_z
        if not lifted >= self.config.lift_check:
            return False, f'held but not lifted ({lifted * 1000:.0f} mm)'
        return True, ''

    def end(self, now_ns: int) -> tuple[Event, EpisodeSummary]:
        """The episode ends: an open intervention is closed, the automatic label given."""
        if self.current is None:
            raise ValueError('no episode to end')
        if self._intervening:
            self.intervention(False, self.config.operator_name, now_ns)
        success, reason = self.automatic_label()
        episode = self.current
        episode.end_ns, episode.automatic = now_ns, success
        event = self._event(now_ns, EPISODE_END, success=success, note=reason)
        self.current = None
        return event, episode

    def label(self, episode: int, success: bool, operator: str, reason: str,
              now_ns: int) -> tuple[bool, str, Event | None]:
        """An operator's label: ``(accepted, message, event)``."""
        if not operator.strip():
            return False, 'operator_name is empty: labels are signed', None
        summary = self.episodes.get(episode)
        if summary is None:
            return False, f'episode {episode} is unknown (known: {sorted(self.episodes)})', None
        summary.label, summary.operator_name = bool(success), operator
        event = self._event(now_ns, LABEL, episode=episode, success=bool(success),
                            operator_name=operator, note=reason)
        return True, f'episode {episode} labelled {"success" if success else "failure"} ' \
                     f'by {operator}', event

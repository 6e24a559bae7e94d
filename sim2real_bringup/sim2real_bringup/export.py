"""Collected bags to the training format that `sim2real finetune` reads (``sim2real export``).

Episodes are read back from the bag's ``/collect/events`` (EpisodeEvent): an episode spans
EPISODE_START to EPISODE_END; its label is the last operator LABEL if there is one (it wins),
else the automatic label of EPISODE_END; interventions and grasp attempts are counted from
their events. Every ``observation_period`` inside an episode one sample is taken, as in
:mod:`sim2real_policy.data`: the processed camera image (``/camera/image_processed``, what the
policy saw), the last robot state (x, y, z, yaw, width, effort) and as actions the next
``horizon`` commands the robot really executed (``/safety/command``, every
``action_period``). A per-sample ``human`` flag marks samples where the human commanded.

The dataset folder (``data.npz`` + ``dataset.json``) has the episodes' ``success`` and
``source`` (1: real) arrays; ``dataset.json`` lists every episode (bag, phase, labels and who
gave them, interventions, attempts, duration) and the session summary.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim2real_bringup import convert
from sim2real_bringup import interfaces as ifc
from sim2real_bringup.bag import read_bag
from sim2real_bringup.collection import (
    EPISODE_END,
    EPISODE_START,
    GRASP_ATTEMPT,
    INTERVENTION_END,
    INTERVENTION_START,
    LABEL,
)
from sim2real_policy import data as training

PROCESSED_IMAGE = '/camera/image_processed'
TOPICS = ('/collect/events', '/robot/state', '/safety/command')
PHASE_NAMES = {1: 'teleop', 2: 'policy'}


class ExportError(ValueError):
    """A bag that cannot be exported, with what is missing."""


@dataclass
class CollectedEpisode:
    """One episode as read back from a bag."""

    bag: str
    episode: int
    phase: str
    start_ns: int
    end_ns: int | None = None
    automatic: bool | None = None
    automatic_reason: str = ''
    label: bool | None = None
    label_operator: str = ''
    label_reason: str = ''
    interventions: int = 0
    intervention_operators: list = field(default_factory=list)
    human_spans: list = field(default_factory=list)   # [start_ns, end_ns] a human drove
    attempts: list = field(default_factory=list)
    attempt_ns: list = field(default_factory=list)   # when each attempt's verdict came

    def human_at(self, time_ns: int) -> bool:
        """True where the human commanded: all of phase 1, interventions in phase 2."""
        return self.phase == 'teleop' or any(
            a <= time_ns <= (b if b is not None else self.end_ns) for a, b in self.human_spans)

    @property
    def success(self) -> bool:
        """The operator's label wins over the automatic one."""
        return bool(self.label if self.label is not None else self.automatic)

    @property
    def duration(self) -> float:
        """Seconds from start to end."""
        return ((self.end_ns or self.start_ns) - self.start_ns) / 1e9

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {'bag': self.bag, 'episode': self.episode, 'phase': self.phase,
                'success': self.success, 'automatic': self.automatic,
                'automatic_reason': self.automatic_reason, 'label': self.label,
                'label_operator': self.label_operator, 'label_reason': self.label_reason,
                'interventions': self.interventions,
                'intervention_operators': self.intervention_operators,
                'attempts': self.attempts, 'duration': self.duration}


def read_episodes(bag: Path, image_topic: str | None = PROCESSED_IMAGE
                  ) -> tuple[list[CollectedEpisode], dict]:
    """The episodes of a collection bag and its time-ordered streams for sampling.

    ``image_topic``: the camera stream kept (the processed image the policy saw); None keeps
    no images (a raw camera stream is read in a second pass, only where it is needed).
    """
    episodes: dict[int, CollectedEpisode] = {}
    images, states, commands = [], [], []
    seen_events = False
    for m in read_bag(bag, TOPICS + ((image_topic,) if image_topic else ())):
        if m.topic == '/collect/events':
            seen_events = True
            e = m.msg
            if e.event == EPISODE_START:
                episodes[e.episode] = CollectedEpisode(str(bag), e.episode,
                                                       PHASE_NAMES.get(e.phase, str(e.phase)),
                                                       ifc.ns_from_time(e.header.stamp))
                continue
            episode = episodes.get(e.episode)
            if episode is None:
                raise ExportError(f'{bag}: event {e.event} for episode {e.episode} before '
                                  'its EPISODE_START (a recording started mid-episode?)')
            stamp = ifc.ns_from_time(e.header.stamp)
            if e.event == EPISODE_END:
                episode.end_ns = stamp
                episode.automatic, episode.automatic_reason = bool(e.success), e.note
            elif e.event == LABEL:
                episode.label, episode.label_operator = bool(e.success), e.operator_name
                episode.label_reason = e.note
            elif e.event == INTERVENTION_START:
                episode.interventions += 1
                episode.intervention_operators.append(e.operator_name)
                episode.human_spans.append([stamp, None])
            elif e.event == INTERVENTION_END and episode.human_spans:
                episode.human_spans[-1][1] = stamp
            elif e.event == GRASP_ATTEMPT:
                while len(episode.attempts) < e.attempt:
                    episode.attempts.append('')
                    episode.attempt_ns.append(None)
                episode.attempts[e.attempt - 1] = e.note
                episode.attempt_ns[e.attempt - 1] = stamp
        elif m.topic == image_topic:
            images.append((m.time_ns, m.msg))
        elif m.topic == '/robot/state':
            s = m.msg
            states.append((m.time_ns, (s.x, s.y, s.z, s.yaw, s.gripper_width,
                                       s.gripper_effort)))
        else:
            commands.append((m.time_ns, convert.command_pose(m.msg)))
    if not seen_events:
        raise ExportError(f'{bag}: no /collect/events: not a collection bag (record one with '
                          '`sim2real collect` or collect.launch.py)')
    missing = [name for name, stream in ((image_topic, images),
                                         ('/robot/state', states),
                                         ('/safety/command', commands))
               if name and not stream]
    if missing:
        raise ExportError(f'{bag}: no messages on {", ".join(missing)}')
    return list(episodes.values()), {'images': images, 'states': states, 'commands': commands}


def _samples(episode: CollectedEpisode, streams: dict, observation_period: float,
             action_period: float, horizon: int):
    """Yield ``(image, proprio, actions, human)`` every observation period of the episode."""
    state_t = [t for t, _ in streams['states']]
    cmd_t = [t for t, _ in streams['commands']]
    next_ns = episode.start_ns
    for t, msg in streams['images']:
        if t < next_ns or t > episode.end_ns:
            continue
        s = bisect_right(state_t, t) - 1
        c = bisect_right(cmd_t, t) - 1
        if s < 0 or c < 0:
            continue  # no state or command yet: nothing to learn from
        actions = []
        for k in range(horizon):
            at = min(t + int(k * action_period * 1e9), episode.end_ns)
            actions.append(streams['commands'][max(0, bisect_right(cmd_t, at) - 1)][1])
        next_ns = t + int(observation_period * 1e9)
        yield (convert.image_array(msg), streams['states'][s][1], actions,
               episode.human_at(t))


def export(bags, out: Path, real_fraction: float = 0.5, progress=None) -> dict:
    """Write the dataset folder; returns its summary."""
    if not 0.0 < real_fraction < 1.0:
        raise ValueError(f'real_fraction must be in (0, 1), got {real_fraction}')
    images, proprio, actions, index, human, success, listed = [], [], [], [], [], [], []
    for bag in bags:
        episodes, streams = read_episodes(Path(bag))
        for episode in episodes:
            if episode.end_ns is None:
                continue  # the recording stopped mid-episode: no label, not exported
            count = 0
            for image, state, chunk, by_human in _samples(
                    episode, streams, training.OBSERVATION_PERIOD, training.ACTION_PERIOD,
                    training.HORIZON):
                images.append(image)
                proprio.append(state)
                actions.append(chunk)
                index.append(len(listed))
                human.append(by_human)
                count += 1
            entry = episode.to_dict()
            entry['samples'] = count
            listed.append(entry)
            success.append(episode.success)
        if progress:
            progress(bag, len(listed))
    if not listed:
        raise ExportError('no complete episode in ' + ', '.join(str(b) for b in bags))
    summary = summarize(listed)
    dataset = {
        'images': np.asarray(images, np.uint8), 'proprio': np.asarray(proprio, np.float32),
        'actions': np.asarray(actions, np.float32), 'episode': np.asarray(index, np.int32),
        'human': np.asarray(human, np.uint8), 'success': np.asarray(success, bool),
        'source': np.ones(len(listed), np.uint8),
        'info': {'exported_from': [str(b) for b in bags], 'horizon': training.HORIZON,
                 'action_period': training.ACTION_PERIOD,
                 'observation_period': training.OBSERVATION_PERIOD,
                 'real_fraction': real_fraction, 'episodes': listed, 'summary': summary}}
    training.save(dataset, out, source='collected bags (sim2real export)')
    return summary


def summarize(episodes: list[dict]) -> dict:
    """Counts of a list of exported episodes."""
    by_phase = {}
    for e in episodes:
        phase = by_phase.setdefault(e['phase'], {'episodes': 0, 'successes': 0})
        phase['episodes'] += 1
        phase['successes'] += int(e['success'])
    return {
        'episodes': len(episodes),
        'successes': sum(int(e['success']) for e in episodes),
        'failures': sum(int(not e['success']) for e in episodes),
        'operator_labels': sum(int(e['label'] is not None) for e in episodes),
        'overridden': sum(int(e['label'] is not None and e['label'] != e['automatic'])
                          for e in episodes),
        'interventions': sum(e['interventions'] for e in episodes),
        'episodes_with_interventions': sum(int(e['interventions'] > 0) for e in episodes),
        'retried_grasps': sum(int(len(e['attempts']) > 1) for e in episodes),
        'hours': sum(e['duration'] for e in episodes) / 3600.0,
        'samples': sum(e.get('samples', 0) for e in episodes),
        'by_phase': by_phase,
    }

"""Deterministic replay of a recorded run through the current nodes, and the diff.

The robot is replaced by the bag: every recorded input (robot state, joint states, camera
frames, episode ends; and the policy's chunks with ``policy='recorded'``, or the controller's
proposals with ``policy='proposals'``) is published at its recorded instant -- whatever the
instants are: off any grid, epoch-style stamps from a robot, a bag from ``ros2 bag record``.
Everything downstream is recomputed by the current node code with the recorded or a new
configuration: camera preprocessing and health, the policy (re-run on the recorded frames),
control, the safety filter, the supervisor.

A bag the in-process runtime recorded says so in its metadata (``sim2real.episode_reset``):
its episode resets are replayed the same way (nodes restarted), and with nothing changed the
recomputed messages are byte-identical to the recorded ones. A robot's bag is replayed with
the nodes running on across episodes, as they did on the robot. The diff names the first
divergence and every command and safety verdict that changed; the result says what was taken
from the bag and what was recomputed.
"""
from __future__ import annotations

from collections import defaultdict
import json
from pathlib import Path
import shutil
from typing import Callable

from sim2real_bringup import interfaces as ifc
from sim2real_bringup.bag import BagError, BagRecorder, custom_data, read_bag
from sim2real_bringup.pipeline import (
    CALIBRATIONS_KEY,
    Pipeline,
    PipelineConfig,
    recorded_calibrations,
    START_KEY,
)
from sim2real_bringup.topics import BY_NAME, qos_map
from sim2real_policy.sim.params import SimParams
from sim2real_safety.node_interface import NS

INPUTS = ('/robot/state', '/robot/joint_states', '/camera/image_raw', '/episode/result')
CHUNK_TOPICS = ('/policy/action_chunk', '/policy/health')
PROPOSALS = '/control/proposed_command'
RECOMPUTED = ('/camera/image_processed', '/camera/health', '/policy/action_chunk',
              '/policy/health', '/control/proposed_command', '/control/diagnostics',
              '/safety/command', '/safety/status', '/supervisor/state')
POLICIES_FROM_BAG = ('recorded', 'proposals')
# Publication order within one instant: the simulated robot's (state, joints, frame, verdict).
ORDER = ('/robot/state', '/robot/joint_states', '/camera/image_raw', PROPOSALS,
         '/episode/result')


def _t(name: str) -> str:
    return BY_NAME[name].typename


class BagPlayer:
    """Stands in for SimRobotNode: the world is whatever the bag recorded."""

    def __init__(self, pipe: Pipeline, recorded: dict, topics: tuple[str, ...],
                 grid_s: float | None = None):
        self.pipe = pipe
        graph, sched = pipe.graph, pipe.sched
        publishers = {topic: graph.create_publisher(topic, _t(topic), BY_NAME[topic].qos,
                                                    node='bag_player')
                      for topic in topics if topic != '/episode/result'}
        self.result_pub = graph.create_publisher('/episode/result', _t('/episode/result'),
                                                 'default', node='bag_player')
        # The robot's subscription, so deliveries to the other nodes keep their order.
        graph.create_subscription('/safety/command', _t('/safety/command'), lambda _: None,
                                  qos='command', node='bag_player')
        self.played = defaultdict(int)
        self.publishers = publishers
        # The robot's inputs play as one chain, each instant scheduled when the one before it
        # has played -- as the simulated robot's step timer did -- so at an instant shared
        # with other events (a node restarted between episodes) they run in the recorded
        # order. Chunks (policy='recorded') are scheduled up front, as their publication was.
        robot_topics = [t for t in topics if t not in CHUNK_TOPICS]
        timeline = defaultdict(list)
        for topic in robot_topics:
            for time_ns, messages in recorded.get(topic, {}).items():
                timeline[time_ns].append((topic, messages))
        self.timeline = sorted(timeline.items())
        self.batches = dict(self.timeline)
        self.next_index = 0
        if grid_s is not None:
            # A recording of the in-process runtime: the robot's step timer, recreated as it
            # was (same period, same place in the construction order), plays each instant.
            sched.create_timer(grid_s, self._play_instant, 'bag_player')
        elif self.timeline:
            sched.call_at(self.timeline[0][0], self._play_next)
        for topic in topics:
            if topic in CHUNK_TOPICS:
                for time_ns, messages in recorded.get(topic, {}).items():
                    sched.call_at(time_ns, self._play(topic, messages))
        self.end_ns = max((t for per_topic in recorded.values() for t in per_topic),
                          default=sched.now_ns)
        self.active = False
        self.sim = None

    def _play(self, topic: str, messages: list) -> Callable[[], None]:
        def play():
            for msg in messages:
                self.publishers[topic].publish(msg)
            self.played[topic] += len(messages)
        return play

    def _play_instant(self) -> None:
        batch = self.batches.pop(self.pipe.sched.now_ns, None)
        if batch:
            self._play_batch(batch)

    def _play_next(self) -> None:
        time_ns, batch = self.timeline[self.next_index]
        self.next_index += 1
        self._play_batch(batch)
        if self.next_index < len(self.timeline):
            self.pipe.sched.call_at(self.timeline[self.next_index][0], self._play_next)

    def _play_batch(self, batch) -> None:
        for topic, messages in sorted(batch, key=lambda item: ORDER.index(item[0])):
            if topic == '/episode/result':
                for result in messages:
                    self.played[topic] += 1
                    self.pipe.records.append(result)
                    self.pipe.finish_episode(result)
            else:
                self._play(topic, messages)()

    @property
    def finished(self) -> bool:
        """The bag has been played to its end."""
        return self.pipe.sched.now_ns > self.end_ns

    def start(self, params) -> None:
        """A new episode (the bag's next one)."""
        self.active = True

    def stop(self) -> None:
        """Between episodes."""
        self.active = False


def load_recording(bag: str | Path) -> tuple[dict, dict, dict]:
    """``(inputs, outputs, counts)`` of a recorded bag.

    ``inputs`` and ``outputs`` map topic -> time_ns -> [messages] (inputs decoded with the
    suite's types, outputs raw); ``counts`` is the number of messages per recorded topic.

    Raises :class:`BagError` (one line) for a bag that cannot be read, or whose input topics
    carry other types than the suite's.
    """
    inputs = defaultdict(lambda: defaultdict(list))
    outputs = defaultdict(lambda: defaultdict(list))
    counts: dict[str, int] = defaultdict(int)
    path = Path(bag)
    wanted = set(INPUTS) | set(CHUNK_TOPICS) | {PROPOSALS}
    try:
        for m in read_bag(path):
            counts[m.topic] += 1
            if m.topic in wanted:
                if m.typename != _t(m.topic):
                    raise BagError(f'{path}: {m.topic} carries {m.typename}, the suite '
                                   f'expects {_t(m.topic)}')
                # Decode with the suite's typestore (the reader's classes are its own).
                inputs[m.topic][m.time_ns].append(ifc.deserialize(m.raw, m.typename))
            if m.topic in RECOMPUTED:
                outputs[m.topic][m.time_ns].append(m.raw)
    except BagError:
        raise
    except Exception as exc:  # noqa: BLE001 -- a truncated or corrupt file, in any way
        raise BagError(f'{path}: cannot read the bag ({type(exc).__name__}: {exc})') from None
    return inputs, outputs, dict(counts)


def diff(recorded: dict, replayed: dict, topics=RECOMPUTED) -> dict:
    """Compare recomputed topics message by message (same instant, same order)."""
    first = None
    changed_commands, changed_verdicts = [], []
    total = 0
    for topic in topics:
        a, b = recorded.get(topic, {}), replayed.get(topic, {})
        for time_ns in sorted(set(a) | set(b)):
            old, new = a.get(time_ns, []), b.get(time_ns, [])
            total += max(len(old), len(new))
            if old == new:
                continue
            if first is None or time_ns < first['time_ns']:
                first = {'topic': topic, 'time_ns': time_ns, 'time_s': time_ns / 1e9}
            if topic == '/safety/command':
                changed_commands.append(_describe_commands(time_ns, old, new))
            elif topic == '/safety/status':
                before = [ifc.deserialize(r, _t(topic)).verdict for r in old]
                after = [ifc.deserialize(r, _t(topic)).verdict for r in new]
                if before != after:
                    changed_verdicts.append({'time_s': time_ns / 1e9, 'recorded': before,
                                             'replayed': after})
    return {'identical': first is None, 'first_divergence': first,
            'changed_commands': changed_commands, 'changed_verdicts': changed_verdicts,
            'compared_messages': total}


def _describe_commands(time_ns: int, old: list, new: list) -> dict:
    def poses(raws):
        out = []
        for raw in raws:
            msg = ifc.deserialize(raw, _t('/safety/command'))
            out.append([msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width])
        return out

    return {'time_s': time_ns / 1e9, 'recorded': poses(old), 'replayed': poses(new)}


def replay(bag: str | Path, out: str | Path, overrides: dict | None = None,
           policy: str = 'bundled', backend: str | None = None,
           progress: Callable[[float], None] | None = None) -> dict:
    """Replay ``bag`` into a new bag under ``out``; return the diff (also replay.json).

    ``policy``: ``bundled`` or a model path (re-run on the recorded frames), ``recorded``
    (the recorded chunks drive the current controller) or ``proposals`` (the recorded
    proposals go through the current safety filter: would today's filter have let them
    through?). ``progress(fraction)`` is called as the bag plays.
    """
    out = Path(out)
    bag = Path(bag)
    inputs, recorded, counts = load_recording(bag)
    custom = custom_data(bag)
    if not inputs.get('/robot/state'):
        raise BagError(f'{bag} has no /robot/state ({_t("/robot/state")}): nothing to replay; '
                       f'it records {sorted(counts) or "nothing"}')
    config = PipelineConfig.load(overrides)
    model_ids = {m.model_id for ms in inputs.get('/policy/action_chunk', {}).values()
                 for m in ms}
    if policy == 'bundled' and model_ids == {'scripted-expert'}:
        policy = 'recorded'  # the privileged expert cannot be re-run without its simulator
    if policy == 'proposals' and not inputs.get(PROPOSALS):
        raise BagError(f'{bag} has no {PROPOSALS}: nothing to put through the safety filter')
    played = list(INPUTS)
    if policy == 'recorded':
        played += CHUNK_TOPICS
    elif policy == 'proposals':
        played.append(PROPOSALS)
    reset = 'restart' if custom.get('sim2real.episode_reset') == 'restart' else 'none'
    start_ns = min(t for per_topic in inputs.values() for t in per_topic)
    grid_s = None
    if reset == 'restart':
        # The in-process runtime's clock starts at 0 and its robot steps on a fixed grid:
        # replay on that grid when every input lies on it (then it is byte-identical).
        period_ns = round(NS / config.sim['state_rate'])
        robot_times = [t for topic in played if topic not in CHUNK_TOPICS
                       for t in inputs.get(topic, {})]
        if all(t % period_ns == 0 for t in robot_times):
            # from where the recording's clock started (an older bag without it: from 0,
            # or from the grid point before its first message when that is far from 0)
            recorded_start = custom.get(START_KEY, '')
            if recorded_start.isdigit():
                start = int(recorded_start)
            else:
                start = 0 if start_ns < 60 * NS else start_ns // period_ns * period_ns
            grid_s, start_ns = period_ns / NS, start + 1
    if grid_s is None:
        # a bag from the robot: the nodes' timers keep the phase the recording had, one
        # period before its first message (a start 1 ns early put every recomputed
        # message 1 ns off its recorded instant)
        start_ns = start_ns - round(NS / config.sim['state_rate']) + 1
    calibrations = recorded_calibrations(custom.get(CALIBRATIONS_KEY), bag)
    pipe = Pipeline(config, lambda i: SimParams(), policy=(
        'recorded' if policy in POLICIES_FROM_BAG else policy), backend=backend,
                    start_ns=max(0, start_ns - 1), episode_reset=reset,
                    control=policy != 'proposals',
                    robot=lambda p: BagPlayer(p, inputs, tuple(played), grid_s),
                    recorded_calibrations=calibrations)
    compared = [t for t in RECOMPUTED if t not in played]
    replayed = defaultdict(lambda: defaultdict(list))

    def tap(topic, typename, time_ns, msg):
        if topic in compared:
            replayed[topic][time_ns].append(ifc.serialize(msg, typename))

    pipe.graph.add_tap(tap)
    if reset == 'restart':  # as the recording run did: no new episode after its last one
        pipe._stop_after = sum(len(ms) for ms in inputs.get('/episode/result', {}).values())
    out.mkdir(parents=True)
    # to the end of the recording (its last message of any topic), not a tick further
    end_ns = max(t for per_topic in (*inputs.values(), *recorded.values()) for t in per_topic)
    begin_ns = pipe.sched.now_ns
    try:
        with BagRecorder(out / 'bag', qos=qos_map()).attach(pipe.graph):
            while pipe.sched.now_ns < end_ns:
                pipe.sched.run_until(min(pipe.sched.now_ns + NS, end_ns))
                if progress:
                    progress((pipe.sched.now_ns - begin_ns) / max(1, end_ns - begin_ns))
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # no half-written replay is left behind
        raise
    finally:
        pipe.close()
    result = diff(recorded, replayed, compared)
    result.update({
        'policy': policy, 'episode_reset': reset,
        'simulated_s': (pipe.sched.now_ns - max(0, start_ns - 1)) / 1e9,
        'taken_from_bag': {t: pipe.robot.played.get(t, 0) for t in played},
        'recomputed': compared,
        'recorded_not_used': sorted(t for t in counts if t not in played and t not in compared),
    })
    (out / 'replay.json').write_text(json.dumps(result, indent=2))
    return result

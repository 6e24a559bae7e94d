"""Deterministic replay of a recorded run through the current cores, and the diff.

The robot is replaced by the bag: recorded robot state, joint states and camera frames (and
episode outcomes) are published at their recorded instants, from timers created exactly as
the simulated robot's were, so every core sees its inputs in the original order. Everything
downstream is recomputed by the current code with the recorded or a new configuration:
camera preprocessing and health, the policy (re-run on the recorded frames; or the recorded
chunks with ``policy='recorded'``), control, the safety filter, the supervisor.

With nothing changed the recomputed messages are byte-identical to the recorded ones. The
diff names the first divergence and every command and safety verdict that changed.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from sim2real_bringup import interfaces as ifc
from sim2real_bringup.bag import BagRecorder, read_bag
from sim2real_bringup.pipeline import _t, Pipeline, PipelineConfig
from sim2real_bringup.topics import qos_map
from sim2real_policy.sim.params import SimParams

INPUTS = ('/robot/state', '/robot/joint_states', '/camera/image_raw', '/episode/result')
RECOMPUTED = ('/camera/image_processed', '/camera/health', '/policy/action_chunk',
              '/policy/health', '/control/proposed_command', '/control/diagnostics',
              '/safety/command', '/safety/status', '/supervisor/state')


class BagRobotNode:
    """Stands in for SimRobotNode: the world is whatever the bag recorded."""

    def __init__(self, pipe: Pipeline, recorded: dict, publish_chunks: bool):
        self.pipe = pipe
        graph, sched, cfg = pipe.graph, pipe.sched, pipe.config.sim
        self.recorded = recorded
        self.state_pub = graph.create_publisher('/robot/state', _t('/robot/state'))
        self.joint_pub = graph.create_publisher('/robot/joint_states',
                                                _t('/robot/joint_states'))
        self.image_pub = graph.create_publisher('/camera/image_raw', _t('/camera/image_raw'))
        self.result_pub = graph.create_publisher('/episode/result', _t('/episode/result'))
        # The same subscription as the simulated robot, so deliveries keep their order.
        graph.create_subscription('/safety/command', _t('/safety/command'), lambda _: None)
        sched.create_timer(1.0 / float(cfg['state_rate']), self.on_state_timer, 'sim_state')
        sched.create_timer(1.0 / float(cfg['camera_rate']), self.on_camera_timer,
                           'sim_camera')
        if publish_chunks:
            chunk_pub = graph.create_publisher('/policy/action_chunk',
                                               _t('/policy/action_chunk'))
            health_pub = graph.create_publisher('/policy/health', _t('/policy/health'))
            for topic, pub in (('/policy/action_chunk', chunk_pub),
                               ('/policy/health', health_pub)):
                for time_ns, messages in sorted(recorded.get(topic, {}).items()):
                    sched.call_at(time_ns, lambda p=pub, ms=messages: [p.publish(m)
                                                                        for m in ms])
        self.end_ns = max((t for per_topic in recorded.values() for t in per_topic), default=0)
        self.active = False

    @property
    def finished(self) -> bool:
        """The bag has been played to its end."""
        return self.pipe.sched.now_ns > self.end_ns

    def start(self, params) -> None:
        """A new episode (the bag's next one)."""
        self.active = True
        self.episode_start_ns = self.pipe.sched.now_ns

    def stop(self) -> None:
        """Between episodes."""
        self.active = False

    def _publish(self, topic: str, publisher) -> list:
        messages = self.recorded.get(topic, {}).get(self.pipe.sched.now_ns, [])
        for msg in messages:
            publisher.publish(msg)
        return messages

    def on_state_timer(self) -> None:
        """Recorded state and joints at this instant, then the recorded episode end if any."""
        if not self.active:
            return
        self._publish('/robot/state', self.state_pub)
        self._publish('/robot/joint_states', self.joint_pub)
        for result in self.recorded.get('/episode/result', {}).get(self.pipe.sched.now_ns, []):
            self.pipe.records.append(result)
            self.pipe.finish_episode(result)

    def on_camera_timer(self) -> None:
        """The recorded frame of this instant."""
        if self.active:
            self._publish('/camera/image_raw', self.image_pub)


def load_recording(bag: str | Path) -> tuple[dict, dict]:
    """``(inputs, outputs)``: topic -> time_ns -> [messages] (inputs decoded, outputs raw)."""
    inputs = defaultdict(lambda: defaultdict(list))
    outputs = defaultdict(lambda: defaultdict(list))
    for m in read_bag(bag):
        if m.topic in INPUTS or m.topic in ('/policy/action_chunk', '/policy/health'):
            # Decode with the suite's typestore (the reader's classes are its own).
            inputs[m.topic][m.time_ns].append(ifc.deserialize(m.raw, m.typename))
        if m.topic in RECOMPUTED:
            outputs[m.topic][m.time_ns].append(m.raw)
    return inputs, outputs


def diff(recorded: dict, replayed: dict) -> dict:
    """Compare recomputed topics message by message (same instant, same order)."""
    first = None
    changed_commands, changed_verdicts = [], []
    total = 0
    for topic in RECOMPUTED:
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
           policy: str = 'bundled', backend: str | None = None) -> dict:
    """Replay ``bag`` into a new bag under ``out``; return the diff (also replay.json)."""
    out = Path(out)
    inputs, recorded = load_recording(bag)
    if not inputs.get('/robot/state'):
        raise ValueError(f'{bag} has no /robot/state: nothing to replay')
    config = PipelineConfig.load(overrides)
    chunks = dict(inputs)
    model_ids = {m.model_id for ms in inputs.get('/policy/action_chunk', {}).values()
                 for m in ms}
    if policy == 'bundled' and model_ids == {'scripted-expert'}:
        policy = 'recorded'  # the privileged expert cannot be re-run without its simulator
    pipe = Pipeline(config, lambda i: SimParams(), policy=policy, backend=backend,
                    robot=lambda p: BagRobotNode(p, chunks, publish_chunks=policy == 'recorded'))
    replayed = defaultdict(lambda: defaultdict(list))

    def tap(topic, typename, time_ns, msg):
        if topic in RECOMPUTED:
            replayed[topic][time_ns].append(ifc.serialize(msg, typename))

    pipe.graph.add_tap(tap)
    with BagRecorder(out / 'bag', qos=qos_map()).attach(pipe.graph):
        episodes = len([1 for ms in inputs.get('/episode/result', {}).values() for _ in ms])
        pipe.run_episodes(max(1, episodes), max_seconds=pipe.robot.end_ns / 1e9 + 1.0)
    result = diff(recorded, replayed)
    result['policy'] = policy
    result['simulated_s'] = pipe.sched.now
    import json
    (out / 'replay.json').write_text(json.dumps(result, indent=2))
    return result

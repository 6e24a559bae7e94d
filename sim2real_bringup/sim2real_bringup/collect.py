"""`sim2real collect` in-process: a collection session on the simulator, recorded to a bag.

:class:`CollectNode` is the in-process twin of ``collect_node``: between the controller and
the safety node it forwards the policy's proposals, or the operator's (teleoperation) in
phase 1 and during interventions, keeps the :class:`EpisodeBook` and publishes its events,
gives every episode its automatic label from the gripper check, and serves operator labels.

:class:`ScriptedOperator` is the human at the station, scripted: it sees the object (it is
the simulator's privileged view, as a person's eyes are) and drives grasps through the
teleoperation topics -- a spacemouse's Twist for motion, Joy buttons for the gripper --
takes over from the policy at chosen moments, and relabels chosen episodes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim2real_bringup import convert
from sim2real_bringup import interfaces as ifc
from sim2real_bringup.collection import (
    CollectConfig,
    CommandArbiter,
    EpisodeBook,
    Event,
)
from sim2real_bringup.topics import BY_NAME
from sim2real_policy.sim.expert import ScriptedGrasp
from sim2real_policy.sim.robot import HOME
from sim2real_policy.teleop import Teleop, TeleopConfig

NS = 1_000_000_000
EVENT_TYPE = 'sim2real_msgs/msg/EpisodeEvent'


def _t(name: str) -> str:
    return BY_NAME[name].typename


def event_msg(event: Event):
    """An ``EpisodeEvent`` message."""
    return ifc.make(EVENT_TYPE, header=ifc.header(event.time_ns), episode=event.episode,
                    event=event.event, phase=event.phase, success=bool(event.success),
                    attempt=event.attempt, operator_name=event.operator_name,
                    note=event.note)


class CollectNode:
    """Arbiter, teleoperation, episode book and label service of a collection session."""

    def __init__(self, pipe, config: CollectConfig, teleop: TeleopConfig):
        self.pipe = pipe
        self.config = config
        graph = pipe.graph
        self.arbiter = CommandArbiter(config)
        self.book = EpisodeBook(config)
        self.teleop = Teleop(teleop)
        self.last_safe = np.array(HOME, float)
        self.cmd_pub = graph.create_publisher('/collect/proposed_command',
                                              _t('/collect/proposed_command'))
        self.event_pub = graph.create_publisher('/collect/events', _t('/collect/events'))
        for topic, callback in (
                ('/control/proposed_command', self.on_policy),
                ('/teleop/cmd_vel', self.on_twist), ('/teleop/joy', self.on_joy),
                ('/collect/intervention', self.on_intervention),
                ('/robot/state', self.on_state), ('/safety/command', self.on_safe)):
            graph.create_subscription(topic, _t(topic), callback)
        pipe.sched.create_timer(pipe.config.control.control_period, self.on_tick, 'collect')
        pipe.episode_start_hooks.append(self.on_episode_start)
        pipe.result_hooks.append(self.on_result)
        if pipe.robot.active:   # the pipeline starts its first episode as it is built;
            # announced once the scheduler runs, so a recorder attached now hears it
            index = pipe.episode_index
            pipe.sched.call_later(0.0, lambda: self.on_episode_start(index, None))

    def _now(self) -> int:
        return self.pipe.sched.now_ns

    def _publish_event(self, event: Event | None) -> None:
        if event is not None:
            self.event_pub.publish(event_msg(event))

    def on_episode_start(self, index: int, params) -> None:
        """The world is reset: a new episode, the human's device re-seeded at home."""
        now = self._now()
        self.arbiter.set_intervention(False, now)
        self.teleop.start(HOME, now)
        self.last_safe = np.array(HOME, float)
        self._publish_event(self.book.start(index, now))

    def on_policy(self, msg) -> None:
        """The controller's proposal: forwarded unless a human is in control."""
        if self.arbiter.human_in_control or not self.pipe.robot.active:
            return
        pose, _ = self.arbiter.select(convert.command_pose(msg), None, self._now())
        if pose is not None:
            self.cmd_pub.publish(convert.command_msg(pose, ifc.ns_from_time(msg.header.stamp),
                                                     msg.source))

    def on_tick(self) -> None:
        """The human's proposal at the control rate while they are in control."""
        if not self.arbiter.human_in_control or not self.pipe.robot.active \
                or not self.teleop.started:
            return
        now = self._now()
        pose, _ = self.arbiter.select(None, self.teleop.tick(now), now)
        self.cmd_pub.publish(convert.command_msg(
            pose, now, ifc.message_class(_t('/safety/command')).SOURCE_TELEOP))

    def on_twist(self, msg) -> None:
        """Operator motion."""
        self.teleop.on_twist((msg.linear.x, msg.linear.y, msg.linear.z), msg.angular.z,
                             self._now())

    def on_joy(self, msg) -> None:
        """Operator buttons (and axes, for gamepads)."""
        self.teleop.on_joy(list(msg.axes), list(msg.buttons), self._now())

    def on_intervention(self, msg) -> None:
        """A human takes over (the device starts from the last safe command) or hands back."""
        now = self._now()
        if self.arbiter.set_intervention(bool(msg.data), now):
            if msg.data:
                self.teleop.start(self.last_safe, now)
            self._publish_event(self.book.intervention(bool(msg.data),
                                                       self.config.operator_name, now))

    def on_state(self, msg) -> None:
        """Gripper check of the current attempt."""
        if self.pipe.robot.active:
            self._publish_event(self.book.on_state(self._now(), msg.z, msg.gripper_width,
                                                   msg.gripper_effort))

    def on_safe(self, msg) -> None:
        """What the robot was really told: anchors the device, starts and ends attempts."""
        self.last_safe = np.array(convert.command_pose(msg), float)
        if self.arbiter.human_in_control:
            self.teleop.anchor(self.last_safe)
        self.book.on_command(msg.gripper_width)

    def on_result(self, result):
        """The episode's result carries the automatic label, interventions and attempts."""
        event, episode = self.book.end(self._now())
        self._publish_event(event)
        self.arbiter.set_intervention(False, self._now())
        result.success = bool(episode.automatic)
        result.label_source = ifc.message_class(_t('/episode/result')).LABEL_AUTOMATIC
        result.interventions = episode.interventions
        result.attempts = max(1, len(episode.attempts))
        result.failure_reason = '' if episode.automatic else event.note
        return result

    def label_episode(self, episode: int, success: bool, operator_name: str,
                      reason: str = '') -> tuple[bool, str]:
        """The LabelEpisode service: ``(accepted, message)``; the label goes into the bag."""
        accepted, message, event = self.book.label(episode, success, operator_name, reason,
                                                   self._now())
        self._publish_event(event)
        return accepted, message


@dataclass
class OperatorScript:
    """What the scripted human does."""

    name: str = 'scripted operator'
    intervene: dict = field(default_factory=dict)   # episode -> s into it to take over
    relabel: dict = field(default_factory=dict)     # episode -> (success, reason)
    release_after: float = 0.5                      # s after its grasp is lifted


class ScriptedOperator:
    """A person at the station driving grasps with a spacemouse, intervening and labelling."""

    RATE = 0.02      # s between device messages (a spacemouse driver's 50 Hz)
    GAIN = 8.0       # 1/s: how briskly the operator closes in on where they want to be

    def __init__(self, pipe, node: CollectNode, script: OperatorScript):
        self.pipe, self.node, self.script = pipe, node, script
        graph = pipe.graph
        self.twist_pub = graph.create_publisher('/teleop/cmd_vel', _t('/teleop/cmd_vel'))
        self.joy_pub = graph.create_publisher('/teleop/joy', _t('/teleop/joy'))
        self.intervene_pub = graph.create_publisher('/collect/intervention',
                                                    _t('/collect/intervention'))
        pipe.sched.create_timer(self.RATE, self.on_tick, 'operator')
        pipe.episode_start_hooks.append(self.on_episode_start)
        pipe.result_hooks.append(self.on_result)
        self.index = -1
        self.start_ns = 0
        self.plan: ScriptedGrasp | None = None
        self.plan_ns = 0
        self.taken = False
        self.released = False
        if pipe.robot.active:
            self.on_episode_start(pipe.episode_index, None)

    def on_episode_start(self, index: int, params) -> None:
        """A new trial: in phase 1 the operator drives it from the start."""
        self.index, self.start_ns = index, self.pipe.sched.now_ns
        self.plan, self.taken, self.released = None, False, False

    def on_result(self, result):
        """Relabel the episode just ended if the script says so (a moment later)."""
        if result.episode in self.script.relabel:
            success, reason = self.script.relabel[result.episode]
            self.pipe.sched.call_later(0.02, lambda: self.node.label_episode(
                result.episode, success, self.script.name, reason))
        return result

    def _driving(self, now: int) -> bool:
        if self.node.config.phase == 'teleop':
            return True
        if self.released:
            return False
        take_at = self.script.intervene.get(self.index)
        if take_at is not None and not self.taken and now - self.start_ns >= take_at * NS:
            self.taken = True
            self.intervene_pub.publish(ifc.make('std_msgs/msg/Bool', data=True))
        return self.taken

    def on_tick(self) -> None:
        """One device message."""
        sim, now = self.pipe.robot.sim, self.pipe.sched.now_ns
        if sim is None or not self._driving(now):
            return
        current = self.node.last_safe
        if self.plan is None:
            self.plan = ScriptedGrasp(current, sim.object_position(), sim.object_yaw(),
                                      sim.params.object_shape)
            self.plan_ns = now
        t = (now - self.plan_ns) / NS
        if self.node.config.phase == 'policy' and t > self.plan.duration + \
                self.script.release_after:
            self.released = True
            self.intervene_pub.publish(ifc.make('std_msgs/msg/Bool', data=False))
            return
        desired = self.plan.target(t)
        velocity = np.clip(self.GAIN * (desired[:3] - current[:3]), -0.1, 0.1)
        yaw_rate = float(np.clip(self.GAIN * (desired[3] - current[3]), -0.5, 0.5))
        twist = ifc.make('geometry_msgs/msg/Twist')
        twist.linear.x, twist.linear.y, twist.linear.z = (float(v) for v in velocity)
        twist.angular.z = yaw_rate
        self.twist_pub.publish(twist)
        config = self.node.teleop.config
        buttons = np.zeros(max(config.button_close, config.button_open) + 1, np.int32)
        if desired[4] < current[4] - 0.002:
            buttons[config.button_close] = 1
        elif desired[4] > current[4] + 0.002:
            buttons[config.button_open] = 1
        self.joy_pub.publish(ifc.make('sensor_msgs/msg/Joy', header=ifc.header(now),
                                      axes=np.zeros(0, np.float32), buttons=buttons))


def run_collection(out: Path, phase: str, episodes: int, *, policy: str = 'expert',
                   robot: str = 'proxy', seed: int = 0, failing=(), script=None,
                   progress=None) -> dict:
    """Run a collection session; the bag goes to ``out / 'bag'``.

    ``failing``: episodes in which the (expert) policy misjudges the object by 6 cm (an
    injected failure). Returns the session's episodes as the book and the simulator saw them.
    """
    from sim2real_bringup.bag import BagRecorder
    from sim2real_bringup.evaluation import episode_source
    from sim2real_bringup.pipeline import Faults, Pipeline, PipelineConfig
    from sim2real_bringup.topics import qos_map

    script = script or OperatorScript()
    failing = set(failing)
    source = episode_source(robot)
    faults = Faults()

    def params(i):
        faults.grasp_offset = (0.0, 0.06) if i in failing else None
        return source(seed + i)

    pipe = Pipeline(PipelineConfig.load(), params, policy=policy, faults=faults,
                    proposal_topic='/collect/proposed_command')
    node = CollectNode(pipe, CollectConfig(phase=phase, operator_name=script.name),
                       TeleopConfig(joy_axes=(-1, -1, -1, -1)))
    ScriptedOperator(pipe, node, script)
    with BagRecorder(out / 'bag', qos=qos_map()).attach(pipe.graph):
        pipe.run_episodes(episodes, progress=progress)
        pipe.sched.run_for(0.2)   # labels given just after the last episode
    pipe.close()
    book = node.book
    return {'phase': phase, 'episodes': [
        {'episode': e.index, 'automatic': e.automatic, 'label': e.label,
         'success': e.success, 'operator_name': e.operator_name,
         'interventions': e.interventions, 'attempts': list(e.attempts),
         'truth': record.success}
        for e, record in zip((book.episodes[k] for k in sorted(book.episodes)), pipe.records)]}

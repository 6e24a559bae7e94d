"""`sim2real collect` in-process: a collection session on the simulator, recorded to a bag.

The session is the collect launch graph on the in-process runtime: ``collect_node`` (the same
node class ``collect.launch.py`` starts) between the controller and the safety node, wired with
``launch_graph.COLLECT_REMAPS``.

:class:`ScriptedOperator` is the human at the station, scripted: it sees the object (it is
the simulator's privileged view, as a person's eyes are) and drives grasps through the
teleoperation topics -- a spacemouse's Twist for motion, Joy buttons for the gripper --
takes over from the policy at chosen moments, and relabels chosen episodes through the label
service.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim2real_bringup import interfaces as ifc
from sim2real_bringup import launch_graph as lg
from sim2real_bringup.nodes.collect_node import CollectNode
from sim2real_bringup.topics import BY_NAME
from sim2real_policy.sim.expert import ScriptedGrasp

NS = 1_000_000_000


def _t(name: str) -> str:
    return BY_NAME[name].typename


def collect_session(pipe, phase: str, operator_name: str, **parameters) -> CollectNode:
    """``collect_node`` on ``pipe`` (built with ``remaps=launch_graph.COLLECT_REMAPS``)."""
    return CollectNode(pipe.node(lg.COLLECT, phase=phase, operator_name=operator_name,
                                 **parameters))


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
        self.twist_pub = graph.create_publisher('/teleop/cmd_vel', _t('/teleop/cmd_vel'),
                                                node='operator')
        self.joy_pub = graph.create_publisher('/teleop/joy', _t('/teleop/joy'), node='operator')
        self.intervene_pub = graph.create_publisher('/collect/intervention',
                                                    _t('/collect/intervention'), node='operator')
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
            self.pipe.sched.call_later(0.02, lambda: self.pipe.graph.call_service(
                '/collect/label', episode=result.episode, success=success,
                operator_name=self.script.name, reason=reason))
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
        if sim is None or self.node.last_safe is None or not self._driving(now):
            return
        current = np.asarray(self.node.last_safe, float)
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
                    remaps=lg.COLLECT_REMAPS)
    node = collect_session(pipe, phase, script.name, **{'teleop.joy_axes': [-1, -1, -1, -1]})
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

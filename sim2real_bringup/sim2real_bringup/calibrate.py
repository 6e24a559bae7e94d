"""A calibration run of the simulated robot, in-process: ``calibrate.launch.py use_sim:=true``.

The launch file's graph (``launch_graph.CALIBRATE`` plus the simulated robot) with the same
node classes on the in-process runtime: ``calibration_node`` plays the excitation through
``safety_node``, watched by ``supervisor_node``, on the MuJoCo robot. Returns what a bag of
the run holds for ``sim2real sysid`` (and records one when asked).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from sim2real_bringup import launch_graph as lg
from sim2real_bringup.bag import BagRecorder
from sim2real_bringup.nodes.calibration_node import CalibrationNode
from sim2real_bringup.pipeline import PipelineConfig
from sim2real_bringup.runtime import Graph, Scheduler
from sim2real_bringup.topics import qos_map
from sim2real_policy.nodes.sim_robot_node import SimRobotNode
from sim2real_policy.sim.params import SimParams
from sim2real_safety.limits import Verdict
from sim2real_safety.node_interface import NS
from sim2real_safety.nodes.safety_node import SafetyNode
from sim2real_safety.nodes.supervisor_node import SupervisorNode

M = 'sim2real_msgs/msg/'
# The simulated robot of a calibration run: one long "episode" (the world must not reset
# mid-run), frames rarely (nothing looks at them).
SIM_ROBOT_PARAMETERS = {'episode_timeout': 3600.0, 'camera_rate': 0.1, 'publish_clock': False}


def record_calibration(sim_params: SimParams, overrides: dict | None = None,
                       bag: str | Path | None = None, max_seconds: float = 900.0,
                       setup: Callable[[Graph], None] | None = None) -> dict:
    """Run a calibration on the simulated robot through the safety node.

    ``overrides``: node name -> {parameter: value} over the config files (e.g.
    ``{'calibration_node': {'seeds': [0, 1]}}``). Returns ``{'commands': [(t_ns, pose)],
    'joint_states': [(t_ns, names, pos, vel, eff)], 'verdicts': {name: count},
    'cut': [(t_ns, phase, verdict, constraints)], 'aborted': bool}``: the safe commands the
    robot took during the run, what its joints reported, and every command the filter
    changed. ``setup(graph)`` is called once the graph is built (drills schedule faults).
    """
    config = PipelineConfig.load(overrides)
    sched = Scheduler(0)
    graph = Graph(sched)

    def node(spec, **extra):
        return config.graph_node(graph, spec, **extra)

    robot = SimRobotNode(node(lg.SIM_ROBOT, **SIM_ROBOT_PARAMETERS),
                         episode_params=lambda index: sim_params)
    SafetyNode(node(lg.SAFETY))
    SupervisorNode(node(lg.SUPERVISOR))
    calibration = CalibrationNode(node(lg.CALIBRATION))
    run = {'commands': [], 'joint_states': [], 'verdicts': {}, 'cut': []}

    def running() -> bool:
        return calibration.started and not calibration.stopped

    def on_command(msg):
        if running():
            run['commands'].append((sched.now_ns, (msg.x, msg.y, msg.z, msg.yaw,
                                                   msg.gripper_width)))

    def on_joints(msg):
        if running():
            run['joint_states'].append((sched.now_ns, list(msg.name), list(msg.position),
                                        list(msg.velocity), list(msg.effort)))

    def on_status(msg):
        if not running():
            return
        name = Verdict(msg.verdict).name
        run['verdicts'][name] = run['verdicts'].get(name, 0) + 1
        if msg.violations:
            run['cut'].append((sched.now_ns, calibration.player.phase(sched.now_ns)[0], name,
                               sorted({v.constraint for v in msg.violations})))

    for topic, typename, callback, qos in (
            ('/safety/command', M + 'CartesianCommand', on_command, 'command'),
            ('/robot/joint_states', 'sensor_msgs/msg/JointState', on_joints, 'sensor'),
            ('/safety/status', M + 'SafetyStatus', on_status, 'latched')):
        graph.create_subscription(topic, typename, callback, qos=qos, node='recorder')
    if setup is not None:
        setup(graph)
    recorder = BagRecorder(bag, qos=qos_map()).attach(graph) if bag is not None else None
    settle_ns = int(calibration.player.config.settle_time * NS)
    try:
        end_ns = None
        while sched.now_ns < max_seconds * NS and not calibration.stopped:
            sched.run_for(0.1)
            if calibration.finished and end_ns is None:
                end_ns = sched.now_ns + settle_ns
            if end_ns is not None and sched.now_ns >= end_ns:
                break
    finally:
        robot.stop()
        if recorder is not None:
            recorder.close()
    run['aborted'] = calibration.stopped or not calibration.finished
    return run

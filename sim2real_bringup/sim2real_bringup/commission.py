"""Commissioning a simulated cell in-process: ``commission.launch.py`` on the MuJoCo robot.

The launch file's graph (``launch_graph.COMMISSION`` plus the simulated robot) with the same
node classes on the in-process runtime: ``commissioning_node`` drives the procedure through
``safety_node`` (in the supervisor's commissioning mode, asked for by a named operator),
sees the cell through ``camera_node``, and writes the cell file. Used by
``sim2real calibrate-cell`` and by the tests that compare it with the ROS 2 launch.
"""
from __future__ import annotations

from pathlib import Path

from sim2real_bringup import launch_graph as lg
from sim2real_bringup.nodes.commissioning_node import CommissioningNode, Phase
from sim2real_bringup.pipeline import PipelineConfig
from sim2real_bringup.runtime import Graph, Scheduler
from sim2real_policy.nodes.camera_node import CameraNode
from sim2real_policy.nodes.sim_robot_node import SimRobotNode
from sim2real_policy.sim.params import SimParams
from sim2real_safety.limits import Verdict
from sim2real_safety.node_interface import NS
from sim2real_safety.nodes.safety_node import SafetyNode
from sim2real_safety.nodes.supervisor_node import SupervisorNode
from sim2real_safety.software_stop import SoftwareStopLatch

M = 'sim2real_msgs/msg/'
# One long "episode" (the world must not reset mid-run), frames at the camera's rate.
SIM_ROBOT_PARAMETERS = {'episode_timeout': 3600.0, 'publish_clock': False}
OPERATOR = 'sim2real (simulated cell)'


def commission_sim_cell(sim_params: SimParams, output_file: str | Path, cell_name: str,
                        detector, overrides: dict | None = None, replace: bool = False,
                        max_seconds: float = 300.0, progress=None, operator: str = OPERATOR,
                        setup=None) -> dict:
    """Commission the simulated cell of ``sim_params``; the cell file goes to ``output_file``.

    ``detector``: the loaded keypoint network (a KeypointDetector). ``overrides``: node name
    -> {parameter: value} over the config files. ``progress(line)`` hears each progress line.
    ``operator``: who asks for the commissioning mode ('' = nobody: the node waits).
    ``setup(graph)`` is called once the graph is built (a test schedules a stop).
    Returns ``{'calibration': CellCalibration or None, 'error': str, 'sim_time': s,
    'verdicts': {name: count}, 'lowest_tcp_z': m, 'robot': the SimRobotNode's sim params}``:
    what the filter did with the commissioning's proposals and how low the TCP really went.
    """
    config = PipelineConfig.load(overrides)
    sched = Scheduler(0)
    graph = Graph(sched)

    def node(spec, **extra):
        return config.graph_node(graph, spec, **extra)

    robot = SimRobotNode(node(lg.SIM_ROBOT, **SIM_ROBOT_PARAMETERS),
                         episode_params=lambda index: sim_params)
    CameraNode(node(lg.CAMERA), detector.preprocessor)
    SafetyNode(node(lg.SAFETY), latch=SoftwareStopLatch())
    SupervisorNode(node(lg.SUPERVISOR))
    commissioning = CommissioningNode(node(
        lg.COMMISSIONING, output_file=str(output_file), cell_name=cell_name,
        operator_name=operator, replace=replace, robot_name='MuJoCo (simulated)'),
        detector=detector)
    run = {'verdicts': {}, 'violations': {}, 'lowest_tcp_z': float('inf')}

    def on_status(msg):
        if commissioning.phase is Phase.RUNNING:
            name = Verdict(msg.verdict).name
            run['verdicts'][name] = run['verdicts'].get(name, 0) + 1
            for violation in msg.violations:
                run['violations'][violation.constraint] = (
                    run['violations'].get(violation.constraint, 0) + 1)

    def on_state(msg):
        if commissioning.phase is Phase.RUNNING and robot.sim is not None:
            # the stage's true height, not its noisy encoder
            run['lowest_tcp_z'] = min(run['lowest_tcp_z'], float(robot.sim.tcp(noisy=False)[2]))

    def on_progress(msg):
        if progress is not None:
            progress(msg.data)

    graph.create_subscription('/safety/status', M + 'SafetyStatus', on_status, qos='latched',
                              node='recorder')
    graph.create_subscription('/robot/state', M + 'RobotState', on_state, qos='sensor',
                              node='recorder')
    graph.create_subscription('/commissioning/progress', 'std_msgs/msg/String', on_progress,
                              qos='latched', node='recorder')
    if setup is not None:
        setup(graph)
    try:
        while (sched.now_ns < max_seconds * NS
               and commissioning.phase in (Phase.WAITING, Phase.RUNNING)):
            sched.run_for(0.1)
        calibration = commissioning.result
        run['truth'] = (truth_errors(robot.sim, robot.visual, calibration, robot.size)
                        if calibration is not None else None)
    finally:
        robot.stop()
    error = commissioning.error
    if commissioning.phase in (Phase.WAITING, Phase.RUNNING):
        error = f'not done within {max_seconds} s of simulated time ({commissioning.phase.value})'
    run.update(calibration=calibration, error=error, sim_time=sched.now_ns / NS)
    return run


def truth_errors(sim, visual, calibration, size) -> dict:
    """The calibration against the simulator's truth (for reports and tests; no node reads it).

    Table and delay errors (m, s; None where not measured) and the 95th percentile of the
    error of table points placed through the fitted camera (m).
    """
    import numpy as np

    from sim2real_policy.keypoints import table_point_errors

    errors = table_point_errors(sim, visual, calibration.matrix, size)
    return {'table_error_m': (None if calibration.table_height is None
                              else calibration.table_height - sim.params.table_height),
            'table_point_error_m_p95': float(np.percentile(errors, 95)),
            'actuation_delay_error_s': (None if calibration.actuation_delay is None
                                        else calibration.actuation_delay
                                        - sim.params.action_delay)}

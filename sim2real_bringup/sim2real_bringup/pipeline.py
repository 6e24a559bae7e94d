"""The full stack in-process: camera -> policy -> 100 Hz control -> safety -> MuJoCo robot.

The very node classes the robot runs (``*/nodes/*_node.py``), each on a
:class:`~sim2real_bringup.runtime.node.GraphNode`, wired by the launch graph's remappings and
parameter files (``launch_graph.py``), on the deterministic scheduler: a run records the bag a
robot would. There are no twins here; what this module adds is what a runtime adds: the clock,
fault injection at the wire, and the operator's reset between episodes.

Determinism: everything runs on the simulated clock. Inference runs when the policy's timer
fires and its chunk is delivered ``simulated_inference_latency`` later (``config/sim.yaml``,
``inprocess_runtime``; or the injected fault latency): a latency *charged* on the simulated
clock, so bags are byte-identical for the same seed. The wall time each inference really took
is measured and kept aside (``Pipeline.wall_latencies``), never recorded.

Episodes: at the end of an episode (object held up for ``success_hold_time``, or
``episode_timeout``) the cell is reset as an operator would between trials -- a new world
with the stage at home, and the control, safety and policy nodes restarted (a restarted
safety node keeps its software-stop latch, as ``stop_state_file`` does on the robot) -- while
the supervisor (it counts failures), the camera, the logger and the recorder carry on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import json
from pathlib import Path
import tempfile
from typing import Callable

import numpy as np

from sim2real_bringup import config as cfgio
from sim2real_bringup import launch_graph as lg
from sim2real_bringup.nodes.calibration_node import PARAMETERS as CALIBRATION_PARAMETERS
from sim2real_bringup.nodes.collect_node import PARAMETERS as COLLECT_PARAMETERS
from sim2real_bringup.nodes.commissioning_node import PARAMETERS as COMMISSIONING_PARAMETERS
from sim2real_bringup.nodes.logger_node import LoggerNode
from sim2real_bringup.nodes.logger_node import PARAMETERS as LOGGER_PARAMETERS
from sim2real_bringup.runtime import Graph, Scheduler
from sim2real_bringup.runtime.node import GraphNode
from sim2real_policy.cell_calibration import calibrate_cell, SimCellRobot
from sim2real_policy.control import ControlConfig
from sim2real_policy.data import preprocessor as training_preprocessor
from sim2real_policy.keypoint_policy import load_policy
from sim2real_policy.keypoints import table_point_errors
from sim2real_policy.nodes.camera_node import CameraNode
from sim2real_policy.nodes.camera_node import PARAMETERS as CAMERA_PARAMETERS
from sim2real_policy.nodes.control_node import ControlNode
from sim2real_policy.nodes.control_node import PARAMETERS as CONTROL_PARAMETERS
from sim2real_policy.nodes.policy_node import PARAMETERS as POLICY_PARAMETERS
from sim2real_policy.nodes.policy_node import PolicyNode
from sim2real_policy.nodes.sim_robot_node import PARAMETERS as SIM_PARAMETERS
from sim2real_policy.nodes.sim_robot_node import SimRobotNode
from sim2real_policy.policy import model_digest
from sim2real_policy.sim.expert import ScriptedGrasp
from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.robot import GripperSim, HOME
from sim2real_safety import limits as safety_limits
from sim2real_safety.cell_file import CELL_PARAMETERS, CellCalibration, write_cell_file
from sim2real_safety.limits import SafetyLimits
from sim2real_safety.node_interface import NS, Param, ParameterError, resolve_parameters
from sim2real_safety.nodes.safety_node import SafetyNode
from sim2real_safety.nodes.supervisor_node import SupervisorNode
from sim2real_safety.software_stop import SoftwareStopLatch
from sim2real_safety.supervisor import SupervisorConfig

START_KEY = 'sim2real.start_ns'
CALIBRATIONS_KEY = 'sim2real.cell_calibrations'   # bag custom_data: one per episode (JSON)
RESET_TIME = 0.05  # s between two episodes (the operator's reset, compressed)
EPISODE_RESETS = ('restart', 'none')
# The in-process runtime's own parameters (config/sim.yaml, section inprocess_runtime).
RUNTIME_SECTION = 'inprocess_runtime'
RUNTIME_PARAMETERS = (
    Param('simulated_inference_latency', 0.03, 's charged on the simulated clock per '
          'inference (a model, not a measurement: the wall time is measured apart)',
          (0.0, 10.0)),
    Param('commission_table', True, "each episode's world is a new cell: the safety node's "
          'table floor follows the touch-off of its calibration (clearance unchanged)'),
    Param('commission_delay', True, "the control node's actuation_delay is the one its "
          "cell's calibration measured (kept as configured when it measured none)"),
)
# Each node of the in-process graph: its launch-graph entry and its parameter declarations.
NODE_PARAMETERS = {
    lg.SAFETY.executable: (*CELL_PARAMETERS, *safety_limits.parameters()),
    lg.SUPERVISOR.executable: SupervisorConfig.parameters(),
    lg.CONTROL.executable: (*CELL_PARAMETERS, *CONTROL_PARAMETERS),
    lg.CAMERA.executable: CAMERA_PARAMETERS,
    lg.POLICY.executable: POLICY_PARAMETERS,
    lg.SIM_ROBOT.executable: SIM_PARAMETERS,
    lg.LOGGER.executable: LOGGER_PARAMETERS,
    lg.COLLECT.executable: COLLECT_PARAMETERS,
    lg.CALIBRATION.executable: CALIBRATION_PARAMETERS,
    lg.COMMISSIONING.executable: COMMISSIONING_PARAMETERS,
}
SPECS = {spec.executable: spec for spec in (lg.SAFETY, lg.SUPERVISOR, lg.CONTROL, lg.CAMERA,
                                            lg.POLICY, lg.SIM_ROBOT, lg.LOGGER, lg.COLLECT,
                                            lg.CALIBRATION, lg.COMMISSIONING)}


def recorded_calibrations(text: str | None, bag) -> list:
    """The cell calibrations a run recorded (custom data :data:`CALIBRATIONS_KEY`), checked.

    A recorded calibration that is not one is a BagError naming the bag and the episode, never
    a cell commissioned from whatever it happens to say.
    """
    from sim2real_bringup.bag import BagError

    try:
        recorded = json.loads(text or '[]')
    except ValueError as exc:
        raise BagError(f'{bag}: recorded cell calibrations: {exc}') from None
    if not isinstance(recorded, list):
        raise BagError(f'{bag}: recorded cell calibrations: a list, got '
                       f'{type(recorded).__name__}')
    calibrations = []
    for episode, data in enumerate(recorded):
        try:
            calibrations.append(CellCalibration.from_dict(data))
        except (ValueError, TypeError) as exc:
            raise BagError(f'{bag}: episode {episode}: recorded cell calibration: {exc}'
                           ) from None
    return calibrations


@dataclass
class PipelineConfig:
    """Every node's parameters, from the suite's config files.

    Checked as the nodes check them: an unknown key or an out-of-range value is an error
    naming it.
    """

    params: dict
    runtime: dict
    safety: SafetyLimits
    supervisor: SupervisorConfig
    control: ControlConfig

    def graph_node(self, graph: Graph, spec: lg.NodeSpec, **extra) -> GraphNode:
        """A node interface for ``spec`` on ``graph``: its parameters with ``extra`` over them."""
        given = {k: v for k, v in self.params[spec.executable].items() if v is not None}
        given.update(extra)
        return GraphNode(graph, spec.executable, spec.remappings, given)

    @property
    def camera(self) -> dict:
        """camera_node's parameters."""
        return self.params['camera_node']

    @property
    def policy(self) -> dict:
        """policy_node's parameters."""
        return self.params['policy_node']

    @property
    def sim(self) -> dict:
        """sim_robot_node's parameters."""
        return self.params['sim_robot_node']

    @classmethod
    def load(cls, overrides: dict | None = None) -> 'PipelineConfig':
        """Read ``config/*.yaml``; ``overrides`` maps ``node_name`` -> {param: value}."""
        overrides = overrides or {}
        unknown = sorted(set(overrides) - set(NODE_PARAMETERS) - {RUNTIME_SECTION})
        if unknown:
            raise cfgio.ConfigError(f'no node named {unknown} in the in-process graph; nodes: '
                                    f'{sorted(NODE_PARAMETERS)}')
        params = {}
        try:
            for name, declared in NODE_PARAMETERS.items():
                given = cfgio.node_parameters(SPECS[name].config, name)
                given.update(overrides.get(name, {}))
                params[name] = resolve_parameters(name, declared, given)
            given = cfgio.node_parameters('sim.yaml', RUNTIME_SECTION)
            given.update(overrides.get(RUNTIME_SECTION, {}))
            runtime = resolve_parameters(RUNTIME_SECTION, RUNTIME_PARAMETERS, given)
        except ParameterError as exc:
            raise cfgio.ConfigError(str(exc)) from None
        # the limits and the controller as configured: a cell file changes them per node
        node_only = {'stop_state_file', 'realtime_priority', *(p.name for p in CELL_PARAMETERS)}
        safety = {k: v for k, v in params['safety_node'].items()
                  if v is not None and k not in node_only}
        return cls(params=params, runtime=runtime,
                   safety=SafetyLimits.from_parameters(safety),
                   supervisor=SupervisorConfig(**params['supervisor_node']),
                   control=ControlConfig(**{k: v for k, v in params['control_node'].items()
                                            if k not in node_only}))


@dataclass
class Faults:
    """Fault injection switches (the drills flip them mid-run)."""

    camera_unplugged: bool = False
    camera_frozen: bool = False
    inference_latency: float | None = None   # s, replaces the simulated latency
    policy_raises: bool = False
    gripper_stuck: bool = False
    weak_grip: bool = False                  # next episodes: slippery pads, a feeble gripper
    grasp_offset: tuple | None = None        # next episodes: the expert misjudges the object
                                             # by (dx, dy) m (a policy failure, injected)


@dataclass
class EpisodeRecord:
    """What happened in one episode."""

    index: int
    seed: int
    success: bool
    duration: float
    lift_height: float
    params: dict = field(repr=False)
    regrasps: int = 0          # empty grasps the policy retried (a keypoint policy counts them)


class ExpertBackend:
    """Privileged scripted grasp as a policy (for pipeline tests and drills, not deployment)."""

    model_id = 'scripted-expert'

    def __init__(self, horizon: int = 16, period: float = 0.05):
        self.horizon = horizon
        self.period = period
        self.plan: ScriptedGrasp | None = None
        self.start_ns = 0

    def start_episode(self, sim: GripperSim, start_pose, now_ns: int, offset=None) -> None:
        """Plan from the object's true pose (shifted by ``offset`` to inject a failure)."""
        position = sim.object_position()
        if offset is not None:
            position[:2] += np.asarray(offset, float)
        self.plan = ScriptedGrasp(start_pose, position, sim.object_yaw(),
                                  sim.params.object_shape)
        self.start_ns = now_ns

    def predict(self, image, proprio, preprocessed: bool = True,
                stamp_ns: int | None = None) -> np.ndarray:
        """The plan's next ``horizon`` targets from the observation time."""
        return self.plan.chunk((stamp_ns - self.start_ns) / NS, self.horizon, self.period)


class _FaultyRunner:
    """A policy runner that raises while ``faults.policy_raises`` (the drills' broken model)."""

    def __init__(self, runner, faults: Faults):
        self.runner = runner
        self.faults = faults
        self.model_id = runner.model_id
        self.meta = getattr(runner, 'meta', None)

    def predict(self, *args, **kwargs):
        if self.faults.policy_raises:
            raise RuntimeError('injected policy failure')
        return self.runner.predict(*args, **kwargs)

    def __getattr__(self, name):
        # everything but predict is the policy's own (reset, calibrate, regrasps, ...)
        return getattr(self.runner, name)


def load_runner(config: PipelineConfig, policy='bundled', backend: str | None = None):
    """The policy node's runner for a model path (or ``bundled``), checked against the config."""
    from sim2real_policy.models import resolve_model

    pcfg = config.policy
    path = resolve_model(policy if policy != 'bundled' else pcfg['model_path'])
    return load_policy(path, backend or pcfg['backend'], expected={
        'action_names': list(pcfg['expected_action_names']),
        'horizon': pcfg['expected_horizon'],
        'action_period': pcfg['expected_action_period']})


class Pipeline:
    """The whole stack on one scheduler; episodes drawn from ``episode_params``."""

    def __init__(self, config: PipelineConfig, episode_params: Callable[[int], SimParams],
                 policy='bundled', backend: str | None = None, start_ns: int = 0,
                 faults: Faults | None = None, robot: Callable | None = None,
                 remaps: dict | None = None, episode_reset: str = 'restart',
                 control: bool = True, recorded_calibrations=None, commissioned=None):
        # remaps: node name -> ((name, topic), ...) over the launch graph's (collection puts
        # collect_node between the controller and the safety node: launch_graph.COLLECT_REMAPS)
        self.remaps = {node: dict(pairs) for node, pairs in (remaps or {}).items()}
        # episode_reset: 'restart' (the in-process cell: a new world at home, the control,
        # safety and policy nodes restarted) or 'none' (nodes run on across episodes, as on
        # the robot; a replay of a robot's bag)
        if episode_reset not in EPISODE_RESETS:
            raise ValueError(f'episode_reset must be one of {EPISODE_RESETS}, '
                             f'got {episode_reset!r}')
        self.episode_reset = episode_reset
        self.run_control = control  # False: proposals come from elsewhere (a bag)
        # called with (index, params) when an episode's world is ready, and with the
        # GraspResult about to be published (they may return a replacement) at its end
        self.episode_start_hooks: list[Callable] = []
        self.result_hooks: list[Callable] = []
        self.config = config
        self.sched = Scheduler(start_ns)
        self.graph = Graph(self.sched)
        # where its clock started: a replay starts there too, not at 0 (an epoch-stamped
        # run would otherwise be simulated from 1970 on)
        self.graph.custom_data.update({'sim2real.runtime': 'inprocess',
                                       'sim2real.episode_reset': episode_reset,
                                       START_KEY: str(int(start_ns))})
        self.faults = faults or Faults()
        self.episode_params = episode_params
        self.records: list[EpisodeRecord] = []
        self.latch = SoftwareStopLatch()
        self.episode_index = -1
        self._stop_after: int | None = None
        self._wall_latencies: list[float] = []
        self.graph.interceptors['/camera/image_raw'] = self._camera_faults
        self._frozen_frame = None
        self.calibrations: list = []   # the cell calibration of each episode (keypoint policy)
        self.recorded_calibrations: list = list(recorded_calibrations or ())
        # commissioned(index, params) -> CellCalibration: each episode's cell file as it was
        # commissioned before (a drill that bumps the camera afterwards); None: commission now
        self.commissioned = commissioned
        # this episode's cell file (written by _commission_cell; the nodes load it)
        self._cells = tempfile.TemporaryDirectory(prefix='sim2real-cells-')
        self._cell_file = ''
        pcfg = config.policy
        self.expert: ExpertBackend | None = None
        if policy in ('recorded', 'expert'):
            # recorded: the robot (a bag) publishes the recorded chunks itself
            if policy == 'expert':
                self.expert = ExpertBackend(pcfg['expected_horizon'],
                                            pcfg['expected_action_period'])
            runner = self.expert
            preprocessor = training_preprocessor()  # what every trained model declares
        else:
            # a path, or a runner already loaded (a rollout worker reuses one across episodes)
            runner = load_runner(config, policy, backend) \
                if isinstance(policy, (str, Path)) else policy
            preprocessor = runner.preprocessor
        self._loaded_runner = runner   # the policy itself, its detector commissions cells
        self.runner = _FaultyRunner(runner, self.faults) if runner is not None else None
        # what a report says the run was made with (content hashes, not names)
        model_path = getattr(runner, 'path', None)
        self.graph.custom_data.update({
            'sim2real.config_sha256': cfgio.config_digest(),
            'sim2real.policy_sha256': model_digest(model_path) if model_path else 'no model file'})
        if robot is not None:
            self.robot = robot(self)
        else:
            self.robot = SimRobotNode(self.node(lg.SIM_ROBOT, publish_clock=False),
                                      faults=self.faults, start=False)
            self.robot.on_episode_end = self.end_episode
        self.camera = CameraNode(self.node(lg.CAMERA), preprocessor)
        self.supervisor = SupervisorNode(self.node(lg.SUPERVISOR))
        self.logger = LoggerNode(self.node(lg.LOGGER))
        self.policy: PolicyNode | None = None
        self.control: ControlNode | None = None
        self.safety: SafetyNode | None = None
        self._start_episode()

    def _commission_cell(self) -> None:
        """Commission the new world for a policy that needs it: a cell file the nodes load.

        Every episode's world is a new cell (other camera, other table, other delay), so the
        procedure of :mod:`cell_calibration` runs on it before the nodes start, driving the
        robot the way its driver would (a replay uses the recording run's calibration of the
        episode). The result is written as a cell file that the policy, control and safety
        nodes load through ``calibration_file``, as on a robot. ``calibrations`` keeps each.
        """
        self._cell_file = ''
        detector = getattr(self._loaded_runner, 'detector', None)
        if detector is None or not hasattr(self._loaded_runner, 'calibrate'):
            return
        sim = getattr(self.robot, 'sim', None)
        if self.commissioned is not None:
            calibration = self.commissioned(self.episode_index, sim.params)
        elif sim is None:
            if self.episode_index >= len(self.recorded_calibrations):
                return
            calibration = self.recorded_calibrations[self.episode_index]
        else:
            robot = SimCellRobot(sim, self.robot.visual, self.robot.size)
            calibration = calibrate_cell(robot, detector,
                                         cell=f'sim2real sim, seed {sim.params.seed}')
            # Checked against the simulator's truth for the report only; no node reads it.
            errors = table_point_errors(sim, self.robot.visual, calibration.matrix,
                                        self.robot.size)
            calibration.extra['checked_against_truth'] = {
                'table_error_m': (None if calibration.table_height is None
                                  else calibration.table_height - sim.params.table_height),
                'table_point_error_m_p95': float(np.percentile(errors, 95)),
                'actuation_delay_error_s': (None if calibration.actuation_delay is None
                                            else calibration.actuation_delay
                                            - sim.params.action_delay)}
            self.calibrations.append(calibration)
            # recorded with the bag, so a replay re-runs the policy with the same calibration
            self.graph.custom_data[CALIBRATIONS_KEY] = json.dumps(
                [dict(c.to_dict(), extra={}) for c in self.calibrations])
        path = Path(self._cells.name) / f'cell-{self.episode_index:05d}.yaml'
        write_cell_file(calibration, path, replace=True)
        self._cell_file = str(path)

    def _cell(self, use: bool = True) -> dict:
        """A node's cell parameters: this episode's cell file, where ``use`` allows it."""
        return {'calibration_file': self._cell_file} if use and self._cell_file else {}

    def node(self, spec: lg.NodeSpec, **parameters) -> GraphNode:
        """A node interface for ``spec``: its launch-graph remappings and its parameters."""
        remappings = dict(spec.remappings)
        remappings.update(self.remaps.get(spec.executable, {}))
        given = dict(self.config.params.get(spec.executable, {}))
        given = {k: v for k, v in given.items() if v is not None}
        given.update(parameters)
        return GraphNode(self.graph, spec.executable, remappings.items(), given,
                         charge_s=self._inference_charge)

    def _inference_charge(self) -> float:
        latency = self.faults.inference_latency
        return self.config.runtime['simulated_inference_latency'] if latency is None \
            else latency

    def _camera_faults(self, msg):
        """The wire from the camera driver: unplugged (nothing), frozen (the same frame)."""
        if self.faults.camera_unplugged:
            return None
        if self.faults.camera_frozen:
            self._frozen_frame = self._frozen_frame or msg
            return self._frozen_frame
        self._frozen_frame = None
        return msg

    @property
    def wall_latencies(self) -> list[float]:
        """Wall time of every inference of the run (s, measured)."""
        current = self.policy.wall_latencies if self.policy is not None else []
        return self._wall_latencies + current

    def _start_episode(self) -> None:
        self.episode_index += 1
        params = self.episode_params(self.episode_index)
        if self.faults.weak_grip:
            params = params.replace(pad_friction=0.0, gripper_strength=0.05)
        self.robot.start(params)
        self._commission_cell()
        if self.episode_reset == 'none' and self.safety is not None:
            if self._cell_file:   # a replayed robot's policy runs on: the cell is the same
                self._loaded_runner.calibrate(self.recorded_calibrations[self.episode_index])
            return  # the nodes run on across episodes
        # The operator's reset: these nodes start afresh on the new world.
        # a robot's control node runs on across episodes: its delay estimate carries over
        previous = getattr(self.control, 'delay_estimator', None)
        runtime = self.config.runtime
        self.control = ControlNode(self.node(lg.CONTROL, **self._cell(
            runtime['commission_delay'])), previous) if self.run_control else None
        self.safety = SafetyNode(self.node(lg.SAFETY, **self._cell(runtime['commission_table'])),
                                 latch=self.latch)
        if self.runner is not None:
            if self.expert is not None:
                self.expert.start_episode(self.robot.sim, HOME, self.sched.now_ns,
                                          self.faults.grasp_offset)
            self.policy = PolicyNode(self.node(lg.POLICY, **self._cell()), runner=self.runner)
        for hook in self.episode_start_hooks:
            hook(self.episode_index, params)

    def _pause_for_reset(self) -> None:
        """Between episodes: no world, and the per-episode nodes are stopped.

        Nothing in flight reaches the next world.
        """
        self.robot.stop()
        for running in (self.control, self.safety, self.policy):
            if running is not None:
                running.node.destroy()
        if self.policy is not None:
            self._wall_latencies.extend(self.policy.wall_latencies)
            self.policy = None

    def end_episode(self, success: bool) -> None:
        """Record the outcome, publish it, start the next episode (from the robot's timer)."""
        result = self.robot.result_msg(success)
        sim = self.robot.sim
        self.records.append(EpisodeRecord(self.episode_index, sim.params.seed, bool(success),
                                          result.duration, result.lift_height,
                                          sim.params.to_dict(),
                                          int(getattr(self._loaded_runner, 'regrasps', 0))))
        self.finish_episode(result)

    def finish_episode(self, result) -> None:
        """Publish the outcome, pause for the reset, start the next episode after it."""
        for hook in self.result_hooks:
            result = hook(result)
        self.robot.result_pub.publish(result)
        if self.episode_reset == 'none':
            return
        self._pause_for_reset()
        if self._stop_after is not None and len(self.records) >= self._stop_after:
            return
        self.sched.call_later(RESET_TIME, self._start_episode)

    def run_episodes(self, count: int, progress=None, max_seconds: float | None = None):
        """Run until ``count`` episodes have ended (or ``max_seconds`` of simulated time)."""
        self._stop_after = len(self.records) + count
        limit = max_seconds or count * (float(self.config.sim['episode_timeout']) + 5.0)
        deadline = self.sched.now_ns + int(limit * NS)
        reported = len(self.records)
        while (len(self.records) < self._stop_after and self.sched.now_ns < deadline
               and not self.finished):
            self.sched.run_for(0.1)
            if progress and len(self.records) > reported:
                reported = len(self.records)
                progress(self.records[-1], reported, count)
        return self.records

    def run_for(self, seconds: float) -> None:
        """Advance simulated time; episodes keep rolling (a paused run resumes)."""
        self._stop_after = None
        if not self.robot.active:
            self.sched.call_later(RESET_TIME, self._start_episode)
        self.sched.run_for(seconds)

    @property
    def finished(self) -> bool:
        """True when the robot has nothing more to give (the end of a replayed bag)."""
        return getattr(self.robot, 'finished', False)

    def close(self) -> None:
        """Release the renderer and this run's cell files."""
        self.robot.stop()
        self._cells.cleanup()

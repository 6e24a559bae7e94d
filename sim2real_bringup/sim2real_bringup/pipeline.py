"""The full stack in-process: camera -> policy -> 100 Hz control -> safety -> MuJoCo robot.

The same cores as the ROS nodes, wired on the deterministic scheduler with the suite's topic
names, so a run records the same bag a robot would. Each ``*Node`` class here is the in-process
twin of a ROS node: it subscribes, calls its core and publishes, nothing more.

Determinism: everything runs on the simulated clock. Inference is computed when the policy's
timer fires and its chunk is delivered ``simulated_inference_latency`` later (or the injected
fault latency), so bags are byte-identical for the same seed; the wall time each inference
really took is kept aside (``PolicyNode.wall_latencies``) and reported, never recorded.

Episodes: at the end of an episode (object held up for ``success_hold_time``, or
``episode_timeout``) the world is reset as an operator would between trials -- new object,
stage back home, controller and safety filter re-seeded from the new state -- while the
supervisor (it counts failures), the software-stop latch and the recorder carry on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math
import time
from typing import Callable

import numpy as np

from sim2real_bringup import config as cfgio
from sim2real_bringup import convert
from sim2real_bringup import interfaces as ifc
from sim2real_bringup.runtime import Graph, Scheduler
from sim2real_bringup.topics import BY_NAME
from sim2real_policy.camera import CameraHealth, ImagePreprocessor
from sim2real_policy.control import Chunk, ControlConfig, Controller
from sim2real_policy.data import preprocessor as training_preprocessor
from sim2real_policy.policy import PolicyRunner
from sim2real_policy.sim.expert import ScriptedGrasp
from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.randomization import VisualRandomizer
from sim2real_policy.sim.robot import GripperSim, HOME
from sim2real_safety.filter import SafetyFilter
from sim2real_safety.limits import SafetyLimits, Verdict
from sim2real_safety.software_stop import SoftwareStopLatch
from sim2real_safety.supervisor import Mode, Supervisor, SupervisorConfig

NS = 1_000_000_000
M = 'sim2real_msgs/msg/'
RESET_TIME = 0.05  # s between two episodes (the operator's reset, compressed)
SOURCE_SAFETY = 7  # CartesianCommand.SOURCE_SAFETY (checked against the .msg by a test)


def _t(name: str) -> str:
    return BY_NAME[name].typename


@dataclass
class PipelineConfig:
    """Every node's parameters, from the suite's config files."""

    safety: SafetyLimits
    supervisor: SupervisorConfig
    control: ControlConfig
    camera: dict
    policy: dict
    sim: dict

    @classmethod
    def load(cls, overrides: dict | None = None) -> 'PipelineConfig':
        """Read ``config/*.yaml``; ``overrides`` maps ``node_name`` -> {param: value}."""
        overrides = overrides or {}

        def params(file, node):
            values = cfgio.node_parameters(file, node)
            values.update(overrides.get(node, {}))
            return values

        safety = params('safety.yaml', 'safety_node')
        safety.pop('frame_id', None)
        safety.pop('stop_state_file', None)
        return cls(
            safety=SafetyLimits.from_parameters(safety),
            supervisor=SupervisorConfig.from_parameters(params('supervisor.yaml',
                                                               'supervisor_node')),
            control=ControlConfig.from_parameters(params('control.yaml', 'control_node')),
            camera=params('camera.yaml', 'camera_node'),
            policy=params('policy.yaml', 'policy_node'),
            sim=params('sim.yaml', 'sim_robot_node'))


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

    def predict(self, stamp_ns: int) -> np.ndarray:
        """The plan's next ``horizon`` targets from the observation time."""
        return self.plan.chunk((stamp_ns - self.start_ns) / NS, self.horizon, self.period)


class SimRobotNode:
    """The MuJoCo robot: commands in, state, joint states and camera frames out."""

    def __init__(self, pipe: 'Pipeline'):
        self.pipe = pipe
        graph, sched, cfg = pipe.graph, pipe.sched, pipe.config.sim
        self.state_pub = graph.create_publisher('/robot/state', _t('/robot/state'))
        self.joint_pub = graph.create_publisher('/robot/joint_states',
                                                _t('/robot/joint_states'))
        self.image_pub = graph.create_publisher('/camera/image_raw', _t('/camera/image_raw'))
        self.result_pub = graph.create_publisher('/episode/result', _t('/episode/result'))
        graph.create_subscription('/safety/command', _t('/safety/command'), self.on_command)
        self.state_period = 1.0 / float(cfg['state_rate'])
        self.size = (int(cfg['image_width']), int(cfg['image_height']))
        sched.create_timer(self.state_period, self.on_state_timer, 'sim_state')
        sched.create_timer(1.0 / float(cfg['camera_rate']), self.on_camera_timer, 'sim_camera')
        self.sim: GripperSim | None = None
        self.visual: VisualRandomizer | None = None
        self.lifted_since_ns: int | None = None
        self.episode_start_ns = 0

    def start(self, params: SimParams) -> None:
        """A new episode: a fresh world with the stage at home."""
        if self.sim is not None:
            self.sim.close()
        self.sim = GripperSim(params)
        self.sim.stuck_gripper = self.pipe.faults.gripper_stuck
        self.visual = VisualRandomizer(params.image, params.seed)
        self.lifted_since_ns = None
        self.episode_start_ns = self.pipe.sched.now_ns

    def stop(self) -> None:
        """End of an episode: the world is gone until the next one starts."""
        if self.sim is not None:
            self.sim.close()
        self.sim = None

    @property
    def active(self) -> bool:
        """True while an episode's world exists."""
        return self.sim is not None

    def on_command(self, msg) -> None:
        """The safe command is the only command the robot takes."""
        if self.sim is not None:
            self.sim.command(convert.command_pose(msg))

    def on_state_timer(self) -> None:
        """Step the physics one state period and report."""
        sim, now = self.sim, self.pipe.sched.now_ns
        if sim is None:
            return
        sim.stuck_gripper = self.pipe.faults.gripper_stuck
        sim.step(self.state_period)
        # A jammed gripper is reported by its driver's fault flag, as a Robotiq does.
        self.state_pub.publish(convert.robot_state_msg(sim.robot_state(), now,
                                                       fault=self.pipe.faults.gripper_stuck))
        names, positions, velocities = sim.joint_state()
        self.joint_pub.publish(convert.joint_state_msg(names, positions, velocities, now,
                                                       sim.joint_efforts()))
        self._check_episode(now)

    def on_camera_timer(self) -> None:
        """Render a frame (with the episode's image randomization)."""
        if self.sim is None:
            return
        frame = self.visual.apply(self.sim.render(*self.size))
        self.image_pub.publish(convert.image_msg(frame, self.pipe.sched.now_ns))

    def _check_episode(self, now: int) -> None:
        sim = self.sim
        cfg = self.pipe.config.sim
        held = sim.object_lifted() and sim.object_in_gripper()
        if held:
            if self.lifted_since_ns is None:
                self.lifted_since_ns = now
            if now - self.lifted_since_ns >= float(cfg['success_hold_time']) * NS:
                self.pipe.end_episode(True)
                return
        else:
            self.lifted_since_ns = None
        if now - self.episode_start_ns >= float(cfg['episode_timeout']) * NS:
            self.pipe.end_episode(False)


class CameraNode:
    """Frame health and preprocessing (crop, resize, colour order from the model)."""

    def __init__(self, pipe: 'Pipeline', preprocessor: ImagePreprocessor):
        self.pipe = pipe
        graph, cfg = pipe.graph, pipe.config.camera
        self.pre = preprocessor
        self.health = CameraHealth(frozen_threshold=float(cfg['frozen_threshold']))
        self.image_pub = graph.create_publisher('/camera/image_processed',
                                                _t('/camera/image_processed'))
        self.health_pub = graph.create_publisher('/camera/health', _t('/camera/health'))
        graph.create_subscription('/camera/image_raw', _t('/camera/image_raw'), self.on_image)
        pipe.sched.create_timer(float(cfg['health_period']), self.on_health_timer,
                                'camera_health')
        self.camera_timeout = float(cfg['camera_timeout'])
        self.frozen_timeout = float(cfg['frozen_timeout'])
        self._frozen_msg = None

    def on_image(self, msg) -> None:
        """A raw frame from the driver (or the fault injector's idea of one)."""
        faults = self.pipe.faults
        if faults.camera_unplugged:
            return
        if faults.camera_frozen:
            self._frozen_msg = self._frozen_msg or msg
            msg = self._frozen_msg
        else:
            self._frozen_msg = None
        now = self.pipe.sched.now_ns
        frame = convert.image_array(msg)
        self.health.on_frame(frame, now)
        self.image_pub.publish(convert.image_msg(self.pre.image(frame), now))

    def on_health_timer(self) -> None:
        """Publish CameraHealth (from the first frame on; before it, silence is the signal)."""
        now, h = self.pipe.sched.now_ns, self.health
        if h.last_frame_ns is None:
            return
        healthy = h.healthy(now, self.camera_timeout, self.frozen_timeout)
        problem = h.last_error
        if not healthy:
            problem = (f'frozen for {h.frozen_duration(now):.2f} s'
                       if h.frozen_duration(now) > self.frozen_timeout
                       else f'no frame for {h.frame_age(now):.2f} s')
        self.health_pub.publish(ifc.make(
            _t('/camera/health'), header=ifc.header(now, 'camera_optical_frame'),
            frame_age=h.frame_age(now), frame_rate=h.frame_rate(),
            frozen_score=h.frozen_score, frozen_duration=h.frozen_duration(now),
            error_count=h.error_count, last_error=problem, healthy=healthy))


class PolicyNode:
    """Inference on the latest image and state; chunks delivered after the latency."""

    def __init__(self, pipe: 'Pipeline', runner, action_names):
        self.pipe = pipe
        graph, cfg = pipe.graph, pipe.config.policy
        self.runner = runner
        self.action_names = list(action_names)
        self.chunk_pub = graph.create_publisher('/policy/action_chunk',
                                                _t('/policy/action_chunk'))
        self.health_pub = graph.create_publisher('/policy/health', _t('/policy/health'))
        graph.create_subscription('/camera/image_processed', _t('/camera/image_processed'),
                                  self.on_image)
        graph.create_subscription('/robot/state', _t('/robot/state'), self.on_state)
        pipe.sched.create_timer(float(cfg['inference_period']), self.on_timer, 'policy')
        self.latency = float(pipe.config.sim['simulated_inference_latency'])
        self.image = None
        self.image_stamp_ns = 0
        self.proprio = None
        self.busy = False
        self.epoch = 0
        self.sequence = 0
        self.errors = 0
        self.last_error = ''
        self.last_chunk_ns: int | None = None
        self.wall_latencies: list[float] = []

    def reset(self) -> None:
        """A new episode: forget observations; results in flight are dropped."""
        self.epoch += 1
        self.image = None
        self.proprio = None
        self.busy = False

    def on_image(self, msg) -> None:
        """The newest processed frame (kept: the last good image when the camera fails)."""
        self.image = convert.image_array(msg)
        self.image_stamp_ns = ifc.ns_from_time(msg.header.stamp)

    def on_state(self, msg) -> None:
        """The newest proprioception."""
        self.proprio = convert.proprio(msg)

    def on_timer(self) -> None:
        """Start an inference unless one is still running."""
        if self.busy or self.image is None or self.proprio is None:
            return
        now = self.pipe.sched.now_ns
        faults = self.pipe.faults
        latency = faults.inference_latency if faults.inference_latency is not None \
            else self.latency
        stamp = self.image_stamp_ns
        started = time.perf_counter()
        try:
            if faults.policy_raises:
                raise RuntimeError('injected policy failure')
            if isinstance(self.runner, ExpertBackend):
                actions = self.runner.predict(stamp)
            else:
                actions = self.runner.predict(self.image, self.proprio, preprocessed=True)
        except Exception as exc:  # a failing policy is a health fault, not a crash
            self.errors += 1
            self.last_error = f'{type(exc).__name__}: {exc}'
            self._publish_health(now, math.nan, healthy=False)
            return
        self.wall_latencies.append(time.perf_counter() - started)
        self.busy = True
        epoch = self.epoch
        self.pipe.sched.call_later(latency, lambda: self._deliver(epoch, actions, stamp,
                                                                  latency))

    def _deliver(self, epoch: int, actions, stamp: int, latency: float) -> None:
        if epoch != self.epoch:
            return
        self.busy = False
        now = self.pipe.sched.now_ns
        self.sequence += 1
        meta = self.pipe.action_meta
        self.chunk_pub.publish(convert.chunk_msg(
            actions, stamp, self.runner.model_id, self.sequence, meta['period'],
            meta['start_offset'], latency, self.action_names))
        self.last_chunk_ns = now
        self._publish_health(now, latency, healthy=True)

    def _publish_health(self, now: int, latency: float, healthy: bool) -> None:
        chunk_age = math.inf if self.last_chunk_ns is None else (now - self.last_chunk_ns) / NS
        self.health_pub.publish(ifc.make(
            _t('/policy/health'), header=ifc.header(now), model_id=self.runner.model_id,
            inference_latency=float(latency), chunk_age=float(chunk_age),
            error_count=self.errors, last_error=self.last_error, healthy=healthy))


class ControlNode:
    """The 100 Hz loop: proposals and diagnostics."""

    def __init__(self, pipe: 'Pipeline'):
        self.pipe = pipe
        graph = pipe.graph
        self.cmd_pub = graph.create_publisher('/control/proposed_command',
                                              _t('/control/proposed_command'))
        self.diag_pub = graph.create_publisher('/control/diagnostics',
                                               _t('/control/diagnostics'))
        graph.create_subscription('/policy/action_chunk', _t('/policy/action_chunk'),
                                  self.on_chunk)
        graph.create_subscription('/supervisor/state', _t('/supervisor/state'), self.on_mode)
        pipe.sched.create_timer(pipe.config.control.control_period, self.on_tick, 'control')
        self.core: Controller | None = None
        self._mode = (Mode.NORMAL, 0)

    def reset(self, pose) -> None:
        """A new episode: a fresh controller at the new state."""
        self.core = Controller(self.pipe.config.control, pose)
        self.core.on_mode(self._mode[0], self._mode[1], self.pipe.sched.now_ns)

    def on_chunk(self, msg) -> None:
        """Align and keep a chunk."""
        if self.core is None:
            return
        now = self.pipe.sched.now_ns
        self.core.on_chunk(Chunk(ifc.ns_from_time(msg.header.stamp), convert.chunk_actions(msg),
                                 ifc.ns_from_time(msg.action_period) / NS,
                                 ifc.ns_from_time(msg.start_offset) / NS, msg.inference_latency,
                                 msg.sequence, now), now)

    def on_mode(self, msg) -> None:
        """Obey the supervisor."""
        self._mode = (Mode(msg.mode), ifc.ns_from_time(msg.mode_since))
        if self.core is not None:
            self.core.on_mode(self._mode[0], self._mode[1], self.pipe.sched.now_ns)

    def on_tick(self) -> None:
        """One control tick."""
        if self.core is None:
            return
        now = self.pipe.sched.now_ns
        out = self.core.tick(now)
        self.cmd_pub.publish(convert.command_msg(out.command, now, out.source))
        self.diag_pub.publish(ifc.make(
            _t('/control/diagnostics'), header=ifc.header(now), tick=out.tick,
            period=float(out.period), jitter=float(out.jitter), chunk_age=float(out.chunk_age),
            latency=float(out.latency), command_source=out.source,
            deadline_misses=out.deadline_misses, mode=out.mode))


class SafetyNode:
    """The safety filter between the controller and the robot."""

    def __init__(self, pipe: 'Pipeline', latch: SoftwareStopLatch):
        self.pipe = pipe
        graph = pipe.graph
        self.latch = latch
        self.cmd_pub = graph.create_publisher('/safety/command', _t('/safety/command'))
        self.status_pub = graph.create_publisher('/safety/status', _t('/safety/status'))
        graph.create_subscription(pipe.proposal_topic, _t('/control/proposed_command'),
                                  self.on_proposal)
        graph.create_subscription('/robot/state', _t('/robot/state'), self.on_state)
        graph.create_subscription('/robot/joint_states', _t('/robot/joint_states'),
                                  self.on_joints)
        graph.create_subscription('/supervisor/state', _t('/supervisor/state'),
                                  self.on_heartbeat)
        pipe.sched.create_timer(pipe.config.safety.control_period, self.on_watchdog, 'safety')
        self.core = SafetyFilter(pipe.config.safety, latch)
        self.paused = False
        self._heartbeat_ns: int | None = None

    def pause(self) -> None:
        """Between episodes: nothing in or out (stale messages must not seed the next world)."""
        self.paused = True

    def reset(self) -> None:
        """A new episode: a filter that seeds from the new state (the latch carries on)."""
        self.core = SafetyFilter(self.pipe.config.safety, self.latch)
        if self._heartbeat_ns is not None:
            self.core.supervisor_heartbeat(self._heartbeat_ns)
        self.paused = False

    def on_heartbeat(self, msg) -> None:
        """Every supervisor state is a heartbeat."""
        self._heartbeat_ns = self.pipe.sched.now_ns
        if not self.paused:
            self.core.supervisor_heartbeat(self._heartbeat_ns)

    def on_proposal(self, msg) -> None:
        """Check and forward."""
        if self.paused:
            return
        now = self.pipe.sched.now_ns
        self.publish(self.core.check(convert.command_pose(msg),
                                     ifc.ns_from_time(msg.header.stamp), now), msg.source)

    def on_state(self, msg) -> None:
        """Measured pose."""
        if not self.paused:
            self.core.update_robot_state((msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width),
                                         self.pipe.sched.now_ns)

    def on_joints(self, msg) -> None:
        """Joint limit monitoring."""
        if not self.paused:
            self.core.update_joint_state(msg.name, msg.position, msg.velocity,
                                         self.pipe.sched.now_ns)

    def on_watchdog(self) -> None:
        """Holds when the proposals stop."""
        if self.paused:
            return
        decision = self.core.tick(self.pipe.sched.now_ns)
        if decision is not None:
            self.publish(decision, SOURCE_SAFETY)

    def publish(self, decision, source: int) -> None:
        """Safe command and status."""
        now = self.pipe.sched.now_ns
        if decision.command is not None:
            passed = decision.verdict in (Verdict.PASS, Verdict.SCALED, Verdict.CLAMPED)
            self.cmd_pub.publish(convert.command_msg(decision.command, now,
                                                     source if passed else SOURCE_SAFETY))
        violation = ifc.message_class(M + 'ConstraintViolation')
        self.status_pub.publish(ifc.make(
            _t('/safety/status'), header=ifc.header(now, 'base_link'),
            verdict=int(decision.verdict),
            violations=[violation(constraint=v.constraint, field=v.field, value=float(v.value),
                                  limit=float(v.limit), reaction=int(v.reaction))
                        for v in decision.violations],
            software_stop_active=self.core.stop_active,
            software_stop_cause=self.latch.cause,
            supervisor_alive=self.core.supervisor_alive(now),
            command_age=float(decision.command_age), checked_count=self.core.checked_count))


class SupervisorNode:
    """Degraded modes from every health input; the heartbeat."""

    def __init__(self, pipe: 'Pipeline'):
        self.pipe = pipe
        graph, now = pipe.graph, pipe.sched.now_ns
        self.core = Supervisor(pipe.config.supervisor, start_ns=now)
        self.pub = graph.create_publisher('/supervisor/state', _t('/supervisor/state'))
        subs = (
            ('/camera/health', lambda m: self.core.on_camera_health(
                m.healthy, m.frame_age, m.frozen_duration, self._now(), m.last_error)),
            ('/policy/health', lambda m: self.core.on_policy_health(
                m.healthy, m.inference_latency, m.chunk_age, self._now(), m.last_error)),
            ('/robot/state', lambda m: self.core.on_robot_state(
                m.gripper_width, m.gripper_effort, m.gripper_fault, self._now())),
            ('/safety/command', lambda m: self.core.on_command(m.gripper_width, self._now())),
            ('/control/diagnostics', lambda m: self.core.on_control(self._now())),
            ('/safety/status', lambda m: self.core.on_safety_status(
                m.software_stop_active, m.software_stop_cause, self._now())),
            ('/episode/result', lambda m: self.core.on_grasp_result(m.success, self._now())),
        )
        for topic, callback in subs:
            graph.create_subscription(topic, _t(topic), callback)
        pipe.sched.create_timer(0.02, self.on_update, 'supervisor_update')
        pipe.sched.create_timer(pipe.config.supervisor.heartbeat_period, self.publish,
                                'supervisor_heartbeat')
        pipe.sched.call_later(0.0, self.publish)  # the state is there from the start

    def _now(self) -> int:
        return self.pipe.sched.now_ns

    def on_update(self) -> None:
        """Evaluate the rules; publish at once on a transition."""
        if self.core.update(self._now()) is not None:
            self.publish()

    def publish(self) -> None:
        """The mode (latched in ROS; here every subscriber gets every message anyway)."""
        c = self.core
        self.pub.publish(ifc.make(
            _t('/supervisor/state'), header=ifc.header(self._now()), mode=int(c.mode),
            previous_mode=int(c.previous_mode), reason=c.reason,
            mode_since=ifc.time_from_ns(c.mode_since_ns),
            consecutive_failures=c.consecutive_failures, autonomy_enabled=c.autonomy_enabled))


class Pipeline:
    """The whole stack on one scheduler; episodes drawn from ``episode_params``."""

    def __init__(self, config: PipelineConfig, episode_params: Callable[[int], SimParams],
                 policy: str = 'bundled', backend: str | None = None, start_ns: int = 0,
                 faults: Faults | None = None, robot: Callable | None = None,
                 proposal_topic: str = '/control/proposed_command'):
        # proposal_topic: what the safety node filters (collection puts an arbiter between)
        self.proposal_topic = proposal_topic
        # called with (index, params) when an episode's world is ready, and with the
        # GraspResult about to be published (they may return a replacement) at its end
        self.episode_start_hooks: list[Callable] = []
        self.result_hooks: list[Callable] = []
        self.config = config
        self.sched = Scheduler(start_ns)
        self.graph = Graph(self.sched)
        self.faults = faults or Faults()
        self.episode_params = episode_params
        self.records: list[EpisodeRecord] = []
        self.latch = SoftwareStopLatch()
        self.episode_index = -1
        self._stop_after: int | None = None
        horizon = int(config.policy['expected_horizon'])
        period = float(config.policy['expected_action_period'])
        names = list(config.policy['expected_action_names'])
        if policy in ('recorded', 'expert'):
            # recorded: the robot node (a bag) publishes the recorded chunks itself
            runner = None if policy == 'recorded' else ExpertBackend(horizon, period)
            preprocessor = training_preprocessor()  # what every trained model declares
            start_offset = 0.0
        else:
            from sim2real_policy.models import resolve_model
            path = resolve_model(policy if policy != 'bundled' else config.policy['model_path'])
            runner = PolicyRunner(path, backend or config.policy['backend'], expected={
                'action_names': names, 'horizon': horizon, 'action_period': period})
            preprocessor = runner.preprocessor
            start_offset = runner.meta.start_offset
        self.action_meta = {'period': period, 'start_offset': start_offset}
        self.robot = (robot or SimRobotNode)(self)
        self.camera = CameraNode(self, preprocessor)
        self.policy = PolicyNode(self, runner, names) if runner is not None else None
        self.control = ControlNode(self)
        self.safety = SafetyNode(self, self.latch)
        self.supervisor = SupervisorNode(self)
        self._start_episode()

    def _start_episode(self) -> None:
        self.episode_index += 1
        params = self.episode_params(self.episode_index)
        if self.faults.weak_grip:
            params = params.replace(pad_friction=0.0, gripper_strength=0.05)
        self.robot.start(params)
        if self.policy is not None:
            self.policy.reset()
        if self.policy is not None and isinstance(self.policy.runner, ExpertBackend):
            self.policy.runner.start_episode(self.robot.sim, HOME, self.sched.now_ns,
                                             self.faults.grasp_offset)
        self.control.reset(HOME)
        self.safety.reset()
        for hook in self.episode_start_hooks:
            hook(self.episode_index, params)

    def _pause_for_reset(self) -> None:
        """Between episodes: no robot, no controller, nothing in flight reaches the new world."""
        self.robot.stop()
        self.control.core = None
        self.safety.pause()
        if self.policy is not None:
            self.policy.reset()

    def end_episode(self, success: bool) -> None:
        """Record the outcome, publish it, start the next episode (from the robot's timer)."""
        sim, now = self.robot.sim, self.sched.now_ns
        duration = (now - self.robot.episode_start_ns) / NS
        lift = float(sim.object_position()[2] - sim.rest_z)
        self.records.append(EpisodeRecord(self.episode_index, sim.params.seed, success,
                                          duration, lift, sim.params.to_dict()))
        self.finish_episode(ifc.make(
            _t('/episode/result'), header=ifc.header(now), episode=self.episode_index,
            attempts=1, success=bool(success), label_source=0, duration=duration,
            lift_height=lift, final_gripper_width=sim.gripper_width(),
            seed=int(sim.params.seed), failure_reason='' if success else 'not lifted in time'))

    def finish_episode(self, result) -> None:
        """Publish the outcome, pause for the reset, start the next episode after it."""
        for hook in self.result_hooks:
            result = hook(result)
        self.robot.result_pub.publish(result)
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
        """Release the renderer."""
        self.robot.stop()

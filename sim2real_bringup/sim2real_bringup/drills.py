"""Fault drills: every fault the supervisor knows, injected one at a time into the full stack.

Each drill runs the in-process pipeline (simulated robot, camera, policy, 100 Hz control,
safety filter, supervisor) until it is grasping normally, injects its fault, and checks what a
team must see before trusting a deployment: the expected mode is reached within its time
budget, for the drilled cause (the first degraded mode entered after the injection, and the
supervisor's reason for it), the controller performs the mode's fallback, the safety filter
never had to reject a proposal and no command that left it breaks a limit, and the mode returns
to NORMAL only when it should (after recovery_time of health, or after a named operator's
acknowledgement).

The policy in the drills is the privileged scripted expert: the drills test the safety and
supervision stack, not the learned policy.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sim2real_bringup.config import load_yaml
from sim2real_bringup.metrics import OK, WARN
from sim2real_bringup.pipeline import Faults, NS, Pipeline, PipelineConfig
from sim2real_bringup.report_data import diagnostic_level
from sim2real_policy.control import (
    SOURCE_CHUNK_TAIL,
    SOURCE_HOLD,
    SOURCE_HOME,
    SOURCE_POLICY,
    SOURCE_RELEASE_RAISE,
)
from sim2real_policy.sim.expert import Plan
from sim2real_policy.sim.randomization import Randomizer
from sim2real_safety.audit import OutputAuditor
from sim2real_safety.nodes.supervisor_node import UPDATE_PERIOD
from sim2real_safety.software_stop import ResetRefusedError
from sim2real_safety.supervisor import AcknowledgeRefusedError, Mode

# Proposal rejections that mean the controller sent something the filter had to refuse.
# (command_timeout, no_robot_state and software_stop are the filter's own holds.)
_OWN_HOLDS = {'command_timeout', 'no_robot_state', 'software_stop', 'robot_state_stale'}
SPIKE_CHECK = 'sim2real/action_spikes'
SPIKE_M = 0.025  # m: the injected step, well over the logger's spike_step (10 mm)


@dataclass
class Observer:
    """Taps the pipeline's topics for the drill's checks."""

    pipe: Pipeline

    def __post_init__(self):
        graph = self.pipe.graph
        self.auditor = OutputAuditor(self.pipe.config.safety)
        self.unsafe = 0
        self.rejected_proposals = 0
        self.sources: list[tuple[int, int]] = []
        self.modes: list[tuple[int, int]] = []
        self.commands: list[tuple[int, tuple]] = []
        self.gripper: list[tuple[int, float, float, bool]] = []  # (t, width, effort, fault)
        self.episode_ends: list[int] = []
        self._episode_end_ns: int | None = None
        graph.create_subscription('/safety/command', 'sim2real_msgs/msg/CartesianCommand',
                                  self.on_command)
        graph.create_subscription('/safety/status', 'sim2real_msgs/msg/SafetyStatus',
                                  self.on_status)
        graph.create_subscription('/control/proposed_command',
                                  'sim2real_msgs/msg/CartesianCommand',
                                  lambda m: self.sources.append((self.now, m.source)))
        graph.create_subscription('/supervisor/state', 'sim2real_msgs/msg/SupervisorState',
                                  lambda m: self.modes.append((self.now, m.mode)))
        graph.create_subscription('/episode/result', 'sim2real_msgs/msg/GraspResult',
                                  self.on_episode_end)
        graph.create_subscription('/robot/state', 'sim2real_msgs/msg/RobotState',
                                  lambda m: self.gripper.append(
                                      (self.now, m.gripper_width, m.gripper_effort,
                                       bool(m.gripper_fault))))

    def on_episode_end(self, msg) -> None:
        """The world is reset between episodes: rate limits restart with the next world."""
        self._episode_end_ns = self.now
        self.episode_ends.append(self.now)

    @property
    def now(self) -> int:
        """Simulated time (ns)."""
        return self.pipe.sched.now_ns

    def arm(self) -> None:
        """Count unsafe commands and rejected proposals from now on (the injection)."""
        self.unsafe = 0
        self.rejected_proposals = 0

    def on_command(self, msg) -> None:
        """Audit every command that left the safety filter."""
        if self._episode_end_ns is not None and self.now > self._episode_end_ns:
            self.auditor.previous = None  # first command of the next episode's new world
            self._episode_end_ns = None
        pose = (msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width)
        latch = self.pipe.latch
        stopped = self.pipe.safety.core._stop_pose if latch.active else None
        if self.auditor.audit(pose, self.now, stopped):
            self.unsafe += 1
        self.commands.append((self.now, pose))

    def on_status(self, msg) -> None:
        """Count proposals the filter had to reject."""
        if msg.verdict == 3 and not {v.constraint for v in msg.violations} <= _OWN_HOLDS:
            self.rejected_proposals += 1

    def sources_between(self, start_ns: int, end_ns: int) -> set[int]:
        """Command sources the controller used in a time window."""
        return {s for t, s in self.sources if start_ns <= t <= end_ns}

    def first_degraded(self, since_ns: int):
        """The supervisor's first transition into a mode other than NORMAL since ``since_ns``."""
        for transition in self.pipe.supervisor.core.transitions:
            if transition.time_ns >= since_ns and transition.mode != Mode.NORMAL:
                return transition
        return None

    def time_to_mode(self, mode: Mode, since_ns: int) -> float | None:
        """Seconds from ``since_ns`` until the supervisor first reported ``mode``."""
        for t, m in self.modes:
            if t >= since_ns and m == mode:
                return (t - since_ns) / NS
        return None


def _pipeline(seed: int, faults: Faults | None = None) -> tuple[Pipeline, Observer]:
    config = PipelineConfig.load()
    randomizer = Randomizer(load_yaml('randomization.yaml'), 'none')
    pipe = Pipeline(config, lambda i: randomizer.sample(seed * 1000 + i), policy='expert',
                    faults=faults)
    return pipe, Observer(pipe)


def _result(name, expected, cause, observer, injected_ns, budget, fallback_ok, recovered_ok,
            notes, earliest=0.0, timed_from_ns=None):
    """A drill's verdict.

    ``cause``: what the supervisor's reason for entering ``expected`` must say (the drilled
    fault, not another rule that happens to lead to the same mode); ``earliest``: seconds
    before which reaching the mode is too early (a detector that must wait, e.g. stall_time);
    ``timed_from_ns``: when the time to the mode starts (default: the injection).
    """
    timed_from = injected_ns if timed_from_ns is None else timed_from_ns
    t = observer.time_to_mode(expected, timed_from)
    first = observer.first_degraded(injected_ns)
    result = {'fault': name, 'expected_mode': expected.name,
              'reached_mode': first.mode.name if first is not None else 'NONE',
              'reason': first.reason if first is not None else '',
              'expected_reason': cause,
              'time_to_mode_s': t, 'time_budget_s': budget, 'earliest_s': earliest,
              'in_time': t is not None and earliest <= t <= budget,
              'fallback_ok': bool(fallback_ok), 'recovery_ok': bool(recovered_ok),
              'unsafe_commands': observer.unsafe + observer.rejected_proposals,
              'notes': notes}
    result['passed'] = (result['reached_mode'] == expected.name and cause in result['reason']
                        and result['in_time'] and result['fallback_ok']
                        and result['recovery_ok'] and result['unsafe_commands'] == 0)
    return result


def _recovers_only_after(pipe, observer, cleared_ns, minimum_s, within_s) -> bool:
    """NORMAL again, not before ``minimum_s`` after the fault cleared, by ``within_s``."""
    pipe.run_for(within_s)
    t = observer.time_to_mode(Mode.NORMAL, cleared_ns)
    return t is not None and minimum_s <= t <= within_s


def _vision_drill(name: str, fault: str, detect_s: float, budget_s: float, cause: str,
                  notes: str, seed: int) -> dict:
    """A camera fault, end to end.

    VISION_DEGRADED, the last good image for the grace period, then home (and nothing but
    home), and NORMAL again only after recovery_time of live frames.
    """
    pipe, obs = _pipeline(seed)
    cfg = pipe.config
    pipe.run_for(1.0)
    t0 = obs.now
    obs.arm()
    setattr(pipe.faults, fault, True)
    pipe.run_for(detect_s + cfg.supervisor.vision_grace_period + 1.5)
    entered = obs.time_to_mode(Mode.VISION_DEGRADED, t0)
    grace_end = t0 + int(((entered or 0) + cfg.supervisor.vision_grace_period + 0.1) * NS)
    after_grace = obs.sources_between(grace_end, obs.now)
    fallback = after_grace == {SOURCE_HOME}
    cleared = obs.now
    setattr(pipe.faults, fault, False)
    recovered = _recovers_only_after(pipe, obs, cleared, cfg.supervisor.recovery_time, 3.0)
    return _result(name, Mode.VISION_DEGRADED, cause, obs, t0, budget_s, fallback, recovered,
                   notes)


def drill_camera_unplugged(seed: int = 0) -> dict:
    """Frames stop: VISION_DEGRADED, last good image for the grace period, then home."""
    cfg = PipelineConfig.load()
    budget = cfg.supervisor.camera_timeout + float(cfg.camera['health_period']) + 0.05
    return _vision_drill('camera_unplugged', 'camera_unplugged', cfg.supervisor.camera_timeout,
                         budget, 'no frame for',
                         'last good image during the grace period, then home', seed)


def drill_camera_frozen(seed: int = 0) -> dict:
    """The same frame over and over: VISION_DEGRADED, then home."""
    cfg = PipelineConfig.load()
    # frozen_timeout counts from the second identical frame; then a health report and an
    # update of the rules.
    budget = (cfg.supervisor.frozen_timeout + 2.0 / float(cfg.sim['camera_rate'])
              + float(cfg.camera['health_period']) + 0.05)
    return _vision_drill('camera_frozen', 'camera_frozen', cfg.supervisor.frozen_timeout,
                         budget, 'frozen for',
                         'frozen frames detected by the frame-difference score', seed)


def drill_gripper_stalled(seed: int = 0) -> dict:
    """The gripper jams on the object: GRIPPER_FAULT, stop, release, raise."""
    pipe, obs = _pipeline(seed)
    cfg = pipe.config
    pipe.run_for(2.6)  # the expert has closed on the object and starts lifting
    holding = pipe.robot.sim.object_in_gripper()
    t0 = obs.now
    obs.arm()
    pipe.faults.gripper_stuck = True
    pipe.run_for(0.3)
    stopped_z = pipe.robot.sim.tcp(noisy=False)[2]
    pipe.run_for(3.0)
    sources = obs.sources_between(t0 + int(0.1 * NS), obs.now)
    commands = [p for t, p in obs.commands if t > t0 + int(0.1 * NS)]
    opened = any(p[4] >= cfg.control.open_width - 1e-6 for p in commands)
    raised = pipe.robot.sim.tcp(noisy=False)[2] >= cfg.control.safe_height - 0.01
    fallback = sources == {SOURCE_RELEASE_RAISE} and opened and raised
    cleared = obs.now
    pipe.faults.gripper_stuck = False
    recovered = _recovers_only_after(pipe, obs, cleared, cfg.supervisor.recovery_time, 3.0)
    return _result('gripper_stalled_on_object', Mode.GRIPPER_FAULT,
                   'gripper driver reports a fault', obs, t0, 0.1, fallback, recovered,
                   f'holding the object at injection: {holding}; stopped at '
                   f'z={stopped_z:.3f} m, then release and raise')


@dataclass
class _StallFaults(Faults):
    """The pipeline's fault switches and a silent jam (the driver raises no fault flag)."""

    gripper_stalled: bool = False


def _stall_onset(observer: Observer, since_ns: int, width_error: float,
                 effort: float) -> int | None:
    """When a stall began, read off the topics.

    The first robot state since ``since_ns`` that found the safe command's gripper opening
    more than ``width_error`` beyond the measured one while the effort was at least
    ``effort`` (the condition the supervisor times with stall_time).
    """
    commands = [(t, pose[4]) for t, pose in observer.commands if t >= since_ns]
    times = np.array([t for t, _ in commands])
    for t, width, measured_effort, _ in observer.gripper:
        if t < since_ns or not len(times) or t < times[0]:
            continue
        commanded = commands[int(np.searchsorted(times, t, side='right')) - 1][1]
        if commanded - width > width_error and abs(measured_effort) >= effort:
            return t
    return None


def drill_gripper_stall_detected(seed: int = 0) -> dict:
    """The gripper jams on the object without a fault flag: the stall check must catch it.

    The jam is silent (the driver reports no fault, the effort stays high, the width does not
    follow the command), and the policy then opens the gripper to let go. Only the
    supervisor's stall detection (commanded opening beyond the measured one by
    stall_width_error at stall_effort or more for stall_time) can tell: GRIPPER_FAULT no sooner
    than stall_time after the stall began and within a state and an update period more; then
    stop, release, raise; NORMAL again only after recovery_time once the jam is cleared.
    """
    pipe, obs = _pipeline(seed, _StallFaults())
    cfg = pipe.config
    sup = cfg.supervisor
    pipe.run_for(2.6)  # the expert has closed on the object
    holding = pipe.robot.sim.object_in_gripper()
    t0 = obs.now
    obs.arm()
    pipe.faults.gripper_stalled = True
    # the policy lets go: from its current target, open the gripper where it is
    expert = pipe.expert
    target = expert.plan.target((t0 - expert.start_ns) / NS)
    opened = target.copy()
    opened[4] = cfg.control.open_width
    expert.plan, expert.start_ns = Plan([target, opened]), t0
    for _ in range(int(2.0 / 0.02)):  # until the supervisor acts (a bounded wait)
        pipe.run_for(0.02)
        if pipe.supervisor.core.mode != Mode.NORMAL:
            break
    detected = obs.now
    # stop and release, then part of the raise: a jammed gripper still holds the object, so
    # a full raise would lift it and end the episode as a success
    stop_release = 0.2 + 0.6  # StopReleaseRaise's stop_time + release_time
    pipe.run_for(stop_release + 0.2)
    onset = _stall_onset(obs, t0, sup.stall_width_error, sup.stall_effort)
    window = [(t, p) for t, p in obs.commands if t > detected + int(0.05 * NS)]
    sources = obs.sources_between(detected + int(0.05 * NS), obs.now)
    opened_ok = any(p[4] >= cfg.control.open_width - 1e-6 for _, p in window)
    raising = bool(window) and window[-1][1][2] > window[0][1][2] + 0.005
    flagged = any(fault for t, _, _, fault in obs.gripper if t >= t0)
    fallback = sources == {SOURCE_RELEASE_RAISE} and opened_ok and raising and not flagged
    cleared = obs.now
    pipe.faults.gripper_stalled = False
    recovered = _recovers_only_after(pipe, obs, cleared, sup.recovery_time, 3.0)
    # stall_time, then the next robot state, the next supervisor update, and a margin
    budget = sup.stall_time + 1.0 / float(cfg.sim['state_rate']) + UPDATE_PERIOD + 0.02
    ended = [t for t in obs.episode_ends if t >= t0]
    result = _result('gripper_stall_detected', Mode.GRIPPER_FAULT, 'gripper stalled', obs,
                     t0, budget, fallback, recovered and not ended,
                     f'holding the object at injection: {holding}; stall began '
                     f'{"never" if onset is None else f"{(onset - t0) / NS:.2f} s"} after the '
                     f'jam; driver fault flag raised: {flagged}; episodes ended during the '
                     f'drill: {len(ended)}', earliest=sup.stall_time,
                     timed_from_ns=onset if onset is not None else t0)
    result['driver_fault_flag'] = flagged
    if onset is None:
        result['in_time'] = result['passed'] = False
    return result


def _inference_drill(name: str, inject: Callable, clear: Callable, cause: str,
                     seed: int) -> dict:
    pipe, obs = _pipeline(seed)
    cfg = pipe.config
    pipe.run_for(1.0)
    t0 = obs.now
    obs.arm()
    inject(pipe)
    pipe.run_for(cfg.control.max_chunk_age + 1.5)
    after = obs.sources_between(t0, obs.now)
    # keeps executing the cached chunk, then holds; never goes home or releases
    fallback = SOURCE_HOLD in after and after <= {SOURCE_POLICY, SOURCE_CHUNK_TAIL, SOURCE_HOLD}
    tail_or_cached = SOURCE_CHUNK_TAIL in after or SOURCE_POLICY in after
    cleared = obs.now
    clear(pipe)
    recovered = _recovers_only_after(pipe, obs, cleared, cfg.supervisor.recovery_time, 4.0)
    budget = cfg.supervisor.health_timeout + 0.2 if name.startswith('inference') else 0.3
    return _result(name, Mode.INFERENCE_SLOW, cause, obs, t0, budget,
                   fallback and tail_or_cached, recovered, 'cached chunk, then hold')


def drill_inference_slow(seed: int = 0) -> dict:
    """Inference takes 1.5 s: INFERENCE_SLOW, cached chunk then hold."""
    def inject(pipe):
        pipe.faults.inference_latency = 1.5

    def clear(pipe):
        pipe.faults.inference_latency = None

    return _inference_drill('inference_1.5s', inject, clear, 'policy health silent', seed)


def drill_policy_raises(seed: int = 0) -> dict:
    """The policy raises: INFERENCE_SLOW, cached chunk then hold."""
    def inject(pipe):
        pipe.faults.policy_raises = True

    def clear(pipe):
        pipe.faults.policy_raises = False

    return _inference_drill('policy_raises', inject, clear, 'policy failing', seed)


def drill_failed_grasps(seed: int = 0) -> dict:
    """Four failed grasps in a row: HUMAN_REQUIRED until a named operator acknowledges."""
    # slippery pads and a feeble gripper from the first episode: every grasp fails
    pipe, obs = _pipeline(seed, Faults(weak_grip=True))
    cfg = pipe.config
    t0 = obs.now
    obs.arm()
    pipe.run_episodes(cfg.supervisor.max_consecutive_failures + 1)
    failures = [r for r in pipe.records if not r.success]
    fourth_ns = obs.now
    pipe.run_for(3.0)
    holds = obs.sources_between(fourth_ns + int(0.1 * NS), obs.now)
    still = pipe.supervisor.core.mode == Mode.HUMAN_REQUIRED
    refused = False
    try:
        pipe.supervisor.core.acknowledge('', 'no name', obs.now)
    except AcknowledgeRefusedError:
        refused = True
    pipe.faults.weak_grip = False
    pipe.supervisor.core.acknowledge('drill operator', 'pads replaced', obs.now)
    pipe.run_for(0.2)
    back = pipe.supervisor.core.mode == Mode.NORMAL
    t = obs.time_to_mode(Mode.HUMAN_REQUIRED, t0)
    result = _result('four_failed_grasps', Mode.HUMAN_REQUIRED, 'failed grasps in a row', obs,
                     t0,
                     len(failures) * (cfg.sim['episode_timeout'] + 1.0), holds <= {SOURCE_HOLD},
                     still and refused and back,
                     f'{len(failures)} failed grasps; unacknowledged for 3 s: {still}; '
                     f'acknowledge without operator refused: {refused}')
    result['time_to_mode_s'] = t
    return result


def drill_stop_during_degraded(seed: int = 0) -> dict:
    """A software stop during VISION_DEGRADED: frozen output, reset needs an operator."""
    pipe, obs = _pipeline(seed)
    cfg = pipe.config
    pipe.run_for(1.0)
    pipe.faults.camera_unplugged = True
    pipe.run_for(1.0)
    degraded = pipe.supervisor.core.mode == Mode.VISION_DEGRADED
    t0 = obs.now
    obs.arm()
    pipe.safety.core.trigger_stop('drill', 'software stop during a degraded mode', obs.now)
    pipe.run_for(1.0)
    frozen = [p for t, p in obs.commands if t > t0 + int(0.05 * NS)]
    held = len(set(frozen)) == 1
    refused = False
    try:
        pipe.safety.core.reset_stop('', 'no operator', obs.now)
    except ResetRefusedError:
        refused = True
    pipe.safety.core.reset_stop('drill operator', 'cell checked', obs.now)
    pipe.run_for(0.3)
    back_to_degraded = pipe.supervisor.core.mode == Mode.VISION_DEGRADED
    cleared = obs.now
    pipe.faults.camera_unplugged = False
    recovered = _recovers_only_after(pipe, obs, cleared, cfg.supervisor.recovery_time, 3.0)
    return _result('software_stop_during_vision_degraded', Mode.SOFTWARE_STOP,
                   'software stop', obs, t0, 0.1,
                   degraded and held and refused, back_to_degraded and recovered,
                   f'degraded before the stop: {degraded}; output frozen: {held}; '
                   f'reset without operator refused: {refused}')


def drill_command_spike(seed: int = 0) -> dict:
    """A command 25 mm off on the wire to the robot, once: the logger warns of an action spike.

    The safety filter moves its command at most max_cartesian_step per tick, so a step over
    the logger's spike_step is a command that did not come through the filter's rate limits;
    here one is corrupted on the wire between the safety node and the robot. First an episode
    ends and the next one starts on a reset world: that reset must raise nothing (issue 37).
    Then the spike must turn sim2real/action_spikes WARN on /diagnostics within a publish
    period, and the independent audit must see the same command as unsafe.
    """
    pipe, obs = _pipeline(seed)
    period = float(pipe.config.params.get('logger_node', {}).get('publish_period', 1.0))
    seen: list[tuple[int, int, str]] = []   # (t, level, message) of action_spikes

    def on_diagnostics(msg):
        seen.extend((obs.now, diagnostic_level(s.level), s.message) for s in msg.status
                    if s.name == SPIKE_CHECK)

    pipe.graph.create_subscription('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray',
                                   on_diagnostics)
    pipe.run_episodes(1)
    pipe.run_for(1.0 + period)   # into the next episode's world, past a /diagnostics
    reset_ok = bool(obs.episode_ends) and bool(seen) and all(
        level == OK for _, level, _ in seen)
    unsafe_before = obs.unsafe + obs.rejected_proposals
    t0 = obs.now
    obs.arm()
    injected = []

    def corrupt_once(msg):
        if injected:
            return msg
        spiked = copy.copy(msg)
        spiked.z = msg.z + SPIKE_M
        injected.append(obs.now)
        return spiked

    pipe.graph.interceptors['/safety/command'] = corrupt_once
    pipe.run_for(period + 0.1)
    warned = [(t, message) for t, level, message in seen if t >= t0 and level == WARN]
    t = (warned[0][0] - injected[0]) / NS if warned and injected else None
    budget = period + 0.02   # the next /diagnostics after the spike, and a margin
    result = {'fault': 'command_spike', 'check': SPIKE_CHECK, 'expected_level': 'WARN',
              'reached_level': 'WARN' if warned else 'OK', 'reason': warned[0][1] if warned
              else '', 'time_to_warn_s': t, 'time_budget_s': budget,
              'in_time': t is not None and 0.0 <= t <= budget,
              'reset_quiet': reset_ok, 'unsafe_before': unsafe_before,
              'audit_saw_spike': obs.unsafe >= 1,
              'notes': f'{len(obs.episode_ends)} episode reset(s) before the injection, '
                       f'{SPIKE_M * 1e3:.0f} mm up on one command'}
    result['passed'] = (result['reached_level'] == 'WARN' and result['in_time']
                        and reset_ok and unsafe_before == 0 and result['audit_saw_spike'])
    return result


DRILLS = {
    'camera_unplugged': drill_camera_unplugged,
    'camera_frozen': drill_camera_frozen,
    'gripper_stalled': drill_gripper_stalled,
    'gripper_stall_detected': drill_gripper_stall_detected,
    'inference_slow': drill_inference_slow,
    'policy_raises': drill_policy_raises,
    'failed_grasps': drill_failed_grasps,
    'stop_during_degraded': drill_stop_during_degraded,
}


# Faults no supervisor rule watches: the logger's anomaly checks must report them.
LOGGER_DRILLS = {
    'command_spike': drill_command_spike,
}


def run_all(names=None, progress=None) -> dict:
    """Run the drills; ``{"faults": [...]}`` as ``sim2real drill --json`` writes it."""
    everything = {**DRILLS, **LOGGER_DRILLS}
    results = []
    for name in names or everything:
        result = everything[name]()
        results.append(result)
        if progress:
            progress(result)
    return {'faults': results}

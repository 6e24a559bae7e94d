"""The safety filter judged on the robot's true motion: the MuJoCo stage behind the filter.

A filter whose every output obeys the limits can still make the robot lunge (a glitched first
reading once seeded a command 0.4 m from the real TCP; the stage moved at 30 x the speed
limit). So this runs the filter as on the robot (robot and joint states at 100 Hz, with the
cell's encoder noise, actuation delay and stage dynamics) against an adversarial command
source, and measures what the simulated stage really does, every physics step (1 ms):

* the first robot reading (or several) is a glitch: inside the box 0.1-0.45 m from the real
  TCP, outside the box, or the box's far corner; later glitches come at random;
* the proposals aim at far targets: random points inside and outside the box, the glitch,
  below the table, switching at random;
* measured: the largest true TCP speed (noise-free, from the physics), the lowest true TCP z
  against the filter's floor, the gripper's true lowest point (its colliding geoms) above the
  table, and the largest distance between a sent command and the true
  TCP.

All figures are charged on the simulated clock (the physics), not the wall clock.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.robot import GripperSim
from sim2real_safety.filter import SafetyFilter
from sim2real_safety.limits import SafetyLimits
from sim2real_safety.software_stop import ResetRefusedError

NS = 1_000_000_000
PERIOD_NS = 10_000_000
GLITCHES = ('inside', 'outside', 'corner', 'none')


@dataclass
class MotionRun:
    """What the stage did in one run (simulated clock)."""

    seed: int
    glitch: str
    max_speed: float         # m/s, true TCP speed, largest over every physics step
    min_z_margin: float      # m, true TCP z minus the filter's floor, smallest (< 0: below)
    min_finger_clearance: float  # m, the gripper's true lowest point above the table, smallest
    max_follow_gap: float    # m, sent command to the true TCP at the time it was sent
    commands: int
    stops: int


def _glitch_pose(rng, kind: str, true_pose, lower, upper) -> tuple:
    true_pose = np.asarray(true_pose, float)
    if kind == 'inside':
        while True:
            pose = rng.uniform(lower, upper)
            if 0.1 <= np.linalg.norm(pose[:3] - true_pose[:3]) <= 0.45:
                return tuple(pose)
    if kind == 'outside':
        pose = rng.uniform(np.asarray(lower) - 0.5, np.asarray(upper) + 0.5)
        pose[2] = lower[2] - rng.uniform(0.01, 0.3)
        return tuple(pose)
    far = [lo if t > (lo + hi) / 2 else hi for t, lo, hi in zip(true_pose, lower, upper)]
    return tuple(far)


def run(limits: SafetyLimits, seed: int, glitch: str, duration: float = 3.0,
        params: SimParams | None = None) -> MotionRun:
    """One run of ``duration`` s simulated: the glitch first, then adversarial proposals."""
    rng = np.random.default_rng([seed, 0x5AFE])
    lower, upper = np.array(limits.lower), np.array(limits.upper)
    start = rng.uniform(lower + [0.05, 0.05, 0.05, 0.3, 0.0],
                        upper - [0.05, 0.05, 0.1, 0.3, 0.0])
    if params is None:
        params = SimParams(seed=seed, action_delay=float(rng.uniform(0.0, 0.15)),
                           encoder_noise=float(rng.uniform(0.0, 0.002)))
    sim = GripperSim(params, start=tuple(start))
    flt = SafetyFilter(limits)
    now = 10 * NS
    glitched = 0 if glitch == 'none' else int(rng.integers(1, 4))
    first_glitch = _glitch_pose(rng, 'inside' if glitch == 'none' else glitch, start, lower,
                                upper)
    max_speed, min_margin, max_gap, min_fingers = 0.0, math.inf, 0.0, math.inf
    commands = stops = 0
    target = first_glitch
    ticks = int(duration * NS / PERIOD_NS)
    for tick in range(ticks):
        now += PERIOD_NS
        x, y, z, yaw, _vx, _vy, _vz, width, _effort = sim.robot_state()
        reading = (x, y, z, yaw, width)
        if tick < glitched:
            reading = first_glitch
        elif rng.random() < 0.01:
            reading = _glitch_pose(rng, str(rng.choice(GLITCHES[:3])), sim.tcp(False).tolist()
                                   + [width], lower, upper)
        names, positions, velocities = sim.joint_state()
        flt.update_joint_state(names, positions.tolist(), velocities.tolist(), now)
        flt.update_robot_state(reading, now)
        flt.supervisor_heartbeat(now)
        if rng.random() < 0.03:  # a new far target: anywhere, the glitch, under the table
            pick = rng.integers(0, 3)
            target = (tuple(rng.uniform(lower - 0.2, upper + 0.2)) if pick == 0
                      else first_glitch if pick == 1
                      else (*rng.uniform(lower[:2], upper[:2]), lower[2] - 0.1, 0.0, 0.0))
        if rng.random() < 0.002 and flt.stop_active:
            try:
                flt.reset_stop('motion-bench', 'reset to go on', now)
            except ResetRefusedError:
                pass
        decision = flt.check(target, now - 1_000_000, now)
        if decision.command is not None:
            commands += 1
            true_tcp = sim.tcp(False)
            max_gap = max(max_gap, float(np.linalg.norm(np.asarray(decision.command[:3])
                                                        - true_tcp[:3])))
            sim.command(decision.command)
        floor = limits.z_floor  # the limit on the robot, not the commands' margin above it
        for _ in range(10):
            sim.step(0.001)
            speed = float(np.linalg.norm(sim.tcp_velocity()[:3]))
            max_speed = max(max_speed, speed)
            min_margin = min(min_margin, float(sim.tcp(False)[2]) - floor)
            min_fingers = min(min_fingers, sim.gripper_lowest_z() - limits.table_height)
    stops = sum(1 for event in flt.latch.events if event.kind == 'trigger')
    sim.close()
    return MotionRun(seed, glitch, max_speed, min_margin, min_fingers, max_gap, commands,
                     stops)


def judge(limits: SafetyLimits, runs: int = 40, seed: int = 0, duration: float = 3.0,
          progress=None) -> dict:
    """``runs`` runs cycling through the glitch kinds; the worst of each figure."""
    results = []
    for k in range(runs):
        results.append(run(limits, seed + k, GLITCHES[k % len(GLITCHES)], duration))
        if progress is not None:
            progress(k + 1, runs)
    worst_speed = max(results, key=lambda r: r.max_speed)
    worst_z = min(results, key=lambda r: r.min_z_margin)
    worst_fingers = min(results, key=lambda r: r.min_finger_clearance)
    return {
        'runs': runs, 'simulated_s_per_run': duration,
        'max_true_speed_m_s': worst_speed.max_speed, 'worst_speed_seed': worst_speed.seed,
        'speed_limit_m_s': limits.max_cartesian_speed,
        'min_true_z_margin_m': worst_z.min_z_margin, 'worst_z_seed': worst_z.seed,
        'min_true_finger_clearance_m': worst_fingers.min_finger_clearance,
        'worst_finger_seed': worst_fingers.seed, 'finger_clearance_m': limits.finger_clearance,
        'runs_fingers_below_clearance': sum(
            r.min_finger_clearance < limits.finger_clearance for r in results),
        'max_command_to_true_tcp_m': max(r.max_follow_gap for r in results),
        'follow_bound_m': limits.max_follow_error,
        'runs_over_speed_limit': sum(r.max_speed > limits.max_cartesian_speed
                                     for r in results),
        'runs_below_floor': sum(r.min_z_margin < 0.0 for r in results),
        'commands': sum(r.commands for r in results),
        'stops_latched': sum(r.stops for r in results),
        'by_glitch': {kind: max((r.max_speed for r in results if r.glitch == kind),
                                default=math.nan) for kind in GLITCHES},
    }

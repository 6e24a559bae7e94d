"""Safety benchmarks: the per-check cost of the filter and a large fuzz run of it.

``check_cost`` times ``SafetyFilter.check`` on a realistic 100 Hz stream (cruising, creeping
into limits, occasional malformed proposals). ``fuzz`` feeds seeded random and adversarial
inputs (NaN/Inf, huge values, boundary values, wrong lengths, future, stale and backwards
stamps, clock jumps, silence, software stops and resets, a glitched first robot state,
glitched states and incomplete joint states later) and audits every output with the
independent :class:`~sim2real_safety.audit.OutputAuditor`, including the follow-error bound
around the latest plausible measured pose. What the robot really does is judged in the
simulator (``sim2real_policy.sim.safety_motion``), not here: this package has no robot.
"""
from __future__ import annotations

import math
import time

import numpy as np

from sim2real_safety.audit import OutputAuditor
from sim2real_safety.filter import SafetyFilter
from sim2real_safety.limits import SafetyLimits
from sim2real_safety.software_stop import ResetRefusedError

MS = 1_000_000


def _percentiles_us(samples_ns) -> dict:
    values = np.asarray(samples_ns, dtype=float) / 1000.0
    return {'p50': float(np.percentile(values, 50)), 'p99': float(np.percentile(values, 99)),
            'max': float(values.max()), 'samples': int(values.size)}


def check_cost(limits: SafetyLimits, samples: int = 50_000, seed: int = 0) -> dict:
    """Wall time of one ``check`` (µs, p50/p99/max) on a realistic command stream."""
    rng = np.random.default_rng(seed)
    flt = SafetyFilter(limits)
    lower, upper = np.array(limits.lower), np.array(limits.upper)
    centre = (lower + upper) / 2.0
    now = 10_000 * MS
    names = [joint.name for joint in limits.joint_limits]
    tcp = {name: i for i, name in enumerate(limits.tcp_joints)}

    def feed(pose):
        flt.update_joint_state(names, [pose[tcp[j.name]] if j.name in tcp
                                       else (j.lower + j.upper) / 2.0
                                       for j in limits.joint_limits], [0.0] * len(names), now)
        flt.update_robot_state(pose, now)

    for _ in range(3):
        now += 10 * MS
        feed(tuple(centre))
    flt.supervisor_heartbeat(now)
    targets = centre + (upper - lower) * rng.uniform(-0.7, 0.7, size=(samples, 5))
    targets[rng.random(samples) < 0.01, 0] = math.nan
    proposals = [tuple(float(v) for v in row) for row in targets]
    times = np.empty(samples, dtype=np.int64)
    clock = time.perf_counter_ns
    for k, proposal in enumerate(proposals):
        now += 10 * MS
        flt.supervisor_heartbeat(now)
        feed(flt._sent)
        start = clock()
        flt.check(proposal, now - MS, now)
        times[k] = clock() - start
    return _percentiles_us(times[samples // 20:])  # drop the warm-up


def _random_value(rng, lower, upper, i, current):
    pick = rng.integers(0, 10)
    if pick >= 7:  # near the last output: passes, or creeps into a limit
        return float(current[i] + rng.normal(0.0, 0.004))
    if pick == 0:
        return float(rng.choice([math.nan, math.inf, -math.inf, 1e308, -1e308, -0.0, 5e-324]))
    if pick == 1:
        return float(rng.choice([lower[i], upper[i], math.nextafter(lower[i], -math.inf),
                                 math.nextafter(upper[i], math.inf)]))
    if pick == 2:
        return float(rng.normal(0.0, 1e3))
    return float(rng.uniform(lower[i] - 0.3, upper[i] + 0.3))


def _random_state(rng, lower, upper) -> tuple:
    """A robot state anywhere: inside the box, near or far outside it, or non-finite."""
    pick = rng.random()
    lower, upper = np.asarray(lower), np.asarray(upper)
    if pick < 0.55:
        state = rng.uniform(lower, upper)
    elif pick < 0.75:   # just outside: within a step or two of a face
        state = rng.uniform(lower, upper)
        i = int(rng.integers(0, 5))
        state[i] = (upper[i] if rng.random() < 0.5 else lower[i]) + rng.normal(0.0, 0.005)
    elif pick < 0.95:   # far outside (a glitch: x = 1.2, z = -0.3)
        state = rng.uniform(lower - 0.6, upper + 0.6)
    else:
        state = rng.uniform(lower, upper)
        state[int(rng.integers(0, 5))] = rng.choice([math.nan, math.inf, -math.inf])
    return tuple(float(v) for v in state)


def fuzz(limits: SafetyLimits, inputs: int = 100_000, seed: int = 0,
         progress=None, restart_every: int = 2000) -> dict:
    """Feed ``inputs`` random events; return counts of outputs and of unsafe outputs.

    Every ``restart_every`` inputs the filter starts afresh from a random first robot state
    (inside the box, just or far outside it, non-finite), and 2 % of the state updates are
    glitches to a random state; the auditor tolerates nothing outside the limits.
    """
    rng = np.random.default_rng(seed)
    lower, upper = limits.lower, limits.upper
    auditor = OutputAuditor(limits)
    now = 10_000 * MS
    examples = []
    verdicts: dict[str, int] = {}
    starts = {'inside': 0, 'outside': 0, 'non-finite': 0}
    guard_trips = 0
    withheld = 0
    flt = None

    joint_names = [joint.name for joint in limits.joint_limits]
    tcp_index = {name: i for i, name in enumerate(limits.tcp_joints)}
    glitches = 0

    def state(flt):
        """Feed the robot: its joints, then its state.

        The joints say where it really is (the last output: a stage that tracks); 2 % of the
        states are a glitch; 1 % of the joint states lack a joint or its velocity.
        """
        nonlocal glitches
        truth = flt._sent if flt._sent is not None else first
        positions = [truth[tcp_index[name]] if name in tcp_index else
                     (joint.lower + joint.upper) / 2.0
                     for name, joint in zip(joint_names, limits.joint_limits)]
        names, velocities = joint_names, [0.0] * len(joint_names)
        if rng.random() < 0.01:
            names = joint_names[1:] if rng.random() < 0.5 else joint_names
            velocities = [] if names is joint_names else velocities[1:]
            positions = positions[-len(names):]
        flt.update_joint_state(names, positions, velocities, now)
        if rng.random() < 0.02:
            glitches += 1
            return _random_state(rng, lower, upper)   # a glitch
        return truth

    for k in range(inputs):
        if k % restart_every == 0:
            if flt is not None:
                guard_trips += sum('internal guard' in e.reason for e in flt.latch.events)
            flt = SafetyFilter(limits)
            auditor.previous = None            # a new filter: no rate from the last one
            first = _random_state(rng, lower, upper)
            inside = all(lo <= v <= hi for v, lo, hi in zip(first, lower, upper))
            starts['non-finite' if not all(map(math.isfinite, first))
                   else 'inside' if inside else 'outside'] += 1
            flt.update_robot_state(first, now)  # one glitched reading first, alone
            flt.supervisor_heartbeat(now)
            first = tuple(rng.uniform(lower, upper))  # where the robot really starts
        roll = rng.random()
        decision = None
        if roll < 0.80:
            now += int(rng.choice([10, 10, 10, 0, 1, 5, 25])) * MS
            if rng.random() < 0.9:
                flt.supervisor_heartbeat(now)
                flt.update_robot_state(state(flt), now)
            current = flt._sent if flt._sent is not None else first
            size = 5 if rng.random() < 0.97 else int(rng.integers(0, 9))
            if size == 5 and rng.random() < 0.4:  # a plausible policy output
                proposal = tuple(float(v) for v in np.asarray(current)
                                 + rng.normal(0.0, 0.003, 5))
            else:
                proposal = tuple(_random_value(rng, lower, upper, i % 5, current)
                                 for i in range(size))
            age_ms = float(rng.choice([1, 1, 1, 0, -10, 150, 50]))
            decision = flt.check(proposal, now - int(age_ms * MS), now)
        elif roll < 0.95:
            now += int(rng.integers(0, 300)) * MS
            decision = flt.tick(now)
        elif roll < 0.96:
            now = max(0, now - int(rng.integers(1, 5000)) * MS)  # clock jumps back
        elif roll < 0.965:
            flt.trigger_stop('fuzz', 'random stop', now)
        else:
            flt.supervisor_heartbeat(now)
            flt.update_robot_state(state(flt), now)
            operator, reason = ('ana', 'ok') if rng.random() < 0.8 else ('', 'ok')
            try:
                flt.reset_stop(operator, reason, now)
                auditor.previous = None  # a reset starts from the measured pose, as start-up
            except ResetRefusedError:
                pass
        if decision is not None:
            verdicts[decision.verdict.name] = verdicts.get(decision.verdict.name, 0) + 1
            if decision.command is None:
                withheld += 1   # nothing sent (a robot outside the limits is not commanded)
            else:
                problems = auditor.audit(decision.command, now,
                                         flt._stop_pose if flt.stop_active else None,
                                         flt._measured, flt.measured_speeds())
                if problems and len(examples) < 5:
                    examples.append({'decision': repr(decision), 'problems': problems})
        if progress is not None and (k + 1) % 20_000 == 0:
            progress(k + 1, inputs)
    guard_trips += sum('internal guard' in e.reason for e in flt.latch.events)
    return {'inputs': inputs, 'outputs': auditor.outputs, 'unsafe_outputs': auditor.unsafe,
            'guard_trips': guard_trips, 'verdicts': verdicts, 'examples': examples,
            'first_states': starts, 'withheld': withheld, 'glitched_states': glitches}

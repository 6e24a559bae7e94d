"""The actuation-delay drill: the stage's delay jumps mid-run, and the controller keeps up.

One run of consecutive episodes through the full in-process stack (calibration, camera,
policy, 100 Hz control, safety, supervisor, simulated robot); the control node's delay
estimate (:mod:`sim2real_policy.delay_estimation`) carries over from episode to episode, as in
a robot's control node that runs on. Partway through an episode the
simulated stage's actuation delay changes (50 ms -> 150 ms by default): commands sent after
that instant reach the stage later.

Figures: the delay in use by the controller over time (from ``/control/diagnostics``, as a
robot's monitoring would read it), the time from the change until it is first within
``tolerance`` of the new delay, the share of ticks within it from then on and the largest
error, and grasp success before and after the change; with
``adapt=False`` the same run with the estimator off (the controller leads by nothing).
Every time here is on the simulated clock.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from sim2real_bringup.evaluation import episode_source
from sim2real_bringup.pipeline import NS, Pipeline, PipelineConfig


def run_delay_drill(model: str = 'bundled', where: str = 'none', episodes: int = 10,
                    change_episode: int = 4, change_after_s: float = 2.0,
                    before_s: float = 0.05, after_s: float = 0.15, adapt: bool = True,
                    first_seed: int = 0, tolerance: float = 0.1) -> dict:
    """Run the drill; plain figures out (times on the simulated clock, s)."""
    if not 0 <= change_episode < episodes:
        raise ValueError(f'change_episode (counted from 0) must be in [0, {episodes - 1}], '
                         f'got {change_episode}')
    # The lead starts at zero and only the online estimate moves it: no cell calibration's
    # delay (the in-process cell calibrates every episode; a robot once, at commissioning).
    control = {'estimate_delay': adapt, 'actuation_delay': 0.0}
    config = PipelineConfig.load({'control_node': control,
                                  'inprocess_runtime': {'commission_delay': False}})
    sample = episode_source(where)
    delay = {'now': before_s}

    def params(i):
        return dataclasses.replace(sample(first_seed + i), action_delay=delay['now'])

    pipe = Pipeline(config, params, policy=model)
    estimates: list[tuple[float, float]] = []
    pipe.graph.create_subscription(
        '/control/diagnostics', 'sim2real_msgs/msg/ControlDiagnostics',
        lambda msg: estimates.append((pipe.sched.now_ns / NS, msg.actuation_delay)))
    # The suite's own hop: a proposed command reaches the robot through the safety node,
    # which adds its own wait; the controller sees that plus the stage's delay.
    proposed: dict = {}
    hops: list[float] = []

    def on_proposed(msg):
        proposed[(msg.x, msg.y, msg.z)] = pipe.sched.now_ns

    def on_safe(msg):
        sent = proposed.pop((msg.x, msg.y, msg.z), None)
        if sent is not None:
            hops.append((pipe.sched.now_ns - sent) / NS)
        if len(proposed) > 100:
            proposed.clear()

    pipe.graph.create_subscription('/control/proposed_command',
                                   'sim2real_msgs/msg/CartesianCommand', on_proposed)
    pipe.graph.create_subscription('/safety/command', 'sim2real_msgs/msg/CartesianCommand',
                                   on_safe)
    change = {}

    def change_delay():
        delay['now'] = after_s
        sim = pipe.robot.sim
        if sim is not None:
            sim.params = dataclasses.replace(sim.params, action_delay=after_s)
        change['time_s'] = pipe.sched.now_ns / NS

    def on_episode_start(index, _params):
        if index == change_episode:
            pipe.sched.call_later(change_after_s, change_delay)

    pipe.episode_start_hooks.append(on_episode_start)
    try:
        records = pipe.run_episodes(episodes)
    finally:
        pipe.close()
    if 'time_s' not in change:
        raise RuntimeError('the delay never changed: the changing episode ended within '
                           f'{change_after_s} s')
    times = np.array([t for t, _ in estimates])
    values = np.array([v for _, v in estimates])
    after = times >= change['time_s']
    outside = np.abs(values - after_s) > tolerance * after_s
    inside = np.flatnonzero(after & ~outside)
    tracked = times[inside[0]] if len(inside) else math.nan
    since = times >= tracked
    before = (times < change['time_s']) & (times >= change['time_s'] - 2.0)
    success = [r.success for r in records]
    return {
        'adapt': adapt, 'where': where, 'model': str(model), 'episodes': len(records),
        'delay_before_s': before_s, 'delay_after_s': after_s,
        'change_time_s': change['time_s'], 'change_episode': change_episode,
        'estimate_before_change_s': float(np.median(values[before])) if before.any()
        else math.nan,
        'estimate_end_s': float(values[-1]),
        # from the change until the delay in use is first within tolerance of the new delay;
        # from then on: the share of ticks within it and the largest error
        'time_to_track_s': float(tracked - change['time_s']),
        'share_within_after_track': float(np.mean(~outside[since])) if since.any()
        else math.nan,
        'max_error_after_track_s': float(np.max(np.abs(values[since] - after_s)))
        if since.any() else math.nan,
        'tracked_at_end': bool(not outside[-1]),
        'success_before': [s for r, s in zip(records, success) if r.index < change_episode],
        'success_after': [s for r, s in zip(records, success) if r.index > change_episode],
        'success_changing_episode': [s for r, s in zip(records, success)
                                     if r.index == change_episode],
        'safety_hop_s': {'median': float(np.median(hops)), 'max': float(np.max(hops)),
                         'matched': len(hops)} if hops else None,
        'trace': [(round(t, 2), round(v, 4)) for t, v in estimates[::25]],
    }

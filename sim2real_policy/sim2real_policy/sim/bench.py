"""Simulator benchmark: physics rate, render rate, episode throughput, scripted success."""
from __future__ import annotations

import time
from typing import Mapping

import mujoco
import numpy as np

from sim2real_policy.sim.expert import ScriptedGrasp
from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.randomization import Randomizer, VisualRandomizer
from sim2real_policy.sim.robot import GripperSim, HOME


def physics_steps_per_s(seconds: float = 2.0) -> float:
    """Raw ``mj_step`` rate of the nominal scene, in a Python loop."""
    sim = GripperSim(SimParams())
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(500):
            mujoco.mj_step(sim.model, sim.data)
        steps += 500
    return steps / (time.perf_counter() - start)


def render_fps(size: int = 96, frames: int = 200) -> float:
    """Offscreen RGB frames per second at the policy's resolution."""
    with GripperSim(SimParams()) as sim:
        sim.render(size, size)
        start = time.perf_counter()
        for _ in range(frames):
            sim.render(size, size)
        return frames / (time.perf_counter() - start)


def scripted_episode(params: SimParams, render_size: int | None = 96,
                     frame_period: float = 0.1) -> bool:
    """One scripted grasp with frames rendered (and image-randomized) at ``frame_period``."""
    with GripperSim(params) as sim:
        visual = VisualRandomizer(params.image, params.seed)
        plan = ScriptedGrasp(HOME, sim.object_position(), sim.object_yaw(), params.object_shape)
        t, next_frame = 0.0, 0.0
        while t < plan.duration + 0.5:
            if render_size and t >= next_frame:
                visual.apply(sim.render(render_size, render_size))
                next_frame += frame_period
            sim.command(plan.target(t))
            sim.step(0.01)
            t += 0.01
        return sim.object_lifted() and sim.object_in_gripper()


def run(config: Mapping, episodes: int = 20, success_episodes: int = 100,
        progress=None) -> dict:
    """Every figure of ``sim2real bench sim``."""
    figures = {'physics_steps_per_s': physics_steps_per_s(), 'render_fps': render_fps()}
    heavy = Randomizer(config, 'heavy')
    start = time.perf_counter()
    for seed in range(episodes):
        scripted_episode(heavy.sample(seed))
    figures['episodes_per_min'] = episodes / (time.perf_counter() - start) * 60.0
    nominal = Randomizer(config, 'none')
    outcomes = []
    for seed in range(success_episodes):
        outcomes.append(scripted_episode(nominal.sample(seed), render_size=None))
        if progress and (seed + 1) % 25 == 0:
            progress(seed + 1, success_episodes)
    figures['scripted_success_rate'] = float(np.mean(outcomes))
    figures['scripted_episodes'] = success_episodes
    figures['heavy_scripted_success_rate'] = float(np.mean(
        [scripted_episode(heavy.sample(1000 + s), render_size=None) for s in range(episodes)]))
    return figures

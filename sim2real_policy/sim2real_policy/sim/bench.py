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


class ScriptedEpisodes:
    """A rollout worker: one scripted episode per ``{'profile', 'seed', 'render'}``."""

    def __init__(self, config: Mapping):
        self.config = config
        self.randomizers: dict = {}

    def __call__(self, spec: dict) -> bool:
        """Whether the scripted grasp of that world succeeded."""
        profile = spec['profile']
        if profile not in self.randomizers:
            self.randomizers[profile] = Randomizer(self.config, profile)
        return scripted_episode(self.randomizers[profile].sample(spec['seed']),
                                render_size=96 if spec['render'] else None)


def run(config: Mapping, episodes: int = 20, success_episodes: int = 100,
        progress=None, **rollout_options) -> dict:
    """Every figure of ``sim2real bench sim``.

    Physics and render rates are measured in this process; the episodes run on
    :func:`sim2real_policy.rollout.run` with ``rollout_options`` (workers, backend,
    ray_address), and the throughput is that of all its workers together (wall clock).
    """
    from sim2real_policy import rollout

    figures = {'physics_steps_per_s': physics_steps_per_s(), 'render_fps': render_fps()}
    task = rollout.Task(ScriptedEpisodes, {'config': config})
    rendered = [{'profile': 'heavy', 'seed': seed, 'render': True} for seed in range(episodes)]
    _, stats = rollout.run(task, rendered, **rollout_options)
    figures['episodes_per_min'] = episodes / stats.seconds * 60.0
    figures['rollout'] = {'backend': stats.backend, 'workers': stats.workers,
                          'startup_seconds': stats.startup_seconds}
    nominal = [{'profile': 'none', 'seed': seed, 'render': False}
               for seed in range(success_episodes)]
    heavy = [{'profile': 'heavy', 'seed': 1000 + seed, 'render': False}
             for seed in range(episodes)]
    outcomes, _ = rollout.run(task, nominal + heavy, progress=progress, **rollout_options)
    figures['scripted_success_rate'] = float(np.mean(outcomes[:success_episodes]))
    figures['scripted_episodes'] = success_episodes
    figures['heavy_scripted_success_rate'] = float(np.mean(outcomes[success_episodes:]))
    return figures

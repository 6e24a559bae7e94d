"""Demonstration data: the reactive expert grasping in the simulator, recorded for cloning.

Format (a folder, see :func:`save`):

* ``data.npz`` -- ``images`` uint8 (N, H, W, 3): the processed camera image (crop, resize,
  RGB) exactly as the camera node publishes it; ``proprio`` float32 (N, 6): x, y, z, yaw,
  gripper_width, gripper_effort as measured; ``actions`` float32 (N, horizon, 5): the expert's
  chunk of absolute targets from that observation; ``episode`` int32 (N); ``success`` bool
  (episodes,); ``source`` uint8 (episodes,): 0 simulated, 1 real (collected bags).
* ``dataset.json`` -- the generating command, profile, seeds, every episode's sampled
  parameters, horizon, action period, observation period, preprocessing and noise.

Collection executes the expert's chunks with DART-style noise (a random offset held for each
chunk) so the data covers the states a cloned policy drifts into, while the labels stay the
clean expert's.
"""
from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path

import numpy as np

from sim2real_policy.camera import ImagePreprocessor
from sim2real_policy.sim.expert import ReactiveExpert
from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.randomization import Randomizer, VisualRandomizer
from sim2real_policy.sim.robot import GripperSim, HOME

HORIZON = 16
ACTION_PERIOD = 0.05      # s between actions of a chunk
OBSERVATION_PERIOD = 0.1  # s between observations (the policy's inference period)
CONTROL_DT = 0.01
RENDER_SIZE = (96, 96)
IMAGE_SIZE = (64, 64)
IMAGE_CROP = (0.05, 0.12, 0.95, 1.0)   # fractions of the rendered frame
EPISODE_TIMEOUT = 15.0
DART_FRACTION = 0.3       # share of chunks executed with a noise offset
SUCCESS_HOLD = 0.5


def object_width(params: SimParams) -> float:
    """Width the closed gripper should stop at (m)."""
    return 2.0 * params.object_size


def preprocessor() -> ImagePreprocessor:
    """The camera preprocessing of the simulator's frames for the bundled policy."""
    return ImagePreprocessor(IMAGE_SIZE, IMAGE_CROP)


@dataclass
class Episode:
    """One recorded demonstration."""

    images: list
    proprio: list
    actions: list
    success: bool
    params: SimParams


def run_expert_episode(params: SimParams, dart_noise: float = 0.0, record: bool = True,
                       rng: np.random.Generator | None = None) -> Episode:
    """Let the reactive expert grasp; record (observation, clean chunk) every 0.1 s."""
    rng = rng or np.random.default_rng([params.seed, 0xDA])
    pre = preprocessor()
    images, proprio, actions = [], [], []
    with GripperSim(params) as sim:
        visual = VisualRandomizer(params.image, params.seed)
        expert = ReactiveExpert(sim.object_position(), sim.object_yaw(), params.object_shape,
                                object_width(params))
        steps_per_obs = int(round(OBSERVATION_PERIOD / CONTROL_DT))
        executed, chunk_start = None, 0.0
        held_for, t = 0.0, 0.0
        success = False
        for step in range(int(EPISODE_TIMEOUT / CONTROL_DT)):
            if step % steps_per_obs == 0:
                tcp, width = sim.tcp(), sim.gripper_width()
                phase = expert.phase(tcp, width)
                if phase in ('approach', 'descend', 'regrasp'):  # it may roll or be pushed
                    expert.update_object(sim.object_position(), sim.object_yaw())
                settled = float(np.linalg.norm(sim.tcp_velocity()[:2])) < 0.01
                label = expert.chunk(tcp, width, HORIZON, ACTION_PERIOD, settled)
                if record:
                    frame = visual.apply(sim.render(*RENDER_SIZE))
                    images.append(pre.image(frame))
                    proprio.append([*tcp, width, sim.gripper_effort()])
                    actions.append(label)
                executed = label.copy()
                # Noise only while moving to the object: a noisy close just drops it.
                if (dart_noise > 0.0 and phase in ('approach', 'descend')
                        and rng.random() < DART_FRACTION):
                    executed[:, :3] += rng.normal(0.0, dart_noise, 3)
                chunk_start = t
            k = (t - chunk_start) / ACTION_PERIOD
            i = min(int(k), HORIZON - 2)
            frac = min(k - i, 1.0)
            sim.command(executed[i] + frac * (executed[i + 1] - executed[i]))
            sim.step(CONTROL_DT)
            t += CONTROL_DT
            if sim.object_lifted() and sim.object_in_gripper():
                held_for += CONTROL_DT
                if held_for >= SUCCESS_HOLD:
                    success = True
                    break
            else:
                held_for = 0.0
    return Episode(images, proprio, actions, success, params)


class DemonstrationWorker:
    """A rollout worker: one seeded expert episode per specification, as plain arrays."""

    def __init__(self, randomizer: Randomizer, dart_noise: float):
        self.randomizer, self.dart_noise = randomizer, dart_noise

    def __call__(self, spec: dict) -> dict:
        """The episode of ``spec['seed']``: its samples and outcome."""
        episode = run_expert_episode(self.randomizer.sample(spec['seed']), self.dart_noise)
        return {'images': np.asarray(episode.images, np.uint8).reshape(-1, *IMAGE_SIZE, 3),
                'proprio': np.asarray(episode.proprio, np.float32).reshape(-1, 6),
                'actions': np.asarray(episode.actions, np.float32).reshape(-1, HORIZON, 5),
                'success': episode.success, 'params': episode.params.to_dict()}


def collect(randomizer: Randomizer, episodes: int, first_seed: int = 0,
            dart_noise: float = 0.01, progress=None, **rollout_options) -> dict:
    """Run ``episodes`` seeded expert episodes; arrays and their description.

    Episodes run on :func:`sim2real_policy.rollout.run` (``rollout_options``: workers,
    backend, ray_address; serial by default); the arrays do not depend on who ran them.
    ``progress(done, total)``.
    """
    from sim2real_policy import rollout

    rollout_options.setdefault('workers', 1)
    task = rollout.Task(DemonstrationWorker, {'randomizer': randomizer,
                                              'dart_noise': dart_noise})
    results, _ = rollout.run(task, [{'seed': first_seed + k} for k in range(episodes)],
                             progress=progress, **rollout_options)
    return {
        'images': np.concatenate([r['images'] for r in results]),
        'proprio': np.concatenate([r['proprio'] for r in results]),
        'actions': np.concatenate([r['actions'] for r in results]),
        'episode': np.concatenate([np.full(len(r['images']), k, np.int32)
                                   for k, r in enumerate(results)]),
        'success': np.asarray([r['success'] for r in results], bool),
        'source': np.zeros(episodes, np.uint8),
        'info': {'first_seed': first_seed, 'episodes': episodes, 'dart_noise': dart_noise,
                 'horizon': HORIZON, 'action_period': ACTION_PERIOD,
                 'observation_period': OBSERVATION_PERIOD, 'image_size': IMAGE_SIZE,
                 'image_crop': IMAGE_CROP, 'render_size': RENDER_SIZE,
                 'episode_params': [r['params'] for r in results]}}


def save(data: dict, folder: str | Path, **info) -> Path:
    """Write ``data.npz`` and ``dataset.json`` into a new folder."""
    folder = Path(folder)
    if folder.exists():
        raise FileExistsError(f'{folder} exists already; datasets are never overwritten')
    folder.mkdir(parents=True)
    arrays = {k: v for k, v in data.items() if k != 'info'}
    np.savez_compressed(folder / 'data.npz', **arrays)
    description = dict(data['info'])
    description.update(info)
    description['samples'] = int(len(data['images']))
    (folder / 'dataset.json').write_text(json.dumps(description, indent=1))
    return folder


def load(folder: str | Path) -> dict:
    """Read a dataset folder written by :func:`save` (or the collection export)."""
    folder = Path(folder)
    if not (folder / 'data.npz').is_file():
        raise FileNotFoundError(f'{folder} is not a dataset folder (no data.npz)')
    with np.load(folder / 'data.npz') as npz:
        data = {k: npz[k] for k in npz.files}
    data['info'] = json.loads((folder / 'dataset.json').read_text())
    missing = {'images', 'proprio', 'actions', 'episode'} - set(data)
    if missing:
        raise ValueError(f'{folder}/data.npz lacks {sorted(missing)}')
    return data


__all__ = ['collect', 'HOME', 'load', 'run_expert_episode', 'save']

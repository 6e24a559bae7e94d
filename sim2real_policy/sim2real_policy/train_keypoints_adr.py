"""Training the keypoint network under automatic domain randomization (torch, training only).

ADR (:mod:`sim2real_policy.sim.adr`) drives the worlds the network learns from: the
parameters of ``adr_training.limits`` (config/randomization.yaml) start at their nominal value,
everything else is drawn from the base profile (heavy). Every round:

1. ``worlds_per_round`` worlds are drawn by ADR (some pinned at one boundary of one range)
   and rendered in parallel processes (the rollout layer);
2. the network, *before* it trains on them, is scored on each: a world is mastered when every
   keypoint's mean error over its frames is within ``success_px``. Boundary worlds feed ADR,
   which widens a boundary the network masters and narrows one it fails;
3. their frames join a replay buffer (the newest ``buffer_frames``) and the network trains
   ``steps_per_round`` steps on it, the learning rate on a cosine over the rounds;
4. the validation error on fresh worlds of the base profile is measured; the round with the
   lowest p95 is the model kept (validation, never a reality, chooses);
5. the state is saved in one checkpoint, atomically: ADR's ranges and buffers, the network,
   the optimizer, the batch generator, the best round and the worlds drawn so far. A later
   call with the same folder resumes from it (the replay buffer is rendered again from the
   recorded worlds: the same frames) to the model an uninterrupted run makes.

The exported model's metadata carries the final ADR state (``extra.adr``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import json
import math
from pathlib import Path
import time

import numpy as np

from sim2real_policy.keypoints import render_dataset
from sim2real_policy.sim.adr import ADR, ADRSettings, evaluation_round
from sim2real_policy.sim.params import SimParams
from sim2real_policy.train import _plot, _torch
from sim2real_policy.train_keypoints import (
    build_keypoint_network,
    export_keypoint_onnx,
    metadata,
    pixel_errors,
    train_step,
    validation_p95,
    validation_report,
)

STATE = 'adr_state.json'
CHECKPOINT = 'adr_checkpoint.pt'


@dataclass(frozen=True)
class ADRTrainingConfig:
    """Sizes of the curriculum (worlds, steps, px)."""

    rounds: int = 40
    worlds_per_round: int = 100       # 4 frames each
    steps_per_round: int = 100
    batch: int = 64
    lr: float = 2e-3
    success_px: float = 2.0           # a world is mastered within this mean error (px)
    buffer_frames: int = 16000        # replay buffer: the newest frames kept

    def __post_init__(self):
        for name in ('rounds', 'worlds_per_round', 'steps_per_round', 'batch', 'buffer_frames'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')
        if not (self.lr > 0.0 and self.success_px > 0.0):
            raise ValueError(f'lr and success_px must be > 0, got {self.lr}, {self.success_px}')


def adr_from_config(config: dict) -> ADR:
    """A fresh ADR over ``adr_training`` of randomization.yaml (nominal: SimParams)."""
    block = config.get('adr_training') or {}
    limits = {k: tuple(v) for k, v in (block.get('limits') or {}).items()}
    if not limits:
        raise ValueError('config/randomization.yaml: adr_training.limits lists no parameter')
    nominal = SimParams()
    unknown = sorted(name for name in limits if not hasattr(nominal, name))
    if unknown:
        raise ValueError(f'config/randomization.yaml: adr_training.limits: unknown '
                         f'parameter(s) {unknown}')
    settings = {k: v for k, v in block.items() if k != 'limits'}
    unknown = sorted(set(settings) - set(ADRSettings.__dataclass_fields__))
    if unknown:
        raise ValueError(f'config/randomization.yaml: adr_training: unknown key(s) {unknown}')
    return ADR({name: getattr(nominal, name) for name in limits}, limits,
               ADRSettings(**settings))


def mastered(errors: np.ndarray, frames_per_world: int, success_px: float) -> list[bool]:
    """Per world (consecutive frames): every keypoint's mean error within ``success_px``.

    A keypoint outside every frame of a world (NaN) fails it: a world nothing can be scored
    on is not one the network has shown it masters.
    """
    worlds = errors.reshape(-1, frames_per_world, errors.shape[-1])
    counts = np.isfinite(worlds).sum(axis=1)
    means = np.where(counts > 0, np.nansum(worlds, axis=1) / np.maximum(counts, 1), np.inf)
    return [bool(v) for v in (means <= success_px).all(axis=1)]


class _Buffer:
    """The newest ``capacity`` frames and labels."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.frames: np.ndarray | None = None
        self.labels: np.ndarray | None = None

    def add(self, frames: np.ndarray, labels: np.ndarray) -> None:
        if self.frames is None:
            self.frames, self.labels = frames, labels
        else:
            self.frames = np.concatenate([self.frames, frames])
            self.labels = np.concatenate([self.labels, labels])
        self.frames = self.frames[-self.capacity:]
        self.labels = self.labels[-self.capacity:]

    def __len__(self) -> int:
        return 0 if self.frames is None else len(self.frames)


def train_keypoints_adr(config: dict, base_profile: str, validation: dict, out_dir: str | Path,
                        settings: ADRTrainingConfig = ADRTrainingConfig(), seed: int = 0,
                        model_id: str = 'keypoints-adr', poses_per_world: int = 4,
                        progress=None, log=print, **rollout_options) -> dict:
    """Run (or resume) the ADR curriculum in ``out_dir``; export the best round's model."""
    torch = _torch()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)          # the initial weights
    network = build_keypoint_network()
    optimizer = torch.optim.AdamW(network.parameters(), lr=settings.lr, weight_decay=1e-4)
    buffer = _Buffer(settings.buffer_frames)
    drawn: list[dict] = []          # every world drawn so far: {'seed', 'overrides'}
    curves = {'train loss': [], 'validation p95 px': [], 'boundary mastery': []}
    best = {'p95': math.inf, 'round': 0, 'state': None}
    first_round = 0
    generator = torch.Generator().manual_seed(seed)
    checkpoint = out_dir / CHECKPOINT
    if checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=False)
        missing = {'adr', 'network', 'optimizer', 'generator', 'drawn', 'round'} - set(saved)
        if missing:
            raise ValueError(f'{checkpoint}: not an ADR checkpoint of this version (no '
                             f'{sorted(missing)}); use another folder')
        if saved['settings'] != asdict(settings) or saved['seed'] != seed \
                or saved['base_profile'] != base_profile:
            raise ValueError(f'{checkpoint}: made with other settings '
                             f'({saved["settings"]}, seed {saved["seed"]}, '
                             f'{saved["base_profile"]}); use another folder')
        network.load_state_dict(saved['network'])
        optimizer.load_state_dict(saved['optimizer'])
        adr = ADR.from_state(saved['adr'])
        drawn, curves, first_round = saved['drawn'], saved['curves'], saved['round']
        best = saved['best']
        generator.set_state(saved['generator'])
        if first_round < settings.rounds:
            keep = drawn[-math.ceil(settings.buffer_frames / poses_per_world):]
            log(f'resumed {out_dir} after round {first_round}: rendering the replay buffer '
                f'again ({len(keep)} worlds)')
            replay = render_dataset(config, base_profile, [d['seed'] for d in keep],
                                    poses_per_world, overrides=[d['overrides'] for d in keep],
                                    **rollout_options)
            buffer.add(replay['frames'], replay['labels'])
        else:
            log(f'{out_dir}: all {settings.rounds} rounds ran already; exporting the best')
    else:
        adr = adr_from_config(config)
    started = time.perf_counter()
    rendered: dict = {}

    def score(specs):
        # render the round's worlds; score the network on them before it learns them
        data = render_dataset(config, base_profile, [s['seed'] for s in specs],
                              poses_per_world, overrides=[s['overrides'] for s in specs],
                              **rollout_options)
        rendered.update(data)
        drawn.extend({'seed': s['seed'], 'overrides': dict(s['overrides'])} for s in specs)
        errors = pixel_errors(network, data['frames'], data['labels'])
        return mastered(errors, poses_per_world, settings.success_px)

    for round_index in range(first_round, settings.rounds):
        rng = np.random.default_rng([seed, adr.episodes])
        first_seed = 10**6 + seed * 10**4 + adr.episodes
        updates, outcomes = evaluation_round(adr, rng, settings.worlds_per_round, first_seed,
                                             score)
        buffer.add(rendered['frames'], rendered['labels'])
        lr = settings.lr * 0.5 * (1.0 + math.cos(math.pi * round_index / settings.rounds))
        for group in optimizer.param_groups:
            group['lr'] = lr
        frames = torch.from_numpy(buffer.frames)
        labels = torch.from_numpy(buffer.labels.astype(np.float32))
        network.train()
        losses = []
        for _ in range(settings.steps_per_round):
            index = torch.randint(len(frames), (settings.batch,), generator=generator)
            flip = torch.rand(settings.batch, generator=generator) < 0.5
            losses.append(train_step(torch, network, optimizer, frames[index], labels[index],
                                     flip))
        p95 = validation_p95(network, validation)
        curves['train loss'].append(float(np.mean(losses)))
        curves['validation p95 px'].append(p95)
        curves['boundary mastery'].append(float(np.mean(outcomes)))
        if p95 < best['p95']:
            best = {'p95': p95, 'round': round_index + 1,
                    'state': {k: v.clone() for k, v in network.state_dict().items()}}
        # one file holds everything a resume needs, written atomically; the JSON beside it is
        # a readable copy of ADR's part
        _save(torch, checkpoint, {
            'adr': adr.state(),
            'network': network.state_dict(), 'optimizer': optimizer.state_dict(),
            'drawn': drawn, 'curves': curves, 'round': round_index + 1, 'best': best,
            'generator': generator.get_state(),
            'settings': asdict(settings), 'seed': seed, 'base_profile': base_profile})
        adr.save(out_dir / STATE)
        if progress:
            progress(round_index + 1, settings.rounds, float(np.mean(losses)), p95,
                     float(np.mean(outcomes)), updates, time.perf_counter() - started)
    network.load_state_dict(best['state'])
    report = validation_report(network, validation)
    adr_summary = {'ranges': adr.ranges, 'limits': adr.limits, 'nominal': adr.nominal,
                   'updates': len(adr.updates), 'worlds': adr.episodes,
                   'chosen_round': best['round'], 'rounds': settings.rounds}
    meta = metadata(model_id, {'validation': report, 'randomization': base_profile,
                               'adr': adr_summary, 'worlds': len(drawn)})
    torch.save(network.state_dict(), out_dir / 'keypoints.pt')
    export_keypoint_onnx(network, meta, out_dir / 'keypoints.onnx')
    _plot(curves, out_dir / 'keypoint_curves.png', 'keypoint network under ADR')
    summary = {'model': str(out_dir / 'keypoints.onnx'), 'validation': report,
               'adr': adr_summary, 'curves': curves,
               'seconds_this_call': time.perf_counter() - started}
    (out_dir / 'keypoint_summary.json').write_text(json.dumps(summary, indent=2))
    return summary


def _save(torch, path: Path, state: dict) -> None:
    """Write a checkpoint atomically (a crash mid-write keeps the previous one)."""
    tmp = path.with_suffix(path.suffix + '.tmp')
    torch.save(state, tmp)
    tmp.replace(path)


__all__ = ['ADRTrainingConfig', 'adr_from_config', 'mastered', 'train_keypoints_adr']

"""Automatic domain randomization (ADR), as in OpenAI et al. 2019 ("Solving Rubik's Cube").

Every parameter starts as a point range at its nominal value. An episode either samples all
parameters inside their current ranges, or, with ``boundary_probability``, pins one parameter
at one of its two boundaries (the rest sampled as usual) to evaluate that boundary. Each
boundary keeps a buffer of outcomes; when it holds ``buffer_size`` of them, the boundary moves
outward by ``step`` (a fraction of the parameter's limit interval) if the success rate is at
least ``high_threshold``, inward if it is at most ``low_threshold``, and the buffer empties.
Ranges never leave their limits nor cross the nominal value. State is saved to JSON and
reloaded to resume.

``WholeRangeADR`` is the seed's simpler variant: one difficulty scale for every range at once.
"""
from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class ADRSettings:
    """Thresholds and sizes (``adr:`` in config/randomization.yaml)."""

    step: float = 0.05
    buffer_size: int = 10
    low_threshold: float = 0.5
    high_threshold: float = 0.8
    boundary_probability: float = 0.5

    def __post_init__(self):
        if not 0.0 < self.step <= 1.0:
            raise ValueError(f'adr step must be in (0, 1], got {self.step}')
        if self.buffer_size < 1:
            raise ValueError(f'adr buffer_size must be >= 1, got {self.buffer_size}')
        if not 0.0 <= self.low_threshold < self.high_threshold <= 1.0:
            raise ValueError('adr thresholds need 0 <= low_threshold < high_threshold <= 1, got '
                             f'{self.low_threshold}, {self.high_threshold}')
        if not 0.0 <= self.boundary_probability <= 1.0:
            raise ValueError('adr boundary_probability must be in [0, 1], '
                             f'got {self.boundary_probability}')

    @classmethod
    def from_config(cls, config: Mapping) -> 'ADRSettings':
        """From the ``adr:`` mapping (limits are read separately)."""
        return cls(**{k: v for k, v in config.items() if k != 'limits'})


class ADR:
    """Per-boundary ADR over named scalar parameters."""

    def __init__(self, nominal: Mapping[str, float], limits: Mapping[str, tuple],
                 settings: ADRSettings = ADRSettings()):
        missing = sorted(set(limits) - set(nominal))
        if missing:
            raise ValueError(f'adr limits for parameter(s) without a nominal value: {missing}')
        self.settings = settings
        self.nominal = {name: float(nominal[name]) for name in limits}
        self.limits = {}
        for name, (low, high) in limits.items():
            if not low <= self.nominal[name] <= high:
                raise ValueError(f'adr limits of {name} [{low}, {high}] must contain its '
                                 f'nominal value {self.nominal[name]}')
            self.limits[name] = (float(low), float(high))
        self.ranges = {name: [value, value] for name, value in self.nominal.items()}
        self.buffers = {(name, side): [] for name in self.limits for side in (0, 1)}
        self.updates: list[dict] = []
        self.episodes = 0

    def sample(self, rng: np.random.Generator) -> tuple[dict, tuple | None]:
        """Parameter values for one episode and the boundary it evaluates (or None)."""
        values = {name: float(rng.uniform(low, high)) if high > low else low
                  for name, (low, high) in self.ranges.items()}
        boundary = None
        if self.limits and rng.random() < self.settings.boundary_probability:
            names = sorted(self.limits)
            name = names[int(rng.integers(len(names)))]
            side = int(rng.integers(2))
            values[name] = self.ranges[name][side]
            boundary = (name, side)
        return values, boundary

    def report(self, boundary: tuple | None, success: bool) -> dict | None:
        """Record an episode outcome; returns the range update it caused, if any."""
        self.episodes += 1
        if boundary is None:
            return None
        buffer = self.buffers[boundary]
        buffer.append(bool(success))
        if len(buffer) < self.settings.buffer_size:
            return None
        rate = sum(buffer) / len(buffer)
        buffer.clear()
        name, side = boundary
        low_limit, high_limit = self.limits[name]
        delta = self.settings.step * (high_limit - low_limit)
        current = self.ranges[name][side]
        nominal = self.nominal[name]
        if rate >= self.settings.high_threshold:
            moved = max(low_limit, current - delta) if side == 0 else min(high_limit,
                                                                           current + delta)
        elif rate <= self.settings.low_threshold:
            moved = min(nominal, current + delta) if side == 0 else max(nominal,
                                                                        current - delta)
        else:
            return None
        if moved == current:
            return None
        self.ranges[name][side] = moved
        update = {'episode': self.episodes, 'parameter': name,
                  'boundary': 'low' if side == 0 else 'high', 'success_rate': rate,
                  'from': current, 'to': moved}
        self.updates.append(update)
        return update

    def state(self) -> dict:
        """Everything needed to resume."""
        return {'kind': 'per_boundary', 'settings': self.settings.__dict__,
                'nominal': self.nominal, 'limits': self.limits, 'ranges': self.ranges,
                'buffers': {f'{n}:{s}': b for (n, s), b in self.buffers.items()},
                'updates': self.updates, 'episodes': self.episodes}

    def save(self, path: str | Path) -> None:
        """Write the state as JSON (atomically)."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + '.tmp')
        tmp.write_text(json.dumps(self.state(), indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> 'ADR':
        """Resume from :meth:`save`'s file; ValueError (one line, naming it) if it is not one."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f'{path}: cannot read the ADR state ({exc})') from None
        if not isinstance(data, dict) or data.get('kind') != 'per_boundary':
            raise ValueError(f'{path}: not a per-boundary ADR state')
        try:
            return cls.from_state(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f'{path}: a malformed ADR state ({type(exc).__name__}: '
                             f'{exc})') from None

    @classmethod
    def from_state(cls, data: dict) -> 'ADR':
        """The ADR :meth:`state` describes."""
        adr = cls(data['nominal'], {k: tuple(v) for k, v in data['limits'].items()},
                  ADRSettings(**data['settings']))
        adr.ranges = {k: list(v) for k, v in data['ranges'].items()}
        for key, buffer in data['buffers'].items():
            name, side = key.rsplit(':', 1)
            adr.buffers[(name, int(side))] = list(buffer)
        adr.updates = list(data['updates'])
        adr.episodes = int(data['episodes'])
        return adr


def evaluation_round(adr, rng: np.random.Generator, episodes: int, first_seed: int,
                     run) -> tuple[list[dict], list[bool]]:
    """One round of ADR's evaluation buffers, its episodes run by anyone at once.

    The round's ``episodes`` draws are all sampled first (in order, from ``rng``), then run
    together by ``run(specs) -> [success, ...]`` (the rollout layer: one process, local
    workers or Ray), then reported in order. So the ranges after a round do not depend on who
    ran it; a range update takes effect from the next round on, as in distributed ADR.
    ``specs`` are ``{'seed': first_seed + k, 'overrides': {parameter: value}}``. Returns the
    round's range updates and the outcomes.
    """
    draws = [adr.sample(rng) for _ in range(episodes)]
    specs = [{'seed': first_seed + k, 'overrides': values}
             for k, (values, _) in enumerate(draws)]
    outcomes = [bool(ok) for ok in run(specs)]
    if len(outcomes) != len(specs):
        raise ValueError(f'run returned {len(outcomes)} outcomes for {len(specs)} episodes')
    updates = [adr.report(boundary, ok) for (_, boundary), ok in zip(draws, outcomes)]
    return [u for u in updates if u is not None], outcomes


class WholeRangeADR:
    """The seed's variant: one scale in [0, 1] widens every range toward its limits together."""

    def __init__(self, nominal: Mapping[str, float], limits: Mapping[str, tuple],
                 settings: ADRSettings = ADRSettings()):
        self.settings = settings
        self.nominal = {name: float(nominal[name]) for name in limits}
        self.limits = {name: (float(lo), float(hi)) for name, (lo, hi) in limits.items()}
        self.scale = 0.0
        self.buffer: list[bool] = []
        self.updates: list[dict] = []
        self.episodes = 0

    @property
    def ranges(self) -> dict:
        """Current range of each parameter."""
        return {name: [nom + self.scale * (self.limits[name][0] - nom),
                       nom + self.scale * (self.limits[name][1] - nom)]
                for name, nom in self.nominal.items()}

    def sample(self, rng: np.random.Generator) -> tuple[dict, None]:
        """Values inside the current ranges (no boundary evaluation in this variant)."""
        return {name: float(rng.uniform(low, high)) if high > low else low
                for name, (low, high) in self.ranges.items()}, None

    def report(self, boundary, success: bool) -> dict | None:
        """Record an outcome; adjust the scale after each full buffer."""
        self.episodes += 1
        self.buffer.append(bool(success))
        if len(self.buffer) < self.settings.buffer_size:
            return None
        rate = sum(self.buffer) / len(self.buffer)
        self.buffer.clear()
        old = self.scale
        if rate >= self.settings.high_threshold:
            self.scale = min(1.0, self.scale + self.settings.step)
        elif rate <= self.settings.low_threshold:
            self.scale = max(0.0, self.scale - self.settings.step)
        if self.scale == old:
            return None
        update = {'episode': self.episodes, 'success_rate': rate, 'from': old, 'to': self.scale}
        self.updates.append(update)
        return update

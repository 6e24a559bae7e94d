"""How far the policy's competence reaches: ADR's boundary evaluation through the full stack.

Automatic domain randomization (``adr:`` in config/randomization.yaml, sim2real_policy/sim/
adr.py) starts every listed parameter at its nominal value (the ``--where`` profile's world)
and moves each range's boundaries outward while the policy succeeds there (at least
``high_threshold`` of ``buffer_size`` boundary episodes) and inward where it fails. Each round
samples its episodes, runs them closed-loop through the whole stack on the rollout layer
(``--workers``, ``--ray-address``), then updates the ranges; the state is saved after every
round to ``--state`` and a later call resumes from it. The ranges do not depend on who ran
the episodes.
"""
from __future__ import annotations

import json
from pathlib import Path
import time

from sim2real_bringup.commands.rollout_options import add_rollout_arguments, rollout_options

FIRST_SEED = 60_000   # apart from evaluation (0...), random realities (50 000...), training


def add_arguments(parser) -> None:
    """Options of ``sim2real adr``."""
    parser.add_argument('--state', type=Path, required=True,
                        help='ADR state file (JSON): resumed if it exists, saved every round')
    parser.add_argument('--rounds', type=int, default=1, help='rounds to run (default 1)')
    parser.add_argument('--episodes', type=int, default=40,
                        help='episodes per round (default 40)')
    parser.add_argument('--model', default='bundled', help='policy (default: the bundled one)')
    parser.add_argument('--where', default='none',
                        help='randomization profile of the worlds around the ADR parameters '
                             '(default none: the nominal cell)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the draws (default 0)')
    add_rollout_arguments(parser)


def run(args) -> int:
    """Resume or start, run the rounds, save after each."""
    import numpy as np

    from sim2real_bringup.config import load_yaml
    from sim2real_bringup.evaluation import run_episodes
    from sim2real_policy.rollout import Progress
    from sim2real_policy.sim.adr import ADR, ADRSettings, evaluation_round
    from sim2real_policy.sim.params import SimParams

    for name in ('rounds', 'episodes'):
        if getattr(args, name) < 1:
            raise ValueError(f'--{name} must be >= 1, got {getattr(args, name)}')
    options = rollout_options(args)
    if args.state.exists():
        adr = ADR.load(args.state)
        print(f'resumed {args.state}: {adr.episodes} episodes, {len(adr.updates)} updates')
    else:
        config = load_yaml('randomization.yaml').get('adr', {})
        limits = {k: tuple(v) for k, v in config.get('limits', {}).items()}
        if not limits:
            raise ValueError('config/randomization.yaml: adr.limits lists no parameter')
        base = SimParams()
        adr = ADR({name: getattr(base, name) for name in limits}, limits,
                  ADRSettings.from_config(config))
        args.state.parent.mkdir(parents=True, exist_ok=True)

    def episodes(specs):
        results, stats = run_episodes(args.model, args.where, specs,
                                      progress=Progress('episodes', len(specs)), **options)
        print(f'  {stats.summary()}', flush=True)
        return [r['success'] for r in results]

    for _ in range(args.rounds):
        started = time.perf_counter()
        # the round's draws depend only on the seed and the episodes already reported
        rng = np.random.default_rng([args.seed, adr.episodes])
        updates, outcomes = evaluation_round(adr, rng, args.episodes,
                                             FIRST_SEED + adr.episodes, episodes)
        adr.save(args.state)
        print(f'round: {sum(outcomes)}/{len(outcomes)} grasps '
              f'({time.perf_counter() - started:.0f} s wall clock); '
              f'{len(updates)} range update(s)', flush=True)
        for update in updates:
            print(f'  {update["parameter"]} {update["boundary"]}: {update["from"]:.4g} -> '
                  f'{update["to"]:.4g} (boundary success {update["success_rate"]:.0%})')
    print('ranges: ' + json.dumps({k: [round(v, 4) for v in r] for k, r in adr.ranges.items()}))
    filled = {f'{n}:{"low" if s == 0 else "high"}': len(b) for (n, s), b in adr.buffers.items()}
    print(f'boundary buffers (of {adr.settings.buffer_size}): {json.dumps(filled)}')
    print(f'saved {args.state}')
    return 0

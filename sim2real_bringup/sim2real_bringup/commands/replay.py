"""Replay a recorded run through the current cores; write a new bag and a diff.

The bag's robot state, joint states, camera frames and episode ends are played at their
recorded instants; camera processing, policy, control, safety and supervisor are recomputed
with the current code and configuration (or --set overrides, or another --policy). With
nothing changed the replay is byte-identical; otherwise replay.json names the first
divergence and every command and safety verdict that changed:
{"identical", "first_divergence", "changed_commands", "changed_verdicts"}.
"""
from __future__ import annotations

from pathlib import Path
import time

import yaml


def add_arguments(parser) -> None:
    """Options of ``sim2real replay``."""
    parser.add_argument('bag', type=Path, help='a rosbag2 bag, or a run folder holding bag/')
    parser.add_argument('--out', type=Path, default=None,
                        help='folder for the new bag and replay.json (default <run>-replay)')
    parser.add_argument('--set', action='append', default=[], metavar='NODE.PARAM=VALUE',
                        help='override a parameter, e.g. safety_node.max_cartesian_speed=0.1')
    parser.add_argument('--policy', default='bundled',
                        help='bundled (default) or a model path (re-run on the recorded '
                             'frames); recorded (the recorded chunks drive the current '
                             'controller); proposals (the recorded proposals go through the '
                             'current safety filter)')


def _overrides(items) -> dict:
    overrides: dict = {}
    for item in items:
        key, sep, value = item.partition('=')
        node, dot, param = key.partition('.')
        if not sep or not dot or not param:
            raise ValueError(f'--set takes NODE.PARAM=VALUE, got {item!r}')
        overrides.setdefault(node, {})[param] = yaml.safe_load(value)
    return overrides


def run(args) -> int:
    """Replay and print the diff."""
    from sim2real_bringup.replay import replay

    bag = args.bag / 'bag' if (args.bag / 'bag' / 'metadata.yaml').is_file() else args.bag
    out = args.out or Path(f'{args.bag.resolve()}-replay')
    if out.exists():
        raise FileExistsError(f'{out} exists already; choose another --out')
    started = time.perf_counter()
    shown = [0]

    def progress(fraction):
        if fraction - shown[0] >= 0.1 or fraction >= 1.0 > shown[0]:
            shown[0] = fraction
            print(f'replaying: {fraction:4.0%}', flush=True)

    result = replay(bag, out, _overrides(args.set), policy=args.policy, progress=progress)
    wall = time.perf_counter() - started
    taken = ', '.join(f'{t} ({n})' for t, n in result['taken_from_bag'].items())
    print(f'taken from the bag: {taken}')
    print(f'recomputed by the current nodes: {", ".join(result["recomputed"])}')
    if result['recorded_not_used']:
        print(f'recorded but not used (recomputed or not an input): '
              f'{", ".join(result["recorded_not_used"])}')
    if result['identical']:
        print(f'identical: {result["compared_messages"]} messages reproduced byte for byte')
    else:
        first = result['first_divergence']
        print(f'differs from {first["time_s"]:.3f} s on {first["topic"]}: '
              f'{len(result["changed_commands"])} safe commands and '
              f'{len(result["changed_verdicts"])} safety verdicts changed')
    print(f'{result["simulated_s"]:.1f} s of recording replayed in {wall:.1f} s '
          f'({result["simulated_s"] / wall:.0f}x real time); {out / "replay.json"}')
    return 0

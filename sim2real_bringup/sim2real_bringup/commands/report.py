"""Write report.json and report.html from a bag or a run folder; or compare two runs.

One run: a headline (success with its 95 % interval, where, policy and config digests, date),
the deployment checklist judged on measured figures, the run's health (latency, control
timing, safety interventions, supervisor modes, software stops, anomalies), every episode
with filmstrips of the camera at the moments that matter, and plots. One self-contained HTML
file (images inlined, no network), written into the run folder unless --out says otherwise.

Two runs (RUN_A RUN_B, e.g. sim then proxy): side by side, with the transfer ratio (success
of B / success of A) and the differences that matter; written to --out (default
<parent of RUN_B>/compare-<A>-vs-<B>).
"""
from __future__ import annotations

import json
from pathlib import Path


def add_arguments(parser) -> None:
    """Options of ``sim2real report``."""
    parser.add_argument('runs', type=Path, nargs='+', metavar='RUN',
                        help='a rosbag2 bag, or a run folder holding bag/; two to compare')
    parser.add_argument('--out', type=Path, default=None,
                        help='folder for the report (default: the run folder; for two runs '
                             '<parent of RUN_B>/compare-<A>-vs-<B>)')


def _bag(run: Path) -> Path:
    if not run.exists():
        raise FileNotFoundError(f'{run}: no such run folder or bag')
    return run / 'bag' if (run / 'bag' / 'metadata.yaml').is_file() else run


def _extra(folder: Path) -> dict:
    """What only the run knew, from the run folder's earlier report.json (if any)."""
    from sim2real_bringup.report import RUN_KEYS

    previous = folder / 'report.json'
    if not previous.is_file():
        return {}
    try:
        return {k: v for k, v in json.loads(previous.read_text()).items() if k in RUN_KEYS}
    except (OSError, ValueError):
        return {}


def run(args) -> int:
    """Build the report (or the comparison) and say what it found."""
    from sim2real_bringup.report import write_comparison, write_report

    if len(args.runs) > 2:
        raise ValueError(f'report takes one run, or two to compare; got {len(args.runs)}')
    bags = [_bag(run) for run in args.runs]
    folders = [run if bag != run else run.parent for run, bag in zip(args.runs, bags)]
    if len(bags) == 1:
        out = args.out or folders[0]
        # A report rebuilt in a run folder keeps what only the run knew (where, seed, policy,
        # simulated and wall time, the model's measured latency): nothing is lost.
        summary = write_report(bags[0], out, extra=_extra(out))
        failed = sum(not r['success'] for r in summary['results'])
        rate = summary['success_rate']
        print(f'{summary["episodes"]} episodes, success rate '
              f'{"n/a" if rate is None else format(rate, ".0%")}'
              f' ({failed} failed); checklist: ' + ', '.join(
                  f'{r["status"]} {r["item"]}' for r in summary['checklist']))
        print(f'wrote {out / "report.json"} and {out / "report.html"}')
        return 0
    names = [(b.parent if b.name == 'bag' else b).resolve().name for b in bags]
    out = args.out or folders[1].resolve().parent / f'compare-{names[0]}-vs-{names[1]}'
    result = write_comparison(bags, out, [_extra(f) for f in folders])
    width = max(len(r[0]) for r in result['rows'])
    print(f'A: {result["a"]}\nB: {result["b"]}')
    for name, a, b, basis in result['rows']:
        print(f'  {name:<{width}}  A {a}  |  B {b}  [{basis}]')
    for row in result['checklist']:
        print(f'{row["status"]:<12} {row["item"]}: {row["figure"]}')
    print('differences that matter:' + ''.join(f'\n  - {d}' for d in result['differences'])
          if result['differences'] else 'differences that matter: none')
    print(f'wrote {out / "report.json"} and {out / "report.html"}')
    return 0

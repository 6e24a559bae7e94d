"""Write report.json and report.html (with plots) from a bag or a run folder.

Plots: action distribution, action rate of change, latency histogram, supervisor-mode
timeline, success over episodes, safety verdicts over time.
"""
from __future__ import annotations

import json
from pathlib import Path

RUN_KEYS = ('where', 'seed', 'policy', 'simulated_s', 'wall_s')


def add_arguments(parser) -> None:
    """Options of ``sim2real report``."""
    parser.add_argument('run', type=Path, help='a rosbag2 bag, or a run folder holding bag/')
    parser.add_argument('--out', type=Path, default=None,
                        help='folder for the report (default: the run folder)')


def run(args) -> int:
    """Build the report."""
    from sim2real_bringup.report import write_report

    bag = args.run / 'bag' if (args.run / 'bag' / 'metadata.yaml').is_file() else args.run
    out = args.out or (args.run if bag != args.run else args.run.parent)
    # A report rebuilt in a run folder keeps what only the run knew (where, seed, policy,
    # simulated and wall time): nothing of the earlier report is lost.
    extra = {}
    previous = out / 'report.json'
    if previous.is_file():
        try:
            extra = {k: v for k, v in json.loads(previous.read_text()).items() if k in RUN_KEYS}
        except (OSError, ValueError):
            extra = {}
    summary = write_report(bag, out, extra=extra)
    print(f'{summary["episodes"]} episodes, success rate {summary["success_rate"]}; '
          f'wrote {out / "report.json"} and {out / "report.html"}')
    return 0

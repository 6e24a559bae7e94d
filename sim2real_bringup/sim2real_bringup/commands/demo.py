"""Run the in-process pipeline on the simulated clock and write a run folder.

The run folder holds a rosbag2 bag (MCAP, CDR, message definitions embedded) of every topic.
Until the full stack lands this runs the runtime's seeded synthetic traffic scenario (chunk
source, 100 Hz hold-latest controller, first-order stage, supervisor heartbeat).
"""
from __future__ import annotations

from pathlib import Path
import time


def add_arguments(parser) -> None:
    """Options of ``sim2real demo``."""
    parser.add_argument('--seed', type=int, default=0, help='scenario seed (default 0)')
    parser.add_argument('--duration', type=float, default=10.0,
                        help='simulated seconds to run (default 10)')
    parser.add_argument('--out', type=Path, default=None,
                        help='run folder to create (default runs/demo-<seed>-<time>); never '
                             'overwritten')


def run(args) -> int:
    """Run and summarise."""
    from sim2real_bringup.bag import bag_summary, BagRecorder
    from sim2real_bringup.runtime import Graph, Scheduler
    from sim2real_bringup.scenarios import synthetic_traffic
    from sim2real_bringup.topics import qos_map

    if not args.duration > 0:
        raise ValueError(f'--duration must be > 0 s, got {args.duration}')
    out = args.out or Path('runs') / f'demo-{args.seed}-{time.strftime("%Y%m%d-%H%M%S")}'
    if out.exists():
        raise FileExistsError(f'{out} exists already; choose another --out')
    scheduler = Scheduler()
    graph = Graph(scheduler)
    started = time.perf_counter()
    with BagRecorder(out / 'bag', qos=qos_map()).attach(graph):
        synthetic_traffic(graph, scheduler, args.seed)
        scheduler.run_for(args.duration)
    wall = time.perf_counter() - started
    summary = bag_summary(out / 'bag')
    total = sum(info['count'] for info in summary.values())
    print(f'ran {args.duration:.1f} s simulated in {wall:.2f} s wall '
          f'({args.duration / wall:.0f}x real time)')
    for topic, info in summary.items():
        print(f'  {topic:<28} {info["count"]:>6}  {info["type"]}')
    print(f'{total} messages recorded to {out / "bag"}')
    return 0

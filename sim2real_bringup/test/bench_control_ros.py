"""Benchmark (not a test): the control tick's period jitter on ROS 2, measured on the wall clock.

  source install/setup.bash
  python3 src/sim2real/sim2real_bringup/test/bench_control_ros.py --seconds 30 --json out.json

Starts ``robot.launch.py standin_driver:=true record:=false`` (no sim time: every node on the
wall clock) and records the control node's own ControlDiagnostics for ``--seconds``: its
``period`` is the time between two ticks as the node measured it, so |period - 10 ms| is the
tick's jitter. Prints p50/p95/p99/max and writes them as JSON. The figures are only as good as
the machine is quiet: run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=30.0)
    parser.add_argument('--json', type=Path, default=None)
    args = parser.parse_args(argv)
    from launch_harness import Launched
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sim2real_msgs.msg import ControlDiagnostics, SupervisorState

    launched = Launched('robot.launch.py', 'standin_driver:=true', 'record:=false')
    try:
        diagnostics = launched.record('/control/diagnostics', ControlDiagnostics,
                                      QoSProfile(depth=1000,
                                                 reliability=ReliabilityPolicy.RELIABLE))
        states = launched.record('/supervisor/state', SupervisorState, QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE))
        if not launched.wait(lambda: states and states[-1][1].mode == 0, 120):
            print('the suite did not reach NORMAL; launch output:\n' + launched.output()[-2000:])
            return 1
        time.sleep(2.0)  # past start-up
        start = len(diagnostics)
        time.sleep(args.seconds)
        window = [m for _, m in diagnostics[start:]]
    finally:
        launched.close()
    period_ms = np.array([m.period for m in window if m.period > 0]) * 1e3
    jitter_ms = np.abs(period_ms - 10.0)
    figures = {
        'what': 'control_node tick period (its own ControlDiagnostics.period), ROS 2, '
                'wall clock, measured',
        'ticks': int(period_ms.size), 'seconds': args.seconds,
        'period_mean_ms': float(period_ms.mean()),
        **{f'jitter_p{q}_ms': float(np.percentile(jitter_ms, q)) for q in (50, 95, 99)},
        'jitter_max_ms': float(jitter_ms.max()),
        'load_average_1min': os.getloadavg()[0],
    }
    print(f'control tick on ROS 2 (wall clock, measured, {figures["ticks"]} ticks): period '
          f'mean {figures["period_mean_ms"]:.3f} ms; jitter p50 {figures["jitter_p50_ms"]:.3f}, '
          f'p95 {figures["jitter_p95_ms"]:.3f}, p99 {figures["jitter_p99_ms"]:.3f}, max '
          f'{figures["jitter_max_ms"]:.3f} ms (load average {figures["load_average_1min"]:.2f})')
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())

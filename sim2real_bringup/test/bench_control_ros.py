"""Benchmark (not a test): the control tick's period jitter on ROS 2, measured on the wall clock.

  source install/setup.bash
  python3 src/sim2real/sim2real_bringup/test/bench_control_ros.py --seconds 30 --json out.json

Starts ``robot.launch.py standin_driver:=true record:=false`` (no sim time: every node on the
wall clock) and records the control node's own ControlDiagnostics for ``--seconds``: its
``period`` is the time between two ticks as the node measured it, so |period - 10 ms| is the
tick's jitter. Also the rate of /safety/command and of the arm target the driver relay
forwards (/arm/target_pose), from their header stamps (the nodes' wall clock): the suite's
target is 100 Hz within 2 %. Prints p50/p95/p99/max and the rates and writes them as JSON.
The figures are only as good as the machine is quiet: run it on an otherwise idle machine.
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


def stamped_rate(received) -> float:
    """Messages per second between the first and last header stamp of (arrival, msg) pairs."""
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in received]
    if len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return float('nan')
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=30.0)
    parser.add_argument('--json', type=Path, default=None)
    args = parser.parse_args(argv)
    from geometry_msgs.msg import PoseStamped
    from launch_harness import Launched
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sim2real_msgs.msg import CartesianCommand, ControlDiagnostics, SupervisorState

    launched = Launched('robot.launch.py', 'standin_driver:=true', 'record:=false')
    try:
        diagnostics = launched.record('/control/diagnostics', ControlDiagnostics,
                                      QoSProfile(depth=1000,
                                                 reliability=ReliabilityPolicy.RELIABLE))
        keep = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        commands = launched.record('/safety/command', CartesianCommand, keep)
        targets = launched.record('/arm/target_pose', PoseStamped, keep)
        states = launched.record('/supervisor/state', SupervisorState, QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE))
        if not launched.wait(lambda: states and states[-1][1].mode == 0, 120):
            print('the suite did not reach NORMAL; launch output:\n' + launched.output()[-2000:])
            return 1
        time.sleep(2.0)  # past start-up
        start, start_c, start_t = len(diagnostics), len(commands), len(targets)
        time.sleep(args.seconds)
        window = [m for _, m in diagnostics[start:]]
        command_window, target_window = commands[start_c:], targets[start_t:]
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
        'safety_command_hz': stamped_rate(command_window),
        'arm_target_hz': stamped_rate(target_window),
        'load_average_1min': os.getloadavg()[0],
    }
    print(f'control tick on ROS 2 (wall clock, measured, {figures["ticks"]} ticks): period '
          f'mean {figures["period_mean_ms"]:.3f} ms; jitter p50 {figures["jitter_p50_ms"]:.3f}, '
          f'p95 {figures["jitter_p95_ms"]:.3f}, p99 {figures["jitter_p99_ms"]:.3f}, max '
          f'{figures["jitter_max_ms"]:.3f} ms (load average {figures["load_average_1min"]:.2f}); '
          f'/safety/command {figures["safety_command_hz"]:.2f} Hz, /arm/target_pose '
          f'{figures["arm_target_hz"]:.2f} Hz (header stamps, wall clock, measured; target '
          f'100 Hz within 2 %)')
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())

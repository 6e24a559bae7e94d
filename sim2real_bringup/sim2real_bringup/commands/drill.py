"""Fault drills: each supervised fault injected into the full in-process stack, one at a time.

Faults: camera unplugged, camera frozen, gripper stalled on an object (the driver flags it),
a silent gripper stall (only the supervisor's stall detection can tell), inference taking
1.5 s, the policy raising, four failed grasps in a row, a software stop during a degraded
mode. For each: the first degraded mode reached, why and how fast, whether the fallback ran,
whether any unsafe command left the safety filter, and whether the mode returned to NORMAL
only when it should. And one fault for the logger: a command spike on the wire to the robot,
which must raise the action_spikes warning (after an episode reset that must not).
The policy is the privileged scripted expert (the drills test supervision, not learning).
"""
from __future__ import annotations

import json
from pathlib import Path

from sim2real_bringup.outputs import refuse_existing, write_new


def add_arguments(parser) -> None:
    """Options of ``sim2real drill``."""
    from sim2real_bringup.drills import DRILLS, LOGGER_DRILLS

    names = sorted({**DRILLS, **LOGGER_DRILLS})
    parser.add_argument('--only', nargs='+', choices=names, metavar='FAULT',
                        help=f'run only these drills ({", ".join(names)})')
    parser.add_argument('--json', type=Path, default=None, help='write the results here')


def run(args) -> int:
    """Run the drills and print a pass/fail line each."""
    refuse_existing(args.json, '--json')
    from sim2real_bringup.drills import run_all

    def progress(r):
        if 'check' in r:   # a fault for the logger's anomaly checks, not the supervisor
            t = 'never' if r['time_to_warn_s'] is None else f'{r["time_to_warn_s"]:.2f} s'
            print(f'{"PASS" if r["passed"] else "FAIL"}  {r["fault"]:<40} -> '
                  f'{r["reached_level"]} {r["check"]} in {t} (budget '
                  f'{r["time_budget_s"]:.2f} s), episode reset quiet '
                  f'{"ok" if r["reset_quiet"] else "NO"}, audit saw it '
                  f'{"ok" if r["audit_saw_spike"] else "NO"}; reason: {r["reason"] or "none"}',
                  flush=True)
            return
        t = 'never' if r['time_to_mode_s'] is None else f'{r["time_to_mode_s"]:.2f} s'
        print(f'{"PASS" if r["passed"] else "FAIL"}  {r["fault"]:<40} -> {r["reached_mode"]:<16} '
              f'in {t} (budget {r["time_budget_s"]:.2f} s), fallback '
              f'{"ok" if r["fallback_ok"] else "NO"}, recovery '
              f'{"ok" if r["recovery_ok"] else "NO"}, unsafe {r["unsafe_commands"]}; '
              f'reason: {r["reason"] or "none"}', flush=True)

    results = run_all(args.only, progress)
    if args.json:
        write_new(args.json, json.dumps(results, indent=2), '--json')
        print(f'wrote {args.json}')
    failed = [r for r in results['faults'] if not r['passed']]
    return 1 if failed else 0

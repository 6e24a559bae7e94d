"""``sim2real``: the suite's command line (in-process runtime, tools, benchmarks).

Every subcommand lives in ``sim2real_bringup.commands.<name>`` with ``add_arguments(parser)``
and ``run(args) -> int``; heavy imports (MuJoCo, ONNX Runtime) happen inside ``run`` so that
``--help`` stays instant.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line summary shown by `sim2real --help`)
COMMANDS = {
    'demo': ('sim2real_bringup.commands.demo',
             'grasp episodes of the full stack on the MuJoCo sim; writes a bag and a report'),
    'replay': ('sim2real_bringup.commands.replay',
               'replay a bag through the current cores; new bag and a diff (replay.json)'),
    'recover': ('sim2real_bringup.commands.recover',
                'rebuild a recording killed before it was closed, or cut short after'),
    'report': ('sim2real_bringup.commands.report',
               'report.json and report.html with plots from a bag or run folder'),
    'train': ('sim2real_bringup.commands.train',
              'collect expert demonstrations and train a policy by behaviour cloning (torch)'),
    'calibrate-cell': ('sim2real_bringup.commands.calibrate_cell',
                       "calibrate a simulated cell's camera and table by the robot's procedure "
                       '(touch-off, fingertips at known positions); writes calibration_file'),
    'evaluate': ('sim2real_bringup.commands.evaluate',
                 'success in sim and on the reality proxy, transfer ratio, deployment checklist'),
    'adr': ('sim2real_bringup.commands.adr',
            "automatic domain randomization's boundary evaluation of a policy through the full "
            'stack: how far its competence reaches (resumable)'),
    'finetune': ('sim2real_bringup.commands.finetune',
                 'fine-tune a policy on a few reality-proxy (or real) episodes, encoder frozen'),
    'collect': ('sim2real_bringup.commands.collect',
                'a data-collection session on the sim (teleop or policy + interventions), '
                'recorded'),
    'export': ('sim2real_bringup.commands.export',
               'collected bags to a dataset that finetune reads (labels, interventions)'),
    'sysid': ('sim2real_bringup.commands.sysid',
              'fit mass, friction, damping, strength and delay to recordings (L-BFGS-B)'),
    'interfaces': ('sim2real_bringup.commands.interfaces',
                   "list the suite's message and service types, or print one definition"),
    'bench': ('sim2real_bringup.commands.bench',
              'benchmarks with printed figures and JSON (safety: check cost and fuzz run)'),
    'drill': ('sim2real_bringup.commands.drill',
              'inject each supervised fault into the full stack and check mode, fallback, '
              'safety and recovery'),
    'info': ('sim2real_bringup.commands.info',
             'summarise a rosbag2 bag: topics, types, message counts, duration'),
}

# Errors a user can fix: reported as one line, no traceback. OSError covers the file system's
# (a folder that exists, a file that does not, no permission, a path through a file, a full
# disk); its message names the path.
_USER_ERRORS = (ValueError, OSError, RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (subcommands included)."""
    parser = argparse.ArgumentParser(
        prog='sim2real',
        description='sim2real: deploy a sim-trained grasping policy safely. These commands run '
                    'the suite without ROS, on a simulated clock, with real rosbag2 output.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Run "sim2real COMMAND --help" for the options of one command.')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, (module_name, summary) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=summary, description=module.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sim2real`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args) or 0)
    except _USER_ERRORS as exc:
        print(f'sim2real {args.command}: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'sim2real {args.command}: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())

"""Rebuild a recording that was never closed, or whose .mcap was cut short after closing.

Never closed: killed with SIGKILL, power loss. Cut short: a partial copy, a full disk. The
recorder hands a chunk to the operating system every second of recorded time; this
reads every complete message that reached the disk and writes it as a new, complete bag
(<BAG>-recovered, or --out). The damaged recording is left as it is; an existing output path
is an error (nothing is overwritten).
"""
from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    """Options of ``sim2real recover``."""
    parser.add_argument('bag', type=Path, help='the unclosed rosbag2 folder')
    parser.add_argument('--out', type=Path, default=None,
                        help='where to write the recovered bag (default <BAG>-recovered)')


def run(args) -> int:
    """Recover and summarize."""
    from sim2real_bringup.bag import bag_summary, recover_bag

    notes = []
    out = recover_bag(args.bag, args.out, notes)
    summary = bag_summary(out)
    for note in notes:
        print(f'note: {note}')
    print(f'recovered {sum(v["count"] for v in summary.values())} messages on '
          f'{len(summary)} topics into {out}')
    return 0

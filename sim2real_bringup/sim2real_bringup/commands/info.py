"""Summarise a rosbag2 bag: its storage, topics with types and message counts, duration."""
from __future__ import annotations

import json
from pathlib import Path


def add_arguments(parser) -> None:
    """Options of ``sim2real info``."""
    parser.add_argument('bag', type=Path, help='rosbag2 directory (holding metadata.yaml)')
    parser.add_argument('--json', action='store_true', help='print JSON instead of a table')


def run(args) -> int:
    """Print the summary."""
    from sim2real_bringup.bag import bag_summary

    summary = bag_summary(args.bag)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    width = max((len(topic) for topic in summary), default=5)
    for topic, info in summary.items():
        print(f'{topic:<{width}}  {info["count"]:>8}  {info["type"]}')
    return 0

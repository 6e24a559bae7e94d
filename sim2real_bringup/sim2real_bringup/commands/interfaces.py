"""List the suite's interface types, or print the full definition of one.

Definitions come from the sim2real_msgs .msg/.srv files through the rosbags type system,
exactly as the in-process runtime and its bags use them.
"""
from __future__ import annotations


def add_arguments(parser) -> None:
    """Options of ``sim2real interfaces``."""
    parser.add_argument('type', nargs='?',
                        help='a type to print, e.g. sim2real_msgs/msg/ActionChunk')


def run(args) -> int:
    """List or show."""
    from sim2real_bringup import interfaces

    if args.type is None:
        for name in interfaces.suite_types():
            print(name)
        print('standard types used:', ', '.join(interfaces.STANDARD_TYPES))
        return 0
    interfaces.message_class(args.type)
    print(interfaces.typestore().generate_msgdef(args.type)[0])
    return 0

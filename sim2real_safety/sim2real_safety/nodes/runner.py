"""The one ``main()`` every suite node shares: init, spin, clean up, shut down."""
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException


def run_node(factory: Callable, args=None, on_exit: Callable | None = None) -> None:
    """Create the node, spin it until Ctrl-C or shutdown, release it."""
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            if on_exit is not None:
                on_exit(node)
            node.destroy_node()
        rclpy.try_shutdown()

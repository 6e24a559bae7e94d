"""Helpers for the ``ros``-marked tests: suite nodes on real rclpy, probes, bounded waits.

A test module starts with ``pytest.importorskip('sim2real_safety.nodes.ros_testing')``: where
ROS 2 or the built suite is missing, that import fails with the reason and the module skips.
Tests wait on conditions with a deadline (discovery on a loaded 2-core machine can take
seconds), never on fixed sleeps. DDS discovery stays on this machine.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
import time
from typing import Callable

try:
    import rclpy
except ImportError:
    raise ModuleNotFoundError('needs ROS 2 (rclpy): source /opt/ros/jazzy/setup.bash') from None
try:
    if not hasattr(importlib.import_module('sim2real_msgs.msg'), 'CartesianCommand'):
        raise ImportError
except ImportError:
    raise ModuleNotFoundError('sim2real_msgs is not built for ROS here: colcon build, '
                              'source install/setup.bash') from None

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from sim2real_safety.nodes.rclpy_node import QOS_PROFILES, RclpyNode

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
CONFIG = Path(__file__).resolve().parents[3] / 'config'


def config_file(name: str) -> Path:
    """A suite parameter file: the source tree's, else the installed one."""
    path = CONFIG / name
    if path.is_file():
        return path
    from sim2real_bringup.config import find_config_dir
    return find_config_dir() / name


class RosGraph:
    """rclpy initialised with parameter files; suite nodes and probes on one executor."""

    def __init__(self, params_files=(), overrides: dict | None = None):
        # overrides: node name -> {parameter: value}, written as one more parameter file
        # (a `-p` on the command line would reach every node of the context)
        args = ['--ros-args']
        files = [str(path) for path in params_files]
        self._tmp = None
        if overrides:
            import tempfile

            import yaml
            self._tmp = tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False)
            yaml.safe_dump({node: {'ros__parameters': params}
                            for node, params in overrides.items()}, self._tmp)
            self._tmp.close()
            files.append(self._tmp.name)
        for path in files:
            args += ['--params-file', path]
        self.context = rclpy.Context()
        rclpy.init(args=args, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.ros_nodes: list[Node] = []
        self.interfaces: list[RclpyNode] = []

    def add(self, node_class, name: str | None = None, **kwargs):
        """A suite node of ``node_class`` on rclpy; returns the suite node object."""
        ros_node = Node(name or node_class.NAME, context=self.context)
        interface = RclpyNode(ros_node)
        suite_node = node_class(interface, **kwargs)
        self.ros_nodes.append(ros_node)
        self.interfaces.append(interface)
        self.executor.add_node(ros_node)
        return suite_node

    def probe(self, name: str = 'probe') -> Node:
        """A plain rclpy node for the test's publishers, subscriptions and clients."""
        node = Node(name, context=self.context)
        self.ros_nodes.append(node)
        self.executor.add_node(node)
        return node

    def spin_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Spin until ``condition()`` holds or ``timeout`` s passed; returns the condition."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)
            if condition():
                return True
        return condition()

    def call(self, client, request, timeout: float = 10.0):
        """A service call, spun to its answer."""
        assert client.wait_for_service(timeout_sec=timeout), f'{client.srv_name} not served'
        future = client.call_async(request)
        assert self.spin_until(future.done, timeout), f'{client.srv_name} did not answer'
        return future.result()

    def close(self) -> None:
        """Destroy every node and shut rclpy down."""
        for interface in self.interfaces:
            interface.close()
        self.executor.shutdown()
        for node in self.ros_nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        if self._tmp is not None:
            os.unlink(self._tmp.name)


__all__ = ['config_file', 'QOS_PROFILES', 'RosGraph']

"""The one way the launch files turn the launch graph (``launch_graph.py``) into nodes.

Imports launch_ros, so only launch files import it (the launch graph itself stays plain data,
tested without ROS).
"""
from __future__ import annotations


def suite_node(spec, remap_override=(), condition=None, **parameters):
    """A ``launch_ros`` Node for ``spec``.

    Its config file with ``parameters`` over it, its launch-graph remappings with
    ``remap_override`` over them.
    """
    from launch.substitutions import PathJoinSubstitution
    from launch_ros.actions import Node
    from launch_ros.substitutions import FindPackageShare

    config = PathJoinSubstitution([FindPackageShare('sim2real_bringup'), 'config', spec.config])
    remappings = dict(spec.remappings)
    remappings.update(dict(remap_override))
    return Node(package=spec.package, executable=spec.executable, name=spec.executable,
                output='screen', parameters=[config, parameters],
                remappings=list(remappings.items()), condition=condition)

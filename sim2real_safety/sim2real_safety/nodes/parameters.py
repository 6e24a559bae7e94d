"""Parameters declared from a core's config dataclass: one field, one ROS parameter."""
from dataclasses import fields

from rcl_interfaces.msg import ParameterDescriptor


def declare_config(node, cls, prefix: str = '', description: str = ''):
    """Declare every field of ``cls`` (defaults from ``cls()``) on ``node``; build ``cls``.

    Tuples become arrays and back; ``prefix`` namespaces them (``teleop.`` for a nested
    mapping in the YAML). The dataclass checks the values and names a bad one.
    """
    defaults = cls()
    values = {}
    for field in fields(cls):
        name = prefix + field.name
        value = getattr(defaults, field.name)
        node.declare_parameter(name, list(value) if isinstance(value, tuple) else value,
                               ParameterDescriptor(description=description))
        value = node.get_parameter(name).value
        values[field.name] = tuple(value) if isinstance(value, (list, tuple)) else value
    return cls(**values)

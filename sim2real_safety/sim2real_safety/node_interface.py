"""The small interface every suite node is written against, once, for both runtimes.

A suite node is a plain class whose constructor takes a ``node`` object with the methods
below; it declares its parameters, publishers, subscriptions, timers and services through it,
converts messages and calls its core. Two implementations exist:

- ``sim2real_safety.nodes.rclpy_node.RclpyNode``: an ``rclpy.node.Node`` on the robot PC;
- ``sim2real_bringup.runtime.node.GraphNode``: the in-process graph on the simulated clock.

So the in-process demo, drills, replay and tests run the very node code the robot runs. This
module imports neither rclpy nor launch; it holds what both implementations share: parameter
declarations and their validation, QoS profile keys and time conversions.

The interface (duck-typed; both implementations provide exactly this):

``name``                                   the node's name (``safety_node``)
``messages``                               message factory: ``make(typename, **fields)``,
                                           ``stamp(ns)``, ``duration(ns)``, ``header(ns, frame)``,
                                           ``byte(int)``, ``cls(typename)``
``declare_parameters(params, commissioned=None, final=True) -> dict``  declare
                                           :class:`Param` s; values from the node's parameter
                                           file and overrides, validated; ``commissioned``
                                           values (from the cell file) replace them, so
                                           ``ros2 param get`` shows the value in use; with
                                           ``final`` an unknown key (of any call) is an error
                                           naming it (a node that reads its cell file first
                                           declares in two calls, the first not final)
``create_publisher(name, typename, qos)``  ``.publish(msg)``; ``qos`` is a key of ``QOS``
``create_subscription(name, typename, callback, qos)``
``create_timer(period_s, callback, steady=False)``  on the node's clock, or the steady
                                           clock for a node that drives simulated time
``create_service(name, srv_typename, callback)``  ``callback(request, response) -> response``
``create_client(name, srv_typename)``      ``.ready()``, ``.call(on_done, **fields)``:
                                           ``on_done(response)`` (None if the call failed)
``create_action_client(name, action_typename)``  ``.ready()``, ``.send(goal, on_feedback,
                                           on_done)``; ROS 2 only (the in-process graph has
                                           no actions: the driver relay runs on ROS only)
``create_action_server(name, action_typename, execute)``  ROS 2 only
``create_transform_lookup()``              ``lookup(target, source)``: the newest tf2
                                           transform or None; ROS 2 only
``now_ns() -> int``                        the node's clock (ROS time, sim time, simulated)
``logger``                                 ``debug/info/warning/error(text)``; one severity
                                           per call site (rclpy refuses two)
``run_async(work, done, failed)``          ``work()`` off the callbacks (a worker thread on
                                           ROS; on the simulated clock it runs at once and its
                                           result is delivered after the runtime's charged
                                           latency); then ``done(result, wall_s)`` or
                                           ``failed(exc)``
``on_shutdown(callback)``                  release resources when the node stops

Names are relative (``safe_command``); the launch graph (``sim2real_bringup.launch_graph``)
remaps them onto the suite's topics for both runtimes.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Mapping, Sequence

NS = 1_000_000_000

# QoS profile keys. sensor: best effort, keep last 5 (images, robot state: a late sample is
# worth nothing, and a best-effort subscriber also hears reliable publishers); default:
# reliable, keep last 10; command: reliable, keep last 1 (only the newest command matters);
# latched: reliable, transient local, keep last 1 (state a late joiner must see).
QOS = ('sensor', 'default', 'command', 'latched')

# Parameters every rclpy node has; never an unknown key.
ROS_BUILTIN_PARAMETERS = frozenset({'use_sim_time', 'start_type_description_service'})


class ParameterError(ValueError):
    """A parameter value (or key) that the node refuses; the message names node and key."""


@dataclass(frozen=True)
class Param:
    """One declared parameter.

    Its default fixes its type; the description carries the unit; ``range`` is inclusive
    (``None``: any finite value); ``choices`` lists the allowed strings.

    A parameter without a default (``default=None``, ``type`` given) is required: the node
    refuses to start without it (the safety limits: no limit is ever assumed).
    """

    name: str
    default: Any
    description: str
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    type: str | None = None
    optional: bool = False   # without a default: may be left out (its value is then None)

    @property
    def kind(self) -> str:
        """The ROS 2 parameter type: bool, integer, double, string or *_array."""
        return self.type or _kind_of(self.default, self.name)


def _kind_of(value, name: str) -> str:
    if isinstance(value, bool):
        return 'bool'
    if isinstance(value, int):
        return 'integer'
    if isinstance(value, float):
        return 'double'
    if isinstance(value, str):
        return 'string'
    if isinstance(value, (list, tuple)) and value:
        return _kind_of(value[0], name) + '_array'
    raise TypeError(f'parameter {name}: cannot infer a type from default {value!r}')


def dataclass_parameters(config_class, docs: Mapping[str, tuple], prefix: str = '') -> tuple:
    """Declarations for every field of a core's config dataclass, defaults from ``config_class()``.

    ``docs`` maps each field to ``(description, range)`` or ``(description, range, choices)``;
    a field without one is a programming error (every parameter says what it is). ``prefix``
    namespaces the parameters (``teleop.`` for a nested mapping in the YAML).
    """
    from dataclasses import fields
    defaults = config_class()
    declared = []
    for f in fields(config_class):
        if f.name not in docs:
            raise KeyError(f'{config_class.__name__}.{f.name} has no parameter description')
        text, bounds, *choices = docs[f.name]
        declared.append(Param(prefix + f.name, getattr(defaults, f.name), text, bounds,
                              tuple(choices[0]) if choices else None))
    return tuple(declared)


def check_parameter(node_name: str, param: Param, value) -> Any:
    """``value`` as ``param``'s type, or :class:`ParameterError` naming node, key and value."""
    where = f'{node_name}: parameter {param.name}'
    kind = param.kind
    if value is None and param.optional:
        return None
    if value is None:
        raise ParameterError(f'{where} is required ({param.description}) and was not given')
    if kind.endswith('_array'):
        if not isinstance(value, (list, tuple)):
            raise ParameterError(f'{where} must be a list, got {value!r}')
        item = Param(param.name, None, param.description, param.range, param.choices,
                     kind[:-len('_array')])
        return tuple(check_parameter(node_name, item, v) for v in value)
    if kind == 'bool':
        if not isinstance(value, bool):
            raise ParameterError(f'{where} must be true or false, got {value!r}')
        return value
    if kind == 'string':
        if not isinstance(value, str):
            raise ParameterError(f'{where} must be a string, got {value!r} (quote it in YAML)')
        if param.choices is not None and value not in param.choices:
            raise ParameterError(f'{where} must be one of {list(param.choices)}, '
                                 f'got {value!r}')
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = ' (YAML 1.1 reads 1.0e9 as a string: write 1.0e+9)' if isinstance(
            value, str) else ''
        raise ParameterError(f'{where} must be a number, got {value!r}{hint}')
    if kind == 'integer':
        if isinstance(value, float):
            if not value.is_integer():
                raise ParameterError(f'{where} must be an integer, got {value!r}')
            value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ParameterError(f'{where} must be finite, got {value!r}')
    if param.range is not None and not param.range[0] <= value <= param.range[1]:
        raise ParameterError(f'{where} must be in [{param.range[0]}, {param.range[1]}], '
                             f'got {value!r}')
    return value


def resolve_parameters(node_name: str, params: Sequence[Param], given: Mapping[str, Any],
                       commissioned: Mapping[str, Any] | None = None,
                       declared_before: Sequence[Param] = (), final: bool = True) -> dict:
    """Every declared parameter's value: ``given`` over the defaults, each one checked.

    ``commissioned`` values (the cell file's) replace both. With ``final``, a key in ``given``
    that no parameter (of this call or ``declared_before``) declares is an error naming it: a
    typo'd limit must never leave the real one at its default.
    """
    commissioned = dict(commissioned or {})
    declared = {p.name for p in (*declared_before, *params)}
    stray = sorted(set(commissioned) - {p.name for p in params})
    if stray:
        raise ParameterError(f'{node_name}: commissioned value(s) for undeclared {stray}')
    unknown = sorted(set(given) - declared - ROS_BUILTIN_PARAMETERS)
    if final and unknown:
        raise ParameterError(f'{node_name}: unknown parameter(s) {unknown}; declared: '
                             f'{sorted(declared)}')
    return {p.name: check_parameter(node_name, p, commissioned.get(
        p.name, given.get(p.name, p.default))) for p in params}


def ns_of(stamp) -> int:
    """Integer nanoseconds of a ``builtin_interfaces`` Time or Duration (either runtime)."""
    return int(stamp.sec) * NS + int(stamp.nanosec)

"""The suite's interfaces without ROS: ``sim2real_msgs`` loaded with the rosbags type system.

One definition: the ``.msg``/``.srv`` files of ``sim2real_msgs`` are the only place a message
is declared. On a robot PC rosidl generates the rclpy classes from them; here the very same
files are parsed by ``rosbags`` into a typestore that also carries the standard ROS 2 Jazzy
types (std_msgs, builtin_interfaces, geometry_msgs, sensor_msgs, ...). A service ``Name.srv``
becomes the two message types ``sim2real_msgs/srv/Name_Request`` and ``..._Response``, as
rosidl names them.

Messages built here serialize to the same CDR bytes as rclpy's, so bags written by the
in-process runtime open in ``ros2 bag``, Foxglove and rosbags.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
import re

import numpy as np
from rosbags.typesys import get_types_from_msg, get_typestore, Stores
from rosbags.typesys.base import Nodetype

MSGS_PACKAGE = 'sim2real_msgs'

# Standard ROS 2 types the suite publishes or records; each is covered by the round-trip test.
STANDARD_TYPES = (
    'builtin_interfaces/msg/Time',
    'builtin_interfaces/msg/Duration',
    'std_msgs/msg/Header',
    'geometry_msgs/msg/Twist',
    'sensor_msgs/msg/Image',
    'sensor_msgs/msg/CameraInfo',
    'sensor_msgs/msg/JointState',
    'sensor_msgs/msg/Joy',
    'rosgraph_msgs/msg/Clock',
    'diagnostic_msgs/msg/DiagnosticArray',
    'tf2_msgs/msg/TFMessage',
)

# rosbags' numpy dtype for each primitive that can sit in a numeric array.
_NUMERIC_DTYPES = {
    'bool': np.bool_, 'byte': np.uint8, 'char': np.uint8,
    'int8': np.int8, 'uint8': np.uint8, 'int16': np.int16, 'uint16': np.uint16,
    'int32': np.int32, 'uint32': np.uint32, 'int64': np.int64, 'uint64': np.uint64,
    'float32': np.float32, 'float64': np.float64,
}
_INT_RANGES = {
    name: (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
    for name, dtype in _NUMERIC_DTYPES.items() if name not in ('bool', 'float32', 'float64')
}
# rosbags packs a scalar ``byte`` as a signed octet; arrays of byte are uint8 as in ROS 2.
_INT_RANGES['byte'] = (-128, 127)


class InterfaceError(ValueError):
    """Base class of the message layer's errors."""


class UnknownMessageTypeError(InterfaceError):
    """A type name that is neither a suite interface nor a loaded standard type."""


class MessageFieldError(InterfaceError):
    """A message whose field has the wrong type, shape or range for its definition."""


def find_msgs_dir() -> Path:
    """Locate the ``sim2real_msgs`` package folder holding ``msg/`` and ``srv/``.

    Looked up, in order: ``$SIM2REAL_MSGS_DIR``; an installed ``share/sim2real_msgs`` on
    ``$AMENT_PREFIX_PATH`` (a colcon workspace); the source tree beside this package.
    """
    candidates = []
    if os.environ.get('SIM2REAL_MSGS_DIR'):
        candidates.append(Path(os.environ['SIM2REAL_MSGS_DIR']))
    for prefix in filter(None, os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)):
        candidates.append(Path(prefix) / 'share' / MSGS_PACKAGE)
    candidates.append(Path(__file__).resolve().parents[2] / MSGS_PACKAGE)
    for path in candidates:
        if (path / 'msg').is_dir():
            return path
    tried = ', '.join(str(p) for p in candidates)
    raise InterfaceError(f'cannot find the {MSGS_PACKAGE} interface files; tried: {tried}')


def _split_srv(text: str) -> tuple[str, str]:
    parts = re.split(r'^---\s*$', text, maxsplit=1, flags=re.MULTILINE)
    if len(parts) != 2:
        raise InterfaceError('a .srv file needs one "---" line between request and response')
    return parts[0], parts[1]


def load_interface_definitions(msgs_dir: Path | None = None) -> dict:
    """Parse every ``.msg`` and ``.srv`` file into a rosbags types dictionary."""
    root = msgs_dir or find_msgs_dir()
    types: dict = {}
    for path in sorted((root / 'msg').glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'{MSGS_PACKAGE}/msg/{path.stem}'))
    for path in sorted((root / 'srv').glob('*.srv')):
        try:
            request, response = _split_srv(path.read_text())
        except InterfaceError as exc:
            raise InterfaceError(f'{path}: {exc}') from None
        for part, text in (('Request', request), ('Response', response)):
            # rosbags files every type under .../msg/; rosidl names service parts
            # sim2real_msgs/srv/Name_Request, so rename the parsed entry to match.
            parsed = get_types_from_msg(text, f'{MSGS_PACKAGE}/msg/{path.stem}_{part}')
            types.update({f'{MSGS_PACKAGE}/srv/{path.stem}_{part}': definition
                          for definition in parsed.values()})
    if not types:
        raise InterfaceError(f'no .msg or .srv files under {root}')
    return types


@functools.lru_cache(maxsize=1)
def typestore():
    """The process-wide typestore: ROS 2 Jazzy standard types plus the suite's interfaces."""
    store = get_typestore(Stores.ROS2_JAZZY)
    store.register(load_interface_definitions())
    # std_srvs/srv/Trigger (the collection services), named the way rosidl names it.
    for part, text in (('Request', 'uint8 structure_needs_at_least_one_member'),
                       ('Response', 'bool success\nstring message')):
        parsed = get_types_from_msg(text, f'std_srvs/msg/Trigger_{part}')
        store.register({f'std_srvs/srv/Trigger_{part}': d for d in parsed.values()})
    return store


def suite_types() -> list[str]:
    """Every type defined by ``sim2real_msgs`` (messages, service requests and responses)."""
    return sorted(name for name in typestore().fielddefs if name.startswith(MSGS_PACKAGE + '/'))


def _fielddefs(typename: str):
    try:
        return typestore().fielddefs[typename]
    except KeyError:
        raise UnknownMessageTypeError(
            f'unknown message type {typename!r}: not in {MSGS_PACKAGE} nor the standard '
            'ROS 2 types (write it as package/msg/Name)') from None


def message_class(typename: str) -> type:
    """The message class of ``typename``; raises :class:`UnknownMessageTypeError`."""
    _fielddefs(typename)
    return typestore().types[typename]


def constants(typename: str) -> dict[str, object]:
    """The constants of a message definition, e.g. ``SupervisorState`` modes."""
    return {name: value for name, _, value in _fielddefs(typename)[0]}


def _default_value(desc):
    kind, rest = desc
    if kind == Nodetype.NAME:
        return default_message(rest)
    if kind == Nodetype.BASE:
        prim = rest[0]
        if prim == 'string' or prim == 'wstring':
            return ''
        if prim == 'bool':
            return False
        return 0.0 if prim.startswith('float') else 0
    sub, count = rest
    if sub[0] == Nodetype.BASE and sub[1][0] in _NUMERIC_DTYPES:
        size = count if kind == Nodetype.ARRAY else 0
        return np.zeros(size, dtype=_NUMERIC_DTYPES[sub[1][0]])
    if kind == Nodetype.ARRAY:
        return [_default_value(sub) for _ in range(count)]
    return []


@functools.lru_cache(maxsize=None)
def _defaults(typename: str) -> tuple:
    """Per field ``(name, value, desc)``: a scalar field's default, built once.

    Scalars are immutable; ``value`` is None where each message needs a fresh one (arrays,
    nested messages).
    """
    return tuple((name, _default_value(desc) if desc[0] == Nodetype.BASE else None, desc)
                 for name, desc in _fielddefs(typename)[1])


def default_message(typename: str):
    """An instance of ``typename`` with every field zero, empty or default-constructed."""
    cls = message_class(typename)
    return cls(**{name: _default_value(desc) if value is None else value
                  for name, value, desc in _defaults(typename)})


@functools.lru_cache(maxsize=None)
def _field_names(typename: str) -> frozenset:
    return frozenset(name for name, _ in _fielddefs(typename)[1])


def make(typename: str, **fields):
    """Build ``typename`` from keyword fields; fields not given take their default value.

    Unknown field names raise :class:`MessageFieldError`; values are validated.
    """
    if not _field_names(typename).issuperset(fields):
        names = [name for name, _ in _fielddefs(typename)[1]]
        unknown = sorted(set(fields) - set(names))
        raise MessageFieldError(f'{typename} has no field(s) {unknown}; fields are {names}')
    msg = default_message(typename)
    for name, value in fields.items():
        setattr(msg, name, value)
    validate(msg, typename)
    return msg


def _check_value(value, desc, where: str, quick: bool = True) -> None:
    """Raise :class:`MessageFieldError` unless ``value`` fits ``desc``.

    ``quick=False``: nested fields by the full check too (the reference the quick tests are
    tested against).
    """
    kind, rest = desc
    if kind == Nodetype.NAME:
        cls = message_class(rest)
        if not isinstance(value, cls):
            raise MessageFieldError(
                f'{where}: expected a {rest} message, got {type(value).__name__} {value!r:.60}')
        _check_fields(value, rest, where, quick)
        return
    if kind == Nodetype.BASE:
        _check_primitive(value, rest[0], rest[1], where)
        return
    sub, count = rest
    numeric = sub[0] == Nodetype.BASE and sub[1][0] in _NUMERIC_DTYPES
    if numeric:
        dtype = np.dtype(_NUMERIC_DTYPES[sub[1][0]])
        if not isinstance(value, np.ndarray) or value.dtype != dtype or value.ndim != 1:
            got = (f'ndarray {value.dtype} ndim {value.ndim}' if isinstance(value, np.ndarray)
                   else type(value).__name__)
            raise MessageFieldError(
                f'{where}: expected a 1-D numpy array of {dtype} ({sub[1][0]}[]), got {got}')
        size = len(value)
    else:
        if not isinstance(value, list):
            raise MessageFieldError(f'{where}: expected a list, got {type(value).__name__}')
        size = len(value)
        for index, item in enumerate(value):
            _check_value(item, sub, f'{where}[{index}]', quick)
    if kind == Nodetype.ARRAY and size != count:
        raise MessageFieldError(f'{where}: expected exactly {count} elements, got {size}')
    if kind == Nodetype.SEQUENCE and count and size > count:
        raise MessageFieldError(f'{where}: at most {count} elements allowed, got {size}')


def _check_primitive(value, prim: str, bound: int, where: str) -> None:
    if prim in ('string', 'wstring'):
        if not isinstance(value, str):
            raise MessageFieldError(f'{where}: expected {prim}, got {type(value).__name__} '
                                    f'{value!r:.60}')
        if bound and len(value) > bound:
            raise MessageFieldError(f'{where}: string longer than its bound {bound}')
        return
    if prim == 'bool':
        if not isinstance(value, (bool, np.bool_)):
            raise MessageFieldError(f'{where}: expected bool, got {type(value).__name__} '
                                    f'{value!r:.60}')
        return
    if prim.startswith('float'):
        if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (int, float, np.integer, np.floating)):
            raise MessageFieldError(f'{where}: expected {prim}, got {type(value).__name__} '
                                    f'{value!r:.60}')
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise MessageFieldError(f'{where}: expected {prim} (an integer), got '
                                f'{type(value).__name__} {value!r:.60}')
    low, high = _INT_RANGES[prim]
    if not low <= int(value) <= high:
        raise MessageFieldError(f'{where}: {value} is outside the {prim} range [{low}, {high}]')


# what a float field is usually handed (the full check also takes other numpy numbers)
_QUICK_FLOAT_TYPES = frozenset({float, int, np.float64, np.float32})


def _quick_test(desc):
    """A test that passes only values :func:`_check_value` passes, in a few operations.

    None where there is none. Every message the suite publishes is validated (twice
    in-process: built, then published), so the common case must be cheap; whatever fails the
    quick test gets the full check and its exact error.
    """
    kind, rest = desc
    if kind == Nodetype.NAME:
        cls, fields = message_class(rest), _quick_tests(rest)
        return lambda value: type(value) is cls and _passes(value, fields)
    if kind == Nodetype.BASE:
        prim, bound = rest
        if prim in ('string', 'wstring'):
            return lambda value: type(value) is str and (not bound or len(value) <= bound)
        if prim == 'bool':
            return lambda value: type(value) is bool
        if prim.startswith('float'):
            return lambda value: type(value) in _QUICK_FLOAT_TYPES
        low, high = _INT_RANGES[prim]
        return lambda value: type(value) is int and low <= value <= high
    sub, count = rest
    if not (sub[0] == Nodetype.BASE and sub[1][0] in _NUMERIC_DTYPES):
        item = _quick_test(sub)   # a list: of strings, or of messages
        if item is None:
            return None
        if kind == Nodetype.ARRAY:
            return lambda value: (type(value) is list and len(value) == count
                                  and all(map(item, value)))
        return lambda value: (type(value) is list and (not count or len(value) <= count)
                              and all(map(item, value)))
    dtype = np.dtype(_NUMERIC_DTYPES[sub[1][0]])
    if kind == Nodetype.ARRAY:
        return lambda value: (type(value) is np.ndarray and value.dtype == dtype
                              and value.ndim == 1 and len(value) == count)
    return lambda value: (type(value) is np.ndarray and value.dtype == dtype
                          and value.ndim == 1 and (not count or len(value) <= count))


@functools.lru_cache(maxsize=None)
def _quick_tests(typename: str) -> tuple:
    """Per field of ``typename``: ``(name, desc, quick test or None)``."""
    return tuple((name, desc, _quick_test(desc)) for name, desc in _fielddefs(typename)[1])


def _passes(msg, fields: tuple) -> bool:
    for name, _, test in fields:
        if test is None or not test(getattr(msg, name)):
            return False
    return True


def _check_fields(msg, typename: str, where: str, quick: bool = True) -> None:
    for name, desc, test in _quick_tests(typename):
        value = getattr(msg, name)
        if not quick or test is None or not test(value):
            _check_value(value, desc, f'{where}.{name}', quick)


def validate(msg, typename: str | None = None) -> None:
    """Check every field of ``msg`` against its definition.

    Raises :class:`MessageFieldError` naming the field path, the expected type and the value,
    e.g. ``sim2real_msgs/msg/CartesianCommand.x: expected float64, got str 'abc'``.
    """
    typename = typename or getattr(msg, '__msgtype__', None)
    if typename is None:
        raise MessageFieldError(f'{type(msg).__name__} is not a message of the suite typestore')
    cls = message_class(typename)
    if not isinstance(msg, cls):
        raise MessageFieldError(
            f'expected a {typename} message, '
            f'got {getattr(msg, "__msgtype__", type(msg).__name__)}')
    _check_fields(msg, typename, typename)


def serialize(msg, typename: str | None = None) -> bytes:
    """CDR bytes (little endian, as rclpy writes them) of a validated message."""
    typename = typename or msg.__msgtype__
    validate(msg, typename)
    return bytes(typestore().serialize_cdr(msg, typename))


def deserialize(data: bytes | memoryview, typename: str):
    """The message decoded from CDR ``data``."""
    _fielddefs(typename)
    return typestore().deserialize_cdr(data, typename)


def time_from_ns(stamp_ns: int):
    """A ``builtin_interfaces/msg/Time`` for a time in integer nanoseconds."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return message_class('builtin_interfaces/msg/Time')(sec=sec, nanosec=nanosec)


def duration_from_ns(duration_ns: int):
    """A ``builtin_interfaces/msg/Duration`` for a duration in integer nanoseconds."""
    sec, nanosec = divmod(int(duration_ns), 1_000_000_000)
    return message_class('builtin_interfaces/msg/Duration')(sec=sec, nanosec=nanosec)


def ns_from_time(stamp) -> int:
    """Integer nanoseconds of a ``Time`` or ``Duration``."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def header(stamp_ns: int, frame_id: str = ''):
    """A ``std_msgs/msg/Header`` stamped at ``stamp_ns``."""
    return message_class('std_msgs/msg/Header')(stamp=time_from_ns(stamp_ns), frame_id=frame_id)


def _example_value(desc, rng: np.random.Generator, depth: int):
    kind, rest = desc
    if kind == Nodetype.NAME:
        return example_message(rest, rng, depth + 1)
    if kind == Nodetype.BASE:
        prim = rest[0]
        if prim in ('string', 'wstring'):
            return ''.join(rng.choice(list('abcxyz_019 /'), size=int(rng.integers(0, 12))))
        if prim == 'bool':
            return bool(rng.integers(0, 2))
        if prim.startswith('float'):
            value = float(rng.normal(0.0, 10.0))
            # float32 fields round-trip only values representable in float32.
            return float(np.float32(value)) if prim == 'float32' else value
        low, high = _INT_RANGES[prim]
        return int(rng.integers(low, high, endpoint=True, dtype=np.uint64 if low == 0
                                else np.int64))
    sub, count = rest
    size = count if kind == Nodetype.ARRAY else int(rng.integers(0, 4 if depth else 6))
    if sub[0] == Nodetype.BASE and sub[1][0] in _NUMERIC_DTYPES:
        dtype = np.dtype(_NUMERIC_DTYPES[sub[1][0]])
        if dtype.kind in 'iu':
            info = np.iinfo(dtype)
            return rng.integers(info.min, info.max, size=size, dtype=dtype, endpoint=True)
        if dtype.kind == 'b':
            return rng.integers(0, 2, size=size).astype(np.bool_)
        return rng.normal(0.0, 10.0, size).astype(dtype)
    return [_example_value(sub, rng, depth + 1) for _ in range(size)]


def example_message(typename: str, rng: np.random.Generator, depth: int = 0):
    """A ``typename`` instance with random, valid values in every field (for tests and fuzzing)."""
    cls = message_class(typename)
    return cls(**{name: _example_value(desc, rng, depth)
                  for name, desc in _fielddefs(typename)[1]})


class RosbagsMessages:
    """The message factory of the in-process runtime (the node interface's ``messages``)."""

    make = staticmethod(make)
    stamp = staticmethod(time_from_ns)
    duration = staticmethod(duration_from_ns)
    header = staticmethod(header)

    @staticmethod
    def cls(typename: str) -> type:
        """The rosbags class of ``typename``."""
        return message_class(typename)

    @staticmethod
    def byte(value: int) -> int:
        """A ``byte`` field's value (rosbags wants an int)."""
        return int(value)


MESSAGES = RosbagsMessages()

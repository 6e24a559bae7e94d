"""Every interface round-trips through CDR; bad messages get errors naming the field."""
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from sim2real_bringup import interfaces as ifc

MSGS_DIR = Path(__file__).resolve().parents[2] / 'sim2real_msgs'


def _interface_types_from_files():
    """Type names derived from the .msg/.srv files themselves, so new files are covered."""
    names = [f'sim2real_msgs/msg/{p.stem}' for p in sorted((MSGS_DIR / 'msg').glob('*.msg'))]
    for path in sorted((MSGS_DIR / 'srv').glob('*.srv')):
        names += [f'sim2real_msgs/srv/{path.stem}_Request',
                  f'sim2real_msgs/srv/{path.stem}_Response']
    return names


def assert_messages_equal(a, b, where='msg'):
    assert type(a).__name__ == type(b).__name__, where
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for index, (item_a, item_b) in enumerate(zip(a, b)):
            assert_messages_equal(item_a, item_b, f'{where}[{index}]')
    elif hasattr(a, '__msgtype__'):
        for name in a.__dataclass_fields__:
            if name != '__msgtype__':
                assert_messages_equal(getattr(a, name), getattr(b, name), f'{where}.{name}')
    else:
        assert a == b, f'{where}: {a!r} != {b!r}'


def test_the_files_define_the_types():
    assert sorted(_interface_types_from_files()) == ifc.suite_types()


@pytest.mark.parametrize('typename', _interface_types_from_files() + list(ifc.STANDARD_TYPES))
def test_round_trip(typename):
    rng = np.random.default_rng(abs(hash(typename)) % 2**32)
    for _ in range(5):
        msg = ifc.example_message(typename, rng)
        data = ifc.serialize(msg, typename)
        back = ifc.deserialize(data, typename)
        assert_messages_equal(msg, back, typename)
        assert ifc.serialize(back, typename) == data
    default = ifc.default_message(typename)
    assert_messages_equal(default, ifc.deserialize(ifc.serialize(default), typename))


def test_unknown_type_is_named():
    with pytest.raises(ifc.UnknownMessageTypeError, match='sim2real_msgs/msg/NoSuchThing'):
        ifc.message_class('sim2real_msgs/msg/NoSuchThing')


CMD = 'sim2real_msgs/msg/CartesianCommand'


@pytest.mark.parametrize('typename, fields, expected', [
    (CMD, {'x': 'abc'}, r"CartesianCommand\.x: expected float64, got str 'abc'"),
    (CMD, {'x': None}, r'CartesianCommand\.x: expected float64, got NoneType'),
    (CMD, {'x': True}, r'CartesianCommand\.x: expected float64, got bool'),
    (CMD, {'source': 1.5}, r'CartesianCommand\.source: expected uint8 \(an integer\)'),
    (CMD, {'source': 256}, r'CartesianCommand\.source: 256 is outside the uint8 range'),
    (CMD, {'source': -1}, r'CartesianCommand\.source: -1 is outside the uint8 range'),
    (CMD, {'header': 'now'}, r'CartesianCommand\.header: expected a std_msgs/msg/Header'),
    ('sim2real_msgs/msg/ActionChunk', {'actions': [1.0, 2.0]},
     r'ActionChunk\.actions: expected a 1-D numpy array of float64'),
    ('sim2real_msgs/msg/ActionChunk', {'actions': np.zeros(3, np.float32)},
     r'ActionChunk\.actions: expected a 1-D numpy array of float64'),
    ('sim2real_msgs/msg/ActionChunk', {'actions': np.zeros((2, 5))},
     r'ActionChunk\.actions: expected a 1-D numpy array of float64 \(float64\[\]\), got ndarray'),
    ('sim2real_msgs/msg/ActionChunk', {'action_names': ['x', 3]},
     r'ActionChunk\.action_names\[1\]: expected string, got int'),
    ('sensor_msgs/msg/CameraInfo', {'k': np.zeros(8)}, r'CameraInfo\.k: expected exactly 9'),
])
def test_wrong_field_is_named(typename, fields, expected):
    with pytest.raises(ifc.MessageFieldError, match=expected):
        ifc.make(typename, **fields)
    msg = ifc.default_message(typename)
    for name, value in fields.items():
        setattr(msg, name, value)
    with pytest.raises(ifc.MessageFieldError, match=expected):
        ifc.serialize(msg, typename)


def test_nested_field_error_names_the_path():
    msg = ifc.default_message(CMD)
    msg.header.stamp.sec = 'yesterday'
    with pytest.raises(ifc.MessageFieldError, match=r'CartesianCommand\.header\.stamp\.sec'):
        ifc.validate(msg)


def test_make_rejects_unknown_field():
    with pytest.raises(ifc.MessageFieldError, match="no field.*'speed'"):
        ifc.make(CMD, speed=1.0)


def test_wrong_message_class_is_refused():
    state = ifc.default_message('sim2real_msgs/msg/RobotState')
    with pytest.raises(ifc.MessageFieldError, match='expected a sim2real_msgs/msg/Cartesian'):
        ifc.validate(state, CMD)


def test_constants_come_from_the_definition():
    modes = ifc.constants('sim2real_msgs/msg/SupervisorState')
    assert modes['MODE_NORMAL'] == 0 and modes['MODE_SOFTWARE_STOP'] == 5
    assert ifc.message_class(CMD).SOURCE_TELEOP == 5


def test_time_conversions_are_exact():
    for ns in (0, 1, 999_999_999, 1_000_000_000, 1_732_240_000_123_456_789):
        assert ifc.ns_from_time(ifc.time_from_ns(ns)) == ns
        assert ifc.ns_from_time(ifc.duration_from_ns(ns)) == ns


def test_srv_without_separator_is_refused(tmp_path):
    (tmp_path / 'msg').mkdir()
    (tmp_path / 'srv').mkdir()
    (tmp_path / 'srv' / 'Broken.srv').write_text('string a\n')
    with pytest.raises(ifc.InterfaceError, match='Broken.srv.*---'):
        ifc.load_interface_definitions(tmp_path)


def _bad_header(sec):
    """A Header whose nested stamp.sec is ``sec`` (valid or not): the quick test recurses."""
    header = ifc.default_message('std_msgs/msg/Header')
    header.stamp.sec = sec
    return header


# Values of every kind a field can be handed: the quick tests of validation must never pass
# one the full check refuses.
_ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
    st.sampled_from([np.float64(1.5), np.float32(2.0), np.int64(7), np.uint8(3), np.bool_(True)]),
    st.builds(lambda dtype, size: np.zeros(size, dtype=dtype),
              st.sampled_from([np.float64, np.float32, np.uint8, np.int8, np.int32, np.bool_]),
              st.integers(0, 10)),
    st.builds(lambda size: np.zeros((size, 2)), st.integers(0, 3)),
    st.lists(st.integers(0, 3), max_size=3), st.lists(st.text(max_size=3), max_size=3),
    st.lists(st.sampled_from(['diagnostic_msgs/msg/KeyValue', 'std_msgs/msg/Header'])
             .map(ifc.default_message), max_size=2),
    st.sampled_from(['sim2real_msgs/msg/CartesianCommand', 'std_msgs/msg/Header',
                     'builtin_interfaces/msg/Time']).map(ifc.default_message),
    st.one_of(st.text(max_size=2), st.floats(), st.integers(-2**40, 2**40)).map(_bad_header),
)
_TYPES = ifc.suite_types() + list(ifc.STANDARD_TYPES) + ['diagnostic_msgs/msg/DiagnosticStatus']
_FIELDS = [(typename, name) for typename in _TYPES for name, _ in ifc._fielddefs(typename)[1]]


@settings(max_examples=1500, deadline=None)
@given(field=st.sampled_from(_FIELDS), value=_ANY_VALUE)
def test_quick_validation_never_passes_what_the_full_check_refuses(field, value):
    typename, name = field
    msg = ifc.default_message(typename)
    setattr(msg, name, value)
    (desc, test), = [(d, t) for n, d, t in ifc._quick_tests(typename) if n == name]
    try:
        ifc._check_value(value, desc, name, quick=False)
    except ifc.MessageFieldError:
        full = False
    else:
        full = True
    if test is not None and test(value):
        assert full, f'{typename}.{name} quick-passed {value!r}'
    # validate() agrees with the full check of the field, the quick test or not
    try:
        ifc.validate(msg, typename)
    except ifc.MessageFieldError as error:
        assert not full and f'.{name}' in str(error)
    else:
        assert full

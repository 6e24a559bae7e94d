"""Where ROS 2 is installed: the rosbags layer and rclpy agree on every interface, byte for byte.

Run after `colcon build` and `source install/setup.bash` so the rosidl-generated
sim2real_msgs classes import.
"""
import numpy as np
import pytest

from sim2real_bringup import interfaces as ifc

pytestmark = pytest.mark.ros
rclpy_serialization = pytest.importorskip(
    'rclpy.serialization', reason='needs ROS 2 (rclpy); source a Humble or Jazzy install')
utilities = pytest.importorskip('rosidl_runtime_py.utilities',
                                reason='needs rosidl_runtime_py (part of ROS 2)')


def _rclpy_class(typename):
    package, kind, name = typename.split('/')
    try:
        if kind == 'srv':
            service, part = name.rsplit('_', 1)
            return getattr(utilities.get_service(f'{package}/srv/{service}'), part)
        return utilities.get_message(typename)
    except (AttributeError, ModuleNotFoundError, ValueError) as exc:
        pytest.skip(f'{typename} is not built for ROS here ({exc}); colcon build sim2real_msgs')


@pytest.mark.parametrize('typename', ifc.suite_types() + list(ifc.STANDARD_TYPES))
def test_rclpy_reads_and_writes_the_same_cdr(typename):
    cls = _rclpy_class(typename)
    rng = np.random.default_rng(3)
    for _ in range(3):
        ours = ifc.serialize(ifc.example_message(typename, rng), typename)
        theirs = rclpy_serialization.serialize_message(
            rclpy_serialization.deserialize_message(ours, cls))
        assert theirs == ours

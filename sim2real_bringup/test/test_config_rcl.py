"""Where ROS 2 is installed: every parameter file under config/ is parsed by rcl itself.

rcl's YAML parser is stricter than PyYAML (arrays must be homogeneous; an unquoted y/n/on/off
is a boolean), so a file the in-process runtime reads can still stop a node on the robot.
"""
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.ros
CONFIG = Path(__file__).resolve().parents[2] / 'config'
def _is_parameter_file(path: Path) -> bool:
    data = yaml.safe_load(path.read_text())
    return isinstance(data, dict) and any(
        isinstance(v, dict) and 'ros__parameters' in v for v in data.values())


PARAMETER_FILES = sorted(path for path in CONFIG.glob('*.yaml') if _is_parameter_file(path))


def test_there_are_parameter_files():
    assert {p.name for p in PARAMETER_FILES} >= {'safety.yaml', 'policy.yaml', 'control.yaml',
                                                 'supervisor.yaml', 'sim.yaml', 'relay.yaml'}


@pytest.mark.parametrize('path', PARAMETER_FILES, ids=lambda p: p.name)
def test_rcl_parses_the_parameter_file(path):
    rclpy = pytest.importorskip('rclpy', reason='needs ROS 2 (rclpy): source Humble or Jazzy')
    context = rclpy.Context()
    try:
        rclpy.init(args=['--ros-args', '--params-file', str(path)], context=context)
    finally:
        rclpy.try_shutdown(context=context)


def test_rcl_refuses_what_pyyaml_accepts(tmp_path):
    """The check can fail: the bug the robot saw (an unquoted y among strings)."""
    rclpy = pytest.importorskip('rclpy', reason='needs ROS 2 (rclpy): source Humble or Jazzy')
    bad = tmp_path / 'bad.yaml'
    bad.write_text('policy_node:\n  ros__parameters:\n    names: [x, y, z]\n')
    from rclpy.impl.implementation_singleton import rclpy_implementation
    context = rclpy.Context()
    try:
        with pytest.raises(rclpy_implementation.RCLError, match='Sequence should be of same'):
            rclpy.init(args=['--ros-args', '--params-file', str(bad)], context=context)
    finally:
        rclpy.try_shutdown(context=context)

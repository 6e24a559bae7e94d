"""Where ROS 2 and the built suite are installed: ``replay.launch.py`` on a demo bag.

``ros2 bag play --clock`` plays an in-process demo bag through the live control, safety and
supervisor nodes.
"""
import shutil

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
pytest.importorskip('sim2real_safety.nodes.ros_testing')
if shutil.which('ros2') is None:
    pytest.skip('needs the ros2 command (source install/setup.bash)', allow_module_level=True)

from launch_harness import Launched  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sim2real_msgs.msg import CartesianCommand  # noqa: E402

from sim2real_bringup import cli  # noqa: E402


def test_a_demo_bag_plays_through_the_live_nodes(tmp_path):
    assert cli.main(['demo', '--episodes', '1', '--policy', 'expert', '--seed', '2',
                     '--out', str(tmp_path / 'run')]) == 0
    # playback starts once the nodes and the probe have found each other (a loaded machine
    # can take seconds to discover; the bag is only a few seconds long)
    launched = Launched('replay.launch.py', f'bag:={tmp_path / "run" / "bag"}', 'delay:=8.0')
    try:
        commands = launched.record('/safety/command', CartesianCommand,
                                   QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE))
        assert launched.wait(lambda: len(commands) >= 100, 90), launched.output()[-3000:]
        stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in commands]
        assert stamps[-1] > stamps[0]  # on the bag's clock (ros2 bag play --clock)
        assert launched.interrupt() == 0, launched.output()[-3000:]
    finally:
        launched.close()

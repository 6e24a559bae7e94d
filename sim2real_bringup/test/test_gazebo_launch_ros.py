"""Where ROS 2, Gazebo Harmonic and ros_gz are installed: ``gazebo.launch.py`` headless.

The generated world runs in gz-sim; the suite drives its robot through the driver relay and
``gz_driver_node`` only (the standard interfaces), on simulated time: the safe command at
>= 95 Hz of simulated time, the supervisor NORMAL, the camera at its rate, 10 episodes of which
>= 8 end with a grasp result, and Ctrl-C leaves no traceback. The grasp success is printed
(a figure), with the episodes' durations on the simulated clock.
"""
import os
from pathlib import Path
import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
pytest.importorskip('sim2real_safety.nodes.ros_testing')
pytest.importorskip('control_msgs.action', reason='needs control_msgs (ROS 2)')
if shutil.which('ros2') is None:
    pytest.skip('needs the ros2 command (source install/setup.bash)', allow_module_level=True)


def _why_not() -> str:
    """Why Gazebo cannot run here ('' where it can).

    A mark, not a module-level skip: under colcon test (pytest 7 with launch_testing's
    plugin) a module that skips itself took every other test module of the folder with it.
    """
    import importlib.util
    if shutil.which('gz') is None:
        return 'needs Gazebo Harmonic (the gz command): not installed'
    if importlib.util.find_spec('ros_gz_interfaces') is None:
        return 'needs ros_gz for Jazzy (ros_gz_bridge)'
    lo = Path('/sys/class/net/lo/flags')
    if lo.exists() and not int(lo.read_text(), 16) & 0x1000:   # IFF_MULTICAST
        return ('gz-transport discovers over multicast and lo has no MULTICAST flag '
                '(ip link set lo multicast on)')
    return ''


pytestmark.append(pytest.mark.skipif(bool(_why_not()), reason=_why_not() or 'runs'))

from launch_harness import Launched  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from sim2real_msgs.msg import CartesianCommand, GraspResult, SupervisorState  # noqa: E402

NODES = {'camera_node', 'policy_node', 'control_node', 'safety_node', 'supervisor_node',
         'logger_node', 'driver_relay_node', 'gz_driver_node', 'gz_episode_node'}
EPISODES = 10
KEEP = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(depth=500, reliability=ReliabilityPolicy.BEST_EFFORT)
LATCHED = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def sim_seconds(message) -> float:
    return message.header.stamp.sec + message.header.stamp.nanosec * 1e-9


def rate_on_the_simulated_clock(messages) -> float:
    """Messages per simulated second between the first and the last stamp."""
    stamps = [sim_seconds(m) for _, m in messages]
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


@pytest.fixture(scope='module')
def gazebo():
    # a gz-transport partition of its own: another Gazebo on this machine stays apart
    os.environ['GZ_PARTITION'] = f'sim2real_test_{os.getpid()}'
    launched = Launched('gazebo.launch.py', 'seed:=100')
    launched.commands = launched.record('/safety/command', CartesianCommand, KEEP)
    launched.frames = launched.record('/camera/image_raw', Image, BEST_EFFORT)
    launched.states = launched.record('/supervisor/state', SupervisorState, LATCHED)
    launched.results = launched.record('/episode/result', GraspResult, KEEP)
    yield launched
    launched.close()
    subprocess.run(['pkill', '-f', 'sim2real_gazebo_'], check=False)


def test_the_suite_runs_on_the_gazebo_world(gazebo):
    assert gazebo.wait(lambda: NODES <= gazebo.node_names(), 120), (
        sorted(gazebo.node_names()), gazebo.output()[-3000:])
    assert gazebo.wait(lambda: gazebo.states and gazebo.states[-1][1].mode ==
                       SupervisorState.MODE_NORMAL, 120), gazebo.output()[-3000:]
    start_c, start_f = len(gazebo.commands), len(gazebo.frames)
    assert gazebo.wait(lambda: len(gazebo.commands) - start_c >= 1000
                       and len(gazebo.frames) - start_f >= 50, 60), gazebo.output()[-3000:]
    commands = rate_on_the_simulated_clock(gazebo.commands[start_c:])
    frames = rate_on_the_simulated_clock(gazebo.frames[start_f:])
    print(f'gazebo.launch: /safety/command {commands:.2f} Hz, /camera/image_raw {frames:.2f} '
          'Hz (header stamps, simulated clock, measured)')
    assert commands >= 95.0
    assert frames >= 9.0


def test_ten_episodes_end_with_a_grasp_result(gazebo):
    # each episode ends by its verdict (success) or at its 20 s timeout (simulated clock)
    assert gazebo.wait(lambda: len(gazebo.results) >= EPISODES, 600), (
        len(gazebo.results), gazebo.output()[-3000:])
    results = [m for _, m in gazebo.results[:EPISODES]]
    grasped = sum(r.success for r in results)
    durations = sorted(r.duration for r in results)
    modes = {m.mode for _, m in gazebo.states}
    print(f'gazebo.launch: {grasped}/{EPISODES} episodes grasped (seeds 100-109, the bundled '
          f'policy); episode duration median {durations[len(durations) // 2]:.1f} s, max '
          f'{durations[-1]:.1f} s (simulated clock); supervisor modes seen {sorted(modes)}')
    # a grasp result: the object lifted and held, not the timeout
    assert grasped >= 8
    assert SupervisorState.MODE_GRIPPER_FAULT not in modes
    assert SupervisorState.MODE_SOFTWARE_STOP not in modes


def test_ctrl_c_stops_gazebo_and_the_suite_cleanly(gazebo):
    code = gazebo.interrupt(60)
    output = gazebo.output()
    codes = gazebo.exit_codes()
    print(f'Ctrl-C: ros2 launch exit code {code}; processes {codes}')
    assert 'Traceback' not in output
    assert code == 0, output[-3000:]
    for name in NODES:
        assert codes.get(name) == 0, (name, codes)

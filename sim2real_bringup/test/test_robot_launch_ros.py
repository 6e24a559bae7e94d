"""Where ROS 2 and the built suite are installed: ``robot.launch.py`` with the stand-in driver.

The suite talks to the driver only through the standard interfaces (a PoseStamped target, a
PoseStamped end-effector pose, JointState, the GripperCommand action) via the driver relay:
every node up, the supervisor NORMAL, /safety/command flowing and every command forwarded as an
arm target, the gripper moved by action goals, a grasp lifted with no gripper fault, Ctrl-C
stops every node with exit code 0.
The wall-clock rate (target 100 Hz within 2 %) is a figure of ``bench_control_ros.py``, not an
assertion here: on a 2-core machine that the launched graph loads, it measures the machine.
"""
from pathlib import Path
import shutil

import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.slow]
pytest.importorskip('sim2real_safety.nodes.ros_testing')
pytest.importorskip('control_msgs.action', reason='needs control_msgs (ROS 2)')
if shutil.which('ros2') is None:
    pytest.skip('needs the ros2 command (source install/setup.bash)', allow_module_level=True)

from bench_control_ros import stamped_rate  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from launch_harness import Launched, lifted_grasp  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sim2real_msgs.msg import CartesianCommand, RobotState, SupervisorState  # noqa: E402

SUITE = {'camera_node', 'policy_node', 'control_node', 'safety_node', 'supervisor_node',
         'logger_node', 'driver_relay_node', 'standin_driver_node'}
KEEP = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(depth=200, reliability=ReliabilityPolicy.BEST_EFFORT)
LATCHED = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def stamps(messages) -> list[float]:
    return [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in messages]


# The cell file's delay (s): the shipped nominal cell's own is 0, as is control.yaml's, so the
# test's file says another, to see the control node take it from the file.
CELL_DELAY = 0.012


@pytest.fixture(scope='module')
def cell_file(tmp_path_factory):
    """The stand-in is the nominal simulated cell: its calibration ships with the suite."""
    shipped = Path(__file__).resolve().parents[2] / 'config' / 'cell_calibration_sim.yaml'
    data = yaml.safe_load(shipped.read_text())
    data['actuation_delay'] = CELL_DELAY
    path = tmp_path_factory.mktemp('cell') / 'standin.yaml'
    path.write_text(yaml.safe_dump(data))
    return path, data


@pytest.fixture(scope='module')
def robot(cell_file):
    launched = Launched('robot.launch.py', 'standin_driver:=true', 'record:=false',
                        f'calibration_file:={cell_file[0]}', f'cell_name:={cell_file[1]["cell"]}')
    launched.commands = launched.record('/safety/command', CartesianCommand, KEEP)
    launched.targets = launched.record('/arm/target_pose', PoseStamped, KEEP)
    launched.states = launched.record('/supervisor/state', SupervisorState, LATCHED)
    launched.robot_states = launched.record('/robot/state', RobotState, BEST_EFFORT)
    yield launched
    launched.close()


def test_the_suite_drives_the_standard_interfaces(robot):
    assert robot.wait(lambda: SUITE <= robot.node_names(), 90), (
        sorted(robot.node_names()), robot.output()[-3000:])
    assert robot.wait(lambda: robot.states and robot.states[-1][1].mode ==
                      SupervisorState.MODE_NORMAL, 60), robot.output()[-3000:]
    start_c, start_t = len(robot.commands), len(robot.targets)
    assert robot.wait(lambda: len(robot.commands) - start_c >= 1000
                      and len(robot.targets) - start_t >= 1000, 40)
    command_stamps = stamps(robot.commands[start_c:])
    target_stamps = stamps(robot.targets[start_t:])
    print(f'robot.launch: /safety/command {stamped_rate(robot.commands[start_c:]):.2f} Hz, '
          f'/arm/target_pose {stamped_rate(robot.targets[start_t:]):.2f} Hz (header stamps, '
          f'wall clock, measured; a figure, not an assertion)')
    # one command per tick and one target per command, in order: no stamp repeats or goes back
    assert all(b > a for a, b in zip(command_stamps, command_stamps[1:]))
    assert all(b > a for a, b in zip(target_stamps, target_stamps[1:]))
    # the relay forwards every safe command (the two windows start a probe spin apart)
    assert abs(len(target_stamps) - len(command_stamps)) <= 0.05 * len(command_stamps)
    # the relay's RobotState comes from the driver's pose and gripper joint
    assert robot.robot_states and robot.robot_states[-1][1].header.frame_id == 'base_link'


def test_ros2_param_get_shows_the_commissioned_delay_and_table(robot, cell_file):
    assert robot.wait(lambda: SUITE <= robot.node_names(), 90)
    delay = robot.ros2('param', 'get', '/control_node', 'actuation_delay')
    table = robot.ros2('param', 'get', '/safety_node', 'table_height')
    print(f'ros2 param get: control_node actuation_delay "{delay}", safety_node table_height '
          f'"{table}" (cell file: {CELL_DELAY} s, {cell_file[1]["table_height"]} m)')
    assert delay == f'Double value is: {CELL_DELAY}'
    assert float(table.rsplit(' ', 1)[-1]) == pytest.approx(cell_file[1]['table_height'],
                                                           abs=1e-12)


def test_the_gripper_follows_the_action_goals(robot):
    def widths():
        return {round(m.gripper_width, 3) for _, m in robot.robot_states}
    # the policy opens and closes the gripper while it tries to grasp
    assert robot.wait(lambda: max(widths()) - min(widths()) > 0.01, 90), sorted(widths())


def test_the_robot_grasps_and_no_gripper_fault_is_raised(robot):
    # A preempted gripper goal (the relay sends one per width change) is not a gripper fault:
    # the supervisor stays NORMAL through the grasps, and the stand-in object is lifted.
    assert robot.wait(lambda: lifted_grasp(robot.robot_states) is not None, 120), (
        robot.output()[-3000:])
    modes = [m.mode for _, m in robot.states]
    first_normal = modes.index(SupervisorState.MODE_NORMAL)
    faults = [m for m in modes[first_normal:] if m == SupervisorState.MODE_GRIPPER_FAULT]
    print(f'robot.launch: a lifted grasp seen; {len(modes) - first_normal} supervisor states '
          f'since NORMAL, {len(faults)} of them GRIPPER_FAULT')
    assert not faults
    assert not any(m.gripper_fault for _, m in robot.robot_states)


def test_ctrl_c_stops_every_node_cleanly(robot):
    code = robot.interrupt()
    output = robot.output()
    codes = robot.exit_codes()
    print(f'Ctrl-C: ros2 launch exit code {code}; nodes {codes}')
    assert code == 0, output[-3000:]
    assert 'Traceback' not in output
    for name in SUITE:
        assert codes.get(name) == 0, (name, codes)

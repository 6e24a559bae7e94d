"""Where ROS 2 and the built suite are installed: commissioning a cell, then grasping on it.

``commission.launch.py`` against the stand-in driver (standard interfaces, MuJoCo behind them,
a randomized heavy cell the suite has never seen): the commissioning node asks for the
supervisor's commissioning mode on a named operator's behalf, touches the table off through
the safety node, fits the camera from the fingertips and writes the cell file; its figures
are judged against the simulator's truth. Then ``robot.launch.py calibration_file:=`` with
that file on the same cell: ``ros2 param get`` shows the commissioned delay and table on the
control and safety nodes, and the policy grasps. Figures go to the output (``-s``).
"""
from pathlib import Path
import shutil
import time

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
pytest.importorskip('sim2real_safety.nodes.ros_testing')
pytest.importorskip('control_msgs.action', reason='needs control_msgs (ROS 2)')
if shutil.which('ros2') is None:
    pytest.skip('needs the ros2 command (source install/setup.bash)', allow_module_level=True)

from launch_harness import Launched, lifted_grasp  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sim2real_msgs.msg import RobotState, SupervisorState  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from sim2real_policy.keypoints import table_point_errors  # noqa: E402
from sim2real_policy.sim.randomization import scene_params, VisualRandomizer  # noqa: E402
from sim2real_policy.sim.robot import GripperSim  # noqa: E402
from sim2real_safety.cell_file import read_cell_file  # noqa: E402

RANGES = str(Path(__file__).resolve().parents[2] / 'config' / 'randomization.yaml')
PROFILE, SEED = 'heavy', 3     # its table is within the touch-off's reach
CELL = f'standin-{PROFILE}-{SEED}'
STANDIN = (f'standin_randomization_file:={RANGES}', f'standin_randomization:={PROFILE}',
           f'standin_seed:={SEED}', 'standin_driver:=true', 'record:=false')
LATCHED = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
BEST_EFFORT = QoSProfile(depth=200, reliability=ReliabilityPolicy.BEST_EFFORT)


@pytest.fixture(scope='module')
def commissioned(tmp_path_factory):
    path = tmp_path_factory.mktemp('cell') / 'cell.yaml'
    launched = Launched('commission.launch.py', *STANDIN, f'output_file:={path}',
                        f'cell:={CELL}', 'operator:=launch-test', 'robot_name:=stand-in')
    progress = launched.record('/commissioning/progress', String, LATCHED)
    states = launched.record('/supervisor/state', SupervisorState, LATCHED)
    started = time.monotonic()
    done = launched.wait(lambda: any(m.data.startswith(('done', 'failed'))
                                     for _, m in progress), 300)
    wall = time.monotonic() - started
    # the supervisor's state that left the mode (asked for just before 'done') may come after
    launched.wait(lambda: states and not states[-1][1].commissioning, 10)
    output = launched.output()
    code = launched.interrupt()
    launched.close()
    return path, [m.data for _, m in progress], [m for _, m in states], wall, done, output, code


def test_commissioning_writes_the_cell_file_through_the_safety_node(commissioned):
    path, progress, states, wall, done, output, code = commissioned
    assert done, output[-3000:]
    assert progress[-1].startswith('done'), (progress[-5:], output[-3000:])
    assert path.exists() and code == 0
    # the supervisor showed the commissioning with the operator's name, and left it at the end
    during = [s for s in states if s.commissioning]
    assert during and all(s.commissioning_operator == 'launch-test' for s in during)
    assert not states[-1].commissioning
    assert sum(line.startswith('poses: pose ') for line in progress) == 17
    print(f'commission.launch: done in {wall:.0f} s wall (measured, start-up included); '
          f'{len(progress)} progress lines; last: {progress[-2]!r}')


def test_the_cell_file_matches_the_simulated_truth(commissioned):
    path = commissioned[0]
    cell = read_cell_file(path, CELL)
    params = scene_params(RANGES, PROFILE, SEED)
    with GripperSim(params) as sim:
        errors = table_point_errors(sim, VisualRandomizer(params.image, params.seed),
                                    cell.matrix, (96, 96))
    table_error = cell.table_height - params.table_height
    delay_error = cell.actuation_delay - params.action_delay
    print(f'against the truth (simulated cell): table {table_error * 1e3:+.1f} mm, table '
          f'points {max(errors) * 1e3:.1f} mm worst, delay {delay_error * 1e3:+.0f} ms; rms '
          f'{cell.reprojection_rms_px:.2f} px from {cell.points_used} poses')
    assert 0.0 <= table_error < 0.004   # never below the real table
    assert max(errors) < 0.012
    assert abs(delay_error) < 0.06
    assert cell.provenance['robot'] == 'stand-in'


@pytest.fixture(scope='module')
def robot(commissioned):
    path = commissioned[0]
    launched = Launched('robot.launch.py', *STANDIN, f'calibration_file:={path}',
                        f'cell_name:={CELL}')
    launched.states = launched.record('/supervisor/state', SupervisorState, LATCHED)
    launched.robot_states = launched.record('/robot/state', RobotState, BEST_EFFORT)
    yield launched
    launched.close()


def test_robot_launch_runs_on_the_commissioned_values(commissioned, robot):
    cell = read_cell_file(commissioned[0], CELL)
    assert robot.wait(lambda: {'control_node', 'safety_node'} <= robot.node_names(), 90)
    delay = robot.ros2('param', 'get', '/control_node', 'actuation_delay')
    table = robot.ros2('param', 'get', '/safety_node', 'table_height')
    print(f'ros2 param get: {delay.strip()!r}, {table.strip()!r}')
    assert float(delay.split()[-1]) == pytest.approx(cell.actuation_delay)
    assert float(table.split()[-1]) == pytest.approx(cell.table_height)


def test_the_policy_grasps_in_the_commissioned_cell(robot):
    assert robot.wait(lambda: lifted_grasp(robot.robot_states) is not None, 180), (
        robot.output()[-3000:])
    modes = [m.mode for _, m in robot.states]
    faults = modes.count(SupervisorState.MODE_GRIPPER_FAULT)
    print(f'robot.launch on the commissioned cell: a lifted grasp; {faults} GRIPPER_FAULT '
          'states')
    assert not faults

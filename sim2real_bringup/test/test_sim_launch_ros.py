"""Where ROS 2 and the built suite are installed: ``ros2 launch sim2real_bringup sim.launch.py``.

Started as a user starts it, watched from outside: every node up; the supervisor latched and
NORMAL; /safety/command issued once per 10 ms control period of the simulated clock as a rule (its
rate printed as measured; the rate under load is a benchmark's, ``sim2real bench control``);
a grasp succeeds; a software stop within 50 ms
freezes the command and a named reset resumes it; killing control_node leads to
HUMAN_REQUIRED and a hold; Ctrl-C stops every node with exit code 0 and no traceback.
Figures go to the test's output (``-s``) as measured.
"""
import shutil

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
# A rate or latency measured on a 2-core machine that the launched graph itself loads: where
# pytest-rerunfailures is installed, a failed measurement is taken again (twice at most) on
# the same running graph; every attempt prints its figures.
TIMING = pytest.mark.flaky(reruns=2)
pytest.importorskip('sim2real_safety.nodes.ros_testing')
if shutil.which('ros2') is None:
    pytest.skip('needs the ros2 command (source install/setup.bash)', allow_module_level=True)

import os  # noqa: E402
import signal  # noqa: E402

from launch_harness import Launched  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sim2real_msgs.msg import CartesianCommand, GraspResult, SafetyStatus, SupervisorState  # noqa: E402,E501
from sim2real_msgs.srv import ResetSoftwareStop, TriggerSoftwareStop  # noqa: E402

SUITE = {'camera_node', 'policy_node', 'control_node', 'safety_node', 'supervisor_node',
         'logger_node', 'sim_robot_node'}
PERIOD = 0.01   # s: the control node's period (config/control.yaml)
KEEP = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def stamp_s(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


@pytest.fixture(scope='module')
def bag_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('sim_launch') / 'bag'


@pytest.fixture(scope='module')
def sim(bag_dir):
    launched = Launched('sim.launch.py', 'record:=true', f'bag:={bag_dir}')
    launched.commands = launched.record('/safety/command', CartesianCommand, KEEP)
    launched.states = launched.record('/supervisor/state', SupervisorState, LATCHED)
    launched.statuses = launched.record('/safety/status', SafetyStatus, LATCHED)
    launched.results = launched.record('/episode/result', GraspResult, KEEP)
    yield launched
    launched.close()


def mode(sim):
    return sim.states[-1][1].mode if sim.states else None


def test_every_node_comes_up_and_the_supervisor_is_latched_normal(sim):
    assert sim.wait(lambda: SUITE <= sim.node_names(), 90), (
        sorted(sim.node_names()), sim.output()[-3000:])
    assert sim.wait(lambda: mode(sim) == SupervisorState.MODE_NORMAL, 60), (
        [(m.mode, m.reason) for _, m in sim.states[-5:]], sim.output()[-3000:])
    assert sim.states[-1][1].autonomy_enabled


def test_the_safe_command_runs_at_100_hz(sim):
    start = len(sim.commands)
    assert sim.wait(lambda: len(sim.commands) - start >= 1000, 40)
    window = [m for _, m in sim.commands[start:]]
    stamps = [stamp_s(m) for m in window]
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    periods = [round((b - a) / PERIOD) for a, b in zip(stamps, stamps[1:])]
    wall = [t for t, _ in sim.commands[start:]]
    print(f'/safety/command: {rate:.2f} Hz on the simulated clock over {len(stamps)} messages '
          f'({periods.count(1)} gaps of one period, {sum(p > 1 for p in periods)} longer, '
          f'{periods.count(0)} within one, '
          f'longest {max(periods) * PERIOD * 1e3:.0f} ms); '
          f'{(len(wall) - 1) / (wall[-1] - wall[0]):.2f} Hz on the wall clock (measured)')
    # A tick's stamp is the simulated time it ran at: one command per 10 ms period is the
    # usual gap. How many ticks a loaded machine misses is a figure (printed above; `sim2real
    # bench control` measures the timer's jitter), not a pass/fail line: the CI machine
    # missed 2-3 % of them with the whole graph on 2 cores. Two within one period happen
    # too: the safety node's watchdog holds a late proposal's period, then passes it.
    assert periods.count(1) > len(periods) / 2, periods


def test_a_grasp_episode_succeeds(sim):
    assert sim.wait(lambda: any(r.success for _, r in sim.results), 120), (
        [(r.success, r.failure_reason) for _, r in sim.results], sim.output()[-2000:])


@TIMING
def test_a_software_stop_freezes_the_command_and_a_named_reset_resumes_it(sim):
    answer, called = sim.call(TriggerSoftwareStop, '/safety/trigger_stop', requested_by='test',
                              reason='launch test')
    assert answer.success
    try:
        assert sim.wait(lambda: mode(sim) == SupervisorState.MODE_SOFTWARE_STOP, 2)
        # The probe takes one message per spin, states before statuses: the supervisor's stop
        # can be in hand while the safety node's latched status, published earlier, is queued.
        assert sim.wait(lambda: any(t >= called and m.software_stop_active
                                    for t, m in sim.statuses), 2)
        # On the nodes' own (simulated) clock: from the newest status stamped before the
        # request (statuses flow at 100 Hz, so the request came at most one period later) to
        # the stamp of the supervisor's SOFTWARE_STOP; the probe's arrival times add its own
        # delays.
        before = max(stamp_s(m) for t, m in sim.statuses if t < called)
        stopped = next(m for t, m in sim.statuses if t >= called and m.software_stop_active)
        supervisor = next(m for t, m in sim.states
                          if t >= called and m.mode == SupervisorState.MODE_SOFTWARE_STOP)
        arrival = next(t for t, m in sim.states
                       if t >= called and m.mode == SupervisorState.MODE_SOFTWARE_STOP)
        latched_ms = 1e3 * (stamp_s(stopped) - before)
        supervisor_ms = 1e3 * (stamp_s(supervisor) - before)
        print(f'software stop: latched by the safety node {latched_ms:.1f} ms and '
              f'SOFTWARE_STOP published by the supervisor {supervisor_ms:.1f} ms after the '
              f'request (simulated clock, at most one 10 ms period early); seen at the probe '
              f'{1e3 * (arrival - called):.1f} ms after it (wall clock)')
        assert stamp_s(supervisor) - before <= 0.05
        frozen_from = len(sim.commands)
        sim.wait(lambda: len(sim.commands) - frozen_from >= 50, 5)
        poses = {(m.x, m.y, m.z, m.yaw, m.gripper_width)
                 for _, m in sim.commands[frozen_from:]}
        assert len(poses) == 1, 'the command must be frozen during the software stop'
    except BaseException:
        # a failure above must not leave the next test under the stop
        sim.call(ResetSoftwareStop, '/safety/reset_stop', operator_name='test',
                 reason='a failed assertion left the stop on')
        raise
    refused, _ = sim.call(ResetSoftwareStop, '/safety/reset_stop', operator_name='',
                          reason='no name')
    assert not refused.success
    answer, _ = sim.call(ResetSoftwareStop, '/safety/reset_stop', operator_name='ana',
                         reason='launch test over')
    assert answer.success, answer.message
    assert sim.wait(lambda: mode(sim) == SupervisorState.MODE_NORMAL, 10)
    resumed = len(sim.commands)
    assert sim.wait(lambda: len({(m.x, m.y, m.z) for _, m in sim.commands[resumed:]}) > 1, 30)


def test_killing_the_controller_calls_a_human_and_holds(sim):
    pid = sim.pid_of('control_node')
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert sim.wait(lambda: mode(sim) == SupervisorState.MODE_HUMAN_REQUIRED, 5), (
        [(m.mode, m.reason) for _, m in sim.states[-3:]])
    assert 'control' in sim.states[-1][1].reason
    held_from = len(sim.commands)
    assert sim.wait(lambda: len(sim.commands) - held_from >= 20, 5)
    assert all(m.source == CartesianCommand.SOURCE_SAFETY for _, m in sim.commands[held_from:])


def test_ctrl_c_stops_every_node_cleanly(sim):
    code = sim.interrupt()
    output = sim.output()
    codes = sim.exit_codes()
    print(f'Ctrl-C: ros2 launch exit code {code}; nodes {codes}')
    assert code == 0, output[-3000:]
    assert 'Traceback' not in output, output[output.index('Traceback') - 200:][:3000]
    for name in SUITE - {'control_node'}:
        assert codes.get(name) == 0, (name, codes)
    assert codes.get('control_node') == -9   # killed above


def test_the_recorded_bag_replays_and_reports(sim, bag_dir, tmp_path):
    """ros2 bag record's bag (stamps of a running clock, not on a grid) through the tools."""
    import json
    import subprocess
    import sys

    assert (bag_dir / 'metadata.yaml').is_file(), 'ros2 bag record did not close the bag'
    cli = [sys.executable, '-m', 'sim2real_bringup.cli']
    replay = subprocess.run([*cli, 'replay', str(bag_dir), '--out', str(tmp_path / 'replay')],
                            capture_output=True, text=True, timeout=600, check=False)
    assert replay.returncode == 0, replay.stderr[-2000:]
    result = json.loads((tmp_path / 'replay' / 'replay.json').read_text())
    print(f'replay of the ros2 bag: {result["taken_from_bag"]}, '
          f'{result["simulated_s"]:.1f} s, episode_reset {result["episode_reset"]}')
    assert result['episode_reset'] == 'none'
    assert result['taken_from_bag']['/robot/state'] > 300
    assert result['taken_from_bag']['/camera/image_raw'] > 30
    report = subprocess.run([*cli, 'report', str(bag_dir), '--out', str(tmp_path / 'report')],
                            capture_output=True, text=True, timeout=600, check=False)
    assert report.returncode == 0, report.stderr[-2000:]
    summary = json.loads((tmp_path / 'report' / 'report.json').read_text())
    assert summary['episodes'] >= 1

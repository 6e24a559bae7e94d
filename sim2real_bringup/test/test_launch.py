"""Launch files: the graph they start is consistent; where launch_ros exists they load."""
import importlib.util
from pathlib import Path

import pytest

from sim2real_bringup.launch_graph import (
    CALIBRATE,
    CALIBRATION,
    COLLECT,
    GZ_DRIVER,
    GZ_EPISODE,
    RELAY,
    REPLAY,
    SIM_ROBOT,
    STANDIN_DRIVER,
    SUITE,
)
from sim2real_bringup.topics import ACTIONS, BY_NAME, SERVICES

LAUNCH = Path(__file__).resolve().parents[1] / 'launch'
CONFIG = Path(__file__).resolve().parents[2] / 'config'


ALL = SUITE + (SIM_ROBOT, CALIBRATION, COLLECT, RELAY, STANDIN_DRIVER, GZ_DRIVER, GZ_EPISODE)


@pytest.mark.parametrize('spec', ALL, ids=lambda s: s.executable)
def test_every_remapping_targets_a_suite_topic_and_config_exists(spec):
    for _, target in spec.remappings:
        assert target in BY_NAME or target in SERVICES or target in ACTIONS, target
    assert (CONFIG / spec.config).is_file()
    assert spec.executable in (CONFIG / spec.config).read_text()


def test_replay_runs_only_decision_nodes():
    assert {s.executable for s in REPLAY} == {'control_node', 'safety_node', 'supervisor_node',
                                             'logger_node'}


def test_calibration_replaces_the_decision_chain_but_never_the_safety_node():
    names = {s.executable for s in CALIBRATE}
    assert 'safety_node' in names and 'control_node' not in names
    # the calibration node proposes where the controller would: the safety node's input
    assert dict(CALIBRATION.remappings)['proposed_command'] == \
        dict(next(s for s in SUITE if s.executable == 'safety_node').remappings)[
            'proposed_command']


def test_every_node_has_an_entry_point():
    setups = {p: (Path(__file__).resolve().parents[2] / p / 'setup.py').read_text()
              for p in ('sim2real_safety', 'sim2real_policy', 'sim2real_bringup')}
    for spec in ALL:
        assert f"'{spec.executable} = {spec.package}.nodes.{spec.executable}:main'" \
            in setups[spec.package]


@pytest.mark.ros
@pytest.mark.parametrize('name', ['robot', 'sim', 'replay', 'gazebo', 'calibrate', 'collect'])
def test_launch_file_returns_a_description(name):
    launch = pytest.importorskip('launch', reason='needs ROS 2 launch')
    pytest.importorskip('launch_ros', reason='needs ROS 2 launch_ros')
    path = LAUNCH / f'{name}.launch.py'
    spec = importlib.util.spec_from_file_location(f'{name}_launch', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert isinstance(description, launch.LaunchDescription)
    assert description.entities


def test_the_gazebo_bridge_carries_the_suite_topics_with_their_types():
    """The bridge's ROS side, as ros_gz_bridge reads it (Gazebo itself runs in the ROS test)."""
    gazebo_world = pytest.importorskip('sim2real_policy.sim.gazebo_world')

    entries = gazebo_world.bridge_topics()
    keys = {'ros_topic_name', 'gz_topic_name', 'ros_type_name', 'gz_type_name', 'direction'}
    assert all(set(e) == keys for e in entries)
    assert all(e['direction'] in ('GZ_TO_ROS', 'ROS_TO_GZ') for e in entries)
    suite = [e for e in entries if e['ros_topic_name'] in BY_NAME]
    for e in suite:
        assert BY_NAME[e['ros_topic_name']].typename == e['ros_type_name'], e
    # what the Gazebo nodes read comes over the bridge, under the names they are remapped to
    bridged = {e['ros_topic_name'] for e in entries}
    assert {dict(GZ_DRIVER.remappings)['gz_joint_states'],
            dict(GZ_EPISODE.remappings)['object_pose'], '/clock', '/camera/image_raw'} <= bridged

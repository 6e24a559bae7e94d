"""Launch files: the graph they start is consistent; where launch_ros exists they load."""
import importlib.util
from pathlib import Path

import pytest

from sim2real_bringup.launch_graph import (
    CALIBRATE,
    CALIBRATION,
    COLLECT,
    RELAY,
    REPLAY,
    SIM_ROBOT,
    STANDIN_DRIVER,
    SUITE,
)
from sim2real_bringup.topics import ACTIONS, BY_NAME, SERVICES

LAUNCH = Path(__file__).resolve().parents[1] / 'launch'
CONFIG = Path(__file__).resolve().parents[2] / 'config'


ALL = SUITE + (SIM_ROBOT, CALIBRATION, COLLECT, RELAY, STANDIN_DRIVER)


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


def test_gazebo_world_is_well_formed_and_validates_where_gz_exists():
    import shutil
    import subprocess
    import xml.etree.ElementTree as ElementTree

    world = Path(__file__).resolve().parents[1] / 'worlds' / 'grasp_cell.sdf'
    root = ElementTree.parse(world).getroot()
    assert root.tag == 'sdf'
    names = {m.get('name') for m in root.iter('model')}
    assert {'table', 'object', 'scene_camera'} <= names
    if shutil.which('gz') is None:
        pytest.skip('Gazebo (gz sdf) is not installed: XML checked, SDF not validated')
    result = subprocess.run(['gz', 'sdf', '-k', str(world)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_gazebo_bridge_config_bridges_the_relays_topics_with_their_types():
    """Parsed as ros_gz_bridge reads it; Gazebo itself is not here, so the gz side is not run."""
    import yaml

    from sim2real_bringup.launch_graph import RELAY

    entries = yaml.safe_load((CONFIG / 'gz_bridge.yaml').read_text())
    keys = {'ros_topic_name', 'gz_topic_name', 'ros_type_name', 'gz_type_name', 'direction'}
    assert all(set(e) == keys for e in entries)
    assert all(e['direction'] in ('GZ_TO_ROS', 'ROS_TO_GZ', 'BIDIRECTIONAL') for e in entries)
    for e in entries:
        assert BY_NAME[e['ros_topic_name']].typename == e['ros_type_name'], e
    bridged = {e['ros_topic_name'] for e in entries}
    relay = dict(RELAY.remappings)
    assert {relay['arm_target'], relay['ee_pose'], relay['joint_states']} <= bridged
    assert {'/clock', '/camera/image_raw'} <= bridged

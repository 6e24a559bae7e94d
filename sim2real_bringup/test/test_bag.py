"""In-process runs record real rosbag2 (MCAP, CDR) bags, deterministically, never overwriting."""
import os

import pytest
from rosbags.highlevel import AnyReader
from rosbags.typesys import get_typestore, Stores
import yaml

from sim2real_bringup import interfaces as ifc
from sim2real_bringup.bag import bag_summary, BagError, BagExistsError, BagRecorder, read_bag
from sim2real_bringup.runtime import Graph, Scheduler
from sim2real_bringup.scenarios import synthetic_traffic
from sim2real_bringup.topics import qos_map


def record_scenario(path, seed, duration_s=3.0):
    sched = Scheduler()
    graph = Graph(sched)
    with BagRecorder(path, qos=qos_map()).attach(graph):
        synthetic_traffic(graph, sched, seed)
        sched.run_for(duration_s)
    return path


def payloads(path):
    return [(m.topic, m.time_ns, m.raw) for m in read_bag(path)]


def test_same_seed_gives_byte_identical_payloads(tmp_path):
    first = payloads(record_scenario(tmp_path / 'a', seed=7))
    second = payloads(record_scenario(tmp_path / 'b', seed=7))
    other = payloads(record_scenario(tmp_path / 'c', seed=8))
    assert len(first) > 500
    assert first == second
    assert first != other


def test_bag_is_mcap_cdr_and_opens_with_anyreader(tmp_path):
    bag = record_scenario(tmp_path / 'run', seed=1, duration_s=2.0)
    meta = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert meta['storage_identifier'] == 'mcap'
    assert meta['version'] == 9
    topics = {t['topic_metadata']['name']: t['topic_metadata'] for t in
              meta['topics_with_message_count']}
    assert {t['serialization_format'] for t in topics.values()} == {'cdr'}
    assert all(f.endswith('.mcap') for f in meta['relative_file_paths'])
    # 100 Hz control and robot state for 2 s, chunks at 5 Hz, heartbeat at 10 Hz.
    expected = {'/control/proposed_command': 200, '/robot/state': 200,
                '/policy/action_chunk': 10, '/supervisor/state': 20}
    assert {t: info['count'] for t, info in bag_summary(bag).items()} == expected
    # Latched state is recorded with transient-local QoS so `ros2 bag play` keeps it latched.
    assert 'transient_local' in str(topics['/supervisor/state']['offered_qos_profiles'])

    # A reader that has never seen sim2real_msgs decodes it from the definitions in the bag.
    with AnyReader([bag], default_typestore=get_typestore(Stores.EMPTY)) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        assert types['/policy/action_chunk'] == 'sim2real_msgs/msg/ActionChunk'
        conn = next(c for c in reader.connections if c.topic == '/policy/action_chunk')
        _, _, raw = next(reader.messages(connections=[conn]))
        chunk = reader.deserialize(raw, conn.msgtype)
        assert chunk.horizon == 20 and chunk.actions.shape == (100,)
        assert list(chunk.action_names) == ['x', 'y', 'z', 'yaw', 'gripper_width']


def test_existing_bag_path_is_refused_and_untouched(tmp_path):
    bag = record_scenario(tmp_path / 'run', seed=1, duration_s=0.5)
    before = {p.name: p.read_bytes() for p in bag.iterdir()}
    with pytest.raises(BagExistsError, match='exists already'):
        BagRecorder(bag)
    (tmp_path / 'plain_dir').mkdir()
    with pytest.raises(BagExistsError, match='plain_dir exists already'):
        BagRecorder(tmp_path / 'plain_dir')
    assert {p.name: p.read_bytes() for p in bag.iterdir()} == before


def test_humble_bags_use_metadata_version_8(tmp_path):
    with BagRecorder(tmp_path / 'humble', distro='humble') as rec:
        rec.record('/cmd', 'sim2real_msgs/msg/CartesianCommand', 5,
                   ifc.default_message('sim2real_msgs/msg/CartesianCommand'))
    meta = yaml.safe_load((tmp_path / 'humble' / 'metadata.yaml').read_text())
    assert meta['rosbag2_bagfile_information']['version'] == 8
    with pytest.raises(ValueError, match='distro'):
        BagRecorder(tmp_path / 'x', distro='noetic')


def test_recorder_rejects_bad_messages_and_type_changes(tmp_path):
    with BagRecorder(tmp_path / 'b') as rec:
        msg = ifc.default_message('sim2real_msgs/msg/CartesianCommand')
        rec.record('/cmd', 'sim2real_msgs/msg/CartesianCommand', 1, msg)
        with pytest.raises(ifc.InterfaceError, match='/cmd records sim2real_msgs/msg/Cartesian'):
            rec.record('/cmd', 'sim2real_msgs/msg/RobotState', 2,
                       ifc.default_message('sim2real_msgs/msg/RobotState'))
        msg.z = float('nan')  # NaN is a valid float64 for the message layer; safety rejects it
        rec.record('/cmd', 'sim2real_msgs/msg/CartesianCommand', 3, msg)
        msg.z = [0.1]
        with pytest.raises(ifc.MessageFieldError, match=r'CartesianCommand\.z'):
            rec.record('/cmd', 'sim2real_msgs/msg/CartesianCommand', 4, msg)
    assert bag_summary(tmp_path / 'b')['/cmd']['count'] == 2


def test_reading_something_that_is_not_a_bag(tmp_path):
    with pytest.raises(BagError, match='not a rosbag2 bag'):
        list(read_bag(tmp_path))
    with pytest.raises(BagError, match='not a rosbag2 bag'):
        bag_summary(os.fspath(tmp_path / 'missing'))


@pytest.mark.parametrize('damage', ['truncate', 'metadata', 'no_mcap'])
def test_a_damaged_bag_is_one_line_error_and_no_output_folder(tmp_path, damage, capsys):
    """Issue 17 F10: tracebacks for a truncated MCAP, garbage metadata.yaml, a missing .mcap."""
    import shutil

    from sim2real_bringup import cli, convert
    from sim2real_bringup.bag import BagRecorder

    bag = tmp_path / 'bag'
    with BagRecorder(bag) as recorder:
        for k in range(200):
            recorder.record('/safety/command', 'sim2real_msgs/msg/CartesianCommand', k * 10**7,
                            convert.command_msg((0.5, 0, 0.2, 0, 0.08), k * 10**7, 0))
    mcap = next(bag.glob('*.mcap'))
    if damage == 'truncate':
        with open(mcap, 'r+b') as handle:
            handle.truncate(mcap.stat().st_size // 2)
    elif damage == 'metadata':
        (bag / 'metadata.yaml').write_text('::: not yaml [')
    else:
        mcap.unlink()
    for command in (['info', str(bag)], ['report', str(bag), '--out', str(tmp_path / 'r')],
                    ['replay', str(bag), '--out', str(tmp_path / 'p')]):
        assert cli.main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(bag) in err[0] and 'Traceback' not in err[0], err
    assert not (tmp_path / 'r').exists() and not (tmp_path / 'p').exists()
    shutil.rmtree(bag)

"""Replay of bags as a robot records them (issue 17, F4-F6).

Off-grid and epoch-style stamps, a malformed chunk, and the recorded proposals through today's
safety filter.
"""
import math

import pytest

from sim2real_bringup import cli
from sim2real_bringup import interfaces as ifc
from sim2real_bringup.bag import BagRecorder, read_bag
from sim2real_bringup.replay import replay
from sim2real_bringup.topics import qos_map


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    run = tmp_path_factory.mktemp('demo') / 'run'
    assert cli.main(['demo', '--episodes', '1', '--policy', 'expert', '--seed', '3',
                     '--out', str(run)]) == 0
    return run / 'bag'


def rewrite(bag, out, shift_ns=0, edit=None):
    """A copy of ``bag`` as another program would write it.

    No sim2real metadata; every receive time and header stamp shifted by ``shift_ns``;
    ``edit(topic, msg)`` may change a message.
    """
    with BagRecorder(out, qos=qos_map()) as recorder:
        for m in read_bag(bag):
            msg = ifc.deserialize(m.raw, m.typename)
            if hasattr(msg, 'header'):
                stamp = ifc.ns_from_time(msg.header.stamp) + shift_ns
                msg.header.stamp = ifc.time_from_ns(stamp)
            if edit is not None:
                msg = edit(m.topic, msg)
            recorder.record(m.topic, m.typename, m.time_ns + shift_ns, msg)
    return out


def count(bag, topic):
    return sum(1 for _ in read_bag(bag, [topic]))


@pytest.mark.parametrize('shift_ns', [1234, 1_764_000_000_123_456_789],
                         ids=['off-grid', 'epoch'])
def test_a_robot_bag_with_any_stamps_is_replayed_in_full(demo, tmp_path, shift_ns):
    bag = rewrite(demo, tmp_path / 'robot', shift_ns)
    result = replay(bag, tmp_path / 'replay')
    assert result['episode_reset'] == 'none'   # a robot's nodes run on across episodes
    assert result['taken_from_bag']['/robot/state'] == count(demo, '/robot/state')
    assert result['taken_from_bag']['/camera/image_raw'] == count(demo, '/camera/image_raw')
    safe = list(read_bag(tmp_path / 'replay' / 'bag', ['/safety/command']))
    assert len(safe) > 0.9 * count(demo, '/safety/command')
    assert abs(result['simulated_s'] - count(demo, '/robot/state') / 100.0) < 0.5
    assert min(m.time_ns for m in safe) >= shift_ns
    # recomputed at the recorded instants, to the nanosecond, and byte-identical (the nodes
    # run on after the last episode, as on a robot: a few more commands follow)
    for topic in ('/safety/command', '/safety/status', '/control/proposed_command'):
        recorded = [(m.time_ns, m.raw) for m in read_bag(bag, [topic])]
        replayed = [(m.time_ns, m.raw) for m in read_bag(tmp_path / 'replay' / 'bag', [topic])]
        assert replayed[:len(recorded)] == recorded, topic


def test_a_non_finite_chunk_in_the_bag_is_refused_not_fatal(demo, tmp_path):
    poisoned = []

    def poison(topic, msg):
        if topic == '/policy/action_chunk' and not poisoned:
            actions = msg.actions.copy()
            actions[3] = math.nan
            msg.actions = actions
            poisoned.append(msg.sequence)
        return msg

    bag = rewrite(demo, tmp_path / 'poisoned', edit=poison)
    result = replay(bag, tmp_path / 'replay', policy='recorded')
    assert poisoned and result['taken_from_bag']['/policy/action_chunk'] > 1
    assert (tmp_path / 'replay' / 'replay.json').is_file()


def test_the_recorded_proposals_go_through_todays_filter(demo, tmp_path):
    result = replay(demo, tmp_path / 'proposals', policy='proposals',
                    overrides={'safety_node': {'max_cartesian_speed': 0.05}})
    assert result['taken_from_bag']['/control/proposed_command'] == count(
        demo, '/control/proposed_command')
    assert '/control/proposed_command' not in result['recomputed']
    assert result['changed_verdicts']   # a slower limit scales what used to pass

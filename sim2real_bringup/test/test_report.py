"""The report's numbers match an independent reading of the bag (plain rosbags, no suite)."""
from collections import Counter

from rosbags.highlevel import AnyReader
from rosbags.typesys import get_typestore, Stores

from sim2real_bringup.bag import BagRecorder
from sim2real_bringup.config import load_yaml
from sim2real_bringup.pipeline import Pipeline, PipelineConfig
from sim2real_bringup.report import PLOTS, write_report
from sim2real_bringup.topics import qos_map
from sim2real_policy.sim.randomization import Randomizer


def test_report_matches_an_independent_reader(tmp_path):
    randomizer = Randomizer(load_yaml('randomization.yaml'), 'none')
    pipe = Pipeline(PipelineConfig.load(), lambda i: randomizer.sample(40 + i), policy='expert')
    with BagRecorder(tmp_path / 'bag', qos=qos_map()).attach(pipe.graph):
        pipe.run_episodes(2)
    pipe.close()
    summary = write_report(tmp_path / 'bag', tmp_path)

    verdicts, results, latencies = Counter(), [], []
    with AnyReader([tmp_path / 'bag'], default_typestore=get_typestore(Stores.EMPTY)) as reader:
        for conn, _, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic == '/safety/status':
                verdicts[msg.verdict] += 1
            elif conn.topic == '/episode/result':
                results.append(msg.success)
            elif conn.topic == '/policy/action_chunk':
                latencies.append(msg.inference_latency * 1e3)
    names = {0: 'PASS', 1: 'SCALED', 2: 'CLAMPED', 3: 'REJECTED', 4: 'STOPPED'}
    assert summary['safety']['verdicts'] == {names[k]: v for k, v in verdicts.items()}
    assert summary['episodes'] == len(results) == 2
    assert summary['success_rate'] == sum(results) / len(results)
    assert abs(summary['inference_latency_ms']['mean'] - sum(latencies) / len(latencies)) < 1e-9
    html = (tmp_path / 'report.html').read_text()
    assert all(name in html for name in PLOTS) and html.count('<img') == len(PLOTS)


def _foreign_bag(path, topics):
    """A bag another program wrote: its own types (one the suite has never heard of)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_types_from_msg

    store = get_typestore(Stores.ROS2_JAZZY)
    store.register(get_types_from_msg('int32 count\nstring label', 'other_pkg/msg/Tally'))
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    for topic, typename, msg in topics:
        connection = writer.add_connection(topic, typename, typestore=store)
        for k in range(3):
            writer.write(connection, k * 10**8, store.serialize_cdr(msg(store), typename))
    writer.close()
    return path


def test_a_bag_of_another_programs_types_is_a_one_line_error_naming_what_is_missing(
        tmp_path, capsys):
    """Issue 17 F10: such a bag gave "0 episodes" and exit 0 (and a report folder)."""
    from sim2real_bringup import cli

    bag = _foreign_bag(tmp_path / 'other', [
        ('/chatter', 'std_msgs/msg/String',
         lambda s: s.types['std_msgs/msg/String'](data='hello')),
        ('/tally', 'other_pkg/msg/Tally',
         lambda s: s.types['other_pkg/msg/Tally'](count=3, label='x'))])
    assert cli.main(['report', str(bag), '--out', str(tmp_path / 'r')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bag) in err[0], err
    assert 'no sim2real topic' in err[0] and '/episode/result' in err[0], err
    assert '/chatter (std_msgs/msg/String)' in err[0] and 'other_pkg/msg/Tally' in err[0], err
    assert not (tmp_path / 'r').exists()

    # a suite topic name carrying another type is named, not read as ours
    bag = _foreign_bag(tmp_path / 'twisted', [
        ('/safety/command', 'std_msgs/msg/String',
         lambda s: s.types['std_msgs/msg/String'](data='not a command'))])
    assert cli.main(['report', str(bag), '--out', str(tmp_path / 'r')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'Traceback' not in err[0], err
    assert '/safety/command is std_msgs/msg/String, not sim2real_msgs/msg/CartesianCommand' \
        in err[0], err
    assert not (tmp_path / 'r').exists()


def test_deadline_misses_of_a_run_add_up_over_episodes():
    """Each in-process episode restarts the controller; the report took the last one only."""
    from sim2real_bringup.report import summarize

    # (t, period, latency, source, deadline_misses, tick): two controllers, 4 + 2 misses
    control = [(0.01 * k, 0.01, 0.04, 0, misses, k + 1)
               for k, misses in enumerate([0, 1, 4, 4])]
    control += [(1.0 + 0.01 * k, 0.01, 0.04, 0, misses, k + 1)
                for k, misses in enumerate([0, 0, 2])]
    series = {'chunk_latency': [], 'control': control, 'commands': [], 'verdicts': [],
              'modes': [], 'results': [], 'transitions': []}
    assert summarize(series)['deadline_misses'] == 6

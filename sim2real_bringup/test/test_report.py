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

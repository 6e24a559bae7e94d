"""Replay: byte-identical with nothing changed; a tightened limit names exactly what changes."""
from sim2real_bringup import cli
from sim2real_bringup.bag import read_bag
from sim2real_bringup.replay import replay


def test_replay_is_identical_then_names_the_changed_commands(tmp_path):
    run = tmp_path / 'run'
    assert cli.main(['demo', '--episodes', '1', '--policy', 'expert', '--seed', '3',
                     '--out', str(run)]) == 0
    same = replay(run / 'bag', tmp_path / 'same')
    assert same['identical'] and same['first_divergence'] is None
    assert same['compared_messages'] > 1000
    recorded = [(m.time_ns, m.raw) for m in read_bag(run / 'bag', ['/safety/command'])]
    replayed = [(m.time_ns, m.raw) for m in read_bag(tmp_path / 'same' / 'bag',
                                                     ['/safety/command'])]
    assert recorded == replayed

    slower = replay(run / 'bag', tmp_path / 'slower',
                    overrides={'safety_node': {'max_cartesian_speed': 0.1}})
    assert not slower['identical']
    changed = list(read_bag(tmp_path / 'slower' / 'bag', ['/safety/command']))
    differing = {t / 1e9 for (t, raw), m in zip(recorded, changed) if raw != m.raw}
    assert {c['time_s'] for c in slower['changed_commands']} == differing
    assert slower['first_divergence']['time_s'] == min(differing)
    assert slower['changed_verdicts']  # scaled where it used to pass
    assert (tmp_path / 'slower' / 'replay.json').is_file()


def test_an_epoch_stamped_run_replays_from_its_start_and_identically(tmp_path):
    """A run whose clock started at an epoch time replays from there, not from 1970.

    The replay used to simulate from t=0 up to the first message (hours at 1.7e18 ns).
    """
    from sim2real_bringup.bag import BagRecorder
    from sim2real_bringup.config import load_yaml
    from sim2real_bringup.pipeline import Pipeline, PipelineConfig
    from sim2real_bringup.topics import qos_map
    from sim2real_policy.sim.randomization import Randomizer

    epoch_ns = 1_764_000_000_000_000_000   # on the 10 ms grid
    randomizer = Randomizer(load_yaml('randomization.yaml'), 'none')
    pipe = Pipeline(PipelineConfig.load(), lambda i: randomizer.sample(3 + i), policy='expert',
                    start_ns=epoch_ns)
    with BagRecorder(tmp_path / 'bag', qos=qos_map()).attach(pipe.graph):
        records = pipe.run_episodes(1)
    pipe.close()
    recorded_s = sum(r.duration for r in records)
    same = replay(tmp_path / 'bag', tmp_path / 'same')
    assert same['simulated_s'] < recorded_s + 1.0, same['simulated_s']
    assert same['identical'], same['first_divergence']
    assert min(m.time_ns for m in read_bag(tmp_path / 'same' / 'bag',
                                           ['/safety/command'])) > epoch_ns

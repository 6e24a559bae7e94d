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

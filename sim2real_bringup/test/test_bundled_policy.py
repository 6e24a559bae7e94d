"""The bundled policy grasps through the full stack, and its runs replay byte for byte."""
from sim2real_bringup import cli
from sim2real_bringup.replay import replay


def test_bundled_policy_grasps_and_replays_identically(tmp_path, capsys):
    run = tmp_path / 'run'
    assert cli.main(['demo', '--episodes', '3', '--seed', '0', '--out', str(run)]) == 0
    assert 'success rate 100%' in capsys.readouterr().out
    same = replay(run / 'bag', tmp_path / 'again')  # inference re-run on the recorded frames
    assert same['policy'] == 'bundled' and same['identical'], same['first_divergence']

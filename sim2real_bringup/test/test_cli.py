"""The sim2real command line: help for every command, clear one-line errors."""
import json

import pytest

from sim2real_bringup import cli
from sim2real_bringup.bag import bag_summary
from sim2real_bringup.config import load_yaml
from sim2real_bringup.report import PLOTS
from sim2real_policy.sim.params import SimParams


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(['--help'])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


@pytest.mark.parametrize('name', sorted(cli.COMMANDS))
def test_each_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, '--help'])
    assert exit_info.value.code == 0
    assert 'usage: sim2real ' + name in capsys.readouterr().out


def test_demo_writes_a_bag_and_a_report_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / 'run'
    assert cli.main(['demo', '--episodes', '1', '--policy', 'expert', '--out', str(out)]) == 0
    assert bag_summary(out / 'bag')['/episode/result']['count'] == 1
    report = json.loads((out / 'report.json').read_text())
    assert {'episodes', 'success_rate', 'inference_latency_ms', 'safety', 'modes'} <= set(report)
    html = (out / 'report.html').read_text()
    assert all(f'<img alt="{name}"' in html for name in PLOTS)
    assert html.count('<img alt="episode 0: ') == 4   # its filmstrip
    episodes = json.loads((out / 'episodes.json').read_text())
    assert SimParams.from_dict(episodes[0]['params']).seed == episodes[0]['seed']
    # the report (from the bag) and the run's own record agree on what happened
    assert report['episodes'] == len(episodes) == 1
    assert report['successes'] == sum(e['success'] for e in episodes)
    assert [r['duration_s'] for r in report['results']] == pytest.approx(
        [e['duration_s'] for e in episodes], abs=0.011)
    # an observation reaches a command no sooner than its inference took (both on the
    # simulated clock), and before the controller would refuse the chunk as too old
    inference, reached = report['inference_latency_ms'], report['observation_to_command_ms']
    max_age_ms = 1e3 * load_yaml('control.yaml')['control_node']['ros__parameters'][
        'max_chunk_age']
    assert inference['p99'] <= reached['p50'] <= reached['p99'] <= max_age_ms, report
    assert 'success rate' in capsys.readouterr().out
    assert cli.main(['demo', '--episodes', '1', '--policy', 'expert', '--out', str(out)]) == 2
    assert 'exists already' in capsys.readouterr().err


def test_bad_input_is_one_line_not_a_traceback(tmp_path, capsys):
    assert cli.main(['interfaces', 'sim2real_msgs/msg/Nope']) == 2
    assert "unknown message type 'sim2real_msgs/msg/Nope'" in capsys.readouterr().err
    assert cli.main(['info', str(tmp_path)]) == 2
    assert 'not a rosbag2 bag' in capsys.readouterr().err
    assert cli.main(['demo', '--episodes', '0', '--out', str(tmp_path / 'x')]) == 2
    assert '--episodes must be >= 1' in capsys.readouterr().err
    assert cli.main(['demo', '--policy', str(tmp_path / 'no.onnx'), '--out',
                     str(tmp_path / 'y')]) == 2
    assert 'no.onnx not found' in capsys.readouterr().err
    # the file system's errors too: here a path through a file
    (tmp_path / 'a_file').write_text('')
    assert cli.main(['sysid', '--excitation', str(tmp_path / 'a_file' / 'x.csv')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('sim2real sysid: error: ') and 'a_file' in err and len(
        err.strip().splitlines()) == 1


def test_calibrate_sim_records_a_bag_that_sysid_reads_back(tmp_path, capsys):
    from sim2real_bringup.bag import bag_summary
    from sim2real_bringup.commands.sysid import _from_bags
    from sim2real_safety.filter import SEED_READINGS

    bag = tmp_path / 'calibration'
    assert cli.main(['sysid', '--calibrate-sim', str(bag), '--no-fit']) == 0
    summary = bag_summary(bag)
    # one safe command per robot state, once the first SEED_READINGS agreeing readings came
    assert summary['/safety/command']['count'] == (
        summary['/robot/joint_states']['count'] - (SEED_READINGS - 1)) > 2000
    trajectories, notes = _from_bags([bag])
    # cut at the rests: one piece per excitation plus the first move
    assert len(trajectories) == 7 and notes == []
    # recording again to the same path is refused, nothing overwritten
    assert cli.main(['sysid', '--calibrate-sim', str(bag), '--no-fit']) == 2
    assert 'exists' in capsys.readouterr().err


def test_train_from_identified_values_refuses_bad_files_in_one_line(tmp_path, capsys):
    out = tmp_path / 'run'
    assert cli.main(['train', '--sysid', str(tmp_path / 'absent.yaml'), '--out', str(out)]) == 2
    assert 'absent.yaml: cannot read it' in capsys.readouterr().err
    params = tmp_path / 'sysid_params.yaml'
    params.write_text('fitted: {delay: 0.1}\n')
    assert cli.main(['train', '--sysid', str(params), '--out', str(out)]) == 2
    assert 'sysid_params.yaml: no sim_params mapping' in capsys.readouterr().err
    params.write_text('sim_params: {action_delay: .nan}\n')
    assert cli.main(['train', '--sysid', str(params), '--out', str(out)]) == 2
    assert 'sim_params: action_delay must be a finite number' in capsys.readouterr().err
    params.write_text('sim_params: {action_delay: 0.14}\n')
    assert cli.main(['train', '--sysid', str(params), '--adr', '--out', str(out)]) == 2
    assert '--sysid and --adr do not go together' in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize('argv', [
    ['bench', 'safety', '--fuzz-inputs', '10', '--motion-runs', '0', '--json', '{out}'],
    ['sysid', '--self-test', '--json', '{out}'],
    ['sysid', '--excitation', '{out}'],
    ['drill', '--json', '{out}'],
    ['evaluate', '--json', '{out}'],
])
def test_an_existing_output_file_is_never_overwritten(tmp_path, capsys, argv):
    """Issue 31, item 8: these wrote over existing files; now refused before any work."""
    out = tmp_path / 'kept.json'
    out.write_text('precious')
    assert cli.main([a.replace('{out}', str(out)) for a in argv]) == 2
    assert out.read_text() == 'precious'
    err = capsys.readouterr().err
    assert 'exists already' in err and len(err.strip().splitlines()) == 1


def test_write_new_links_a_whole_file_and_leaves_no_temporary(tmp_path):
    from sim2real_bringup.outputs import write_new

    target = tmp_path / 'figures.json'
    write_new(target, '{"a": 1}', '--json')
    assert target.read_text() == '{"a": 1}' and sorted(tmp_path.iterdir()) == [target]
    with pytest.raises(FileExistsError, match='--json'):
        write_new(target, 'other', '--json')
    assert target.read_text() == '{"a": 1}' and sorted(tmp_path.iterdir()) == [target]

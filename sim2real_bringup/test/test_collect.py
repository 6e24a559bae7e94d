"""Data collection: a scripted session on the simulator, its bag, the export and fine-tuning."""
import numpy as np
import pytest

from sim2real_bringup import cli
from sim2real_bringup.bag import read_bag
from sim2real_bringup.collect import collect_session, OperatorScript, run_collection
from sim2real_bringup.collection import (
    CollectConfig,
    CommandArbiter,
    EpisodeBook,
)
from sim2real_bringup.export import export, ExportError, read_episodes
from sim2real_bringup.launch_graph import COLLECT_REMAPS
from sim2real_bringup.pipeline import Pipeline, PipelineConfig
from sim2real_policy import data
from sim2real_policy.sim.params import SimParams

NS = 1_000_000_000


@pytest.fixture(scope='module')
def session(tmp_path_factory):
    """Phase 2 on the reality proxy, five episodes, a scripted operator.

    The policy fails in episodes 1 and 2 (injected); the human takes over in 2 and relabels
    3, whose grasp the gripper check calls a success.
    """
    out = tmp_path_factory.mktemp('collect') / 'run'
    script = OperatorScript(name='Ada', intervene={2: 3.0},
                            relabel={3: (False, 'object dropped while handing over')})
    result = run_collection(out, 'policy', 5, robot='proxy', failing={1, 2}, script=script)
    return out, result


def test_a_session_reads_back_exactly_through_the_export(session, tmp_path):
    out, result = session
    book = {e['episode']: e for e in result['episodes']}
    # what happened: an injected failure stays a failure, the intervention recovers one
    assert [book[k]['automatic'] for k in range(5)] == [True, False, True, True, True]
    assert book[1]['attempts'] == ['empty'] and book[2]['attempts'] == ['empty', 'held']
    assert book[2]['interventions'] == 1
    # the automatic check (gripper only) agrees with the simulator's privileged truth
    assert all(e['automatic'] == e['truth'] for e in result['episodes'])

    summary = export([out / 'bag'], tmp_path / 'dataset', real_fraction=0.3)
    dataset = data.load(tmp_path / 'dataset')
    exported = dataset['info']['episodes']
    assert [e['episode'] for e in exported] == sorted(book)
    for e in exported:
        mine = book[e['episode']]
        assert e['automatic'] == mine['automatic']
        assert e['label'] == mine['label'] and e['success'] == mine['success']
        assert e['interventions'] == mine['interventions']
        assert e['attempts'] == mine['attempts']
    assert exported[2]['intervention_operators'] == ['Ada']
    # the operator's label wins and carries the name
    assert exported[3]['automatic'] is True and exported[3]['success'] is False
    assert exported[3]['label_operator'] == 'Ada'
    assert dataset['success'].tolist() == [True, False, True, False, True]
    assert summary['overridden'] == 1 and summary['interventions'] == 1
    assert summary['retried_grasps'] == 1
    # samples: every 0.1 s of each episode, the human's share where they drove
    assert dataset['images'].shape[1:] == (64, 64, 3)
    assert dataset['actions'].shape[1:] == (data.HORIZON, 5)
    assert set(np.unique(dataset['episode'])) == set(range(5))
    human = dataset['human'].astype(bool)
    assert human.any() and set(dataset['episode'][human]) == {2}
    durations = [e['duration'] for e in exported]
    counts = np.bincount(dataset['episode'])
    assert np.all(np.abs(counts - np.array(durations) / data.OBSERVATION_PERIOD) <= 2)


def test_a_recovered_grasp_does_not_count_toward_the_failure_rule(session):
    out, _ = session
    results = [m.msg for m in read_bag(out / 'bag', ['/episode/result'])]
    assert [r.success for r in results] == [True, False, True, True, True]
    assert results[2].attempts == 2 and results[2].interventions == 1
    failures = [m.msg.consecutive_failures for m in read_bag(out / 'bag', ['/supervisor/state'])]
    assert max(failures) == 1  # episode 1 only: episode 2's retry succeeded


def test_the_export_feeds_finetune_without_hand_editing(session, tmp_path):
    pytest.importorskip('torch', reason='fine-tuning needs torch==2.13.0 (requirements-train)')
    from sim2real_bringup.config import load_yaml
    from sim2real_policy.policy import PolicyRunner
    from sim2real_policy.sim.randomization import Randomizer

    out, _ = session
    assert cli.main(['export', str(out / 'bag'), '--out', str(tmp_path / 'real')]) == 0
    sim = data.collect(Randomizer(load_yaml('randomization.yaml'), 'none'), 2, first_seed=9)
    data.save(sim, tmp_path / 'sim')
    assert cli.main(['finetune', '--kind', 'bc', '--real-dataset', str(tmp_path / 'real'),
                     '--sim-dataset',
                     str(tmp_path / 'sim'), '--epochs', '1', '--out',
                     str(tmp_path / 'tuned')]) == 0
    runner = PolicyRunner(tmp_path / 'tuned' / 'model.onnx')
    frame = np.zeros((64, 64, 3), np.uint8)
    actions = runner.predict(frame, np.zeros(6, np.float32), preprocessed=True)
    assert np.all(np.isfinite(actions))


@pytest.fixture(scope='module')
def proxy_calibration(tmp_path_factory):
    """The proxy cell calibrated by the procedure (bundled detector), and its file."""
    from sim2real_bringup.evaluation import episode_source
    from sim2real_policy.cell_calibration import calibrate_cell, SimCellRobot
    from sim2real_policy.keypoint_policy import KeypointDetector
    from sim2real_policy.models import BUNDLED
    from sim2real_policy.sim.randomization import VisualRandomizer
    from sim2real_policy.sim.robot import GripperSim
    from sim2real_safety.cell_file import write_cell_file

    params = episode_source('proxy')(0)
    with GripperSim(params) as sim:
        calibration = calibrate_cell(SimCellRobot(sim, VisualRandomizer(params.image, 0)),
                                     KeypointDetector(BUNDLED), cell='proxy')
    path = tmp_path_factory.mktemp('cell') / 'proxy.yaml'
    write_cell_file(calibration, path)
    return calibration, path


def _true_pixels(seed: int):
    """Privileged: the object's footprint centre in the proxy's frame at the episode start."""
    from sim2real_bringup.evaluation import episode_source
    from sim2real_policy.keypoints import true_pixels
    from sim2real_policy.sim.randomization import VisualRandomizer
    from sim2real_policy.sim.robot import GripperSim, HOME
    from sim2real_policy.sim.scene import object_half_height

    params = episode_source('proxy')(seed)
    with GripperSim(params, start=HOME, settle_s=0.2) as sim:
        base = sim.object_position() - (0.0, 0.0, object_half_height(params))
        return true_pixels(sim, VisualRandomizer(params.image, params.seed), [base])[0]


def test_keypoint_labels_come_from_held_grasps_and_the_measured_stage(
        session, proxy_calibration, tmp_path):
    from sim2real_bringup.keypoint_export import bag_labels, LabelConfig, load_keypoints
    from sim2real_policy.camera import ImagePreprocessor
    from sim2real_policy.keypoints import FRAME_SIZE, KEYPOINTS

    out, result = session
    calibration, path = proxy_calibration
    labelled = {number: np.asarray(labels) for number, (_, labels) in bag_labels(
        out / 'bag', calibration, LabelConfig(), ImagePreprocessor(FRAME_SIZE)).items()}
    # successes whose last attempt held; episode 3 is relabelled a failure, 1 failed
    assert sorted(labelled) == [0, 2, 4]
    base, top, tcp = (KEYPOINTS.index(k) for k in ('object_base', 'object_top', 'tcp'))
    for index in (0, 4):   # one attempt: the object is where it started
        errors = np.linalg.norm(labelled[index][:, base] - _true_pixels(index), axis=1)
        assert errors.max() < 1.5, (index, errors)
    for labels in labelled.values():
        assert np.isnan(labels[:, top]).all()
        assert np.isfinite(labels[:, [base, tcp]]).all()
        assert np.ptp(labels[:, base], axis=0).max() == 0   # one grasp: one footprint
    # the TCP label follows the stage from frame to frame
    assert np.ptp(np.concatenate(list(labelled.values()))[:, tcp], axis=0).max() > 5.0
    assert cli.main(['export', str(out / 'bag'), '--out', str(tmp_path / 'real'),
                     '--calibration', str(path)]) == 0
    written = load_keypoints(tmp_path / 'real')
    assert len(written['frames']) == sum(len(v) for v in labelled.values())
    assert written['frames'].shape[1:] == (FRAME_SIZE[1], FRAME_SIZE[0], 3)
    assert sorted(set(written['episode'].tolist())) == [0, 1, 2]


def test_keypoint_export_errors_name_what_is_missing(session, proxy_calibration, tmp_path,
                                                     capsys):
    from dataclasses import replace

    import yaml

    from sim2real_bringup.keypoint_export import keypoint_labels

    out, _ = session
    calibration, path = proxy_calibration
    with pytest.raises(ExportError, match='no table height'):
        keypoint_labels([out / 'bag'], replace(calibration, table_height=None))
    tableless = tmp_path / 'tableless.yaml'
    tableless.write_text(yaml.safe_dump(dict(yaml.safe_load(path.read_text()),
                                             table_height=None)))
    assert cli.main(['export', str(out / 'bag'), '--out', str(tmp_path / 'x'),
                     '--calibration', str(tableless)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'tableless.yaml' in err[0] and 'table_height' in err[0]
    # nothing written: the same command works once the input is fixed
    assert not (tmp_path / 'x').exists() and not (tmp_path / '.x.partial').exists()
    bad = tmp_path / 'bad.yaml'
    bad.write_text('projection: [1, 2]\n')
    assert cli.main(['export', str(out / 'bag'), '--out', str(tmp_path / 'x'),
                     '--calibration', str(bad)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'bad.yaml' in err[0] and 'projection' in err[0]
    assert not (tmp_path / 'x').exists()
    assert cli.main(['finetune', '--real-dataset', str(tmp_path), '--out',
                     str(tmp_path / 'y')]) != 0
    assert 'sim2real export BAGS --out DATASET --calibration' in capsys.readouterr().err


def test_teleop_in_the_full_stack_is_limited_by_the_same_safety_node(tmp_path):
    """Phase 1: an operator pushing out of the workspace is clamped by the safety node."""
    config = PipelineConfig.load()
    pipe = Pipeline(config, lambda i: SimParams(seed=i), policy='expert',
                    remaps=COLLECT_REMAPS)
    node = collect_session(pipe, 'teleop', 'Ada')
    safe, proposed, verdicts = [], [], []
    pipe.graph.create_subscription('/safety/command', 'sim2real_msgs/msg/CartesianCommand',
                                   lambda m: safe.append(m.x))
    pipe.graph.create_subscription('/collect/proposed_command',
                                   'sim2real_msgs/msg/CartesianCommand',
                                   lambda m: proposed.append(m.x))
    pipe.graph.create_subscription('/safety/status', 'sim2real_msgs/msg/SafetyStatus',
                                   lambda m: verdicts.append(m.verdict))
    push = pipe.graph.create_publisher('/teleop/cmd_vel', 'geometry_msgs/msg/Twist',
                                       node='device')
    from sim2real_bringup import interfaces as ifc

    def device():
        twist = ifc.make('geometry_msgs/msg/Twist')
        twist.linear.x = 1.0   # full deflection forward, for seconds: out of the workspace
        push.publish(twist)
    pipe.sched.create_timer(0.02, device, 'device')
    pipe.sched.run_for(4.0)
    pipe.close()
    upper = config.safety.upper[0]
    assert node.book.current is not None and node.teleop.started
    assert max(proposed) > upper                 # the human asked to leave
    assert max(safe) <= upper + 1e-9             # the robot was never told to
    status_type = ifc.message_class('sim2real_msgs/msg/SafetyStatus')
    assert status_type.VERDICT_CLAMPED in verdicts


def test_labels_are_signed_and_need_a_known_episode():
    book = EpisodeBook(CollectConfig())
    book.start(0, 0)
    book.end(NS)
    assert book.label(0, True, '  ', 'fine', 2 * NS)[0] is False
    accepted, message, _ = book.label(7, True, 'Ada', '', 2 * NS)
    assert not accepted and 'episode 7 is unknown' in message
    accepted, _, event = book.label(0, True, 'Ada', 'looked fine', 2 * NS)
    assert accepted and event.operator_name == 'Ada' and book.episodes[0].success is True


def test_hand_back_fades_from_the_human_to_the_policy():
    arbiter = CommandArbiter(CollectConfig(handback_time=0.5))
    arbiter.set_intervention(True, 0)
    arbiter.select(None, (0.5, 0.0, 0.2, 0.0, 0.0), 0)
    arbiter.set_intervention(False, NS)
    policy = (0.6, 0.0, 0.2, 0.0, 0.0)
    xs = [arbiter.select(policy, None, NS + k * NS // 10)[0][0] for k in range(7)]
    assert xs[0] == pytest.approx(0.5) and xs[-1] == pytest.approx(0.6)
    assert all(b >= a for a, b in zip(xs, xs[1:]))


def test_a_bag_without_collection_events_is_named(tmp_path):
    from sim2real_bringup import convert
    from sim2real_bringup.bag import BagRecorder

    with BagRecorder(tmp_path / 'bag') as recorder:
        recorder.record('/safety/command', 'sim2real_msgs/msg/CartesianCommand', 0,
                        convert.command_msg((0.5, 0, 0.2, 0, 0.08), 0, 0))
    with pytest.raises(ExportError, match='no /collect/events'):
        read_episodes(tmp_path / 'bag')


@pytest.mark.parametrize('field, value', [('phase', 'autonomous'), ('handback_time', -1.0),
                                          ('close_below', 0.09)])
def test_bad_collection_parameters_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        CollectConfig(**{field: value})


def test_event_constants_match_the_message_definition():
    from sim2real_bringup import collection
    from sim2real_bringup import interfaces as ifc

    msg = ifc.message_class('sim2real_msgs/msg/EpisodeEvent')
    for name in ('EPISODE_START', 'EPISODE_END', 'INTERVENTION_START', 'INTERVENTION_END',
                 'LABEL', 'GRASP_ATTEMPT', 'PHASE_TELEOP', 'PHASE_POLICY'):
        assert getattr(collection, name) == getattr(msg, name), name

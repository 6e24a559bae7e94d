"""Commissioning a cell through the graph: the node the robot runs, on the in-process runtime.

The commissioning node drives the MuJoCo robot through the safety node in the supervisor's
commissioning mode and sees it through the camera node (``commission.py``); these tests judge
the file it writes against the simulator's truth, the robot's true motion against the
commissioning bounds, and its refusals.
"""

import pytest

from sim2real_bringup.commission import commission_sim_cell
from sim2real_bringup.evaluation import episode_source
from sim2real_bringup.nodes.commissioning_node import CommissioningNode
from sim2real_bringup.pipeline import PipelineConfig
from sim2real_bringup.runtime import Graph, Scheduler
from sim2real_bringup.runtime.node import GraphNode
from sim2real_policy.keypoint_policy import KeypointDetector
from sim2real_policy.models import resolve_model
from sim2real_safety.cell_file import read_cell_file

CONFIG = PipelineConfig.load()


@pytest.fixture(scope='module')
def detector():
    return KeypointDetector(resolve_model(''))


@pytest.fixture(scope='module')
def heavy_cell(detector, tmp_path_factory):
    path = tmp_path_factory.mktemp('cell') / 'cell.yaml'
    params = episode_source('heavy')(3)   # a table within the touch-off's reach
    return params, path, commission_sim_cell(params, path, 'heavy-3', detector)


def test_a_heavy_cell_is_commissioned_through_the_safety_node(heavy_cell):
    params, path, run = heavy_cell
    assert run['error'] == ''
    cell = read_cell_file(path, 'heavy-3')
    assert cell.cell == 'heavy-3' and cell.provenance['robot'] == 'MuJoCo (simulated)'
    truth = run['truth']
    # the touch-off finds the table, never below it (the safety floor stays above the table)
    assert cell.table_height is not None
    assert 0.0 <= truth['table_error_m'] < 0.004, truth
    assert truth['table_point_error_m_p95'] < 0.008, truth
    assert abs(truth['actuation_delay_error_s']) < 0.06, truth
    assert cell.reprojection_rms_px < 1.5 and cell.points_used >= 12


def test_the_stage_stays_inside_the_commissioning_bounds(heavy_cell):
    _params, _path, run = heavy_cell
    lim = CONFIG.safety
    # the stage's true height: no lower than the commissioning floor, give or take its servo
    # overshoot on contact (1 mm)
    assert run['lowest_tcp_z'] >= lim.commissioning_floor - 0.001, run['lowest_tcp_z']
    # the filter changed few proposals and never had to hold one
    assert run['verdicts'].get('REJECTED', 0) <= 2, run['verdicts']
    assert 'software_stop' not in run['violations'], run['violations']


def test_the_supervisor_leaves_the_commissioning_mode_when_the_procedure_ends(detector,
                                                                               tmp_path):
    lines = []
    run = commission_sim_cell(episode_source('none')(0), tmp_path / 'c.yaml', 'nominal',
                              detector, progress=lines.append)
    assert run['error'] == ''
    steps = [line.split(':')[0] for line in lines]
    assert steps[0] == 'waiting' and steps[-1] == 'done'
    assert {'touch-off', 'poses', 'fit'} <= set(steps)
    assert sum(line.startswith('poses: pose ') for line in lines) == 17


def _node(tmp_path, **parameters):
    given = {k: v for k, v in CONFIG.params['commissioning_node'].items() if v is not None}
    given.update(parameters)
    return GraphNode(Graph(Scheduler(0)), 'commissioning_node', (), given)


def test_an_existing_file_is_never_overwritten_without_replace(tmp_path, detector):
    path = tmp_path / 'cell.yaml'
    path.write_text('projection: []\n')
    with pytest.raises(FileExistsError, match='replace'):
        CommissioningNode(_node(tmp_path, output_file=str(path), cell_name='c'), detector)
    assert path.read_text() == 'projection: []\n'


@pytest.mark.parametrize('missing', ['output_file', 'cell_name'])
def test_the_file_and_the_cell_name_are_required(tmp_path, detector, missing):
    given = {'output_file': str(tmp_path / 'c.yaml'), 'cell_name': 'c', missing: ''}
    with pytest.raises(ValueError, match=missing):
        CommissioningNode(_node(tmp_path, **given), detector)


def test_without_an_operator_nothing_moves_and_the_node_gives_up(tmp_path, detector):
    run = commission_sim_cell(episode_source('none')(0), tmp_path / 'c.yaml', 'nominal',
                              detector, operator='',
                              overrides={'commissioning_node': {'start_timeout': 2.0}})
    assert 'start_timeout' in run['error'] and 'ros2 service call' in run['error']
    assert run['calibration'] is None and not (tmp_path / 'c.yaml').exists()
    assert run['verdicts'] == {}   # no commissioning proposal reached the filter


def test_a_software_stop_ends_the_commissioning_and_no_file_is_written(tmp_path, detector):
    def stop_mid_touch_off(graph):
        graph.scheduler.call_at(8 * 10**9, lambda: graph.call_service(
            '/safety/trigger_stop', requested_by='test', reason='operator pressed stop'))

    run = commission_sim_cell(episode_source('none')(0), tmp_path / 'c.yaml', 'nominal',
                              detector, setup=stop_mid_touch_off)
    assert 'ended the commissioning' in run['error'], run['error']
    assert 'software stop' in run['error']
    assert run['calibration'] is None and not (tmp_path / 'c.yaml').exists()

"""The cell file: round trip, refusals in one line, atomic writes that never lose a file."""
import errno
import os

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest
from safety_rig import limits
import yaml

from sim2real_safety.cell_file import (
    CellCalibration,
    CellFileError,
    commissioned_table,
    read_cell_file,
    write_cell_file,
)
from sim2real_safety.limits import SafetyLimits

PROJECTION = [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [0.0, 0.0, 1.0, 2.0]]


def _cell(**changes) -> CellCalibration:
    fields = dict(projection=PROJECTION, table_height=0.01, reprojection_rms_px=0.3,
                  points_used=14, points_seen=17, actuation_delay=0.04, cell='bench-2')
    fields.update(changes)
    return CellCalibration(**fields)


def _text(**changes) -> str:
    data = _cell().to_dict()
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key)
        else:
            data[key] = value
    return yaml.safe_dump(data)


_DROP = object()


def test_a_cell_file_round_trips_and_is_never_overwritten(tmp_path):
    path = tmp_path / 'cell.yaml'
    assert write_cell_file(_cell(), path) is None
    assert read_cell_file(path) == _cell()
    with pytest.raises(FileExistsError):
        write_cell_file(_cell(table_height=0.02), path)
    assert read_cell_file(path).table_height == 0.01
    # with replace the previous one is kept beside the new one, byte for byte
    before = path.read_bytes()
    kept = write_cell_file(_cell(table_height=0.02), path, replace=True)
    assert kept.read_bytes() == before and kept.parent == tmp_path
    assert read_cell_file(path).table_height == 0.02
    # out of reach: no height, its bound kept; the table in use is the bound
    below = _cell(table_height=None, table_height_max=-0.0339)
    write_cell_file(below, tmp_path / 'below.yaml')
    assert read_cell_file(tmp_path / 'below.yaml').table == -0.0339


@pytest.mark.parametrize('changes, field', [
    ({'projection': [1, 2]}, 'projection'),
    ({'projection': [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, float('nan')]]}, 'projection'),
    ({'projection': [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, True]]}, 'projection'),
    ({'table_height': None}, 'table_height_max'),
    ({'table_height': None, 'table_height_max': float('inf')}, 'table_height_max'),
    ({'table_height': None, 'table_height_max': True}, 'table_height_max'),
    ({'table_height': '0.01'}, 'table_height'),
    ({'table_height': float('nan')}, 'table_height'),
    ({'actuation_delay': False}, 'actuation_delay'),
    ({'actuation_delay': -0.01}, 'actuation_delay'),
    ({'actuation_delay': 2.0}, 'actuation_delay'),
    ({'check_points': [[0.55, 0.0, 0.25, 40.0]]}, 'check_points'),
    ({'check_points': [[0.55, 0.0, 0.25, 40.0, float('nan')]]}, 'check_points'),
    ({'check_points': {'home': [0.55, 0.0, 0.25, 40.0, 41.0]}}, 'check_points'),
    ({'points_used': float('inf')}, 'points_used'),
    ({'points_seen': 2.5}, 'points_seen'),
    ({'reprojection_rms_px': -1.0}, 'reprojection_rms_px'),
    ({'cell': ''}, 'cell'),
    ({'cell': 3}, 'cell'),
    ({'extra': [1]}, 'extra'),
    ({'table_height': _DROP}, 'missing'),
    ({'actuation_delay': _DROP}, 'missing'),
    ({'cell': _DROP}, 'missing'),
])
def test_a_bad_cell_file_is_refused_in_one_line_naming_file_and_field(tmp_path, changes, field):
    bad = tmp_path / 'bad.yaml'
    bad.write_text(_text(**changes))
    with pytest.raises(CellFileError, match=field) as error:
        read_cell_file(bad)
    assert str(bad) in str(error.value) and '\n' not in str(error.value)


@pytest.mark.parametrize('text, message', [
    ('- a list', 'mapping'), ('{unclosed', 'cell file'), ('', 'mapping'),
    ('projection: ' + '9' * 400, 'missing')])
def test_a_file_that_is_no_cell_file_is_refused_in_one_line(tmp_path, text, message):
    bad = tmp_path / 'bad.yaml'
    bad.write_text(text)
    with pytest.raises(CellFileError, match=message) as error:
        read_cell_file(bad)
    assert '\n' not in str(error.value)
    with pytest.raises(CellFileError, match='missing.yaml'):
        read_cell_file(tmp_path / 'missing.yaml')


def test_a_file_for_another_cell_is_refused(tmp_path):
    path = tmp_path / 'cell.yaml'
    write_cell_file(_cell(), path)
    assert read_cell_file(path, 'bench-2').cell == 'bench-2'
    with pytest.raises(CellFileError, match="'bench-2' is not this cell"):
        read_cell_file(path, 'bench-3')


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    path = tmp_path / 'cell.yaml'
    write_cell_file(_cell(), path)

    def full_disk(fd):
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(os, 'fsync', full_disk)
    with pytest.raises(OSError, match='No space'):
        write_cell_file(_cell(table_height=0.02), path, replace=True)
    assert read_cell_file(path).table_height == 0.01
    assert sorted(p.name for p in tmp_path.iterdir()) == ['cell.yaml']


def _limits() -> SafetyLimits:
    return limits()


def test_the_commissioned_table_is_the_measured_one_or_its_bound():
    limits = _limits()
    assert commissioned_table(limits, _cell(table_height=0.012)) == {'table_height': 0.012}
    assert commissioned_table(limits, _cell(table_height=None, table_height_max=-0.02)) == {
        'table_height': -0.02}


@settings(max_examples=200, deadline=None)
@given(st.floats(-1.0, 1.0))
def test_a_table_the_fingertips_cannot_reach_is_refused(table):
    limits = _limits()
    lowest = limits.workspace_min[2]
    names = {joint.name: joint for joint in limits.joint_limits}
    if len(limits.tcp_joints) >= 3:
        lowest = min(lowest, names[limits.tcp_joints[2]].lower)
    reachable = table >= lowest - max(d for _, d in limits.finger_drop) - 0.005
    try:
        result = commissioned_table(limits, _cell(table_height=table), 'cell.yaml')
    except CellFileError as exc:
        assert not reachable and 'cell.yaml' in str(exc) and 'table_height' in str(exc)
    else:
        assert reachable and result == {'table_height': table}


def _camera_at(centre) -> list:
    # a camera at ``centre`` looking along -x (the suite's cells look back at the robot)
    import numpy as np
    rotation = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])
    intrinsics = np.array([[116.0, 0.0, 48.0], [0.0, 116.0, 48.0], [0.0, 0.0, 1.0]])
    extrinsic = np.hstack([rotation, -rotation @ np.asarray(centre, float)[:, None]])
    return (intrinsics @ extrinsic).tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3), st.floats(-5.0, 5.0).filter(
    lambda scale: abs(scale) > 1e-3))
def test_the_camera_centre_is_the_point_the_projection_maps_to_no_pixel(centre, scale):
    import numpy as np

    from sim2real_safety.cell_file import camera_centre
    projection = np.asarray(_camera_at(centre)) * scale   # any scale, its sign included
    found = camera_centre(projection)
    assert np.allclose(found, centre, atol=1e-9)
    assert np.allclose(projection @ [*found, 1.0], 0.0, atol=1e-6)
    assert camera_centre(np.zeros((3, 4))) is None


@pytest.mark.parametrize('centre, inside', [
    ((1.12, 0.0, 0.52), True), ((1.12, 0.0, -0.3), False), ((-0.5, 0.0, 0.5), False),
    ((1.0, 2.0, 0.5), False)])
def test_a_camera_outside_the_cells_hull_is_refused_in_one_line(tmp_path, centre, inside):
    from sim2real_safety.cell_file import load_cell_parameters
    path = tmp_path / 'cell.yaml'
    write_cell_file(_cell(projection=_camera_at(centre)), path)
    values = {'calibration_file': str(path), 'cell_name': ''}
    if inside:
        assert load_cell_parameters(values).cell == 'bench-2'
        return
    with pytest.raises(CellFileError, match='outside camera_hull_min') as error:
        load_cell_parameters(values)
    assert str(path) in str(error.value) and '\n' not in str(error.value)
    # the cell's own box, where its camera really is, accepts it
    values.update(camera_hull_min=[c - 0.1 for c in centre],
                  camera_hull_max=[c + 0.1 for c in centre])
    assert load_cell_parameters(values).cell == 'bench-2'


def test_a_singular_projection_or_a_box_without_volume_is_refused(tmp_path):
    from sim2real_safety.cell_file import load_cell_parameters
    path = tmp_path / 'cell.yaml'
    write_cell_file(_cell(projection=[[1.0, 0.0, 0.0, 0.0]] * 3), path)
    with pytest.raises(CellFileError, match='singular'):
        load_cell_parameters({'calibration_file': str(path), 'cell_name': ''})
    good = tmp_path / 'good.yaml'
    write_cell_file(_cell(projection=_camera_at((1.1, 0.0, 0.5))), good)
    with pytest.raises(CellFileError, match='min below max'):
        load_cell_parameters({'calibration_file': str(good), 'cell_name': '',
                              'camera_hull_min': [0.0, 0.0, 0.0],
                              'camera_hull_max': [2.0, 0.0, 2.0]})

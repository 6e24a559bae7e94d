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

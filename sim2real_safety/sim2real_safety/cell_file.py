"""The cell file: what commissioning measured of one robot cell, loaded the same way by every node.

Written by the cell calibration procedure (``sim2real calibrate-cell``; the in-process
runtime writes one per simulated cell), read by the policy node (camera), the control node
(actuation delay lead) and the safety node (table plane). It lives here, in the lowest Python
package, because the safety node loads it and may depend on nothing above it.

A file holds:

``cell``                     the cell's name; a node whose ``cell_name`` is set refuses a
                             file for another cell
``projection``               3 x 4, base frame -> processed-image pixels
``table_height``             m, the touched-off table; null: not reached, then
``table_height_max``         m, the highest the table can be (required with a null table)
``actuation_delay``          s from command to stage motion; null: not measured
``reprojection_rms_px``, ``points_used``, ``points_seen``   the camera fit's residuals
``provenance``               date, suite version, policy digest (for the reader, not checked)
``extra``                    anything else (checks against a simulator's truth)

Every key above but ``provenance`` and ``extra`` must be present: a missing one is an error,
never a default. Errors are one line naming the file, the field and the value.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
import datetime
import math
import os
from pathlib import Path
import tempfile

from sim2real_safety.node_interface import Param

# The parameters of every node that loads a cell file (declared once, here).
CELL_PARAMETERS = (
    Param('calibration_file', '', 'cell file from commissioning (YAML: camera, table, '
          'actuation delay); "" = none: the configured values stay'),
    Param('cell_name', '', 'the cell this robot PC runs: a calibration_file for another cell '
          'is refused ("" = accept any)'),
    # A fit that puts the camera behind the robot or under the table is a failed
    # commissioning, not a camera: the box is the cell's (the default holds any camera
    # looking at the table from in front of the robot, the suite's simulated cells' too).
    Param('camera_hull_min', [0.0, -1.5, 0.0], 'lower corner [x, y, z] of the box the '
          "commissioned camera's centre must be in (m, base frame)", (-10.0, 10.0)),
    Param('camera_hull_max', [2.5, 1.5, 2.0], 'upper corner [x, y, z] of the box the '
          "commissioned camera's centre must be in (m, base frame)", (-10.0, 10.0)),
)
REQUIRED = ('cell', 'projection', 'table_height', 'actuation_delay', 'reprojection_rms_px',
            'points_used', 'points_seen')
# A cell's actuation delay above this is a measurement gone wrong, whatever the control
# node's max_actuation_delay (which it is checked against too).
MAX_DELAY = 1.0


class CellFileError(ValueError):
    """A cell file the node refuses; the message is one line naming file, field and value."""


@dataclass
class CellCalibration:
    """The cell as the procedure measured it."""

    projection: list                   # 3 x 4, base frame -> processed-image pixels
    table_height: float | None         # m; None: the table is below the gripper's reach
    reprojection_rms_px: float
    points_used: int
    points_seen: int
    extra: dict = field(default_factory=dict)
    actuation_delay: float | None = None   # s from command to stage motion; None: unknown
    # m: with table_height None, the highest the table can be (the touch-off reached the
    # stage's lowest point without a contact)
    table_height_max: float | None = None
    cell: str = ''
    provenance: dict = field(default_factory=dict)
    # [x, y, z, u, v]: where the fingertips were seen (px) with the TCP measured at (x, y, z)
    # (m) at commissioning, for the check against the live camera (older files: none)
    check_points: list = field(default_factory=list)

    @property
    def matrix(self):
        """The projection matrix as an array."""
        import numpy as np
        return np.asarray(self.projection, float)

    @property
    def table(self) -> float | None:
        """The table the cell is commissioned with: measured, else its upper bound."""
        return self.table_height if self.table_height is not None else self.table_height_max

    def to_dict(self) -> dict:
        """Plain data for a YAML/JSON cell file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data) -> 'CellCalibration':
        """The inverse of :meth:`to_dict`, checked; :class:`CellFileError` names the field."""
        if not isinstance(data, dict):
            raise CellFileError(f'a cell file is a mapping, got {type(data).__name__}')
        missing = [key for key in REQUIRED if key not in data]
        if missing:
            raise CellFileError(f'missing field(s) {missing} (each must be given; null where '
                                'not measured)')
        cell = data['cell']
        if not isinstance(cell, str) or not cell:
            raise CellFileError(f'cell must be a non-empty name, got {cell!r}')
        projection = data['projection']
        rows = projection if isinstance(projection, list) else None
        if rows is None or len(rows) != 3 or any(
                not isinstance(row, list) or len(row) != 4 or not all(_finite(v) for v in row)
                for row in rows):
            raise CellFileError(f'projection must be 3 rows of 4 finite numbers, got '
                                f'{projection!r}')
        table = _optional_number(data, 'table_height', (-1.0, 1.0), 'm')
        bound = _optional_number(data, 'table_height_max', (-1.0, 1.0), 'm')
        if table is None and bound is None:
            raise CellFileError('table_height is null and table_height_max is not given: the '
                                'touch-off must give the table or an upper bound on it')
        delay = _optional_number(data, 'actuation_delay', (0.0, MAX_DELAY), 's')
        rms = data['reprojection_rms_px']
        if not _finite(rms) or rms < 0:
            raise CellFileError(f'reprojection_rms_px must be a finite number >= 0, got {rms!r}')
        for key in ('extra', 'provenance'):
            if not isinstance(data.get(key, {}), dict):
                raise CellFileError(f'{key} must be a mapping, got {data[key]!r}')
        checks = data.get('check_points') or []
        if not isinstance(checks, list) or any(
                not isinstance(point, list) or len(point) != 5
                or not all(_finite(v) for v in point) for point in checks):
            raise CellFileError(f'check_points must be a list of [x, y, z, u, v] (5 finite '
                                f'numbers each), got {checks!r}')
        return cls([[float(v) for v in row] for row in rows], table, float(rms),
                   _count(data, 'points_used'), _count(data, 'points_seen'),
                   dict(data.get('extra', {})), delay, None if table is not None else bound,
                   cell, dict(data.get('provenance', {})),
                   [[float(v) for v in point] for point in checks])


def _finite(value) -> bool:
    # a YAML true/false or a quoted number is a mistake in the file, not a number; an int too
    # large for a float is one too
    try:
        return (not isinstance(value, bool) and isinstance(value, (int, float))
                and math.isfinite(value))
    except OverflowError:
        return False


def _count(data: dict, key: str) -> int:
    """``data[key]`` as a count: a whole number >= 0, else CellFileError."""
    value = data[key]
    if not _finite(value) or value < 0 or not float(value).is_integer():
        raise CellFileError(f'{key} must be a whole number >= 0, got {value!r}')
    return int(value)


def _optional_number(data: dict, key: str, bounds: tuple, unit: str) -> float | None:
    """``data[key]``: None (absent or null) or a finite number in ``bounds``."""
    value = data.get(key)
    if value is None:
        return None
    if not _finite(value) or not bounds[0] <= value <= bounds[1]:
        raise CellFileError(f'{key} must be null or a finite number in [{bounds[0]}, '
                            f'{bounds[1]}] {unit}, got {value!r}')
    return float(value)


def read_cell_file(path, cell_name: str = '') -> CellCalibration:
    """A cell file (YAML), checked; ``cell_name`` set: a file for another cell is refused."""
    import yaml

    try:
        with open(path) as handle:
            data = yaml.safe_load(handle)
        calibration = CellCalibration.from_dict(data)
        if cell_name and calibration.cell != cell_name:
            raise CellFileError(f'cell {calibration.cell!r} is not this cell ({cell_name!r}, '
                                'parameter cell_name)')
        return calibration
    except (OSError, yaml.YAMLError, ValueError, TypeError) as exc:
        raise CellFileError(f'cell file {path}: {exc}'.splitlines()[0]) from None


def write_cell_file(calibration: CellCalibration, path, replace: bool = False) -> Path | None:
    """Write a cell file atomically; returns where the previous one was kept, if any.

    An existing file is never overwritten unless ``replace``; then it is kept beside the new
    one as ``<name>.previous-<UTC time>.yaml``. The new file is written to a temporary file in
    the same folder and renamed into place, so a reader never sees half a file.
    """
    import yaml

    path = Path(path)
    if path.exists() and not replace:
        raise FileExistsError(f'{path} exists: pass replace to keep it beside the new one '
                              'and write this cell file in its place')
    text = yaml.safe_dump(calibration.to_dict(), sort_keys=False)
    handle, temporary = tempfile.mkstemp(prefix=f'.{path.name}.', dir=path.parent or '.')
    try:
        with os.fdopen(handle, 'w') as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        kept = None
        if path.exists():
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%S.%fZ')
            kept = path.with_name(f'{path.stem}.previous-{stamp}{path.suffix}')
            os.link(path, kept)   # the old file stays readable at its name until the rename
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)   # fails if a file appeared meanwhile: never overwritten
            os.unlink(temporary)
        return kept
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def load_cell_parameters(values: dict) -> CellCalibration | None:
    """The cell file named by a node's :data:`CELL_PARAMETERS` values (None: none given).

    Its camera must sit in the box ``camera_hull_min``..``camera_hull_max``: else
    :class:`CellFileError` naming the file, the centre and the box.
    """
    path = values['calibration_file']
    if not path:
        return None
    calibration = read_cell_file(path, values['cell_name'])
    defaults = {param.name: param.default for param in CELL_PARAMETERS}
    low, high = (values.get(key, defaults[key]) for key in ('camera_hull_min', 'camera_hull_max'))
    if len(low) != 3 or len(high) != 3 or not all(a < b for a, b in zip(low, high)):
        raise CellFileError(f'camera_hull_min {list(low)} and camera_hull_max {list(high)} '
                            'must be [x, y, z] each, min below max on every axis')
    centre = camera_centre(calibration.projection)
    if centre is None or not all(a <= c <= b for a, c, b in zip(low, centre, high)):
        shown = 'nowhere (a singular projection)' if centre is None else \
            '[' + ', '.join(f'{c:.3f}' for c in centre) + '] m'
        raise CellFileError(f'cell file {path}: projection puts the camera at {shown}, '
                            f'outside camera_hull_min {list(low)} .. camera_hull_max '
                            f'{list(high)} (m, base frame)')
    return calibration


def camera_centre(projection) -> tuple | None:
    """Where a projection's camera is (m, base frame): the point it maps to no pixel."""
    import numpy as np

    matrix = np.asarray(projection, float)
    try:
        centre = -np.linalg.solve(matrix[:, :3], matrix[:, 3])
    except np.linalg.LinAlgError:
        return None
    return tuple(float(v) for v in centre) if np.all(np.isfinite(centre)) else None


def commissioned_table(limits, calibration: CellCalibration, path='') -> dict:
    """The safety node's table parameters for a commissioned cell ({}: the configured stay).

    The touch-off errs high by construction (the fingertips cannot go through the table, and
    the contact height carries three standard errors of its noisy mean), so the floor it gives,
    table + ``table_clearance``, is never below the real table plus the clearance. A touch-off
    that reached the stage's lowest point without a contact bounds the table from above
    (``table_height_max``): the cell is commissioned as if the table were there, the highest
    it can be.

    Only the table changes: the workspace box stays the configured one, whose floor the
    limits keep above the stage's z joint trip point, so a table below the box's floor is
    held at the box's floor and nothing is commanded outside the configured box. A table the
    closed fingertips could not have touched from the lowest TCP height the limits allow is
    not a measurement: refused.
    """
    table = calibration.table
    if table is None:
        return {}
    lowest_tcp = limits.workspace_min[2]
    joints = {joint.name: joint for joint in limits.joint_limits}
    if len(limits.tcp_joints) >= 3:
        lowest_tcp = min(lowest_tcp, joints[limits.tcp_joints[2]].lower)
    deepest = max(depth for _, depth in limits.finger_drop)
    lowest_table = lowest_tcp - deepest - 0.005   # 5 mm: the touch-off's noise and margin
    if not math.isfinite(table) or table < lowest_table:   # NaN compares False: refused
        key = 'table_height' if calibration.table_height is not None else 'table_height_max'
        raise CellFileError(f'cell file {path}: {key} {table!r} m is below the lowest table '
                            f'the fingertips can reach ({lowest_table:.4f} m: TCP z '
                            f'{lowest_tcp} m less the deepest finger_drop {deepest} m)')
    return {'table_height': table}


def commissioned_values(node_name: str, path, params, values: dict) -> dict:
    """``values`` (a node's parameters, from the cell file) checked against their ranges.

    So a value outside a node's declared range is refused naming the file, not the node's
    parameter file, which does not hold it.
    """
    from sim2real_safety.node_interface import check_parameter, ParameterError

    declared = {param.name: param for param in params}
    for key, value in values.items():
        try:
            check_parameter(node_name, declared[key], value)
        except ParameterError as exc:
            raise CellFileError(f'cell file {path}: {key} {value!r} is refused by '
                                f'{exc}') from None
    return values

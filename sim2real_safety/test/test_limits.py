"""Safety parameters: the shipped config loads; bad values are refused by name."""
import math
from pathlib import Path

import pytest
from safety_rig import BASE
import yaml

from sim2real_safety.limits import LimitsError, Reaction, SafetyLimits

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'safety.yaml'


def _flatten(params, prefix=''):
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def test_shipped_config_loads_with_safe_reactions():
    params = _flatten(yaml.safe_load(CONFIG.read_text())['safety_node']['ros__parameters'])
    lim = SafetyLimits.from_parameters(params)
    assert lim.z_floor == pytest.approx(0.01)   # table + table_clearance
    assert lim.z_min == pytest.approx(0.01 + lim.servo_position_margin)
    assert lim.reactions['workspace'] == Reaction.CLAMP
    assert lim.reactions['cartesian_speed'] == Reaction.SCALE
    assert [j.name for j in lim.joint_limits] == ['stage_x', 'stage_y', 'stage_z', 'stage_yaw']


@pytest.mark.parametrize('change, message', [
    ({'max_cartesian_speed': 'fast'}, "'max_cartesian_speed' must be a number, got 'fast'"),
    ({'max_cartesian_speed': True}, "'max_cartesian_speed' must be a number, got True"),
    ({'max_cartesian_speed': -0.1}, "'max_cartesian_speed' must be > 0, got -0.1"),
    ({'max_cartesian_speed': math.nan}, "'max_cartesian_speed' must be finite, got nan"),
    ({'table_clearance': -0.01}, "'table_clearance' must be >= 0, got -0.01"),
    ({'command_timeout': 0}, "'command_timeout' must be > 0, got 0"),
    ({'workspace_min': [0.3, 0.0]}, "'workspace_min' must be \\[x, y, z\\]"),
    ({'workspace_max': [0.8, math.inf, 0.4]}, 'workspace_max\\[1\\] must be a finite number'),
    ({'yaw_min': 2.0}, 'empty range for yaw: lower 2.0 >= upper 1.5'),
    ({'table_height': 0.5}, 'empty range for z'),
    ({'reaction.workspace': 'ignore'}, 'reaction.workspace: reaction must be one of'),
    ({'reaction.non_finite': 'clamp'}, "unknown constraint 'non_finite'"),
    ({'joint_limits.names': ['a'], 'joint_limits.lower': [0.0], 'joint_limits.upper': [1.0]},
     'joint_limits.max_velocity needs one value per joint'),
    ({'joint_limits.names': ['a'], 'joint_limits.lower': [1.0], 'joint_limits.upper': [0.0],
      'joint_limits.max_velocity': [1.0]}, "joint 'a': need lower < upper"),
])
def test_bad_parameters_are_named(change, message):
    params = dict(BASE, **change)
    with pytest.raises(LimitsError, match=message):
        SafetyLimits.from_parameters(params)


def test_missing_parameter_is_named():
    params = dict(BASE)
    del params['state_timeout']
    with pytest.raises(LimitsError, match="'state_timeout' is missing"):
        SafetyLimits.from_parameters(params)

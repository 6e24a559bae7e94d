"""Shared test setup: offscreen rendering and the suite's safety limits.

MUJOCO_GL is chosen before any test imports mujoco; ``suite_limits`` reads
config/safety.yaml for the tests that need the suite's limits.
"""
import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault('MUJOCO_GL', 'egl')

SAFETY_YAML = Path(__file__).resolve().parents[2] / 'config' / 'safety.yaml'


@pytest.fixture
def suite_limits():
    """``suite_limits(**reaction)``: the suite's SafetyLimits, reactions overridable."""
    from sim2real_safety.limits import SafetyLimits

    raw = yaml.safe_load(SAFETY_YAML.read_text())['safety_node']['ros__parameters']

    def load(**reaction):
        params = {k: v for k, v in raw.items() if not isinstance(v, dict)}
        for group in ('joint_limits', 'finger_drop'):
            params.update({f'{group}.{k}': v for k, v in raw[group].items()})
        params.update({f'reaction.{k}': v
                       for k, v in {**raw['reaction'], **reaction}.items()})
        return SafetyLimits.from_parameters(params)
    return load

"""The keypoint network's ADR curriculum: mastery, widening, the state saved, resuming."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml

from sim2real_policy.keypoints import render_dataset
from sim2real_policy.policy import read_metadata
from sim2real_policy.train_keypoints_adr import (
    ADRTrainingConfig,
    mastered,
    train_keypoints_adr,
)

# A skipif mark, not a module-level importorskip: under --import-mode=importlib, pytest 7.2
# (Debian 12's, which colcon test uses) drops every other module when one skips at import.
pytestmark = pytest.mark.skipif(importlib.util.find_spec('torch') is None,
                                reason='training needs torch==2.13.0 (requirements-train)')
if importlib.util.find_spec('torch') is not None:
    import torch

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[2] / 'config'
                         / 'randomization.yaml').read_text())
TINY = ADRTrainingConfig(rounds=2, worlds_per_round=4, steps_per_round=2, batch=8,
                         buffer_frames=24)


def _config(buffer_size=1, boundary_probability=1.0):
    config = dict(CONFIG)
    config['adr_training'] = dict(CONFIG['adr_training'], buffer_size=buffer_size,
                                  boundary_probability=boundary_probability)
    return config


@pytest.fixture(scope='module')
def validation():
    return render_dataset(CONFIG, 'heavy', [2_000_000, 2_000_001], 2, workers=1)


def test_a_world_is_mastered_when_every_keypoint_is_found_on_average():
    errors = np.array([[1.0, 1.0, 3.0], [1.0, 1.0, 0.5],      # world 0: tcp mean 1.75
                       [1.0, np.nan, 1.5], [1.0, 0.2, 2.5],     # world 1: tcp mean 2.0
                       [0.1, 0.1, 0.1], [5.0, 0.1, 0.1],        # world 2: base mean 2.55
                       [0.1, np.nan, 0.1], [0.1, np.nan, 0.1]])  # world 3: top never seen
    assert mastered(errors, 2, 2.0) == [True, True, False, False]
    assert mastered(errors, 2, 2.6) == [True, True, True, False]


@pytest.mark.parametrize('success_px, widened', [(1e6, True), (1e-9, False)])
def test_adr_widens_only_what_the_network_masters(tmp_path, validation, success_px, widened):
    settings = ADRTrainingConfig(**{**TINY.__dict__, 'success_px': success_px})
    summary = train_keypoints_adr(_config(), 'heavy', validation, tmp_path, settings,
                                  workers=1, log=lambda *a: None)
    adr = summary['adr']
    moved = {name: r != [adr['nominal'][name]] * 2 for name, r in adr['ranges'].items()}
    assert any(moved.values()) is widened
    for name, (low, high) in adr['ranges'].items():
        limit_low, limit_high = adr['limits'][name]
        assert limit_low <= low <= adr['nominal'][name] <= high <= limit_high
    meta = read_metadata(tmp_path / 'keypoints.onnx')
    assert meta.extra['adr']['ranges'] == adr['ranges']
    assert meta.extra['randomization'] == 'heavy' and meta.extra['adr']['worlds'] == 8


class KilledMidRunError(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_model_and_ranges(tmp_path, validation):
    config = _config(boundary_probability=0.5)
    straight = train_keypoints_adr(config, 'heavy', validation, tmp_path / 'straight', TINY,
                                   seed=3, workers=1, log=lambda *a: None)

    def stop_after_first(done, *rest):
        if done == 1:
            raise KilledMidRunError

    with pytest.raises(KilledMidRunError):
        train_keypoints_adr(config, 'heavy', validation, tmp_path / 'resumed', TINY, seed=3,
                            workers=1, progress=stop_after_first, log=lambda *a: None)
    assert not (tmp_path / 'resumed' / 'keypoints.onnx').exists()
    # the checkpoint alone resumes: the JSON beside it is a readable copy
    (tmp_path / 'resumed' / 'adr_state.json').unlink()
    said = []
    resumed = train_keypoints_adr(config, 'heavy', validation, tmp_path / 'resumed', TINY,
                                  seed=3, workers=1, log=said.append)
    assert 'after round 1' in said[0]
    assert resumed['adr'] == straight['adr']
    assert resumed['curves'] == straight['curves']
    a = torch.load(tmp_path / 'straight' / 'keypoints.pt')
    b = torch.load(tmp_path / 'resumed' / 'keypoints.pt')
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match='made with other settings'):
        train_keypoints_adr(config, 'heavy', validation, tmp_path / 'resumed', TINY, seed=4,
                            workers=1)

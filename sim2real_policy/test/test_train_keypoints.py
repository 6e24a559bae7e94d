"""Keypoint network fine-tuning: frozen encoder, partial labels, hold-out selection, export."""
import importlib.util

import numpy as np
import pytest

from sim2real_policy.keypoint_policy import KeypointDetector
from sim2real_policy.keypoints import KEYPOINTS, render_samples
from sim2real_policy.models import BUNDLED
from sim2real_policy.policy import ModelError, read_metadata
from sim2real_policy.sim.params import SimParams

# A skipif mark, not a module-level importorskip: under --import-mode=importlib, pytest 7.2
# (Debian 12's, which colcon test uses) drops every other module when one skips at import.
pytestmark = pytest.mark.skipif(importlib.util.find_spec('torch') is None,
                                reason='training needs torch==2.13.0 (requirements-train)')
if importlib.util.find_spec('torch') is not None:
    import torch

    from sim2real_policy.train_keypoints import (
        _loss,
        build_keypoint_network,
        ENCODER,
        export_keypoint_onnx,
        finetune_keypoints,
        load_onnx_weights,
    )

TOP = KEYPOINTS.index('object_top')


def _worlds(seeds, poses=3, hide_top=False):
    frames, labels, episode = [], [], []
    for k, seed in enumerate(seeds):
        f, lab = render_samples(SimParams(seed=seed), poses)
        frames += f
        labels += lab
        episode += [k] * len(f)
    labels = np.asarray(labels, np.float32)
    if hide_top:
        labels[:, TOP] = np.nan
    return {'frames': np.asarray(frames, np.uint8), 'labels': labels,
            'episode': np.asarray(episode, np.int32)}


def test_an_unknown_label_is_masked_not_a_nan_loss():
    network = load_onnx_weights(BUNDLED)
    data = _worlds([3], poses=2)
    labels = torch.from_numpy(data['labels'].copy())
    frames = torch.from_numpy(data['frames'])
    labels[:, TOP] = float('nan')
    loss, _ = _loss(torch, network, frames, labels, None)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in network.parameters())
    # the same loss as with the top's label present but out of the frame (masked as well)
    network.zero_grad()
    outside = labels.clone()
    outside[:, TOP] = -100.0
    masked, _ = _loss(torch, network, frames, outside, None)
    assert float(masked.detach()) == pytest.approx(float(loss.detach()), rel=1e-6)


def test_the_weights_of_an_exported_model_load_and_another_model_is_refused(tmp_path):
    network = load_onnx_weights(BUNDLED)
    detector = KeypointDetector(BUNDLED)
    frame = _worlds([5], poses=1)['frames'][0]
    ours = network(torch.from_numpy(detector.preprocessor.normalize(frame)))[0].detach()
    theirs = detector(frame, preprocessed=True)
    for k, name in enumerate(KEYPOINTS):
        assert np.allclose(ours[k].numpy(), theirs[name], atol=1e-3)
    narrower = tmp_path / 'narrow.onnx'
    export_keypoint_onnx(build_keypoint_network(channels=16), read_metadata(BUNDLED), narrower)
    with pytest.raises(ModelError, match=r'features\.0\.weight of shape \(16, 5, 5, 5\) is '
                                         r'of shape \(8, 5, 5, 5\)'):
        load_onnx_weights(narrower)


def test_finetuning_keeps_the_encoder_holds_out_episodes_and_never_ends_worse(tmp_path):
    real = _worlds(range(100, 110), hide_top=True)          # 10 "real" episodes, no top
    sim = _worlds(range(200, 204))
    validation = _worlds(range(300, 302))
    summary = finetune_keypoints(BUNDLED, real, sim, validation, tmp_path, epochs=2, batch=16,
                                 seed=1)
    assert summary['holdout_episodes'] == 2 and summary['real_episodes'] == 10
    assert summary['real_frames'] + summary['holdout_frames'] == len(real['frames'])
    assert summary['holdout_frames'] == 2 * 3
    # kept by its hold-out error, the base included: never worse than the base there
    before, after = summary['holdout_p95_px']['before'], summary['holdout_p95_px']['after']
    assert set(before) == {'object_base', 'tcp'}          # the top has no real label
    assert max(after.values()) <= max(before.values()) + 1e-6
    tuned = load_onnx_weights(tmp_path / 'keypoints.onnx')
    base = load_onnx_weights(BUNDLED)
    for name, value in base.state_dict().items():
        layer = int(name.split('.')[1]) if name.startswith('features.') else None
        if layer is not None and layer < ENCODER:
            assert torch.equal(value, tuned.state_dict()[name]), name
    meta = read_metadata(tmp_path / 'keypoints.onnx')
    assert meta.extra['finetune']['frozen'] == f'features[:{ENCODER}]'
    assert meta.extra['randomization'] == read_metadata(BUNDLED).extra['randomization']
    assert KeypointDetector(tmp_path / 'keypoints.onnx').names == KEYPOINTS


def test_finetuning_needs_a_held_out_episode(tmp_path):
    real = _worlds([100], poses=2)
    with pytest.raises(ValueError, match='at least 2 labelled real episodes'):
        finetune_keypoints(BUNDLED, real, real, real, tmp_path, epochs=1)


def test_held_out_episodes_never_reach_a_training_batch(tmp_path):
    real = _worlds(range(100, 110), hide_top=True)
    sim = _worlds(range(200, 203))
    validation = _worlds(range(300, 301))
    first = finetune_keypoints(BUNDLED, real, sim, validation, tmp_path / 'a', epochs=2,
                               batch=16, seed=2)
    # wreck the held-out episodes' labels: training must not notice, only the selection
    wrecked = dict(real, labels=real['labels'].copy())
    held = np.isin(real['episode'], first['holdout'])
    wrecked['labels'][held] += 30.0
    second = finetune_keypoints(BUNDLED, wrecked, sim, validation, tmp_path / 'b', epochs=2,
                                batch=16, seed=2)
    assert second['holdout'] == first['holdout']
    assert second['curves']['train loss'] == first['curves']['train loss']
    assert second['curves']['real hold-out p95 px'] != first['curves']['real hold-out p95 px']

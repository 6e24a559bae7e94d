"""Behaviour cloning end to end on a tiny dataset: collect, train, export, load, fine-tune."""
import importlib.util
import json

import numpy as np
import pytest

from sim2real_policy import data
from sim2real_policy.policy import PolicyRunner
from sim2real_policy.sim.randomization import Randomizer

# A skipif mark, not a module-level importorskip: under --import-mode=importlib, pytest 7.2
# (Debian 12's, which colcon test uses) drops every other module when one skips at import.
pytestmark = pytest.mark.skipif(importlib.util.find_spec('torch') is None,
                                reason='training needs torch==2.13.0 (requirements-train)')
if importlib.util.find_spec('torch') is not None:
    import torch

    from sim2real_policy import train


def test_collect_train_export_finetune(tmp_path):
    config = {'task': {'object_x': [0.5, 0.6], 'object_y': [-0.05, 0.05]},
              'profiles': {'none': {}}}
    dataset = data.collect(Randomizer(config, 'none'), 3, first_seed=7)
    assert dataset['success'].all()
    assert dataset['images'].shape[1:] == (64, 64, 3)
    assert dataset['actions'].shape[1:] == (data.HORIZON, 5)
    folder = data.save(dataset, tmp_path / 'ds', randomization='none')
    with pytest.raises(FileExistsError):
        data.save(dataset, folder)
    loaded = data.load(folder)
    assert np.array_equal(loaded['actions'], dataset['actions'])
    assert json.loads((folder / 'dataset.json').read_text())['episode_params'][0]['seed'] == 7

    summary = train.train(loaded, tmp_path / 'model', epochs=2, batch=32, model_id='tiny')
    assert (tmp_path / 'model' / 'training_curves.png').is_file()
    assert len(summary['curves']['train']) == 2
    runner = PolicyRunner(tmp_path / 'model' / 'model.onnx')
    dnn = PolicyRunner(tmp_path / 'model' / 'model.onnx', 'cv2_dnn')
    image, proprio = loaded['images'][0], loaded['proprio'][0]
    a = runner.predict(image, proprio, preprocessed=True)
    np.testing.assert_allclose(a, dnn.predict(image, proprio, preprocessed=True), atol=1e-4)
    assert a.shape == (data.HORIZON, 5) and runner.model_id == 'tiny'
    # the exported network reproduces torch's own output, normalization included
    saved = torch.load(tmp_path / 'model' / 'model.pt', weights_only=False)
    net = train.build_network(data.HORIZON)
    net.load_state_dict(saved['state_dict'])
    net.eval()
    x, p = runner.inputs(image, proprio, preprocessed=True)
    with torch.no_grad():
        raw = net(torch.from_numpy(x), torch.from_numpy(p)).numpy()[0]
    expected = raw * np.asarray(runner.meta.action_std) + np.asarray(runner.meta.action_mean)
    expected[:, :4] += proprio[:4]
    np.testing.assert_allclose(a, expected, atol=1e-4)

    tuned = train.finetune(tmp_path / 'model' / 'model.pt', loaded, loaded, tmp_path / 'ft',
                           epochs=1, batch=16)
    assert PolicyRunner(tuned['model']).model_id == 'tiny-finetuned'
    before = {k: v for k, v in saved['state_dict'].items() if k.startswith('encoder')}
    after = torch.load(tmp_path / 'ft' / 'model.pt', weights_only=False)['state_dict']
    assert all(torch.equal(v, after[k]) for k, v in before.items())  # encoder frozen


def test_a_dataset_without_a_success_is_refused():
    dataset = {'images': np.zeros((2, 64, 64, 3), np.uint8), 'proprio': np.zeros((2, 6)),
               'actions': np.zeros((2, 16, 5)), 'episode': np.array([0, 0]),
               'success': np.array([False])}
    with pytest.raises(ValueError, match='no successful episode'):
        train.successful_only(dataset)

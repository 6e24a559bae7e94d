"""Model loading, metadata checks, both backends, preprocessing and camera health."""
import json

import cv2
import numpy as np
import onnx
import pytest

from sim2real_policy.camera import CameraError, CameraHealth, ImagePreprocessor, OpenCVCamera
from sim2real_policy.policy import (
    check_metadata,
    METADATA_KEY,
    ModelError,
    ModelMetadata,
    PolicyRunner,
    read_metadata,
)
from sim2real_policy.standin import build_standin, standin_metadata

MS = 1_000_000
PROPRIO = [0.5, 0.05, 0.2, 0.1, 0.08, 3.0]


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return build_standin(tmp_path_factory.mktemp('m') / 'standin.onnx', horizon=16)


def frame(seed=0, size=(96, 96)):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def test_both_backends_agree_and_return_absolute_targets(model):
    ort = PolicyRunner(model, 'onnxruntime')
    dnn = PolicyRunner(model, 'cv2_dnn')
    a, b = ort.predict(frame(), PROPRIO), dnn.predict(frame(), PROPRIO)
    assert a.shape == (16, 5)
    np.testing.assert_allclose(a, b, atol=1e-5)
    # the stand-in predicts "stay": relative actions add the current pose
    np.testing.assert_allclose(a[0], PROPRIO[:5], atol=1e-6)
    assert ort.last_latency > 0 and ort.model_id == 'standin'


@pytest.mark.parametrize('expected, field', [
    ({'horizon': 8}, 'horizon: model has 16, configuration expects 8'),
    ({'action_names': ['x', 'y', 'z', 'yaw', 'width']}, 'action_names: model has'),
    ({'image_size': [96, 96]}, 'image_size: model has (64, 64)'),
    ({'action_period': 0.1}, 'action_period: model has 0.05'),
])
def test_mismatched_metadata_is_refused_naming_the_field(model, expected, field):
    with pytest.raises(ModelError, match=field.replace('(', r'\(').replace(')', r'\)')):
        PolicyRunner(model, expected=expected)
    check_metadata(read_metadata(model), {'horizon': 16, 'action_period': 0.05})


def _with_metadata(model, tmp_path, mutate):
    proto = onnx.load(str(model))
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    data = json.loads(entry.value)
    mutate(data)
    entry.value = json.dumps(data)
    path = tmp_path / 'mutated.onnx'
    onnx.save(proto, str(path))
    return path


@pytest.mark.parametrize('mutate, message', [
    (lambda d: d.pop('horizon'), "'horizon' is missing"),
    (lambda d: d['actions'].update(mean=[0.0] * 4), "'actions.mean' needs 5 values"),
    (lambda d: d['image'].update(color_order='yuv'), 'must be rgb or bgr'),
    (lambda d: d['actions'].update(std=[0.0] * 5), 'std values must be > 0'),
    (lambda d: d.update(inputs={'image': 'pixels', 'proprio': 'proprio'}),
     "metadata names input 'pixels'"),
])
def test_malformed_metadata_is_named(model, tmp_path, mutate, message):
    with pytest.raises(ModelError, match=message):
        PolicyRunner(_with_metadata(model, tmp_path, mutate))


def test_missing_corrupt_and_unlabelled_files(tmp_path, model):
    with pytest.raises(ModelError, match='not found'):
        PolicyRunner(tmp_path / 'nope.onnx')
    (tmp_path / 'bad.onnx').write_bytes(b'not a model')
    with pytest.raises(ModelError, match='not a readable ONNX model'):
        PolicyRunner(tmp_path / 'bad.onnx')
    proto = onnx.load(str(model))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / 'bare.onnx'))
    with pytest.raises(ModelError, match="no 'sim2real' metadata"):
        PolicyRunner(tmp_path / 'bare.onnx')


def test_metadata_json_round_trip():
    meta = standin_metadata()
    assert ModelMetadata.from_json(meta.to_json()) == meta


def test_preprocessing_crops_resizes_orders_and_normalizes():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 100:] = (255, 0, 0)  # right half red
    pre = ImagePreprocessor((10, 10), crop=(0.5, 0.0, 1.0, 1.0), color_order='bgr',
                            mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    out = pre.image(image)
    assert out.shape == (10, 10, 3) and np.all(out[..., 2] == 255) and np.all(out[..., 0] == 0)
    tensor = pre.tensor(image)
    assert tensor.shape == (1, 3, 10, 10) and tensor.dtype == np.float32
    assert np.allclose(tensor[0, 2], 1.0) and np.allclose(tensor[0, 0], -1.0)
    with pytest.raises(CameraError, match='RGB uint8'):
        pre.image(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match='crop'):
        ImagePreprocessor((10, 10), crop=(0.5, 0.0, 0.4, 1.0))


def test_camera_health_detects_frozen_frames_age_and_rate():
    health = CameraHealth()
    rng = np.random.default_rng(0)
    base = frame(1)
    for k in range(30):  # live: sensor noise on every frame
        noisy = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
        health.on_frame(noisy, k * 33 * MS)
    assert health.frozen_duration(30 * 33 * MS) == 0.0
    assert health.frame_rate() == pytest.approx(1000 / 33, rel=0.01)
    for k in range(30, 90):  # the same frame over and over
        health.on_frame(base, k * 33 * MS)
    assert health.frozen_score == pytest.approx(1.0)
    assert health.frozen_duration(89 * 33 * MS) == pytest.approx(58 * 0.033, rel=0.05)
    assert not health.healthy(89 * 33 * MS, camera_timeout=0.5, frozen_timeout=1.0)
    assert health.frame_age(89 * 33 * MS + 700 * MS) == pytest.approx(0.7)


def test_opencv_camera_reads_a_video_file_and_names_bad_sources(tmp_path):
    path = str(tmp_path / 'clip.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 10, (64, 48))
    for k in range(5):
        writer.write(np.full((48, 64, 3), k * 40, np.uint8))
    writer.release()
    camera = OpenCVCamera(path)
    first = camera.read()
    assert first.shape == (48, 64, 3)
    for _ in range(4):
        camera.read()
    with pytest.raises(CameraError, match='no frame'):
        camera.read()
    camera.close()
    with pytest.raises(CameraError, match='cannot open camera source'):
        OpenCVCamera(str(tmp_path / 'missing.avi'))

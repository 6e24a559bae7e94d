"""A stand-in policy model built with the ONNX helper API (no training framework needed).

Same inputs, outputs and metadata as a trained policy, random (seeded) convolution weights
and a zero output layer: it predicts "stay where you are". It exists so the deployment path
(loading, metadata checks, both backends, latency, the control loop) can be exercised and
measured before and without a trained model; it is never presented as a grasping policy.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

from sim2real_policy.policy import ACTION_NAMES, METADATA_KEY, ModelMetadata, PROPRIO_NAMES


def standin_metadata(horizon: int = 16, image_size: int = 64, action_period: float = 0.05,
                     model_id: str = 'standin') -> ModelMetadata:
    """Metadata of the stand-in (and the defaults a trained model uses)."""
    return ModelMetadata(
        model_id=model_id, image_input='image', proprio_input='proprio', output='actions',
        image_size=(image_size, image_size), image_crop=(0.0, 0.0, 1.0, 1.0),
        color_order='rgb', image_mean=(0.5, 0.5, 0.5), image_std=(0.25, 0.25, 0.25),
        proprio_names=PROPRIO_NAMES, proprio_mean=(0.55, 0.0, 0.15, 0.0, 0.04, 0.0),
        proprio_std=(0.1, 0.1, 0.1, 0.5, 0.03, 50.0), action_names=ACTION_NAMES,
        action_mean=(0.0,) * 5, action_std=(0.05, 0.05, 0.05, 0.3, 0.03),
        relative=(True, True, True, True, True), horizon=horizon, action_period=action_period,
        start_offset=0.0, extra={'kind': 'standin'})


def build_standin(path: str | Path, horizon: int = 16, image_size: int = 64, seed: int = 0,
                  width: int = 32) -> Path:
    """Write the stand-in model to ``path``; ``width`` scales its size (and cost)."""
    rng = np.random.default_rng(seed)
    meta = standin_metadata(horizon, image_size)

    def weight(name, *shape, scale=None):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        values = rng.normal(0.0, scale if scale is not None else (2.0 / fan_in) ** 0.5, shape)
        return numpy_helper.from_array(values.astype(np.float32), name)

    c1, c2 = width // 2, width
    hidden = 4 * width
    initializers = [
        weight('conv1_w', c1, 3, 5, 5), numpy_helper.from_array(np.zeros(c1, np.float32),
                                                                'conv1_b'),
        weight('conv2_w', c2, c1, 5, 5), numpy_helper.from_array(np.zeros(c2, np.float32),
                                                                 'conv2_b'),
        weight('fc1_w', hidden, c2 + len(PROPRIO_NAMES)),
        numpy_helper.from_array(np.zeros(hidden, np.float32), 'fc1_b'),
        numpy_helper.from_array(np.zeros((horizon * 5, hidden), np.float32), 'fc2_w'),
        numpy_helper.from_array(np.zeros(horizon * 5, np.float32), 'fc2_b'),
        numpy_helper.from_array(np.array([1, horizon, 5], np.int64), 'out_shape'),
    ]
    nodes = [
        # kernel_shape given explicitly: OpenCV 4.6's dnn importer (Ubuntu 24.04) needs it
        helper.make_node('Conv', ['image', 'conv1_w', 'conv1_b'], ['c1'], strides=[2, 2],
                         pads=[2, 2, 2, 2], kernel_shape=[5, 5]),
        helper.make_node('Relu', ['c1'], ['r1']),
        helper.make_node('Conv', ['r1', 'conv2_w', 'conv2_b'], ['c2'], strides=[2, 2],
                         pads=[2, 2, 2, 2], kernel_shape=[5, 5]),
        helper.make_node('Relu', ['c2'], ['r2']),
        helper.make_node('GlobalAveragePool', ['r2'], ['pooled']),
        helper.make_node('Flatten', ['pooled'], ['features'], axis=1),
        helper.make_node('Concat', ['features', 'proprio'], ['joined'], axis=1),
        helper.make_node('Gemm', ['joined', 'fc1_w', 'fc1_b'], ['h1'], transB=1),
        helper.make_node('Relu', ['h1'], ['r3']),
        helper.make_node('Gemm', ['r3', 'fc2_w', 'fc2_b'], ['flat'], transB=1),
        helper.make_node('Reshape', ['flat', 'out_shape'], ['actions']),
    ]
    graph = helper.make_graph(
        nodes, 'sim2real_standin',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT,
                                       [1, 3, image_size, image_size]),
         helper.make_tensor_value_info('proprio', TensorProto.FLOAT, [1, len(PROPRIO_NAMES)])],
        [helper.make_tensor_value_info('actions', TensorProto.FLOAT, [1, horizon, 5])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)],
                              producer_name='sim2real-standin')
    model.ir_version = 8
    onnx.checker.check_model(model)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = meta.to_json()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path

"""Policy inference: model metadata, backends (ONNX Runtime, cv2.dnn) and the runner.

A policy is an ONNX file whose metadata (``metadata_props['sim2real']``, JSON) says everything
the deployment needs: input names and shapes, image preprocessing, observation normalization
statistics from training, action names, normalization and representation, horizon, action
period and a model id. :func:`check_metadata` compares it with the deployment's expectations
and fails with a message naming the field. ``PolicyRunner`` turns an observation (RGB image +
proprioception) into a horizon x 5 chunk of absolute targets.
"""
from __future__ import annotations

from dataclasses import dataclass
import hashlib
import json
from pathlib import Path
import time

import numpy as np

from sim2real_policy.camera import ImagePreprocessor

METADATA_KEY = 'sim2real'
ACTION_NAMES = ('x', 'y', 'z', 'yaw', 'gripper_width')
PROPRIO_NAMES = ('x', 'y', 'z', 'yaw', 'gripper_width', 'gripper_effort')
BACKENDS = ('onnxruntime', 'cv2_dnn')


class ModelError(ValueError):
    """A model that cannot be loaded or does not match the configuration."""


@dataclass(frozen=True)
class ModelMetadata:
    """What a model file declares about itself."""

    model_id: str
    image_input: str
    proprio_input: str
    output: str
    image_size: tuple            # (width, height)
    image_crop: tuple            # (x0, y0, x1, y1) fractions of the raw frame
    color_order: str             # 'rgb' or 'bgr'
    image_mean: tuple
    image_std: tuple
    proprio_names: tuple
    proprio_mean: tuple
    proprio_std: tuple
    action_names: tuple
    action_mean: tuple
    action_std: tuple
    relative: tuple              # per action: added to the current proprio value
    horizon: int
    action_period: float
    start_offset: float
    extra: dict

    @classmethod
    def from_json(cls, text: str, source: str = 'model') -> 'ModelMetadata':
        """Parse and check the metadata JSON; errors name the field."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f'{source}: metadata is not JSON: {exc}') from None

        def get(path, kind=None):
            node = data
            for key in path.split('.'):
                if not isinstance(node, dict) or key not in node:
                    raise ModelError(f'{source}: metadata field {path!r} is missing')
                node = node[key]
            if kind is not None and not isinstance(node, kind):
                raise ModelError(f'{source}: metadata field {path!r} must be '
                                 f'{getattr(kind, "__name__", kind)}, got {node!r}')
            return node

        meta = cls(
            model_id=str(get('model_id', str)),
            image_input=get('inputs.image', str), proprio_input=get('inputs.proprio', str),
            output=get('output', str),
            image_size=tuple(get('image.size', list)), image_crop=tuple(get('image.crop', list)),
            color_order=get('image.color_order', str),
            image_mean=tuple(get('image.mean', list)), image_std=tuple(get('image.std', list)),
            proprio_names=tuple(get('proprio.names', list)),
            proprio_mean=tuple(get('proprio.mean', list)),
            proprio_std=tuple(get('proprio.std', list)),
            action_names=tuple(get('actions.names', list)),
            action_mean=tuple(get('actions.mean', list)),
            action_std=tuple(get('actions.std', list)),
            relative=tuple(bool(v) for v in get('actions.relative', list)),
            horizon=int(get('horizon', int)), action_period=float(get('action_period')),
            start_offset=float(data.get('start_offset', 0.0)), extra=dict(data.get('extra', {})))
        n_act, n_prop = len(meta.action_names), len(meta.proprio_names)
        for name, values, size in (('actions.mean', meta.action_mean, n_act),
                                   ('actions.std', meta.action_std, n_act),
                                   ('actions.relative', meta.relative, n_act),
                                   ('proprio.mean', meta.proprio_mean, n_prop),
                                   ('proprio.std', meta.proprio_std, n_prop),
                                   ('image.mean', meta.image_mean, 3),
                                   ('image.std', meta.image_std, 3),
                                   ('image.size', meta.image_size, 2),
                                   ('image.crop', meta.image_crop, 4)):
            if len(values) != size:
                raise ModelError(f'{source}: metadata field {name!r} needs {size} values, '
                                 f'got {len(values)}')
        if meta.color_order not in ('rgb', 'bgr'):
            raise ModelError(f"{source}: metadata field 'image.color_order' must be rgb or bgr, "
                             f'got {meta.color_order!r}')
        if meta.horizon < 1 or not meta.action_period > 0:
            raise ModelError(f'{source}: horizon must be >= 1 and action_period > 0, got '
                             f'{meta.horizon}, {meta.action_period}')
        if any(s <= 0 for s in meta.action_std + meta.proprio_std + meta.image_std):
            raise ModelError(f'{source}: normalization std values must be > 0')
        return meta

    def to_json(self) -> str:
        """The metadata JSON, as embedded in a model file."""
        return json.dumps({
            'model_id': self.model_id,
            'inputs': {'image': self.image_input, 'proprio': self.proprio_input},
            'output': self.output,
            'image': {'size': list(self.image_size), 'crop': list(self.image_crop),
                      'color_order': self.color_order, 'mean': list(self.image_mean),
                      'std': list(self.image_std)},
            'proprio': {'names': list(self.proprio_names), 'mean': list(self.proprio_mean),
                        'std': list(self.proprio_std)},
            'actions': {'names': list(self.action_names), 'mean': list(self.action_mean),
                        'std': list(self.action_std), 'relative': list(self.relative)},
            'horizon': self.horizon, 'action_period': self.action_period,
            'start_offset': self.start_offset, 'extra': self.extra})


def read_metadata(path: str | Path) -> ModelMetadata:
    """The metadata of an ONNX file (``onnx`` reads it without running anything)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelError(f'model file {path} not found')
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises several types for a corrupt file
        raise ModelError(f'{path}: not a readable ONNX model ({exc})') from None
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise ModelError(f'{path}: no {METADATA_KEY!r} metadata (export it with sim2real train)')
    return ModelMetadata.from_json(props[METADATA_KEY], source=str(path))


def check_metadata(meta: ModelMetadata, expected: dict, source: str = 'model') -> None:
    """Refuse a model whose metadata disagrees with the deployment configuration.

    ``expected`` may hold ``action_names``, ``proprio_names``, ``horizon``, ``action_period``,
    ``image_size``; each disagreement is named with both values.
    """
    problems = []
    for field, want in expected.items():
        have = getattr(meta, field)
        if field in ('action_names', 'proprio_names', 'image_size'):
            want, have = tuple(want), tuple(have)
        if field == 'action_period':
            same = abs(float(want) - have) < 1e-9
        else:
            same = have == want
        if not same:
            problems.append(f'{field}: model has {have!r}, configuration expects {want!r}')
    if problems:
        raise ModelError(f'{source} does not match the configuration: ' + '; '.join(problems))


def ort_session(path: str | Path, threads: int = 1):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads and one inter-op thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])


class OnnxRuntimeBackend:
    """ONNX Runtime on the CPU, one intra-op thread (predictable next to the control loop)."""

    name = 'onnxruntime'

    def __init__(self, path: str | Path, meta: ModelMetadata, threads: int = 1):
        self.session = ort_session(path, threads)
        names = {i.name: i.shape for i in self.session.get_inputs()}
        for declared in (meta.image_input, meta.proprio_input):
            if declared not in names:
                raise ModelError(f'{path}: metadata names input {declared!r}, the graph has '
                                 f'{sorted(names)}')
        outputs = [o.name for o in self.session.get_outputs()]
        if meta.output not in outputs:
            raise ModelError(f'{path}: metadata names output {meta.output!r}, the graph has '
                             f'{outputs}')
        self.meta = meta

    def run(self, image: np.ndarray, proprio: np.ndarray) -> np.ndarray:
        """Raw network output for one observation."""
        return self.session.run([self.meta.output], {self.meta.image_input: image,
                                                     self.meta.proprio_input: proprio})[0]


class Cv2DnnBackend:
    """OpenCV's DNN module: the fallback when ONNX Runtime is unavailable."""

    name = 'cv2_dnn'

    def __init__(self, path: str | Path, meta: ModelMetadata):
        import cv2

        try:
            self.net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as exc:
            raise ModelError(f'{path}: cv2.dnn cannot load this model ({exc})') from None
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)  # the CPU; no target needed
        self.meta = meta

    def run(self, image: np.ndarray, proprio: np.ndarray) -> np.ndarray:
        """Raw network output for one observation."""
        self.net.setInput(image, self.meta.image_input)
        self.net.setInput(proprio, self.meta.proprio_input)
        return self.net.forward(self.meta.output)


def model_digest(path: str | Path) -> str:
    """Short content hash of a model file (for logs and bag metadata)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


class PolicyRunner:
    """Observation in, chunk of absolute targets out."""

    def __init__(self, path: str | Path, backend: str = 'onnxruntime',
                 expected: dict | None = None):
        if backend not in BACKENDS:
            raise ModelError(f'backend must be one of {BACKENDS}, got {backend!r}')
        self.path = Path(path)
        self.meta = read_metadata(self.path)
        check_metadata(self.meta, expected or {}, str(self.path))
        self.backend = (OnnxRuntimeBackend(self.path, self.meta) if backend == 'onnxruntime'
                        else Cv2DnnBackend(self.path, self.meta))
        self.preprocessor = ImagePreprocessor.from_metadata(self.meta)
        self._proprio_mean = np.asarray(self.meta.proprio_mean, np.float32)
        self._proprio_std = np.asarray(self.meta.proprio_std, np.float32)
        self._action_mean = np.asarray(self.meta.action_mean)
        self._action_std = np.asarray(self.meta.action_std)
        self._relative = np.asarray(self.meta.relative)
        self._relative_index = [self.meta.proprio_names.index(name) if rel else 0
                                for name, rel in zip(self.meta.action_names, self.meta.relative)]
        self.last_latency = float('nan')

    @property
    def model_id(self) -> str:
        """The id declared in the metadata."""
        return self.meta.model_id

    def inputs(self, frame: np.ndarray, proprio,
               preprocessed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Network inputs: the image tensor and the normalized proprioception.

        ``preprocessed``: ``frame`` already went through :meth:`ImagePreprocessor.image` (the
        camera node's ``image_processed``); only normalization is left.
        """
        if preprocessed:
            size = (frame.shape[1], frame.shape[0]) if frame.ndim == 3 else None
            if size != tuple(self.meta.image_size):
                raise ModelError(f'preprocessed image is {size}, the model expects '
                                 f'{tuple(self.meta.image_size)} (width, height)')
            image = self.preprocessor.normalize(frame)
        else:
            image = self.preprocessor.tensor(frame)
        proprio = np.asarray(proprio, np.float32).reshape(1, -1)
        if proprio.shape[1] != len(self.meta.proprio_names):
            raise ModelError(f'proprio has {proprio.shape[1]} values, the model expects '
                             f'{len(self.meta.proprio_names)} {self.meta.proprio_names}')
        return image, (proprio - self._proprio_mean) / self._proprio_std

    def predict(self, frame: np.ndarray, proprio, preprocessed: bool = False,
                stamp_ns: int | None = None) -> np.ndarray:
        """Horizon x 5 absolute targets for the observation ``(frame, proprio)``.

        ``stamp_ns`` (the observation's time) is for runners that plan in time, such as the
        privileged scripted expert of the tests; the network does not use it.
        """
        start = time.perf_counter()
        image, normalized = self.inputs(frame, proprio, preprocessed)
        raw = np.asarray(self.backend.run(image, normalized), dtype=float)
        actions = raw.reshape(self.meta.horizon, len(self.meta.action_names))
        actions = actions * self._action_std + self._action_mean
        current = np.asarray(proprio, dtype=float)[self._relative_index]
        actions = actions + self._relative * current
        if not np.all(np.isfinite(actions)):
            raise ModelError('the policy produced non-finite actions')
        self.last_latency = time.perf_counter() - start
        return actions

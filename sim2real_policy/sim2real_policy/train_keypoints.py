"""Training of the keypoint network (torch, training only) and its ONNX export.

The network finds :data:`sim2real_policy.keypoints.KEYPOINTS` in a 96 x 96 frame: four
convolutions over the image plus two coordinate channels, one heatmap per keypoint at half
resolution, and a soft-argmax that turns each heatmap into a sub-pixel position and a
confidence (the heatmap's largest softmax cell). Supervision is the pixel position itself
(Huber loss) plus a cross-entropy towards a narrow Gaussian that gets the heatmaps started.
Model selection is by the validation error on worlds drawn fresh from the same randomization,
never by any reality's score.
"""
from __future__ import annotations

import json
from pathlib import Path
import time
import warnings

import numpy as np

from sim2real_policy.data import ACTION_PERIOD
from sim2real_policy.keypoints import FRAME_SIZE, KEYPOINTS
from sim2real_policy.policy import (
    ACTION_NAMES,
    METADATA_KEY,
    ModelError,
    ModelMetadata,
    PROPRIO_NAMES,
    read_metadata,
)
from sim2real_policy.train import _plot, _torch, IMAGE_MEAN, IMAGE_STD

STRIDE = 2          # heatmap cell = STRIDE x STRIDE input pixels
HORIZON = 16        # actions per chunk (the deployment's expected_horizon)
# What the planner assumes of objects (the heavy randomization's ranges, m) and of detections.
PLANNER = {'min_object_width': 0.034, 'max_object_width': 0.052, 'min_confidence': 0.02,
           'clear_height': 0.06, 'object_region': [[0.30, -0.30], [0.80, 0.30]]}


def build_keypoint_network(channels: int = 32):
    """The keypoint network (a torch module): image (N x 3 x H x W) -> N x K x 3 (u, v, conf)."""
    torch = _torch()
    nn = torch.nn
    width, height = FRAME_SIZE

    class KeypointNet(nn.Module):
        def __init__(self):
            super().__init__()
            ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width),
                                    indexing='ij')
            self.register_buffer('coords', torch.stack([xs, ys])[None])
            self.features = nn.Sequential(
                nn.Conv2d(5, channels // 2, 5, stride=STRIDE, padding=2), nn.ReLU(),
                nn.Conv2d(channels // 2, channels, 3, padding=1), nn.ReLU(),
                nn.Conv2d(channels, channels, 3, padding=2, dilation=2), nn.ReLU(),
                nn.Conv2d(channels, channels, 3, padding=4, dilation=4), nn.ReLU(),
                nn.Conv2d(channels, len(KEYPOINTS), 1))
            cells_y, cells_x = height // STRIDE, width // STRIDE
            # centre of each heatmap cell in input pixels (OpenCV convention)
            gy, gx = torch.meshgrid(torch.arange(cells_y) * STRIDE + (STRIDE - 1) / 2,
                                    torch.arange(cells_x) * STRIDE + (STRIDE - 1) / 2,
                                    indexing='ij')
            self.register_buffer('grid', torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).float())

        def heatmaps(self, image):
            batch = image.shape[0]
            x = torch.cat([image, self.coords.expand(batch, -1, -1, -1)], 1)
            return self.features(x).flatten(2)           # N x K x cells (logits)

        def forward(self, image):
            logits = self.heatmaps(image)
            weights = torch.softmax(logits, dim=-1)
            uv = torch.matmul(weights, self.grid)        # N x K x 2
            confidence = weights.max(dim=-1, keepdim=True).values
            return torch.cat([uv, confidence], -1)

    return KeypointNet()


def _normalize(torch, frames):
    mean = torch.tensor(IMAGE_MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD).reshape(1, 3, 1, 1)
    return (frames.permute(0, 3, 1, 2).float() / 255.0 - mean) / std


def _inside(labels):
    width, height = FRAME_SIZE
    return ((labels[..., 0] >= 0) & (labels[..., 0] <= width - 1)
            & (labels[..., 1] >= 0) & (labels[..., 1] <= height - 1))


def _loss(torch, network, frames, labels, flip):
    """Huber on positions plus heatmap cross-entropy.

    Keypoints outside the frame, and unknown ones (NaN: a label a robot could not measure),
    are masked.
    """
    width, height = FRAME_SIZE
    if flip is not None:
        frames = torch.where(flip[:, None, None, None], frames.flip(2), frames)
        labels = labels.clone()
        labels[..., 0] = torch.where(flip[:, None], width - 1 - labels[..., 0], labels[..., 0])
    image = _normalize(torch, frames)
    logits = network.heatmaps(image)
    weights = torch.softmax(logits, dim=-1)
    uv = torch.matmul(weights, network.grid)
    mask = _inside(labels).float()
    labels = torch.nan_to_num(labels)     # masked: any finite value keeps the sums finite
    huber = torch.nn.functional.smooth_l1_loss(uv, labels, reduction='none').sum(-1)
    distance2 = ((network.grid[None, None] - labels[:, :, None]) ** 2).sum(-1)
    target = torch.softmax(-distance2 / (2.0 * STRIDE ** 2), dim=-1)
    cross_entropy = -(target * torch.log_softmax(logits, -1)).sum(-1)
    per_point = huber + 0.5 * cross_entropy
    return (per_point * mask).sum() / mask.sum().clamp(min=1.0), uv


def pixel_errors(network, frames: np.ndarray, labels: np.ndarray, batch: int = 256) -> np.ndarray:
    """Distance (px) of each predicted keypoint from its label (N x K; NaN outside the frame)."""
    torch = _torch()
    network.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(frames), batch):
            uv = network(_normalize(torch, torch.from_numpy(frames[i:i + batch])))[..., :2]
            out.append(uv.numpy())
    uv = np.concatenate(out)
    errors = np.linalg.norm(uv - labels, axis=-1)
    errors[~_inside(labels)] = np.nan
    return errors


def train_step(torch, network, optimizer, frames, labels, flip) -> float:
    """One optimizer step on a batch; its loss."""
    loss, _ = _loss(torch, network, frames, labels, flip)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def validation_p95(network, validation: dict) -> float:
    """The worst keypoint's p95 error (px) on validation frames: what selects a model."""
    errors = pixel_errors(network, validation['frames'], validation['labels'])
    return float(np.nanmax(np.nanpercentile(errors, 95, axis=0)))


def validation_report(network, validation: dict) -> dict:
    """Mean and p95 error (px) of every keypoint on validation frames."""
    errors = pixel_errors(network, validation['frames'], validation['labels'])
    return {name: {'mean_px': float(np.nanmean(errors[:, k])),
                   'p95_px': float(np.nanpercentile(errors[:, k], 95))}
            for k, name in enumerate(KEYPOINTS)}


def metadata(model_id: str, extra: dict) -> ModelMetadata:
    """The policy's metadata: the keypoint network's frame, and the planner's chunk contract."""
    from sim2real_policy.keypoint_policy import KIND

    width, height = FRAME_SIZE
    n_act, n_prop = len(ACTION_NAMES), len(PROPRIO_NAMES)
    return ModelMetadata(
        model_id=model_id, image_input='image', proprio_input='', output='keypoints',
        image_size=(width, height), image_crop=(0.0, 0.0, 1.0, 1.0), color_order='rgb',
        image_mean=IMAGE_MEAN, image_std=IMAGE_STD, proprio_names=PROPRIO_NAMES,
        proprio_mean=(0.0,) * n_prop, proprio_std=(1.0,) * n_prop, action_names=ACTION_NAMES,
        action_mean=(0.0,) * n_act, action_std=(1.0,) * n_act, relative=(False,) * n_act,
        horizon=HORIZON, action_period=ACTION_PERIOD, start_offset=0.0,
        extra={'kind': KIND, 'keypoints': list(KEYPOINTS), 'planner': dict(PLANNER), **extra})


def export_keypoint_onnx(network, meta: ModelMetadata, path: Path) -> Path:
    """The network as ONNX with its metadata (opset 17, batch 1)."""
    import onnx

    torch = _torch()
    width, height = FRAME_SIZE
    network.eval()
    image = torch.zeros(1, 3, height, width)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)   # as train.export_onnx
        torch.onnx.export(network, (image,), str(path), input_names=['image'],
                          output_names=['keypoints'], opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, meta.to_json()
    onnx.save(model, str(path))
    return path


def train_keypoints(train: dict, validation: dict, out_dir: str | Path, epochs: int = 12,
                    batch: int = 64, lr: float = 2e-3, seed: int = 0, model_id: str = 'keypoints',
                    progress=None, extra: dict | None = None, init: str | Path | None = None,
                    ) -> dict:
    """Fit the network; keep the epoch with the lowest validation p95 error; export ONNX.

    ``init``: start from these weights (a ``keypoints.pt``) instead of random ones.
    """
    torch = _torch()
    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    network = build_keypoint_network()
    if init is not None:
        network.load_state_dict(torch.load(init, weights_only=True))
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    frames = torch.from_numpy(train['frames'])
    labels = torch.from_numpy(train['labels'].astype(np.float32))
    steps = epochs * (len(frames) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=max(1, steps))
    generator = torch.Generator().manual_seed(seed)
    curves = {'train loss': [], 'validation p95 px': []}
    best, best_state, started = np.inf, None, time.perf_counter()
    for epoch in range(epochs):
        network.train()
        order = torch.randperm(len(frames), generator=generator)
        losses = []
        for i in range(0, len(order) - batch + 1, batch):
            index = order[i:i + batch]
            flip = torch.rand(batch, generator=generator) < 0.5
            losses.append(train_step(torch, network, optimizer, frames[index], labels[index],
                                     flip))
            schedule.step()
        p95 = validation_p95(network, validation)
        curves['train loss'].append(float(np.mean(losses)))
        curves['validation p95 px'].append(p95)
        if p95 < best:
            best = p95
            best_state = {k: v.clone() for k, v in network.state_dict().items()}
        if progress:
            progress(epoch + 1, epochs, float(np.mean(losses)), p95,
                     time.perf_counter() - started)
    network.load_state_dict(best_state)
    report = validation_report(network, validation)
    meta = metadata(model_id, {'validation': report, **(extra or {})})
    torch.save(network.state_dict(), out_dir / 'keypoints.pt')
    export_keypoint_onnx(network, meta, out_dir / 'keypoints.onnx')
    _plot(curves, out_dir / 'keypoint_curves.png', 'keypoint network')
    summary = {'model': str(out_dir / 'keypoints.onnx'), 'seconds': time.perf_counter() - started,
               'train_samples': int(len(frames)),
               'validation_samples': int(len(validation['frames'])),
               'validation': report, 'curves': curves}
    (out_dir / 'keypoint_summary.json').write_text(json.dumps(summary, indent=2))
    return summary


# Fine-tuning keeps features[:ENCODER] (the stride-2 stem and the first 3 x 3 convolution: the
# encoder of local colour and edges) as trained and adapts the dilated context layers and the
# heatmap head.
ENCODER = 4


def load_onnx_weights(path: str | Path):
    """The keypoint network with the weights of an exported ``keypoints.onnx`` (torch)."""
    import onnx
    from onnx import numpy_helper

    torch = _torch()
    network = build_keypoint_network()
    model = onnx.load(str(path))
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    state = network.state_dict()
    for name, value in state.items():
        found = weights.get(name)
        if found is None or tuple(found.shape) != tuple(value.shape):
            got = 'missing' if found is None else f'of shape {tuple(found.shape)}'
            raise ModelError(f'{path}: not this keypoint network ({name} of shape '
                             f'{tuple(value.shape)} is {got})')
    network.load_state_dict({k: torch.from_numpy(weights[k].copy()) for k in state})
    return network


def _p95(errors: np.ndarray) -> dict:
    """p95 (px) of each keypoint that has labels."""
    return {name: float(np.nanpercentile(errors[:, k], 95))
            for k, name in enumerate(KEYPOINTS) if np.isfinite(errors[:, k]).any()}


def finetune_keypoints(base: str | Path, real: dict, sim: dict, sim_validation: dict,
                       out_dir: str | Path, epochs: int = 60, batch: int = 64,
                       lr: float = 1e-3, real_fraction: float = 0.5, holdout: float = 0.2,
                       seed: int = 0, progress=None) -> dict:
    """Fine-tune an exported keypoint model on a few real episodes; export ONNX.

    ``real``: frames, labels (NaN unknown) and episode of :mod:`keypoint_export`. The encoder
    (``features[:ENCODER]``) is frozen; every batch is ``real_fraction`` real frames, the rest
    ``sim`` frames of the base model's randomization. A share ``holdout`` of the real episodes
    (at least one) is never trained on: the model kept is the epoch (or the base itself, epoch
    0) with the lowest p95 error on them, largest over the labelled keypoints, so the hold-out
    error "after" is the selection's score, not an unbiased test. The sim validation error
    before and after is reported, not selected on.
    """
    torch = _torch()
    if not 0.0 < real_fraction < 1.0:
        raise ValueError(f'real_fraction must be in (0, 1), got {real_fraction}')
    episodes = np.unique(real['episode'])
    if len(episodes) < 2:
        raise ValueError(f'fine-tuning needs at least 2 labelled real episodes (one held out), '
                         f'got {len(episodes)}')
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    held = rng.permutation(episodes)[:max(1, round(holdout * len(episodes)))]
    is_held = np.isin(real['episode'], held)
    real_frames = torch.from_numpy(real['frames'][~is_held])
    real_labels = torch.from_numpy(real['labels'][~is_held].astype(np.float32))
    check = {'frames': real['frames'][is_held], 'labels': real['labels'][is_held]}
    sim_frames = torch.from_numpy(sim['frames'])
    sim_labels = torch.from_numpy(sim['labels'].astype(np.float32))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base_meta = read_metadata(base)
    network = load_onnx_weights(base)
    for parameter in network.features[:ENCODER].parameters():
        parameter.requires_grad_(False)
    trainable = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=1e-4)
    n_real = min(batch - 1, max(1, round(batch * real_fraction)))
    steps = max(1, len(real_frames) // n_real)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * steps)
    generator = torch.Generator().manual_seed(seed)

    def holdout_score():
        p95 = _p95(pixel_errors(network, check['frames'], check['labels']))
        if not p95:
            raise ValueError(f'the held-out real episodes {sorted(held.tolist())} have no '
                             'label inside the frame: nothing to choose an epoch by')
        return max(p95.values()), p95

    started = time.perf_counter()
    best, before = holdout_score()
    sim_before = _p95(pixel_errors(network, sim_validation['frames'], sim_validation['labels']))
    best_state, best_epoch = {k: v.clone() for k, v in network.state_dict().items()}, 0
    curves = {'train loss': [], 'real hold-out p95 px': []}
    for epoch in range(epochs):
        network.train()
        losses = []
        for _ in range(steps):
            index_real = torch.randint(len(real_frames), (n_real,), generator=generator)
            index_sim = torch.randint(len(sim_frames), (batch - n_real,), generator=generator)
            frames = torch.cat([real_frames[index_real], sim_frames[index_sim]])
            labels = torch.cat([real_labels[index_real], sim_labels[index_sim]])
            flip = torch.rand(batch, generator=generator) < 0.5
            losses.append(train_step(torch, network, optimizer, frames, labels, flip))
            schedule.step()
        score, _ = holdout_score()
        curves['train loss'].append(float(np.mean(losses)))
        curves['real hold-out p95 px'].append(score)
        if score < best:
            best, best_epoch = score, epoch + 1
            best_state = {k: v.clone() for k, v in network.state_dict().items()}
        if progress:
            progress(epoch + 1, epochs, float(np.mean(losses)), score,
                     time.perf_counter() - started)
    network.load_state_dict(best_state)
    _, after = holdout_score()
    sim_after = _p95(pixel_errors(network, sim_validation['frames'], sim_validation['labels']))
    report = {'base': str(base), 'base_model_id': base_meta.model_id,
              'real_episodes': int(len(episodes)), 'holdout_episodes': int(len(held)),
              'holdout': sorted(int(e) for e in held),
              'real_frames': int(len(real_frames)), 'holdout_frames': int(is_held.sum()),
              'real_fraction': real_fraction, 'frozen': f'features[:{ENCODER}]',
              'epochs': epochs, 'chosen_epoch': best_epoch,
              'holdout_p95_px': {'before': before, 'after': after},
              'sim_validation_p95_px': {'before': sim_before, 'after': sim_after}}
    extra = {k: v for k, v in base_meta.extra.items() if k not in ('kind', 'keypoints')}
    extra['finetune'] = report
    # the sim validation error of this network (the base's figures would be stale)
    extra['validation'] = {name: {'p95_px': value} for name, value in sim_after.items()}
    meta = metadata(f'{base_meta.model_id}-ft-s{seed}', extra)
    torch.save(network.state_dict(), out_dir / 'keypoints.pt')
    export_keypoint_onnx(network, meta, out_dir / 'keypoints.onnx')
    _plot(curves, out_dir / 'finetune_curves.png', 'keypoint fine-tuning')
    summary = dict(report, model=str(out_dir / 'keypoints.onnx'),
                   seconds=time.perf_counter() - started, curves=curves)
    (out_dir / 'finetune_summary.json').write_text(json.dumps(summary, indent=2))
    return summary

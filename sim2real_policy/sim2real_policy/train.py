"""Behaviour cloning of the grasping policy, ONNX export, and few-shot fine-tuning.

Training only: this module imports torch (the optional ``train`` extra, ``torch==2.13.0``);
deployment runs the exported ONNX file with ONNX Runtime or cv2.dnn.

The network: a small convolutional encoder with a spatial soft-argmax (each feature map
becomes the image position it responds to: the object, the fingers), concatenated with the
normalized proprioception, and an MLP head that outputs a chunk of ``horizon`` actions.
Targets are relative to the measured pose for x, y, z, yaw and absolute for the gripper
width, normalized with the training set's statistics, all of which go into the model's
metadata so that inference reproduces training exactly.
"""
from __future__ import annotations

import json
from pathlib import Path
import time
import warnings

import numpy as np

from sim2real_policy.data import ACTION_PERIOD, IMAGE_CROP, IMAGE_SIZE
from sim2real_policy.policy import ACTION_NAMES, METADATA_KEY, ModelMetadata, PROPRIO_NAMES

IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.25, 0.25, 0.25)
RELATIVE = (True, True, True, True, False)


def _torch():
    try:
        import torch
    except ImportError:
        raise RuntimeError('training needs torch: pip install torch==2.13.0 '
                           '(the optional training extra, see README)') from None
    return torch


def build_network(horizon: int, keypoints: int = 32, hidden: int = 256):
    """The policy network (a torch module)."""
    torch = _torch()
    nn = torch.nn

    class SpatialSoftArgmax(nn.Module):
        """Per channel, the expected (x, y) image position under a softmax over pixels."""

        def __init__(self, height, width):
            super().__init__()
            ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width),
                                    indexing='ij')
            self.register_buffer('grid', torch.stack([xs.reshape(-1), ys.reshape(-1)], 1))

        def forward(self, features):
            batch, channels = features.shape[0], features.shape[1]
            weights = torch.softmax(features.reshape(batch, channels, -1), dim=-1)
            return torch.matmul(weights, self.grid).reshape(batch, channels * 2)

    class GraspPolicy(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(
                nn.Conv2d(3, 32, 5, stride=2, padding=2), nn.ReLU(),
                nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                nn.Conv2d(32, keypoints, 3, padding=1),
                SpatialSoftArgmax(IMAGE_SIZE[1] // 2, IMAGE_SIZE[0] // 2))
            self.head = nn.Sequential(
                nn.Linear(keypoints * 2 + len(PROPRIO_NAMES), hidden), nn.ReLU(),
                nn.Linear(hidden, hidden), nn.ReLU(),
                nn.Linear(hidden, horizon * len(ACTION_NAMES)))
            self.horizon = horizon

        def forward(self, image, proprio):
            features = torch.cat([self.encoder(image), proprio], dim=1)
            return self.head(features).reshape(-1, self.horizon, len(ACTION_NAMES))

    return GraspPolicy()


def _statistics(data: dict) -> dict:
    proprio = data['proprio'].astype(np.float64)
    relative = data['actions'].astype(np.float64).copy()
    relative[..., :4] -= proprio[:, None, :4]
    flat = relative.reshape(-1, relative.shape[-1])
    return {'proprio_mean': proprio.mean(0), 'proprio_std': np.maximum(proprio.std(0), 1e-3),
            'action_mean': flat.mean(0), 'action_std': np.maximum(flat.std(0), 1e-4)}


def _tensors(data: dict, stats: dict):
    torch = _torch()
    images = torch.from_numpy(data['images']).permute(0, 3, 1, 2).contiguous()  # uint8 NCHW
    proprio = (data['proprio'] - stats['proprio_mean']) / stats['proprio_std']
    relative = data['actions'].astype(np.float64).copy()
    relative[..., :4] -= data['proprio'][:, None, :4]
    actions = (relative - stats['action_mean']) / stats['action_std']
    return (images, torch.tensor(proprio, dtype=torch.float32),
            torch.tensor(actions, dtype=torch.float32))


def _normalize_images(torch, images, shift: int = 0, generator=None):
    x = images.float() / 255.0
    if shift:
        # random shifts: pad by replication and crop back (a strong, cheap augmentation)
        padded = torch.nn.functional.pad(x, (shift, shift, shift, shift), mode='replicate')
        dx, dy = torch.randint(0, 2 * shift + 1, (2,), generator=generator).tolist()
        x = padded[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]
    mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def successful_only(data: dict) -> dict:
    """The samples of successful episodes: cloning copies failures too, so they are left out."""
    if 'success' not in data:
        return data
    good = np.flatnonzero(data['success'])
    keep = np.isin(data['episode'], good)
    if not keep.any():
        raise ValueError('no successful episode in the dataset: nothing to clone')
    return {**{k: v[keep] for k, v in data.items()
               if k in ('images', 'proprio', 'actions', 'episode')},
            'info': data.get('info', {})}


def metadata_for(stats: dict, horizon: int, model_id: str, extra: dict) -> ModelMetadata:
    """The metadata embedded in an exported model."""
    return ModelMetadata(
        model_id=model_id, image_input='image', proprio_input='proprio', output='actions',
        image_size=tuple(IMAGE_SIZE), image_crop=tuple(IMAGE_CROP), color_order='rgb',
        image_mean=IMAGE_MEAN, image_std=IMAGE_STD, proprio_names=PROPRIO_NAMES,
        proprio_mean=tuple(float(v) for v in stats['proprio_mean']),
        proprio_std=tuple(float(v) for v in stats['proprio_std']), action_names=ACTION_NAMES,
        action_mean=tuple(float(v) for v in stats['action_mean']),
        action_std=tuple(float(v) for v in stats['action_std']), relative=RELATIVE,
        horizon=horizon, action_period=ACTION_PERIOD, start_offset=0.0, extra=extra)


def export_onnx(network, meta: ModelMetadata, path: Path) -> Path:
    """Export with batch 1 (what deployment runs) and embed the metadata."""
    torch = _torch()
    import onnx

    network.eval()
    image = torch.zeros(1, 3, IMAGE_SIZE[1], IMAGE_SIZE[0])
    proprio = torch.zeros(1, len(PROPRIO_NAMES))
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter on purpose: the dynamo exporter needs onnxscript, and this
        # small static graph exports identically either way (the test checks the numbers).
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(network, (image, proprio), str(path),
                          input_names=['image', 'proprio'], output_names=['actions'],
                          opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = meta.to_json()
    onnx.save(model, str(path))
    return path


def _plot(curves: dict, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5))
    for name, values in curves.items():
        axis.plot(np.arange(1, len(values) + 1), values, label=name)
    axis.set_xlabel('epoch')
    axis.set_ylabel('loss (normalized actions)')
    axis.set_yscale('log')
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _batches(torch, count: int, batch: int, generator):
    order = torch.randperm(count, generator=generator)
    return [order[i:i + batch] for i in range(0, count, batch)]


def train(data: dict, out_dir: str | Path, epochs: int = 40, batch: int = 128, lr: float = 1e-3,
          seed: int = 0, model_id: str = 'grasp-policy', extra: dict | None = None,
          progress=None) -> dict:
    """Train on a dataset (see ``sim2real_policy.data``); write model.onnx, model.pt, curves."""
    torch = _torch()
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    generator = torch.Generator().manual_seed(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = successful_only(data)
    horizon = int(data['actions'].shape[1])
    stats = _statistics(data)
    images, proprio, actions = _tensors(data, stats)
    episodes = np.unique(data['episode'])
    rng = np.random.default_rng(seed)
    val_episodes = set(rng.choice(episodes, max(1, len(episodes) // 10), replace=False).tolist())
    val_mask = torch.tensor([e in val_episodes for e in data['episode']])
    train_idx = torch.nonzero(~val_mask).squeeze(1)
    val_idx = torch.nonzero(val_mask).squeeze(1)
    network = build_network(horizon)
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    curves = {'train': [], 'validation': []}
    best = (float('inf'), 0, None)
    started = time.perf_counter()
    for epoch in range(epochs):
        network.train()
        losses = []
        for chunk in _batches(torch, len(train_idx), batch, generator):
            index = train_idx[chunk]
            prediction = network(_normalize_images(torch, images[index], 4, generator),
                                 proprio[index])
            loss = torch.nn.functional.smooth_l1_loss(prediction, actions[index], beta=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        schedule.step()
        network.eval()
        with torch.no_grad():
            val = [torch.nn.functional.smooth_l1_loss(
                network(_normalize_images(torch, images[val_idx[i:i + 512]]),
                        proprio[val_idx[i:i + 512]]), actions[val_idx[i:i + 512]],
                beta=0.1).item() for i in range(0, len(val_idx), 512)]
        curves['train'].append(float(np.mean(losses)))
        curves['validation'].append(float(np.mean(val)) if val else float('nan'))
        if val and curves['validation'][-1] <= best[0]:
            # Keep the epoch that generalizes best: with a few hundred demonstrations the
            # network starts memorizing them long before the training loss levels off.
            best = (curves['validation'][-1], epoch + 1,
                    {k: v.detach().clone() for k, v in network.state_dict().items()})
        if progress:
            progress(epoch + 1, epochs, curves['train'][-1], curves['validation'][-1])
    if best[2] is not None:
        network.load_state_dict(best[2])
    meta = metadata_for(stats, horizon, model_id, dict(extra or {}, seed=seed, epochs=epochs,
                                                       best_epoch=best[1],
                                                       samples=int(len(images))))
    export_onnx(network, meta, out_dir / 'model.onnx')
    torch.save({'state_dict': network.state_dict(), 'stats': {k: v.tolist() for k, v in
                                                             stats.items()},
                'horizon': horizon, 'model_id': model_id, 'extra': meta.extra},
               out_dir / 'model.pt')
    _plot(curves, out_dir / 'training_curves.png', f'{model_id}: behaviour cloning')
    summary = {'model': str(out_dir / 'model.onnx'), 'seconds': time.perf_counter() - started,
               'epochs': epochs, 'best_epoch': best[1], 'samples': int(len(images)),
               'curves': curves}
    (out_dir / 'training.json').write_text(json.dumps(summary, indent=1))
    return summary


def finetune(checkpoint: str | Path, real: dict, sim: dict, out_dir: str | Path,
             epochs: int = 30, batch: int = 64, real_fraction: float = 0.5, lr: float = 5e-4,
             seed: int = 0, progress=None) -> dict:
    """The seed's recipe: freeze the encoder, train the head on real and sim data mixed.

    Every batch holds ``real_fraction`` real samples (drawn with replacement: there are few),
    the rest simulated. Normalization statistics stay those of the original training, so the
    exported model is a drop-in replacement.
    """
    torch = _torch()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    saved = torch.load(str(checkpoint), weights_only=False)
    stats = {k: np.asarray(v) for k, v in saved['stats'].items()}
    network = build_network(saved['horizon'])
    network.load_state_dict(saved['state_dict'])
    for parameter in network.encoder.parameters():
        parameter.requires_grad = False
    optimizer = torch.optim.AdamW(network.head.parameters(), lr=lr, weight_decay=1e-4)
    real_t, sim_t = _tensors(real, stats), _tensors(sim, stats)
    n_real = max(1, int(round(batch * real_fraction)))
    n_sim = batch - n_real
    steps = max(1, len(real_t[0]) * 2 // n_real)
    losses = []
    started = time.perf_counter()
    for epoch in range(epochs):
        network.train()
        epoch_losses = []
        for _ in range(steps):
            ri = torch.randint(0, len(real_t[0]), (n_real,), generator=generator)
            si = torch.randint(0, len(sim_t[0]), (n_sim,), generator=generator)
            image = torch.cat([real_t[0][ri], sim_t[0][si]])
            prop = torch.cat([real_t[1][ri], sim_t[1][si]])
            target = torch.cat([real_t[2][ri], sim_t[2][si]])
            loss = torch.nn.functional.smooth_l1_loss(
                network(_normalize_images(torch, image, 4, generator), prop), target, beta=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            epoch_losses.append(loss.item())
        losses.append(float(np.mean(epoch_losses)))
        if progress:
            progress(epoch + 1, epochs, losses[-1], float('nan'))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_id = saved['model_id'] + '-finetuned'
    meta = metadata_for(stats, saved['horizon'], model_id,
                        dict(saved['extra'], finetuned_on=int(len(real_t[0])),
                             real_fraction=real_fraction))
    export_onnx(network, meta, out_dir / 'model.onnx')
    torch.save({'state_dict': network.state_dict(), 'stats': saved['stats'],
                'horizon': saved['horizon'], 'model_id': model_id, 'extra': meta.extra},
               out_dir / 'model.pt')
    _plot({'fine-tune': losses}, out_dir / 'finetune_curves.png', f'{model_id}')
    return {'model': str(out_dir / 'model.onnx'), 'seconds': time.perf_counter() - started,
            'real_samples': int(len(real_t[0])), 'curves': {'finetune': losses}}

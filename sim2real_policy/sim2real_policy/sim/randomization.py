"""Domain randomization: sampling :class:`SimParams` and randomizing rendered images.

``Randomizer`` samples the task (object placement, always), and a profile's physics, scene
appearance and image ranges (``config/randomization.yaml``). ``VisualRandomizer`` applies the
image-level ranges with OpenCV, as the seed's ``VisualRandomizer``: brightness, contrast, hue,
saturation, Gaussian and salt-and-pepper noise, occluding patches, crop and rotation. The
per-episode draws (brightness, crop, ...) are fixed for the episode; noise and patches change
every frame, from the episode's own generator.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Mapping

import cv2
import numpy as np

from sim2real_policy.sim.params import SimParams

_PARAM_NAMES = {f.name for f in fields(SimParams)}
IMAGE_KEYS = ('brightness', 'contrast', 'hue', 'saturation', 'gaussian_noise', 'salt_pepper',
              'occlusions', 'occlusion_size', 'crop', 'rotation')


class RandomizationError(ValueError):
    """A malformed range in the randomization config."""


def _sample(name: str, spec, rng: np.random.Generator):
    """One draw from a spec.

    A spec is [lo, hi], [[lo...], [hi...]], a list of words, or a fixed value (a number, or a
    vector of 3 numbers).
    """
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return spec
    if isinstance(spec, (list, tuple)) and len(spec) == 3 and all(
            isinstance(v, (int, float)) for v in spec):
        return tuple(float(v) for v in spec)
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(v, str) for v in spec):
        return str(spec[int(rng.integers(len(spec)))])
    if not isinstance(spec, (list, tuple)) or len(spec) != 2:
        raise RandomizationError(
            f'{name}: expected [low, high] or a list of choices, got {spec!r}')
    low, high = spec
    if isinstance(low, (list, tuple)):
        low, high = np.asarray(low, float), np.asarray(high, float)
        if low.shape != high.shape or np.any(low > high):
            raise RandomizationError(f'{name}: need low <= high per component, got {spec!r}')
        return tuple(float(v) for v in rng.uniform(low, high))
    if not low <= high:
        raise RandomizationError(f'{name}: need low <= high, got {spec!r}')
    if isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool):
        return int(rng.integers(low, high, endpoint=True))
    return float(rng.uniform(low, high))


def check_ranges(section: Mapping, what: str) -> None:
    """Every key of a physics/visual section names a SimParams field."""
    unknown = sorted(set(section) - _PARAM_NAMES)
    if unknown:
        raise RandomizationError(f'{what}: unknown parameter(s) {unknown}')


def centred_profile(profile: Mapping, identified: Mapping, source: str = 'identified') -> dict:
    """``profile`` with its physics centred on identified values (``sim2real sysid``).

    Each identified parameter's range keeps its width and moves so that its middle is the
    identified value (a range that started at or above 0 is cut at 0: no negative delay or
    gain); a parameter the profile does not randomize is pinned to the identified value.
    Training worlds then scatter around the robot that was measured, not the nominal one.
    ``identified``: SimParams field -> value (``sim_params`` of sysid_params.yaml); a bad
    name or value is one line naming ``source``.
    """
    physics = dict((profile or {}).get('physics', {}))
    for name, value in identified.items():
        if name not in _PARAM_NAMES or not isinstance(getattr(SimParams(), name), float):
            raise RandomizationError(f'{source}: {name} is not a numeric simulator parameter')
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not np.isfinite(value):
            raise RandomizationError(f'{source}: {name} must be a finite number, got {value!r}')
        spec = physics.get(name)
        if isinstance(spec, (list, tuple)) and len(spec) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec):
            half = (float(spec[1]) - float(spec[0])) / 2.0
            low, high = float(value) - half, float(value) + half
            if spec[0] >= 0.0:
                low = max(low, 0.0)
            physics[name] = [low, max(high, low)]
        elif spec is None or isinstance(spec, (int, float)):
            physics[name] = float(value)
        else:
            raise RandomizationError(f'{source}: {name} is randomized as {spec!r}, which has '
                                     'no centre to move')
    return {**dict(profile or {}), 'physics': physics}


class Randomizer:
    """Samples episodes of one profile (``none``, ``light``, ``heavy`` or a custom mapping)."""

    def __init__(self, config: Mapping, profile: str | Mapping = 'none',
                 base: SimParams | None = None):
        self.task = dict(config.get('task', {}))
        check_ranges(self.task, 'task')
        if isinstance(profile, str):
            profiles = config.get('profiles', {})
            if profile not in profiles:
                raise RandomizationError(f'unknown randomization profile {profile!r}; '
                                         f'choose from {sorted(profiles)}')
            profile = profiles[profile] or {}
        self.physics = dict(profile.get('physics', {}))
        self.visual = dict(profile.get('visual', {}))
        self.image = dict(profile.get('image', {}))
        check_ranges(self.physics, 'physics')
        check_ranges(self.visual, 'visual')
        unknown = sorted(set(self.image) - set(IMAGE_KEYS))
        if unknown:
            raise RandomizationError(f'image: unknown key(s) {unknown}; known: {IMAGE_KEYS}')
        self.base = base or SimParams()

    def sample(self, seed: int, overrides: Mapping | None = None) -> SimParams:
        """The parameters of episode ``seed`` (deterministic in the seed)."""
        rng = np.random.default_rng([seed, 0xD0])
        values = {'seed': int(seed)}
        for section in (self.task, self.physics, self.visual):
            for name in sorted(section):
                values[name] = _sample(name, section[name], rng)
        values['image'] = {name: _sample(name, self.image[name], rng)
                           for name in sorted(self.image)}
        values.update(overrides or {})
        return self.base.replace(**values)


class VisualRandomizer:
    """Image-level randomization of one episode's frames."""

    def __init__(self, image_params: Mapping, seed: int):
        self.p = dict(image_params)
        self.rng = np.random.default_rng([seed, 0x1A])
        self._lut = None
        brightness = float(self.p.get('brightness', 0.0))
        contrast = float(self.p.get('contrast', 1.0))
        if brightness or contrast != 1.0:
            levels = np.arange(256, dtype=np.float32)
            self._lut = np.clip((levels - 127.5) * contrast + 127.5 + brightness, 0, 255
                                ).astype(np.uint8)

    @property
    def active(self) -> bool:
        """False when there is nothing to do (no image randomization)."""
        return bool(self.p)

    def warp(self, width: int, height: int) -> np.ndarray | None:
        """The episode's crop and rotation as one 2 x 3 affine map of pixels (None: neither).

        Rotation about the image centre, zoom in by the crop. Keypoint labels go through the
        same map as the frame (``cv2.transform``).
        """
        crop = float(self.p.get('crop', 0.0))
        rotation = float(self.p.get('rotation', 0.0))
        if not (crop or rotation):
            return None
        scale = 1.0 / max(1e-6, 1.0 - 2.0 * crop)
        return cv2.getRotationMatrix2D((width / 2.0, height / 2.0), rotation, scale)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """A randomized copy of an RGB uint8 frame (same shape)."""
        if not self.p:
            return frame
        p, rng = self.p, self.rng
        height, width = frame.shape[:2]
        out = frame
        matrix = self.warp(width, height)
        if matrix is not None:
            out = cv2.warpAffine(out, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT)
        if self._lut is not None:
            out = cv2.LUT(out, self._lut)
        hue, saturation = float(p.get('hue', 0.0)), float(p.get('saturation', 1.0))
        if hue or saturation != 1.0:
            hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
            h = (hsv[..., 0].astype(np.int16) + int(round(hue))) % 180
            hsv[..., 0] = h.astype(np.uint8)
            hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 255).astype(np.uint8)
            out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        noise = float(p.get('gaussian_noise', 0.0))
        if noise > 0.0:
            out = np.clip(out + rng.normal(0.0, noise, out.shape), 0, 255).astype(np.uint8)
        salt = float(p.get('salt_pepper', 0.0))
        if salt > 0.0:
            out = out.copy() if out is frame else out
            mask = rng.random((height, width))
            out[mask < salt / 2.0] = 0
            out[mask > 1.0 - salt / 2.0] = 255
        for _ in range(int(p.get('occlusions', 0))):
            out = out.copy() if out is frame else out
            side = max(1, int(float(p.get('occlusion_size', 0.1)) * min(height, width)))
            y0 = int(rng.integers(0, height - side + 1))
            x0 = int(rng.integers(0, width - side + 1))
            out[y0:y0 + side, x0:x0 + side] = rng.integers(0, 256, 3, dtype=np.uint8)
        return out


def scene_params(randomization_file: str, profile: str, seed: int) -> SimParams:
    """The scene of a node's parameters.

    Nominal at ``seed`` without a file, else the ``profile`` of ``randomization_file`` sampled
    at ``seed``.
    """
    if not randomization_file:
        return SimParams(seed=seed)
    import yaml
    with open(randomization_file) as handle:
        return Randomizer(yaml.safe_load(handle), profile).sample(seed)

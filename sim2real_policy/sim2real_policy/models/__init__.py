"""Bundled policy models (package data) and how a model path is resolved."""
from __future__ import annotations

from pathlib import Path

from sim2real_policy.policy import ModelError

BUNDLED = Path(__file__).resolve().parent / 'grasp_policy.onnx'
# The end-to-end behaviour-cloning policy's weights (light randomization), which
# `sim2real finetune` starts from; the bundled policy itself is the keypoint policy.
BUNDLED_BC_CHECKPOINT = BUNDLED.parent / 'grasp_policy_bc.pt'


def resolve_model(path: str | Path | None) -> Path:
    """The model file to load: ``path``, or the bundled policy when ``path`` is empty."""
    if path:
        candidate = Path(path).expanduser()
        if not candidate.is_file():
            raise ModelError(f'model file {candidate} not found')
        return candidate
    if not BUNDLED.is_file():
        raise ModelError(f'the bundled policy {BUNDLED} is missing; train it with '
                         '`sim2real train` or pass a model path')
    return BUNDLED

"""Finding and reading the suite's parameter files (``config/``) without ROS.

The files are ROS 2 parameter YAML (``node_name: ros__parameters: {...}``), so the launch files
hand them to nodes unchanged and the in-process runtime reads the same values from them.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import yaml

PACKAGE = 'sim2real_bringup'


class ConfigError(ValueError):
    """A missing or malformed parameter file."""


def find_config_dir() -> Path:
    """The suite's config folder.

    Looked up, in order: ``$SIM2REAL_CONFIG_DIR``; ``share/sim2real_bringup/config`` of an
    installed workspace on ``$AMENT_PREFIX_PATH``; the repository's top-level ``config/``.
    """
    candidates = []
    if os.environ.get('SIM2REAL_CONFIG_DIR'):
        candidates.append(Path(os.environ['SIM2REAL_CONFIG_DIR']))
    for prefix in filter(None, os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)):
        candidates.append(Path(prefix) / 'share' / PACKAGE / 'config')
    candidates.append(Path(__file__).resolve().parents[2] / 'config')
    for path in candidates:
        if path.is_dir():
            return path
    raise ConfigError('cannot find the sim2real config folder; tried: '
                      + ', '.join(str(p) for p in candidates))


def resolve(path_or_name: str | Path) -> Path:
    """A config file given as a path, or as a bare name inside :func:`find_config_dir`."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    candidate = find_config_dir() / path
    if candidate.is_file():
        return candidate
    raise ConfigError(f'config file {path_or_name} not found (also looked in {find_config_dir()})')


def load_yaml(path_or_name: str | Path) -> dict:
    """A YAML mapping from a config file."""
    path = resolve(path_or_name)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f'{path}: not valid YAML: {exc}') from None
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: expected a mapping at the top level, '
                          f'got {type(data).__name__}')
    return data


def flatten(params: dict, prefix: str = '') -> dict:
    """Nested parameter mappings as ROS 2 names them: ``{'a': {'b': 1}}`` -> ``{'a.b': 1}``."""
    flat = {}
    for key, value in params.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            flat.update(flatten(value, name + '.'))
        else:
            flat[name] = value
    return flat


def node_parameters(path_or_name: str | Path, node_name: str) -> dict:
    """The ``ros__parameters`` of ``node_name`` in a ROS 2 parameter file, flattened.

    Nested keys become dotted names as in ROS 2 (``reaction: {workspace: clamp}`` is the
    parameter ``reaction.workspace``). Parameters under the wildcard ``/**`` apply to every
    node and are overridden by the node's own section, as in ROS 2.
    """
    data = load_yaml(path_or_name)
    params: dict = {}
    found = False
    for key in ('/**', node_name, '/' + node_name):
        section = data.get(key)
        if section is None:
            continue
        if not isinstance(section, dict) or not isinstance(section.get('ros__parameters'), dict):
            raise ConfigError(f'{resolve(path_or_name)}: section {key!r} needs a '
                              '"ros__parameters:" mapping')
        params.update(flatten(section['ros__parameters']))
        found = found or key != '/**'
    if not found:
        raise ConfigError(f'{resolve(path_or_name)}: no parameters for node {node_name!r} '
                          f'(sections: {sorted(data)})')
    return params


def config_digest(folder: str | Path | None = None) -> str:
    """Short content hash of a config folder: every ``*.yaml`` in it, names and bytes.

    Two runs with the same digest ran with the same parameter files (for reports).
    """
    folder = Path(folder) if folder is not None else find_config_dir()
    digest = hashlib.sha256()
    # A dangling link is what an upgraded --symlink-install workspace keeps of a removed file:
    # no parameters are read from it, so none enter the digest.
    for path in sorted(p for p in folder.glob('*.yaml') if p.exists()):
        digest.update(path.name.encode() + b'\0' + path.read_bytes() + b'\0')
    return digest.hexdigest()[:12]

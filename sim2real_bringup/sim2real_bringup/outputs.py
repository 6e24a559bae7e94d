"""Output files of the command line: never overwritten, written whole or not at all."""
from __future__ import annotations

import os
from pathlib import Path
import tempfile


def refuse_existing(path: Path | None, option: str) -> None:
    """Raise ``FileExistsError`` naming ``path`` if it exists (checked before long work)."""
    if path is not None and os.path.lexists(path):
        raise FileExistsError(f'{path} exists already; choose another {option} (nothing is '
                              'overwritten)')


def write_new(path: Path, text: str, option: str) -> None:
    """Write ``text`` to ``path``, a file that must not exist yet, atomically.

    The text goes to a temporary file beside it first and is linked into place: an existing
    file (one that appeared meanwhile too) is never replaced, and a failure leaves no half
    file behind.
    """
    refuse_existing(path, option)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}-')
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if the path exists: no overwrite, even in a race
        except FileExistsError:
            refuse_existing(path, option)
            raise
    finally:
        os.unlink(tmp)

"""The whole repository passes the lint rules of ruff.toml (ament_flake8 / pep257 style)."""
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _ruff():
    found = shutil.which('ruff') or str(Path(sys.executable).with_name('ruff'))
    if not Path(found).exists():
        pytest.skip('ruff is not installed (pip install -r tools/requirements-test.txt)')
    return found


def test_ruff_check_is_clean():
    result = subprocess.run([_ruff(), 'check', '--no-cache', str(ROOT)], capture_output=True,
                            text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr

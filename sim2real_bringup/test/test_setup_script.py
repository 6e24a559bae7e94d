"""tools/setup.sh: one line per step, no setuptools banner, a failed step's error in full."""
from pathlib import Path
import re
import shutil
import subprocess

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEP = re.compile(r'^setup: .+ \.\.\. done \(\d+\.\d s\)$')


def _checkout(tmp_path: Path, requirements: str) -> Path:
    """A checkout with the real setup script, its requirements, and 3 tiny suite packages."""
    (tmp_path / 'tools').mkdir()
    shutil.copy(ROOT / 'tools' / 'setup.sh', tmp_path / 'tools' / 'setup.sh')
    (tmp_path / 'tools' / 'requirements.txt').write_text(requirements)
    for name in ('sim2real_safety', 'sim2real_policy', 'sim2real_bringup'):
        package = tmp_path / name / name
        package.mkdir(parents=True)
        (package / '__init__.py').write_text('')
        (tmp_path / name / 'setup.py').write_text(
            f'from setuptools import setup\nsetup(name={name!r}, version="0", '
            f'packages=[{name!r}])\n')
    return tmp_path


def _setup(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(['bash', str(root / 'tools' / 'setup.sh')], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_setup_prints_one_line_per_step_and_a_failed_step_in_full(tmp_path):
    """Issue 37: setup printed a screen of setuptools banners for the 3 editable installs."""
    root = _checkout(tmp_path, 'sim2real-no-such-package==0.0.0\n')
    failed = _setup(root)
    assert failed.returncode != 0, failed
    assert 'setup: installing the pinned packages (runtime) ... FAILED' in failed.stdout
    # pip's own error, as pip wrote it, and where the whole log is
    assert 'No matching distribution found for sim2real-no-such-package==0.0.0' in failed.stderr
    log = re.search(r'the full log is (\S+)', failed.stderr)
    assert log and 'No matching distribution' in Path(log.group(1)).read_text()
    Path(log.group(1)).unlink()

    (root / 'tools' / 'requirements.txt').write_text('# nothing pinned in this checkout\n')
    done = _setup(root)
    assert done.returncode == 0, done
    assert 'Editable installation' not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # upgrading pip, the pinned packages, the suite's 3 packages, then ready
    assert len(lines) == 4 and all(STEP.match(line) for line in lines[:-1]), lines
    assert lines[-1].startswith('setup: ready (Python 3.') and done.stderr == '', done
    assert 'Successfully installed' in (root / '.venv' / 'setup.log').read_text()
    # nothing changed: one line
    again = _setup(root)
    assert again.returncode == 0 and len(again.stdout.splitlines()) == 1, again

"""The report of a short run, opened in headless Chromium as a reader would open it.

Skipped with a reason where no Chromium binary is found (Debian: ``apt-get install
chromium``). Chromium opens only ``file://`` URLs here, with background networking,
component updates and first-run tasks off, so it has nothing to connect to.
"""
import json
from pathlib import Path
import shutil
import subprocess

import pytest

BINARIES = ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable')
CHROMIUM = next((path for path in map(shutil.which, BINARIES) if path), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason=f'no Chromium binary on PATH (tried {", ".join(BINARIES)}); '
    'on Debian: apt-get install chromium')
# Appended to a copy of the page: after every image has loaded, it writes what it found
# into the DOM, which --dump-dom prints. The report itself holds no script.
PROBE = """<script>window.addEventListener('load', () => {
  document.body.setAttribute('data-probe', JSON.stringify([...document.images].map(
    i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth, src: i.src.slice(0, 22)}))));
});</script>"""


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    """Headless Chromium on one file:// URL, console messages logged to stderr."""
    return subprocess.run(
        [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-default-apps', '--no-default-browser-check', '--mute-audio',
         f'--user-data-dir={profile}', '--enable-logging=stderr', '--v=0',
         '--virtual-time-budget=5000', *extra, url],
        capture_output=True, text=True, timeout=120)


def console_errors(stderr: str) -> list[str]:
    """The page's console messages and load failures in Chromium's stderr log."""
    return [line for line in stderr.splitlines()
            if 'CONSOLE' in line or 'Failed to load resource' in line
            or 'net::ERR' in line]


def test_console_errors_are_caught_by_the_harness(tmp_path):
    """The check below can fail: a page that logs an error is seen to."""
    page = tmp_path / 'broken.html'
    page.write_text('<!doctype html><title>x</title><img src="missing.png">'
                    '<script>console.error("report broke")</script>')
    run = chromium(page.as_uri(), tmp_path / 'profile', '--dump-dom')
    assert any('report broke' in line for line in console_errors(run.stderr)), run.stderr


def test_report_renders_in_chromium_with_every_image_and_no_console_error(short_run, tmp_path):
    from sim2real_bringup import cli

    assert cli.main(['report', str(short_run), '--out', str(tmp_path / 'report')]) == 0
    page = tmp_path / 'report' / 'report.html'
    html = page.read_text()
    expected = html.count('<img ')
    report = json.loads((tmp_path / 'report' / 'report.json').read_text())
    # 8 plots + 4 frames for each of the 2 episodes
    assert expected == len(report['plots']) + sum(len(e['moments']) for e in report['results'])

    # 1. the page itself: loads, no console message, no failed resource
    run = chromium(page.as_uri(), tmp_path / 'profile', '--dump-dom')
    assert run.returncode == 0, run.stderr[-2000:]
    assert '1/2 grasps succeeded = 50%' in run.stdout   # the headline was rendered
    assert console_errors(run.stderr) == [], console_errors(run.stderr)

    # 2. every image decoded (a copy of the page with a probe that reports them)
    probed = tmp_path / 'report' / 'probed.html'
    probed.write_text(html.replace('</body>', PROBE + '</body>'))
    run = chromium(probed.as_uri(), tmp_path / 'profile', '--dump-dom')
    found = run.stdout.split('data-probe="', 1)[1].split('"', 1)[0]
    images = json.loads(found.replace('&quot;', '"').replace('&amp;', '&'))
    assert len(images) == expected
    broken = [i['alt'] for i in images if not (i['complete'] and i['width'] > 0)]
    assert broken == [], broken
    assert all(i['src'] == 'data:image/png;base64,' for i in images)
    assert console_errors(run.stderr) == [], console_errors(run.stderr)

    # 3. a screenshot of what a reader sees first, kept in the test's folder
    shot = tmp_path / 'report.png'
    run = chromium(page.as_uri(), tmp_path / 'profile', f'--screenshot={shot}',
                   '--window-size=1200,1600', '--hide-scrollbars')
    assert shot.is_file(), run.stderr[-2000:]
    import cv2
    pixels = cv2.imread(str(shot))
    assert pixels.shape[:2] == (1600, 1200) and pixels.std() > 10   # not a blank page

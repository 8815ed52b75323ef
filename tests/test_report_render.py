"""The HTML report renders in a real headless browser (Debian's Chromium) without errors.

``.ci/run`` installs Chromium (``apt-get install chromium``) before the tests; the test is skipped
only where ``/usr/bin/chromium`` is missing.
"""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from _report_study import full_report

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is missing (.ci/run installs it: apt-get install chromium)",
)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    env = {**os.environ, "HOME": str(tmp_path)}
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_report_renders_in_headless_chromium(tmp_path):
    files = full_report()
    url = files.html.resolve().as_uri()
    shot = tmp_path / "report.png"
    # one run: the screenshot is written to a file, the DOM after loading goes to stdout
    done = _chromium(tmp_path, f"--screenshot={shot}", "--dump-dom", "--window-size=1200,3000", url)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "net::ERR_" not in done.stderr
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (3000, 1200)
    rgb = pixels[..., :3].reshape(-1, 3)
    # not blank: many distinct colours (figures) and a fair share of non-white pixels (text, images)
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) > 500
    assert (rgb.min(axis=1) < 0.9).mean() > 0.05

    html = done.stdout
    assert "<h1>Report &lt;test&gt; &amp; study</h1>" in html
    for section in files.sections:
        assert f'id="{section}"' in html
    sources = re.findall(r'<img src="([^"]*)"', html)
    assert len(sources) == len(files.figures) == 5
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        image = mpimg.imread(io.BytesIO(base64.b64decode(source.split(",", 1)[1])), format="png")
        assert image.ndim == 3 and min(image.shape[:2]) > 100
    assert "<script" not in html.lower()

"""The HTML report renders in a real headless browser (Debian's Chromium) without errors.

``.ci/run`` installs Chromium (``apt-get install chromium``) before the tests; the tests are skipped
only where ``/usr/bin/chromium`` is missing.

The first-screen checks load a copy of the report with a small script that writes the layout
(``getBoundingClientRect()`` of the decision box, the page's ``scrollWidth``, each image's shown and
natural width) into the DOM, which ``--dump-dom`` returns; the report itself has no script.
"""

from __future__ import annotations

import base64
import html as html_module
import io
import json
import os
import re
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from _report_study import full_report, wide_report

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


#: the first screen of a laptop browser
WIDTH, HEIGHT = 1280, 900
#: the decision box's background (CSS ``section.decision``)
BOX_RGB = (243, 248, 255)
MEASURE = """<script>
window.addEventListener("load", function () {
  var rect = function (e) { var r = e.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width}; };
  var root = document.documentElement;
  var layout = {
    box: rect(document.getElementById("decision")),
    scrollWidth: root.scrollWidth,
    images: Array.prototype.map.call(document.images, function (i) {
      return {natural: i.naturalWidth, shown: i.getBoundingClientRect().width}; }),
    wraps: Array.prototype.map.call(document.querySelectorAll(".table-wrap"), function (w) {
      return {scroll: w.scrollWidth, client: w.clientWidth}; })
  };
  var out = document.createElement("pre");
  out.id = "layout";
  out.textContent = JSON.stringify(layout);
  document.body.appendChild(out);
});
</script>"""


def _first_screen(tmp_path: Path, report: Path) -> tuple[dict, str, np.ndarray]:
    """Layout, DOM and screenshot pixels of ``report`` in a 1280x900 window."""
    page = tmp_path / "measured.html"
    page.write_text(
        report.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8"
    )
    shot = tmp_path / "first.png"
    done = _chromium(
        tmp_path,
        f"--window-size={WIDTH},{HEIGHT}",
        "--virtual-time-budget=10000",
        f"--screenshot={shot}",
        "--dump-dom",
        page.as_uri(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="layout">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stdout[-2000:]
    return json.loads(html_module.unescape(found.group(1))), done.stdout, mpimg.imread(shot)[..., :3]


def test_decision_box_is_on_the_first_screen(tmp_path):
    layout, dom, pixels = _first_screen(tmp_path, full_report().html)
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    rgb = (pixels * 255).round().astype(int)
    # not blank: text and boxes in several colours
    assert (rgb.min(axis=2) < 230).mean() > 0.03
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50
    box = layout["box"]
    assert 0 <= box["top"] < box["bottom"] <= HEIGHT and 0 <= box["left"] and box["right"] <= WIDTH
    # the box is painted where the layout says: its background fills much of its rectangle
    inside = rgb[int(box["top"]) + 4 : int(box["bottom"]) - 4, int(box["left"]) + 4 : int(box["right"]) - 4]
    assert (np.abs(inside - np.array(BOX_RGB)).max(axis=2) <= 2).mean() > 0.4
    above = rgb[: int(box["top"]) - 4]
    assert (np.abs(above - np.array(BOX_RGB)).max(axis=2) <= 2).mean() < 0.01
    # what it says: the verdict, the loss with its unit, P(beats reference) and the sampler's health
    section = dom.split('<section id="decision" class="decision">', 1)[1].split("</section>", 1)[0]
    assert '<p class="verdict not_yet">Not yet: P(beats reference) = 1.000, but sampler NOT OK.' in section
    assert "nats/token (90% interval" in section and "<dt>Sampler health</dt>" in section
    assert layout["scrollWidth"] <= WIDTH


def test_17_domain_report_fits_the_page_width(tmp_path):
    files = wide_report()
    layout, _dom, pixels = _first_screen(tmp_path, files.html)
    assert (pixels.min(axis=2) < 0.9).mean() > 0.03
    # no horizontal scrolling of the page, and the decision still on the first screen
    assert layout["scrollWidth"] <= WIDTH
    assert layout["box"]["bottom"] <= HEIGHT
    # figures are shown at their own size (never scaled down, so their fonts keep their size)
    assert len(layout["images"]) == len(files.figures) == 4
    for image in layout["images"]:
        assert image["natural"] > 0 and image["shown"] >= 0.99 * image["natural"], image
    # wide tables (17 columns of intervals) scroll inside their own box
    assert any(w["scroll"] > w["client"] for w in layout["wraps"])
    assert all(w["client"] <= WIDTH for w in layout["wraps"])

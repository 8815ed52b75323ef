"""The documentation builds with Sphinx, warnings as errors, and holds its key pages.

The build imports every documented module (autodoc), so a docstring that breaks the reST or
numpydoc markup, a renamed export, or a command whose help fails shows up here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="the docs need the dev extra (sphinx)")
pytest.importorskip("numpydoc", reason="the docs need the dev extra (numpydoc)")

DOCS = Path(__file__).resolve().parents[1] / "docs"
GUIDES = ("own-runs", "nested", "choosing", "design", "proxies")


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs-html")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"sphinx failed (warnings are errors):\n{done.stderr}\n{done.stdout}"
    return out


def test_index_and_guides_exist(html: Path) -> None:
    assert (html / "index.html").is_file()
    index = (html / "index.html").read_text(encoding="utf-8")
    for guide in GUIDES:
        page = html / "guide" / f"{guide}.html"
        assert page.is_file(), f"missing guide page {guide}"
        assert f"guide/{guide}.html" in index, f"the index does not link {guide}"


def test_api_page_documents_every_export(html: Path) -> None:
    import bayesmix

    page = (html / "api" / "bayesmix.html").read_text(encoding="utf-8")
    assert 'id="bayesmix.fit"' in page
    missing = [name for name in bayesmix.__all__ if f'id="bayesmix.{name}"' not in page]
    assert not missing, f"bayesmix.__all__ names without an entry in docs/api/bayesmix.rst: {missing}"


def test_cli_page_has_every_command(html: Path) -> None:
    page = (html / "cli.html").read_text(encoding="utf-8")
    for command in ("quickstart", "fit", "predict", "optimise", "suggest", "report", "sweep", "runs export"):
        assert f"Usage: bayesmix {command}" in page, command

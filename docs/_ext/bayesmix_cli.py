"""Sphinx directive ``bayesmix-cli``: the ``--help`` text of every ``bayesmix`` command.

The help is produced at build time from the typer app (``bayesmix.cli.main:app``), so the page
cannot drift from the code. It runs in a subprocess with ``TYPER_USE_RICH=0`` (plain text; typer
decides on rich formatting when it is imported) and a fixed terminal width, walks the command
tree with ``typer.main.get_command`` and collects each command's help with typer's ``CliRunner``.
No extra dependency (no sphinx-click).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

#: printed by the subprocess: ``[[["fit"], "help text"], ...]`` in the app's order, root first
_COLLECT = r"""
import json
import typer
from typer.testing import CliRunner
from bayesmix.cli.main import app

runner = CliRunner()
out = []

def walk(command, path):
    result = runner.invoke(app, [*path, "--help"], prog_name="bayesmix", terminal_width=88)
    if result.exit_code != 0:
        raise SystemExit(f"bayesmix {' '.join(path)} --help failed: {result.output}")
    out.append([path, result.output])
    for name, sub in (getattr(command, "commands", None) or {}).items():
        if not getattr(sub, "hidden", False):
            walk(sub, [*path, name])

walk(typer.main.get_command(app), [])
print(json.dumps(out))
"""


def collect_help() -> list[tuple[list[str], str]]:
    """``(command path, help text)`` for the app and every (sub)command, in the app's order."""
    root = str(Path(__file__).resolve().parents[2])  # the checkout, importable from any directory
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "TYPER_USE_RICH": "0", "COLUMNS": "88", "NO_COLOR": "1"}
    env["TERM"] = "dumb"
    done = subprocess.run(
        [sys.executable, "-c", _COLLECT], capture_output=True, text=True, env=env, check=False, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"collecting the bayesmix CLI help failed:\n{done.stderr or done.stdout}")
    return [(list(path), text) for path, text in json.loads(done.stdout.strip().splitlines()[-1])]


class CliHelp(SphinxDirective):
    """One section per command (``bayesmix``, ``bayesmix fit``, ``bayesmix runs list``, ...)."""

    has_content = False
    option_spec: ClassVar[dict[str, Callable[[str], str]]] = {
        "underline": lambda text: (text or "-").strip()[0]
    }

    def run(self) -> list[nodes.Node]:
        """The sections, parsed from generated reST (titles underlined with ``:underline:``)."""
        underline = self.options.get("underline", "-")
        lines: list[str] = []
        for path, text in collect_help():
            if not path:
                lines += ["The ``bayesmix`` command", underline * 24, ""]
            else:
                title = "``bayesmix " + " ".join(path) + "``"
                lines += [title, underline * len(title), ""]
            lines += [".. code-block:: text", ""]
            lines += ["   " + line if line.strip() else "" for line in text.rstrip().splitlines()]
            lines += [""]
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="bayesmix-cli"), container)
        return container.children


def setup(app: Sphinx) -> dict[str, object]:
    """Register the directive."""
    app.add_directive("bayesmix-cli", CliHelp)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

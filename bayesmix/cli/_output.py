"""How the ``bayesmix`` command talks: one convention for every command.

- **stdout** carries results only: tables, the files written, or with ``--json`` one JSON object.
- **stderr** carries everything else: errors, warnings, progress bars (in a terminal) and the
  package's log lines (always, so a log file shows what a long step is doing).
- **Exit codes**: :data:`EXIT_OK` 0, :data:`EXIT_ERROR` 1 (a documented error: the message names
  the field and a fix), :data:`EXIT_USAGE` 2 (unknown option, missing argument: click's usage
  errors), :data:`EXIT_HEALTH` 3 (sampler health problems under ``--strict``).
- ``--quiet`` keeps results and errors only; ``--verbose`` adds debug lines and the third-party
  warnings (PyTensor, ArviZ) that are hidden by default.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_HEALTH = 0, 1, 2, 3

out = Console(soft_wrap=True)
"""Results (stdout)."""
err = Console(stderr=True, soft_wrap=True)
"""Errors, warnings, progress and log lines (stderr)."""

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])


@dataclass
class Verbosity:
    """The root options (``bayesmix --quiet`` / ``--verbose``) as the commands see them."""

    quiet: bool = False
    verbose: bool = False
    started: float = field(default_factory=time.perf_counter)


verbosity = Verbosity()


def fail(error: BaseException, code: int = EXIT_ERROR) -> NoReturn:
    """Print a documented error on stderr (escaped: user text may look like rich markup) and exit."""
    err.print(f"[bold red]error[/]: {escape(str(error))}", soft_wrap=True, highlight=False)
    raise typer.Exit(code=code)


def note(text: str) -> None:
    """A progress or context line on stderr (rich markup allowed), unless ``--quiet``."""
    if not verbosity.quiet:
        err.print(text, soft_wrap=True, highlight=False)


def show_progress() -> bool:
    """Whether to draw progress bars: on a terminal, unless ``--quiet`` (log lines show progress otherwise)."""
    return err.is_terminal and not verbosity.quiet


def _plain(value: Any) -> Any:
    """JSON-safe form of numpy / pandas scalars, paths and non-finite floats (as null)."""
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):  # pandas Series / DataFrame
        return value.to_dict()
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None, recursively (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def emit_json(payload: dict[str, Any]) -> None:
    """Print ``payload`` as one JSON object on stdout (the whole of stdout under ``--json``)."""
    text = json.dumps(_finite(json.loads(json.dumps(payload, default=_plain))), indent=2, allow_nan=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def health_dict(health: Any) -> dict[str, Any]:
    """A :class:`~bayesmix.inference.SamplerHealth` as JSON fields, with ``ok``."""
    from dataclasses import asdict

    return {"ok": health.ok, **asdict(health)}


class _LogLines(logging.Handler):
    """The ``bayesmix`` loggers' lines on stderr, with the seconds since the command started."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            seconds = time.perf_counter() - verbosity.started
            text = escape(record.getMessage())
            if record.levelno >= logging.WARNING:
                err.print(f"[yellow]warning[/]: {text}", soft_wrap=True, highlight=False)
            else:
                err.print(f"[dim]{seconds:7.1f}s {text}[/dim]", soft_wrap=True, highlight=False)
        except Exception:  # a log line must never stop a command
            self.handleError(record)


def _from_bayesmix(category: type[Warning], filename: str) -> bool:
    return category.__module__.startswith("bayesmix") or str(Path(filename).resolve()).startswith(_PACKAGE_DIR)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings on stderr as one line; third-party ones only with ``--verbose``."""
    if not verbosity.verbose and not _from_bayesmix(category, filename):
        return
    err.print(f"[yellow]warning[/]: {escape(str(message))}", soft_wrap=True, highlight=False)


#: third-party loggers that print on every fit (e.g. PyTensor's "Using NumPy C-API based
#: implementation for BLAS functions"): shown only with --verbose
QUIET_LOGGERS = ("pytensor", "pymc", "arviz", "numba", "h5py", "matplotlib")


def configure(ctx: typer.Context, quiet: bool, verbose: bool) -> None:
    """Set up stderr logging and warnings for one command; undone when the command ends."""
    verbosity.quiet, verbosity.verbose, verbosity.started = quiet, verbose and not quiet, time.perf_counter()
    log = logging.getLogger("bayesmix")
    handler = _LogLines()
    saved = {"level": log.level, "show": warnings.showwarning}
    saved_third = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    log.addHandler(handler)
    log.setLevel(logging.WARNING if quiet else logging.DEBUG if verbosity.verbose else logging.INFO)
    for name in QUIET_LOGGERS:
        third = logging.getLogger(name)
        third.setLevel(logging.WARNING if verbosity.verbose else logging.ERROR)
        if verbosity.verbose:
            third.addHandler(handler)
    warnings.showwarning = _show_warning

    def restore() -> None:
        log.removeHandler(handler)
        log.setLevel(saved["level"])
        warnings.showwarning = saved["show"]
        for name, level in saved_third.items():
            logging.getLogger(name).setLevel(level)
            logging.getLogger(name).removeHandler(handler)

    ctx.call_on_close(restore)

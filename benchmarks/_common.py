"""Shared helpers of the benchmark scripts: data location, timing, table printing."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """``with timed() as t: ...`` then ``t["seconds"]``."""
    box: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["seconds"] = time.perf_counter() - start


def machine() -> str:
    """One line describing this machine."""
    import os

    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def print_table(rows: list[dict], columns: list[str], title: str) -> None:
    """Print rows as an aligned text table."""
    print(f"\n{title}")
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for row in rows:
        print("  ".join(_fmt(row.get(c)).ljust(widths[c]) for c in columns))


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | np.floating):
        return f"{value:.4f}"
    return str(value)


def print_json(figures: dict) -> None:
    """The last line of every benchmark: one JSON object."""
    clean = {
        k: (None if v is None else (float(v) if isinstance(v, float | np.floating) else v))
        for k, v in figures.items()
    }
    print(json.dumps(clean))

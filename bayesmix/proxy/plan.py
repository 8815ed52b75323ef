"""Planned runs: a mixture, a model from the ladder, a seed, and how long to train.

A plan file is YAML or JSON::

    defaults: {model: cpu-s, steps: 200, seed: 0}
    runs:
      - {id: r01, mixture: {legal: 0.5, code: 0.5}}
      - {mixture: {legal: 0.1, code: 0.9}, model: cpu-xs}

or CSV with columns ``id`` (optional), ``model``, ``steps``, ``seed`` and one ``mix_<domain>``
column per domain (the layout the designer writes). Runs without an id get
``<model>-<mixture hash>-s<seed>-n<steps>``.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bayesmix.errors import InputError


@dataclass(frozen=True)
class RunSpec:
    """One planned run.

    Parameters
    ----------
    id
        Unique id within the study.
    mixture
        ``{domain: proportion}`` summing to 1 (missing domains get 0).
    model
        Name of a ladder entry.
    steps
        Optimizer steps.
    seed
        Seed of initialisation and data order.
    """

    id: str
    mixture: dict[str, float]
    model: str
    steps: int
    seed: int = 0

    @staticmethod
    def make(
        mixture: Mapping[str, float], model: str, steps: int, seed: int = 0, id: str | None = None
    ) -> RunSpec:
        """Validate and normalise a run (drops zero shares, rounds to 12 digits, fills the id)."""
        if not isinstance(mixture, Mapping):
            raise InputError("mixture", f"got {mixture!r}", "give a mapping {domain: proportion}")
        try:
            mix = {str(d): float(v) for d, v in mixture.items() if float(v) != 0.0}
        except (TypeError, ValueError):
            raise InputError(
                "mixture", f"{dict(mixture)} has non-numeric proportions", "give numbers, e.g. {legal: 0.5}"
            ) from None
        total = sum(mix.values())
        if not mix or any(not math.isfinite(v) or v < 0 for v in mix.values()) or abs(total - 1.0) > 1e-3:
            raise InputError(
                "mixture",
                f"{dict(mixture)} is not a distribution over domains",
                "give non-negative proportions summing to 1",
            )
        mix = {d: round(v / total, 12) for d, v in sorted(mix.items())}
        for name, value, low in (("steps", steps, 1), ("seed", seed, 0)):
            if not _integral(value) or int(value) < low:
                raise InputError(name, f"is {value!r}", f"use an integer >= {low}")
        if not isinstance(model, str) or not model:
            raise InputError("model", f"is {model!r}", "name a ladder entry, e.g. cpu-s")
        if id is None:
            digest = hashlib.sha256(json.dumps(mix, sort_keys=True).encode()).hexdigest()[:8]
            id = f"{model}-{digest}-s{int(seed)}-n{int(steps)}"
        return RunSpec(id=str(id), mixture=mix, model=str(model), steps=int(steps), seed=int(seed))


def _integral(value: Any) -> bool:
    """True for ints and integral floats (YAML and CSV give either), never for bools or text."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer()


def grid(
    mixtures: Sequence[Mapping[str, float]], models: Sequence[str], steps: int, seeds: Sequence[int] = (0,)
) -> list[RunSpec]:
    """Return every (mixture, model, seed) combination as runs."""
    return [RunSpec.make(m, model, steps, seed) for model in models for m in mixtures for seed in seeds]


def load_plan(path: str | Path, defaults: Mapping[str, Any] | None = None) -> list[RunSpec]:
    """Read a plan file (YAML, JSON or CSV; see the module docstring).

    Parameters
    ----------
    path
        The plan file.
    defaults
        Values for ``model``, ``steps`` and ``seed`` when the file gives none.

    Returns
    -------
    list of RunSpec
        Runs in file order; duplicate ids are refused.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("plan", f"{p} does not exist", "give a YAML, JSON or CSV plan file")
    base = dict(defaults or {})
    rows: list[dict[str, Any]]
    if p.suffix.lower() == ".csv":
        import pandas as pd

        try:
            frame = pd.read_csv(p)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise InputError(
                str(p),
                f"is not a readable CSV ({type(exc).__name__}: {exc})",
                "write a CSV with a header row",
            ) from None
        mix_cols = [c for c in frame.columns if c.startswith("mix_")]
        if not mix_cols:
            raise InputError(str(p), "has no mix_<domain> columns", "add one mix_<domain> column per domain")
        rows = []
        for rec in frame.to_dict("records"):
            row = {k: v for k, v in rec.items() if k in ("id", "model", "steps", "seed") and pd.notna(v)}
            row["mixture"] = {c[4:]: rec[c] for c in mix_cols}
            rows.append(row)
    else:
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InputError(
                str(p), f"is not valid YAML/JSON ({type(exc).__name__})", "fix the file's syntax"
            ) from None
        if isinstance(data, list):
            data = {"runs": data}
        if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
            raise InputError(str(p), "has no 'runs' list", "write runs: [{mixture: {...}}, ...]")
        defaults_in_file = data.get("defaults") or {}
        if not isinstance(defaults_in_file, dict):
            raise InputError(
                f"{p} defaults", f"got {defaults_in_file!r}", "write defaults: {model: ..., steps: ...}"
            )
        base |= defaults_in_file
        rows = data["runs"]
        bad = [i for i, row in enumerate(rows) if not isinstance(row, dict)]
        if bad:
            raise InputError(
                f"{p} run {bad[0]}", "is not a mapping", "write each run as {mixture: {...}, ...}"
            )
    runs = []
    for i, row in enumerate(rows):
        merged = {**base, **row}
        missing = [k for k in ("mixture", "model", "steps") if k not in merged]
        if missing:
            raise InputError(f"{p} run {i}", f"lacks {missing}", "give them in the run or under defaults")
        runs.append(
            RunSpec.make(
                merged["mixture"],
                merged["model"],
                merged["steps"],
                merged.get("seed", 0),
                None if merged.get("id") is None else str(merged["id"]),
            )
        )
    ids = [r.id for r in runs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise InputError(
            str(p), f"repeats run ids {dupes}", "give every run a unique id (or vary seed/steps)"
        )
    return runs


def save_plan(runs: Sequence[RunSpec], path: str | Path) -> Path:
    """Write runs as a YAML plan file that :func:`load_plan` reads back."""
    p = Path(path)
    p.write_text(
        yaml.safe_dump(
            {
                "runs": [
                    {"id": r.id, "mixture": r.mixture, "model": r.model, "steps": r.steps, "seed": r.seed}
                    for r in runs
                ]
            },
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    return p

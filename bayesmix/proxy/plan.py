"""Planned runs: a mixture, a model from the ladder, a seed, and how long to train.

A plan file is YAML or JSON::

    defaults: {model: cpu-s, steps: 200, seed: 0}
    runs:
      - {id: r01, mixture: {legal: 0.5, code: 0.5}}
      - {mixture: {legal: 0.1, code: 0.9}, model: cpu-xs}

or CSV with columns ``id`` (optional), ``model``, ``steps``, ``seed`` and one ``mix_<domain>``
column per domain (the layout the designer writes). Runs without an id get
``<model>-<mixture hash>-s<seed>-n<steps>``.

A multi-phase run (a pretraining mixture, then another for the last part of training, as in
mid-training or annealing) gives ``phases`` instead of ``mixture`` in YAML/JSON: each phase a
mixture and the optimizer step it starts at (the first at 0; a number below 1 is a fraction of
the run's steps)::

    runs:
      - {id: p01, phases: [{start: 0, mixture: {legal: 0.5, code: 0.5}},
                           {start: 150, mixture: {code: 1.0}}]}

Its ``mixture`` is then the token-weighted average of the phases (what a single-phase law sees).
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

from bayesmix.errors import InputError

#: the most optimizer steps a run may ask for (more is a typo, and overflows the ledger's token counts)
MAX_STEPS = 1_000_000_000
#: seeds are stored in the ledger as SQLite integers
MAX_SEED = 2**63 - 1
MAX_ID_LENGTH = 200


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
    phases
        ``((start_step, mixture), ...)`` for a multi-phase run, the first starting at step 0 and
        each later one at a larger step below ``steps``; empty for a single-phase run. ``mixture``
        is then the phases' token-weighted average.

    Notes
    -----
    Run ids name files in the study (``checkpoints/<id>.pt``), so they must be safe file names:
    1-200 characters, no path separators or control characters, not starting with a dot.
    """

    id: str
    mixture: dict[str, float]
    model: str
    steps: int
    seed: int = 0
    phases: tuple[tuple[int, dict[str, float]], ...] = ()

    def mixture_at(self, step: int) -> dict[str, float]:
        """The mixture trained on at optimizer step ``step`` (0-based)."""
        current = self.mixture
        for start, mixture in self.phases:
            if step >= start:
                current = mixture
        return current

    def phase_index(self, step: int) -> int:
        """Index of the phase that step ``step`` (0-based) belongs to (0 for a single-phase run)."""
        return max((i for i, (start, _) in enumerate(self.phases) if step >= start), default=0)

    @staticmethod
    def make(
        mixture: Mapping[str, float] | None,
        model: str,
        steps: int,
        seed: int = 0,
        id: str | None = None,
        phases: Sequence[Mapping[str, Any] | tuple[int, Mapping[str, float]]] | None = None,
    ) -> RunSpec:
        """Validate and normalise a run (drops zero shares, rounds to 12 digits, fills the id).

        Give ``mixture`` for a single-phase run, or ``phases`` (``[{start: step, mixture: {...}},
        ...]`` or ``[(step, mixture), ...]``) and ``mixture=None`` for a multi-phase run.
        """
        for name, value, low, high in (("steps", steps, 1, MAX_STEPS), ("seed", seed, 0, MAX_SEED)):
            if not _integral(value) or not low <= int(value) <= high:
                raise InputError(name, f"is {value!r}", f"use an integer from {low} to {high:,}")
        if phases is not None:
            if mixture is not None:
                raise InputError(
                    "mixture", "is given beside phases", "give either mixture (one phase) or phases, not both"
                )
            schedule = _check_phases(phases, int(steps))
            if len(schedule) == 1:
                mixture, schedule = schedule[0][1], ()
            else:
                mixture = _average_mixture(schedule, int(steps))
        else:
            schedule = ()
        mix = _check_mixture(mixture)
        if not isinstance(model, str) or not model:
            raise InputError("model", f"is {model!r}", "name a ladder entry, e.g. cpu-s")
        if id is None:
            key: Any = mix if not schedule else [[s, m] for s, m in schedule]
            digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
            id = f"{model}-{digest}-s{int(seed)}-n{int(steps)}"
        check_run_id(str(id))
        return RunSpec(
            id=str(id), mixture=mix, model=str(model), steps=int(steps), seed=int(seed), phases=tuple(schedule)
        )

    def to_dict(self) -> dict[str, Any]:
        """The run as a plan-file entry (``phases`` instead of ``mixture`` for a multi-phase run)."""
        entry: dict[str, Any] = {"id": self.id}
        if self.phases:
            entry["phases"] = [{"start": s, "mixture": dict(m)} for s, m in self.phases]
        else:
            entry["mixture"] = dict(self.mixture)
        return entry | {"model": self.model, "steps": self.steps, "seed": self.seed}


def _check_mixture(mixture: Any) -> dict[str, float]:
    """A validated mixture: zero shares dropped, sorted, normalised and rounded to 12 digits."""
    if not isinstance(mixture, Mapping):
        raise InputError("mixture", f"got {mixture!r}", "give a mapping {domain: proportion}")
    unnamed = [d for d in mixture if d is None or not str(d).strip()]
    if unnamed:
        raise InputError(
            "mixture", f"{dict(mixture)} has an unnamed domain", "name every domain, e.g. legal=0.5"
        )
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
    return {d: round(v / total, 12) for d, v in sorted(mix.items())}


def _check_phases(
    phases: Sequence[Mapping[str, Any] | tuple[int, Mapping[str, float]]], steps: int
) -> tuple[tuple[int, dict[str, float]], ...]:
    """Validated phases ``((start, mixture), ...)``: starts 0 < ... < steps, in order."""
    fix = "write phases: [{start: 0, mixture: {...}}, {start: 150, mixture: {...}}] with increasing starts"
    if isinstance(phases, (str, bytes, Mapping)) or not isinstance(phases, Sequence) or not phases:
        raise InputError("phases", f"got {phases!r}", fix)
    out = []
    for i, phase in enumerate(phases):
        if isinstance(phase, Mapping):
            if set(phase) - {"start", "mixture"} or "mixture" not in phase or "start" not in phase:
                raise InputError(f"phases[{i}]", f"has keys {sorted(phase)}", fix)
            start, mixture = phase["start"], phase["mixture"]
        elif isinstance(phase, (tuple, list)) and len(phase) == 2:
            start, mixture = phase
        else:
            raise InputError(f"phases[{i}]", f"got {phase!r}", fix)
        if isinstance(start, numbers.Real) and not isinstance(start, bool) and 0 < start < 1:
            start = round(start * steps)  # a fraction of the run's steps, as on the command line
        if not _integral(start):
            raise InputError(
                f"phases[{i}].start",
                f"is {start!r}",
                "give the optimizer step the phase starts at, or a fraction of the steps below 1 (e.g. 0.8)",
            )
        out.append((int(start), _check_mixture(mixture)))
    starts = [s for s, _ in out]
    if starts[0] != 0 or any(b <= a for a, b in pairwise(starts)) or starts[-1] >= steps:
        raise InputError(
            "phases",
            f"start at steps {starts} for a run of {steps} steps",
            "start the first phase at 0 and each later one at a larger step below steps, e.g. "
            f"{[round(steps * k / len(starts)) for k in range(len(starts))]}",
        )
    return tuple(out)


def _average_mixture(schedule: Sequence[tuple[int, Mapping[str, float]]], steps: int) -> dict[str, float]:
    """The token-weighted average of the phases' mixtures."""
    bounds = [s for s, _ in schedule] + [steps]
    total: dict[str, float] = {}
    for (start, mixture), end in zip(schedule, bounds[1:], strict=True):
        for d, v in mixture.items():
            total[d] = total.get(d, 0.0) + v * (end - start) / steps
    return total


def check_run_id(run_id: Any, field: str = "id") -> None:
    """Raise :class:`InputError` unless ``run_id`` is a safe file name (see :class:`RunSpec`)."""
    text = run_id if isinstance(run_id, str) else None
    if (
        text is None
        or not 1 <= len(text) <= MAX_ID_LENGTH
        or text != text.strip()
        or text.startswith(".")
        or any(c in text for c in "/\\")
        or any(ord(c) < 32 or ord(c) == 127 for c in text)
    ):
        raise InputError(
            field,
            f"run id {run_id!r} is not a safe file name (it names the run's checkpoint file)",
            "use 1-200 characters without '/', '\\' or control characters, not starting with '.' "
            "or a space, e.g. r01",
        )


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
        problem = "is not a file" if p.exists() else "does not exist"
        raise InputError("plan", f"{p} {problem}", "give a YAML, JSON or CSV plan file")
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
        missing = [k for k in ("model", "steps") if k not in merged]
        if "mixture" not in merged and "phases" not in merged:
            missing.insert(0, "mixture")
        if missing:
            raise InputError(f"{p} run {i}", f"lacks {missing}", "give them in the run or under defaults")
        runs.append(
            RunSpec.make(
                merged.get("mixture"),
                merged["model"],
                merged["steps"],
                merged.get("seed", 0),
                None if merged.get("id") is None else str(merged["id"]),
                phases=merged.get("phases"),
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
                "runs": [r.to_dict() for r in runs]
            },
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    return p

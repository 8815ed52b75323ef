"""``export_schedule``: a multi-phase schedule (a mixture per phase) in a training framework's format.

nanotron trains a schedule natively (``data_stages``, each with its ``start_training_step``), and
``json``/``yaml`` record the phases; for the other frameworks, which blend one mixture per run,
the text is one configuration per phase (each with its share of the token budget), to be used
for the training stages in turn (resume the checkpoint with the next phase's data blend).
Epochs are counted over the whole schedule: a domain trained in both phases uses its data in both.
"""

from __future__ import annotations

import itertools
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bayesmix.errors import InputError
from bayesmix.optimise.export.api import FORMATS, Export, export_mixture, write_atomic
from bayesmix.optimise.export.frameworks import nanotron_config
from bayesmix.optimise.export.shares import export_shares
from bayesmix.optimise.export.tokens import RepetitionWarning, parse_tokens, read_available


@dataclass(frozen=True)
class ScheduleExport:
    """A schedule rendered in one format.

    Attributes
    ----------
    format
        One of :data:`~bayesmix.optimise.export.FORMATS`.
    text
        What the framework reads (one document for ``json``, ``yaml``, ``nanotron``; one section
        per phase otherwise).
    starts
        Fraction of the run's tokens before each phase (0 first).
    phases
        Each phase's :class:`~bayesmix.optimise.export.Export` (its shares and, with a budget,
        its tokens).
    epochs
        ``domain -> epochs`` over the whole schedule, when ``available`` was given.
    """

    format: str
    text: str
    starts: list[float]
    phases: list[Export]
    epochs: dict[str, float] | None = None

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write :attr:`text` to ``path`` atomically."""
        return write_atomic(path, self.text)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: format, phases (start, mixture, tokens), epochs and text."""
        return {
            "format": self.format,
            "phases": [
                {"start": s, "mixture": dict(e.shares), "tokens": None if e.plan is None else e.plan.tokens}
                for s, e in zip(self.starts, self.phases, strict=True)
            ],
            "epochs": self.epochs,
            "text": self.text,
        }


def export_schedule(
    schedule: Any,
    fmt: str = "json",
    *,
    budget: str | float | int | None = None,
    steps: int | None = None,
    available: Any = None,
    paths: str | Mapping[str, str] | None = None,
    seed: int = 0,
    global_batch_size: str | int | None = None,
    max_epochs: float | None = None,
    digits: int = 6,
) -> ScheduleExport:
    """A schedule in a framework's format, with each phase's tokens for a budget.

    Parameters
    ----------
    schedule
        ``[(start, mixture), ...]`` (the fraction of tokens before each phase, 0 first) or a
        :class:`~bayesmix.optimise.schedule.ScheduleOptimum`.
    fmt
        One of :data:`~bayesmix.optimise.export.FORMATS`.
    budget
        Training tokens of the whole run (``300B``, ``2T``); each phase gets its share.
    steps
        Optimizer steps of the whole run: required by ``nanotron`` (each stage's
        ``start_training_step``).
    available, paths, seed, global_batch_size, max_epochs, digits
        As in :func:`~bayesmix.optimise.export_mixture`; ``max_epochs`` applies to each
        domain's epochs over the whole schedule.

    Returns
    -------
    ScheduleExport

    Raises
    ------
    InputError
        A bad schedule, format, budget, available tokens or paths; ``nanotron`` without
        ``steps``; ``available`` without ``budget``; a domain over ``max_epochs``.
    """
    phases = schedule.schedule() if hasattr(schedule, "schedule") else schedule
    if isinstance(phases, (str, Mapping)) or not isinstance(phases, Sequence) or not phases:
        raise InputError("schedule", f"got {schedule!r}", "give [(start, mixture), ...] with the first start 0")
    starts = [_fraction(p[0], i) for i, p in enumerate(phases)]
    if starts[0] != 0 or any(b <= a for a, b in itertools.pairwise(starts)) or starts[-1] >= 1:
        raise InputError("schedule", f"phase starts {starts}", "start at 0 and increase below 1, e.g. 0 and 0.8")
    if fmt not in FORMATS:
        raise InputError("format", f"unknown format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    if fmt == "nanotron" and steps is None:
        raise InputError("steps", "nanotron stages start at an optimizer step", "give the run's steps, e.g. steps=100000")
    total = None if budget is None else parse_tokens(budget)
    if available is not None and total is None:
        raise InputError("available", "epochs need a token budget", "give the budget too, e.g. 300B")
    ends = [*starts[1:], 1.0]
    exports = []
    for (_, mixture), start, end in zip(phases, starts, ends, strict=True):
        phase_budget = None if total is None else max(1, round(total * (end - start)))
        inner_fmt = "json" if fmt in ("json", "yaml", "nanotron") else fmt
        inner_paths = paths if fmt not in ("json", "yaml", "nanotron") else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RepetitionWarning)  # epochs are counted over the schedule below
            exports.append(
                export_mixture(mixture, inner_fmt, budget=phase_budget, paths=inner_paths, seed=seed,
                               global_batch_size=global_batch_size, digits=digits)
            )
    epochs = _epochs(exports, available, max_epochs) if available is not None else None
    text = _render(fmt, starts, exports, paths, steps, seed, digits, epochs)
    return ScheduleExport(format=fmt, text=text, starts=starts, phases=exports, epochs=epochs)


def _fraction(value: Any, i: int) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"schedule[{i}]", f"start {value!r} is not a number", "give a fraction of tokens, e.g. 0.8") from None
    return out


def _epochs(exports: list[Export], available: Any, max_epochs: float | None) -> dict[str, float]:
    have = read_available(available)
    used: dict[str, int] = {}
    for export in exports:
        for domain, tokens in (export.plan.tokens if export.plan else {}).items():
            used[domain] = used.get(domain, 0) + int(tokens)
    missing = sorted(d for d in used if not have.get(d))
    if missing:
        raise InputError("available", f"has no tokens for {missing}", "give every trained domain's tokens, e.g. web=2T")
    epochs = {d: used[d] / have[d] for d in used}
    if max_epochs is not None and any(e > max_epochs for e in epochs.values()):
        over = {d: round(e, 2) for d, e in epochs.items() if e > max_epochs}
        raise InputError("max_epochs", f"the schedule repeats {over} epochs", "lower those shares or raise max_epochs")
    repeated = {d: e for d, e in epochs.items() if e > 1.0}
    if repeated:
        warnings.warn(
            "data repeated over the schedule: " + ", ".join(f"{d} {e:.2f} epochs" for d, e in repeated.items()),
            RepetitionWarning,
            stacklevel=3,
        )
    return epochs


def _render(
    fmt: str,
    starts: list[float],
    exports: list[Export],
    paths: str | Mapping[str, str] | None,
    steps: int | None,
    seed: int,
    digits: int,
    epochs: dict[str, float] | None,
) -> str:
    if fmt in ("json", "yaml"):
        record: dict[str, Any] = {
            "phases": [
                {"start": s, "mixture": dict(e.shares), **({"tokens": e.plan.tokens} if e.plan else {})}
                for s, e in zip(starts, exports, strict=True)
            ]
        }
        if epochs is not None:
            record["epochs"] = {d: round(e, 4) for d, e in epochs.items()}
        return json.dumps(record, indent=2) + "\n" if fmt == "json" else yaml.safe_dump(record, sort_keys=False)
    if fmt == "nanotron":
        from bayesmix.optimise.export.frameworks import resolve_paths

        if paths is None:
            raise InputError("paths", "nanotron needs a data path per domain", "give a template such as /data/{domain}")
        stages = []
        for i, (start, export) in enumerate(zip(starts, exports, strict=True)):
            shares = export_shares(export.shares, digits)
            one = yaml.safe_load(nanotron_config(shares, resolve_paths(list(shares), paths), seed=seed, stage=f"phase {i + 1}", digits=digits))
            stage = one["data_stages"][0]
            stage["start_training_step"] = 1 + round(start * int(steps))
            stages.append(stage)
        head = "# nanotron data stages (Nanoset blends), one per phase of the bayesmix schedule\n"
        return head + yaml.safe_dump({"data_stages": stages}, sort_keys=False, default_flow_style=False)
    sections = []
    for i, (start, end, export) in enumerate(zip(starts, [*starts[1:], 1.0], exports, strict=True)):
        sections.append(f"# ---- phase {i + 1}: from {start:.1%} to {end:.1%} of the run's tokens ----\n{export.text.rstrip()}\n")
    return "\n".join(sections)

"""Import runs trained elsewhere into a project's ledger, and export the ledger.

An imported table is the tidy long layout of :class:`bayesmix.CurveTable`: one row per (run,
validation domain, checkpoint) with ``run``, ``domain``, ``loss``, ``model_size`` (non-embedding
parameters), ``tokens`` (or ``step`` with ``tokens_per_step``) and the run's mixture as
``mix_<domain>`` columns. A run with one checkpoint is accepted (it serves the mixing law; the
nested fit needs 3 or more, and leaves out runs with fewer). Imported runs are stored as finished
runs of model ``"imported-<model_size>"`` with corpus and tokenizer ``"imported"``; a checkpoint's
step is the table's ``step`` column, else ``tokens / tokens_per_step``, else its rank in the run.
Every run is checked against the ledger before any is written (a conflict adds nothing), and a
run is marked finished only after all its evaluations are written, so an interrupted import is
completed by importing the same table again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.data.curves import CurveTable
from bayesmix.data.ledger import UNKNOWN_BPB, RunRecord
from bayesmix.data.runs import read_table
from bayesmix.errors import InputError
from bayesmix.project.project import Project


def import_runs(project: Project, path: str | Path, *, tokens_per_step: float | None = None) -> list[str]:
    """Validate a long run table and add its runs (finished, with every checkpoint) to the ledger.

    Parameters
    ----------
    project
        The project.
    path
        CSV or Parquet file (see the module docstring).
    tokens_per_step
        Tokens per optimiser step, when the table has ``step`` but no ``tokens``.

    Returns
    -------
    list of str
        The ids of the runs added (runs already in the ledger with the same settings are skipped).

    Raises
    ------
    InputError
        A bad table (named column and row), training domains the project does not have, or a run
        id that exists in the ledger with another mixture.
    """
    raw, table = _read_runs(path, tokens_per_step, "path")
    return _add_runs(project, raw, table, tokens_per_step)


def _read_runs(path: str | Path, tokens_per_step: float | None, field: str) -> tuple[pd.DataFrame, CurveTable]:
    """The file's raw frame and its curve table (one checkpoint and one size suffice), read once.

    The curve table and the checkpoints' steps both come from the one frame.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(field, f"{path} does not exist", "give a CSV or Parquet long run table")
    raw = read_table(path, "table")
    return raw, CurveTable.from_long(raw, tokens_per_step=tokens_per_step, min_checkpoints=1, min_sizes=1)


def _add_runs(project: Project, raw: pd.DataFrame, table: CurveTable, tokens_per_step: float | None) -> list[str]:
    """Check a read run table against the project and the ledger, then add its runs (see :func:`import_runs`)."""
    unknown = sorted(set(table.train_domains) - set(project.domains))
    unknown += sorted(set(table.domains) - set(project.validation_domains) - set(unknown))
    if unknown:
        raise InputError(
            "domains",
            f"{unknown} are not domains of project {project.folder} ({project.domains})",
            "rename the columns/domains to the project's, or create a project whose corpus has them",
        )
    steps = _checkpoint_steps(raw, table, tokens_per_step)
    ledger = project.study.ledger
    records = []
    for run_id, rows in table.frame.groupby("run", sort=True):
        info = table.runs.loc[run_id]
        mixture = {d: float(v) for d, v in table.mixtures.loc[info["mixture"]].items() if float(v) > 0}
        size = round(float(info["model_size"]))
        record = RunRecord(
            id=str(run_id),
            mixture=mixture,
            model_name=f"imported-{size}",
            model_config={},
            train_config={},
            params_non_embedding=size,
            params_total=size,
            flops_per_token=6.0 * size,
            tokens=int(rows["tokens"].max()),
            seed=0,
            corpus="imported",
            tokenizer="imported",
            status="running",
        )
        records.append((record, rows))
    # check every run against the ledger before writing any: a conflict adds nothing
    existing = {r.id: r for r in ledger.runs()}
    for record, _ in records:
        old = existing.get(record.id)
        if old is not None and (
            old.mixture != record.mixture or old.params_non_embedding != record.params_non_embedding
        ):
            raise InputError(
                f"run {record.id!r}",
                "is already in the ledger with another mixture or model size",
                "rename the run in the table, or import it into another project",
            )
    added = []
    for record, rows in records:
        old = existing.get(record.id)
        if old is not None and old.status == "finished":
            continue  # imported before: nothing to do
        ledger.add_run(record)  # as running: finished only once all its evaluations are written
        for tokens in sorted(rows["tokens"].unique()):
            at = rows[rows["tokens"] == tokens]
            # bits per byte are unknown for imported runs: stored as UNKNOWN_BPB (-1), exported as NaN
            ledger.record_eval(
                record.id,
                steps[(record.id, float(tokens))],
                int(tokens),
                {d: (float(v), UNKNOWN_BPB) for d, v in zip(at["domain"], at["loss"], strict=True)},
            )
        ledger.set_status(record.id, "finished")
        added.append(record.id)
    return added


#: the default target of a project of runs trained elsewhere: this many times the largest run's
#: model size and tokens (ln 10 = 2.3 e-folds, inside the range the target checks accept unwarned)
TARGET_FACTOR = 10.0


def init_from_runs(
    folder: str | Path,
    path: str | Path,
    *,
    tokens_per_step: float | None = None,
    target: Mapping[str, float] | None = None,
    project_settings: Mapping[str, Any] | None = None,
) -> tuple[Project, list[str]]:
    """Create a project for runs trained elsewhere and import them: no corpus, no text needed.

    The project's corpus is ``{kind: external, domains: <the runs' mixture domains>, validation:
    <their loss domains>}``: validation sets are free (downstream sets, more sets than training
    domains, as in RegMix's 17 losses for 13 domains). The target scale defaults to
    :data:`TARGET_FACTOR` times the largest run's model size and tokens, so the optimum is chosen
    beyond every run; the reference mixture defaults to uniform (there is no text to weigh) and
    ``min_step`` to 0 (the runs' own checkpoints are kept).

    Parameters
    ----------
    folder
        The new project folder (refused when it already holds a ``study.yaml``).
    path
        Long run table (CSV/Parquet) in the layout of :func:`import_runs`.
    tokens_per_step
        Tokens per optimiser step, when the table has ``step`` but no ``tokens``.
    target
        ``{"model_size": N, "tokens": D}`` (non-embedding parameters, tokens) instead of the default.
    project_settings
        Further keys of the ``project:`` section (see :class:`~bayesmix.project.ProjectSettings`).

    Returns
    -------
    (Project, list of str)
        The project and the ids of the imported runs.

    Raises
    ------
    InputError
        The folder holds a project already, or the table is refused (nothing is created then).
    """
    folder, path = Path(folder), Path(path)
    if (folder / "study.yaml").exists():
        raise InputError(
            "PROJECT", f"{folder} holds a project already", f"import into it with `bayesmix runs import {folder} {path}`"
        )
    raw, table = _read_runs(path, tokens_per_step, "TABLE")
    largest = {
        "model_size": float(table.runs["model_size"].max()),
        "tokens": float(table.frame["tokens"].max()),
    }
    chosen = dict(target) if target else {k: float(f"{TARGET_FACTOR * v:.3g}") for k, v in largest.items()}
    section = {"target": chosen, "reference": "uniform", "min_step": 0, **dict(project_settings or {})}
    corpus = {"kind": "external", "domains": list(table.train_domains), "validation": list(table.domains)}
    created = not folder.exists()
    try:
        project = Project.create(folder, {"corpus": corpus, "project": section})
        added = _add_runs(project, raw, table, tokens_per_step)
    except BaseException:
        for name in ("study.yaml", "ledger.sqlite"):
            (folder / name).unlink(missing_ok=True)
        if created and folder.exists() and not any(folder.iterdir()):
            folder.rmdir()
        raise
    return project, added


def _checkpoint_steps(
    raw: pd.DataFrame, table: CurveTable, tokens_per_step: float | None
) -> dict[tuple[str, float], int]:
    """The optimiser step of each (run, tokens) checkpoint.

    The table's ``step`` column, else ``tokens / tokens_per_step``, else the checkpoint's rank in
    its run (1, 2, ...).
    """
    raw = raw.copy()
    raw.columns = [str(c) for c in raw.columns]
    if "step" in raw.columns and "tokens" in raw.columns:
        steps = pd.to_numeric(raw["step"], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(steps) | (steps < 0) | (steps != np.round(steps))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                "step",
                f"{int(bad.sum())} values are not whole numbers >= 0 (row {row}: {raw['step'].iloc[row]!r})",
                "fix those rows, or drop the step column (steps are then numbered by checkpoint)",
            )
        tokens = pd.to_numeric(raw["tokens"], errors="coerce").to_numpy(dtype=float)
        return {(str(r), float(t)): int(s) for r, t, s in zip(raw["run"], tokens, steps, strict=True)}
    if tokens_per_step:
        return {
            (str(r), float(t)): round(float(t) / tokens_per_step)
            for r, t in zip(table.frame["run"], table.frame["tokens"], strict=True)
        }
    out = {}
    for run, rows in table.frame.groupby("run"):
        for rank, tokens in enumerate(sorted(rows["tokens"].unique()), start=1):
            out[(str(run), float(tokens))] = rank
    return out


def export_runs(project: Project, path: str | Path, *, include_unfinished: bool = False) -> Path:
    """Write the ledger's long table (every checkpoint of every finished run) to CSV or Parquet."""
    path = Path(path)
    frame: pd.DataFrame = project.study.ledger.to_long_table(include_unfinished=include_unfinished)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise InputError(
            "out", f"{path.name} is neither .csv nor .parquet", "name the file *.csv or *.parquet"
        )
    return path

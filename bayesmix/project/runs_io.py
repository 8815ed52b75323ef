"""Import runs trained elsewhere into a project's ledger, and export the ledger.

An imported table is the tidy long layout of :class:`bayesmix.CurveTable`: one row per (run,
validation domain, checkpoint) with ``run``, ``domain``, ``loss``, ``model_size`` (non-embedding
parameters), ``tokens`` (or ``step`` with ``tokens_per_step``) and the run's mixture as
``mix_<domain>`` columns. A run with one checkpoint is accepted (it serves the mixing law; the
nested fit needs 3 or more). Imported runs are stored as finished runs of model ``"imported"``
with the file's digest as their corpus, so the ledger says where they came from.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from bayesmix.data.curves import CurveTable
from bayesmix.data.ledger import UNKNOWN_BPB, RunRecord
from bayesmix.errors import InputError
from bayesmix.project.project import Project


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


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
    path = Path(path)
    if not path.is_file():
        raise InputError("path", f"{path} does not exist", "give a CSV or Parquet file")
    table = CurveTable.from_long(path, tokens_per_step=tokens_per_step, min_checkpoints=1, min_sizes=1)
    unknown = sorted(set(table.train_domains) - set(project.domains))
    unknown += sorted(set(table.domains) - set(project.domains) - set(unknown))
    if unknown:
        raise InputError(
            "domains",
            f"{unknown} are not domains of project {project.folder} ({project.domains})",
            "rename the columns/domains to the project's, or create a project whose corpus has them",
        )
    ledger = project.study.ledger
    source = f"imported:{path.name}:{_digest(path)}"
    added = []
    frame = table.frame
    for run_id, rows in frame.groupby("run", sort=True):
        info = table.runs.loc[run_id]
        mixture = {d: float(v) for d, v in table.mixtures.loc[info["mixture"]].items() if float(v) > 0}
        size = round(float(info["model_size"]))
        record = RunRecord(
            id=str(run_id),
            mixture=mixture,
            model_name="imported",
            model_config={},
            train_config={"source": path.name},
            params_non_embedding=size,
            params_total=size,
            flops_per_token=6.0 * size,
            tokens=int(rows["tokens"].max()),
            seed=0,
            corpus=source,
            tokenizer="imported",
            status="finished",
        )
        if not ledger.add_run(record):
            continue
        checkpoints = sorted(rows["tokens"].unique())
        for step, tokens in enumerate(checkpoints, start=1):
            at = rows[rows["tokens"] == tokens]
            # bits per byte are unknown for imported runs: stored as UNKNOWN_BPB (-1), exported as NaN
            ledger.record_eval(
                str(run_id),
                step,
                int(tokens),
                {d: (float(v), UNKNOWN_BPB) for d, v in zip(at["domain"], at["loss"], strict=True)},
            )
        added.append(str(run_id))
    return added


def export_runs(project: Project, path: str | Path, *, include_unfinished: bool = False) -> Path:
    """Write the ledger's long table (every checkpoint of every finished run) to CSV or Parquet."""
    path = Path(path)
    frame: pd.DataFrame = project.study.ledger.to_long_table(include_unfinished=include_unfinished)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise InputError(
            "out", f"{path.name} is neither .csv nor .parquet", "name the file *.csv or *.parquet"
        )
    return path

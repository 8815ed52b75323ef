"""Rebuilding a designer from the study's SQLite run ledger (:mod:`bayesmix.data.ledger`).

:meth:`~bayesmix.design.Designer.from_ledger` opens the ledger (:func:`open_ledger`), takes the
domains and scales it implies unless given (:func:`ledger_settings`), and records every run
(:func:`add_ledger_runs`): ``finished`` runs with their losses at their last evaluated
checkpoint, ``planned`` and ``running`` runs as pending, ``failed`` runs as failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bayesmix.data.ledger import Ledger, RunRecord
from bayesmix.errors import InputError

#: the designer's status of a ledger run (any other ledger status is pending)
LEDGER_STATUS = {"finished": "done", "failed": "failed"}


def open_ledger(ledger: Ledger | str | Path) -> Ledger:
    """``ledger`` itself, or the ledger stored at that path.

    Raises
    ------
    InputError
        The path is not a file.
    """
    if isinstance(ledger, Ledger):
        return ledger
    path = Path(ledger)
    if not path.is_file():
        raise InputError("ledger", f"{str(path)!r} is not a file", "give the study's .sqlite ledger")
    return Ledger(path)


def ledger_settings(
    ledger: Ledger, records: Sequence[RunRecord], options: Mapping[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    """The designer's domains and its other keyword arguments, with the ledger's defaults.

    Parameters
    ----------
    ledger, records
        The ledger and its runs.
    options
        The keyword arguments given: ``domains`` (default: every domain of the runs' mixtures,
        sorted) and the constructor's. ``scales`` (default: one per model when the ledger has
        several, named after it, with the median non-embedding parameters and tokens of its runs).

    Returns
    -------
    domains, options
        The domains, and the constructor's other keyword arguments.

    Raises
    ------
    InputError
        No domains (a ledger without runs).
    """
    options = dict(options)
    domains = options.pop("domains", None)
    if domains is None:
        domains = sorted({d for r in records for d in r.mixture})
    if not domains:
        raise InputError("ledger", f"{ledger.path} has no runs", "add runs, or start a Designer directly")
    models = sorted({r.model_name for r in records})
    if options.get("scales") is None and len(models) > 1:
        options["scales"] = [
            {"model": m, "model_size": float(np.median([r.params_non_embedding for r in records
                                                         if r.model_name == m])),
             "tokens": float(np.median([r.tokens for r in records if r.model_name == m]))}
            for m in models
        ]
    return domains, options


def add_ledger_runs(
    add: Callable[..., None],
    ledger: Ledger,
    records: Sequence[RunRecord],
    target: Mapping[str, float],
    scale_names: Sequence[str],
) -> None:
    """Record the ledger's runs with ``add`` (:meth:`~bayesmix.design.Designer.add`).

    Parameters
    ----------
    add
        Records one run: ``add(run_id, mixture, losses, scale=..., status=...)``.
    ledger, records
        The ledger and its runs.
    target
        The designer's target weights: a finished run needs a loss of each of their domains.
    scale_names
        The designer's scale names (empty without scales); a run's scale is its model name.

    Raises
    ------
    InputError
        A run whose model is not among ``scale_names``, finished runs without an evaluation of a
        target domain (after every other run is recorded), or what ``add`` refuses.
    """
    evals = ledger.evals()
    last = evals.sort_values("step").groupby(["run", "domain"]).tail(1)
    final = {run: dict(zip(g["domain"], g["loss"], strict=True)) for run, g in last.groupby("run")}
    names = list(scale_names)
    incomplete = []
    for r in records:
        scale = None
        if names:
            if r.model_name not in names:
                raise InputError("scales", f"run {r.id!r} uses model {r.model_name!r}, not among {names}",
                                 f"add a scale named {r.model_name!r}")
            scale = r.model_name
        status = LEDGER_STATUS.get(r.status, "pending")
        losses = final.get(r.id, {})
        if status == "done" and any(d not in losses for d in target):
            incomplete.append(r.id)
            continue
        add(r.id, r.mixture, losses, scale=scale, status=status)
    if incomplete:
        raise InputError("ledger", f"finished runs {incomplete} have no evaluation of the target domains "
                         f"{list(target)}", "record their evaluations, mark them failed "
                         "(Ledger.set_status), or choose a target they were evaluated on")

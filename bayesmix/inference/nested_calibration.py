"""Calibrate the nested model's size extrapolation on the study's own largest sizes (a backtest).

The nested model's intervals are conditional on its form: a power law in size and tokens with
exchangeable run effects. When the real curves bend away from that form (architecture shape,
saturation, domains a mixture starves), a far extrapolation is confidently wrong; the Gemstones
benchmark showed 0/20 coverage at 4-22x the fitted sizes. :func:`calibrate_extrapolation`
measures how wrong the form is *within* the data: it refits on all but the largest model sizes,
predicts the held-out runs' final losses, and estimates a model-discrepancy scale ``kappa``:
the standard deviation of the log-loss error that the posterior does not explain, per e-fold of
size extrapolation,

    kappa^2 = max(0, mean(r^2 - s^2) / mean(e^2)),

with ``r`` the log residual of a held-out loss, ``s^2`` the posterior predictive variance of its
log loss, and ``e = ln(N / N_max_fit)``. :func:`~bayesmix.inference.nested.predict_target` with
``discrepancy=`` then multiplies its draws by ``exp(kappa * e* * z)``, ``e* = ln(N*/N_max)``,
with one ``z ~ N(0, 1)`` per draw shared by every mixture and domain (the error of a form is
systematic, not independent noise). ``kappa = 0`` when the held-out losses are as well predicted
as the posterior says, so a well-specified study keeps its intervals. The result type and the
factor live in :mod:`bayesmix.inference.nested_discrepancy` (read by both this module and
:mod:`bayesmix.inference.nested`).

Assumptions, stated because they matter: the discrepancy grows linearly in log size (a
random-walk-like drift of the form), it is estimated from a short extrapolation (the held-out
sizes are close to the fitted ones) and scaled up to the target's, and it says nothing about
extrapolation in tokens.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bayesmix.data.curves import CurveTable
from bayesmix.errors import InputError, NotEnoughDataError
from bayesmix.inference.nested import fit_nested, predict_target
from bayesmix.inference.nested_discrepancy import ExtrapolationCalibration, discrepancy_factor

__all__ = ["ExtrapolationCalibration", "calibrate_extrapolation", "discrepancy_factor"]


def calibrate_extrapolation(
    table: CurveTable, *, holdout_sizes: int = 2, seed: int = 0, **fit_options: Any
) -> ExtrapolationCalibration:
    """Backtest the size extrapolation on the largest ``holdout_sizes`` model sizes of ``table``.

    Parameters
    ----------
    table
        The curves the nested model is (or will be) fitted on.
    holdout_sizes
        How many of the largest distinct model sizes to hold out; the refit keeps at least 2.
    seed, **fit_options
        Passed to :func:`~bayesmix.inference.nested.fit_nested` for the refit (joint method).

    Returns
    -------
    ExtrapolationCalibration

    Raises
    ------
    NotEnoughDataError
        Fewer than ``holdout_sizes + 2`` model sizes, or no held-out run whose mixture the refit
        observed.
    """
    if not isinstance(table, CurveTable):
        raise InputError("table", f"got {type(table).__name__}", "build a CurveTable (CurveTable.from_long)")
    if isinstance(holdout_sizes, bool) or not isinstance(holdout_sizes, int) or holdout_sizes < 1:
        raise InputError("holdout_sizes", f"got {holdout_sizes!r}", "give an integer >= 1")
    sizes = table.model_sizes
    if len(sizes) < holdout_sizes + 2:
        raise NotEnoughDataError(
            "model_size",
            f"{len(sizes)} model sizes; holding out {holdout_sizes} leaves fewer than 2 to refit",
            "hold out fewer sizes, or train more sizes",
        )
    cut = float(sizes[-holdout_sizes - 1])
    fitted = fit_nested(table.select(max_model_size=cut), seed=seed, **fit_options)
    observed = fitted.mixtures
    frame = table.frame[table.frame["model_size"] > cut]
    rows = []
    for run, part in frame.groupby("run", sort=True):
        last = part[part["tokens"] == part["tokens"].max()]
        mixture_id = table.runs.loc[run, "mixture"]
        if mixture_id not in observed.index:
            continue  # a mixture only trained at held-out sizes: nothing to extrapolate from
        size, tokens = float(last["model_size"].iloc[0]), float(last["tokens"].iloc[0])
        draws = predict_target(
            fitted,
            model_size=size,
            tokens=tokens,
            mixtures=[table.mixtures.loc[mixture_id].to_dict()],
            via="observed",
            seed=seed,
        )
        log_draws = np.log(np.clip(draws.isel(mixture=0).values, 1e-12, None))  # (sample, domain)
        domains = list(draws["domain"].values)
        for _, row in last.iterrows():
            j = domains.index(row["domain"])
            mean = float(log_draws[:, j].mean())
            rows.append(
                {
                    "run": run,
                    "domain": row["domain"],
                    "observed": float(row["loss"]),
                    "predicted": float(np.exp(mean)),
                    "log_residual": float(np.log(row["loss"]) - mean),
                    "predictive_var": float(log_draws[:, j].var()),
                    "efolds": float(np.log(size / cut)),
                }
            )
    if not rows:
        raise NotEnoughDataError(
            "mixtures",
            "no held-out run has a mixture the refit observed",
            "train the held-out sizes on mixtures that smaller sizes were trained on too",
        )
    residuals = pd.DataFrame(rows)
    excess = float((residuals["log_residual"] ** 2 - residuals["predictive_var"]).mean())
    kappa = float(np.sqrt(max(0.0, excess) / float((residuals["efolds"] ** 2).mean())))
    return ExtrapolationCalibration(kappa=kappa, max_fit_size=cut, residuals=residuals, refit=fitted)

"""Calibration of the downstream laws' form error beyond the ladder: backtests on held-out larger runs.

:func:`calibrate_downstream` fits the laws on the smaller sizes of a ladder, predicts the larger
ones it held out, and turns the residuals into the extrapolation error per e-fold of scale
(:class:`~bayesmix.inference.downstream.DownstreamCalibration`) that
:func:`~bayesmix.inference.downstream.predict_downstream` adds beyond the fitted sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.errors import InputError
from bayesmix.inference import _arviz
from bayesmix.inference.downstream import (
    DownstreamCalibration,
    downstream_info,
    extrapolation_efolds,
    predict_downstream,
)
from bayesmix.models.downstream import (
    N_LAST,
    LadderData,
)

#: how :func:`calibrate_downstream` turns the backtests' residuals into the form's error
CALIBRATION_METHODS = ("moment", "posterior")
#: grid of ``rho`` (the share of the error common to all tasks): midpoints of 10 cells of [0, 1)
RHO_GRID = (np.arange(10) + 0.5) / 10
#: points of the ``kappa`` grid, from 0 to a bound the data rule out
KAPPA_GRID_POINTS = 161
#: posterior draws of ``(kappa, rho)`` a posterior calibration keeps per step
CALIBRATION_DRAWS = 4000


@dataclass(frozen=True)
class _Backtest:
    """One fit's predictions of held-out runs: residuals and the predictive draws behind them."""

    frame: pd.DataFrame
    efolds: np.ndarray
    log_loss_draws: np.ndarray | None
    accuracy_draws: np.ndarray
    log_loss: np.ndarray
    accuracy: np.ndarray


def _as_runs(runs: Any) -> list[str]:
    if isinstance(runs, str):
        return [runs]
    if not isinstance(runs, Sequence | np.ndarray | pd.Index):
        raise InputError("runs", f"got {type(runs).__name__}", "give a list of held-out run names")
    return [str(r) for r in runs]


def _backtest(
    idata: _arviz.InferenceData, data: LadderData, runs: Any, max_draws: int | None, seed: int, label: int
) -> _Backtest:
    """Predict ``runs`` from ``idata`` (step 1 from ``N`` and ``D``, step 2 at the true loss)."""
    info = downstream_info(idata)
    if list(data.tasks) != list(info["tasks"]):
        raise InputError("data", f"its tasks {data.tasks} differ from the fit's {info['tasks']}", "build it with the same tasks")
    runs = _as_runs(runs)
    overlap = [r for r in runs if r in set(info["runs"])]
    if overlap:
        raise InputError("runs", f"{overlap} were fitted", "hold out runs the fit did not see")
    if not runs:
        raise InputError("runs", "is empty", "hold out the largest runs (e.g. the largest size)")
    finals = data.select(runs).final(int(info.get("n_last", N_LAST)))
    sizes = finals.checkpoint_sizes()
    tokens = finals.checkpoints["tokens"].to_numpy(dtype=float)
    efolds = extrapolation_efolds(info, sizes, tokens)
    if not np.any(efolds > 0):
        raise InputError("runs", "none lies beyond the fitted runs in N or D", "hold out the largest runs (e.g. the largest size)")
    names = [str(r) for r in finals.checkpoints["run"]]
    tasks = list(info["tasks"])
    true_loss = finals.task_loss.to_numpy(dtype=float)
    accuracy = finals.accuracy.to_numpy(dtype=float)
    log_draws = None
    if info["kind"] == "chained":
        log_draws = np.log(predict_downstream(
            idata, model_size=sizes, tokens=tokens, output="task_loss", max_draws=max_draws, seed=seed
        ).to_numpy())
        r1 = np.log(true_loss) - log_draws.mean(axis=0)
        s1 = log_draws.var(axis=0)
        acc_draws = predict_downstream(idata, loss=true_loss, model_size=sizes, max_draws=max_draws, seed=seed).to_numpy()
    else:
        x = finals.validation_loss(info["input"])
        acc_draws = predict_downstream(idata, loss=x, model_size=sizes, max_draws=max_draws, seed=seed).to_numpy()
        r1 = s1 = np.full(true_loss.shape, np.nan)
    r2 = accuracy - acc_draws.mean(axis=0)
    s2 = acc_draws.var(axis=0)
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "backtest": label,
                    "fit_max_model_size": float(info["max_model_size"]),
                    "run": run,
                    "task": tasks,
                    "efolds": efolds[j],
                    "task_loss": true_loss[j],
                    "log_task_loss_residual": r1[j],
                    "log_task_loss_var": s1[j],
                    "accuracy": accuracy[j],
                    "accuracy_residual": r2[j],
                    "accuracy_var": s2[j],
                }
            )
            for j, run in enumerate(names)
        ],
        ignore_index=True,
    )
    return _Backtest(frame, efolds, log_draws, acc_draws, np.log(true_loss), accuracy)


def _moment_kappa(residual: np.ndarray, variance: np.ndarray, efolds: np.ndarray) -> float:
    """``sqrt(max(0, sum(r^2 - s^2) / sum(e^2)))``."""
    return float(np.sqrt(max(0.0, float((residual**2 - variance).sum()) / float((efolds**2).sum()))))


def _group(draws: np.ndarray, observed: np.ndarray, efolds: np.ndarray) -> tuple[np.ndarray, ...]:
    """One backtest flattened over ``(run, task)``: residuals, their predictive covariance, e-folds, task ids."""
    n_runs, n_tasks = observed.shape
    flat = draws.reshape(draws.shape[0], n_runs * n_tasks)
    residual = observed.reshape(-1) - flat.mean(axis=0)
    cov = np.atleast_2d(np.cov(flat, rowvar=False))
    cov = cov + np.eye(len(cov)) * (1e-9 * max(float(np.trace(cov)) / len(cov), 1e-12))
    return residual, cov, np.repeat(efolds, n_tasks), np.tile(np.arange(n_tasks), n_runs)


def _log_likelihood(groups: Sequence[tuple[np.ndarray, ...]], kappas: np.ndarray) -> np.ndarray:
    """Log likelihood ``(kappa, rho)`` of the residuals over the grids ``kappas`` and :data:`RHO_GRID`."""
    out = np.zeros((len(kappas), len(RHO_GRID)))
    for residual, cov, efolds, task in groups:
        same = task[:, None] == task[None, :]
        outer = efolds[:, None] * efolds[None, :]
        for p, rho in enumerate(RHO_GRID):
            shape = outer * np.where(same, 1.0, rho)
            total = cov[None] + (kappas**2)[:, None, None] * shape[None]
            chol = np.linalg.cholesky(total)
            solved = np.linalg.solve(chol, np.broadcast_to(residual[:, None], (len(kappas), len(residual), 1)))[..., 0]
            logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
            out[:, p] += -0.5 * (solved**2).sum(axis=1) - 0.5 * logdet
    return out


def _kappa_posterior(
    groups: Sequence[tuple[np.ndarray, ...]], rng: np.random.Generator, n_draws: int = CALIBRATION_DRAWS
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior draws of ``(kappa, rho)`` on a grid: flat priors on ``kappa >= 0`` and ``rho`` in [0, 1).

    The grid's upper bound starts at 6 times the raw scale ``sqrt(sum r^2 / sum e^2)`` and
    doubles while the top 5% of it holds more than 0.1% of the posterior.
    """
    raw = sum(float((g[0] ** 2).sum()) for g in groups) / sum(float((g[2] ** 2).sum()) for g in groups)
    bound = 6.0 * max(np.sqrt(raw), 1e-6)
    for _ in range(4):
        kappas = np.linspace(0.0, bound, KAPPA_GRID_POINTS)
        logp = _log_likelihood(groups, kappas)
        weights = np.exp(logp - logp.max())
        weights = weights / weights.sum()
        if weights[int(0.95 * KAPPA_GRID_POINTS):].sum() <= 1e-3:
            break
        bound *= 2.0
    pick = rng.choice(weights.size, size=n_draws, p=weights.reshape(-1))
    k_index, r_index = np.unravel_index(pick, weights.shape)
    step = kappas[1] - kappas[0]
    kappa = np.abs(kappas[k_index] + step * (rng.random(n_draws) - 0.5))
    rho = np.clip(RHO_GRID[r_index] + 0.1 * (rng.random(n_draws) - 0.5), 0.0, 1.0)
    return kappa, rho


def calibrate_downstream(
    idata: _arviz.InferenceData,
    data: LadderData,
    runs: Sequence[str],
    *,
    backtests: Sequence[tuple[_arviz.InferenceData, Sequence[str]]] = (),
    method: str = "moment",
    max_draws: int | None = 2000,
    seed: int = 0,
) -> DownstreamCalibration:
    """Backtest downstream fits on held-out larger runs and measure the error they do not explain.

    Each held-out run's final task loss (mean of its last checkpoints, as in the fit) and
    accuracy are predicted (``kind="predictive"``): step 1 from its ``N`` and ``D``, step 2 from
    its *true* task loss (for a link fit: from its validation loss), so the two scales are
    measured separately. ``e`` is the e-folds of a run beyond the runs of the fit that predicts
    it. Several backtests at several distances (``backtests``: fits on the smallest sizes, each
    predicting every larger size) measure how the error grows with ``e``.

    ``method="moment"``: with ``r`` a residual (log task loss; accuracy) and ``s^2`` its
    predictive variance, ``kappa^2 = max(0, sum(r^2 - s^2) / sum(e^2))`` over all backtests.

    ``method="posterior"``: per backtest and step, the residuals over (run, task) are modelled as
    ``r = r_fit + kappa e z_t`` with ``r_fit`` the fit's own predictive error (its draws'
    covariance over runs and tasks, so runs predicted by the same posterior are not counted as
    independent) and ``z_t = sqrt(rho) g + sqrt(1 - rho) u_t`` one error direction per task,
    shared by every run the backtest predicts (the form's error grows linearly in ``e``),
    partly common to all tasks (``g``), independent between backtests. ``(kappa, rho)`` get flat
    priors on a grid and the calibration keeps posterior draws, so predictions carry the
    uncertainty of ``kappa`` itself (few backtests: a wide posterior, heavier-tailed intervals).

    Parameters
    ----------
    idata
        A fit of :func:`fit_downstream` or :func:`fit_downstream_link`.
    data
        A ladder holding the held-out runs (the same tasks as the fits).
    runs
        The runs held out from ``idata``; at least one must lie beyond its fitted runs in ``N``
        or ``D``.
    backtests
        More ``(fit, held-out runs)`` pairs of the same kind (chained or link) and tasks, e.g.
        fits on fewer sizes predicting every larger size.
    method
        ``"moment"`` (default) or ``"posterior"``: see above.
    max_draws, seed
        Draws used and the seed of the predictive draws and of the calibration's own draws.

    Returns
    -------
    DownstreamCalibration

    Raises
    ------
    InputError
        Unknown runs, other tasks than the fit's, fits of different kinds, no held-out run
        beyond its fitted runs, or an unknown ``method``.
    """
    info = downstream_info(idata)
    if not isinstance(data, LadderData):
        raise InputError("data", f"got {type(data).__name__}", "give the LadderData holding the held-out runs")
    if method not in CALIBRATION_METHODS:
        raise InputError("method", f"got {method!r}", f"use one of {list(CALIBRATION_METHODS)}")
    if isinstance(backtests, str | bytes) or not isinstance(backtests, Sequence):
        raise InputError("backtests", f"got {type(backtests).__name__}", "give a list of (fit, held-out runs) pairs")
    pairs = [(idata, runs)]
    for item in backtests:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise InputError("backtests", f"has an item {type(item).__name__}", "give (fit, held-out runs) pairs")
        if downstream_info(item[0])["kind"] != info["kind"]:
            raise InputError("backtests", "mixes chained and link fits", "give fits of one kind")
        pairs.append((item[0], item[1]))
    results = [_backtest(fit, data, held, max_draws, seed, i) for i, (fit, held) in enumerate(pairs)]
    residuals = pd.concat([b.frame for b in results], ignore_index=True)
    e_all = residuals["efolds"].to_numpy(dtype=float)
    chained = info["kind"] == "chained"
    if method == "moment":
        kappa_loss = 0.0
        if chained:
            kappa_loss = _moment_kappa(
                residuals["log_task_loss_residual"].to_numpy(), residuals["log_task_loss_var"].to_numpy(), e_all
            )
        kappa_acc = _moment_kappa(residuals["accuracy_residual"].to_numpy(), residuals["accuracy_var"].to_numpy(), e_all)
        return DownstreamCalibration(kappa_loss, kappa_acc, residuals)
    rng = np.random.default_rng([int(seed), 20261130])
    draws = {}
    if chained:
        groups = [_group(b.log_loss_draws, b.log_loss, b.efolds) for b in results]
        draws["kappa_task_loss"], draws["rho_task_loss"] = _kappa_posterior(groups, rng)
    else:
        draws["kappa_task_loss"] = np.zeros(CALIBRATION_DRAWS)
        draws["rho_task_loss"] = np.zeros(CALIBRATION_DRAWS)
    groups = [_group(b.accuracy_draws, b.accuracy, b.efolds) for b in results]
    draws["kappa_accuracy"], draws["rho_accuracy"] = _kappa_posterior(groups, rng)
    frame = pd.DataFrame(draws)
    return DownstreamCalibration(
        float(np.sqrt((frame["kappa_task_loss"] ** 2).mean())),
        float(np.sqrt((frame["kappa_accuracy"] ** 2).mean())),
        residuals,
        frame,
        "posterior",
    )

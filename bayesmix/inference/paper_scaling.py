"""The paper's point-fit protocol for the step and size laws: the baseline of the nested pipeline.

Ye et al. (2024), ``pipeline/steplaw.py`` and ``sizelaw.py`` (see ``docs/data-mixing-laws.md``
section 2-3): the power law ``L(x) = exp(log_c) + exp(alpha (log_x0 - log x))`` is fitted by
minimising the Huber loss (reduction ``sum``) on **raw** losses with L-BFGS, from a grid of
initialisations, and the iterate and start with the lowest error on **held-out** data are kept:

* step law, per (mixture, size): one exponent shared by the validation domains of the run
  (``--tie_alpha valid``), Huber ``delta = 0.05``, the last 5 of 11 checkpoints held out
  (here: the last ``round(5/11 n)`` checkpoints), held-out Huber selects; starts
  ``log_x0 in linspace(15, 23, 11) x alpha in linspace(0.65, 0.9, 10) x 50 jitters``
  (``log_c = log(min L) + U(1, 2)``, ``log_x0 += U(-0.5, 0.5)``);
* size law, on the step laws' predictions at the target tokens: one exponent shared by every
  (mixture, domain) curve (``--tie_alpha all``), Huber ``delta = 0.08``, the largest size held
  out and selected by MSE; starts ``log_x0 in linspace(15, 25, 20) x alpha in linspace(0.3, 0.8, 10)
  x 50``.

SciPy's L-BFGS-B (analytic gradients) replaces torch's L-BFGS, and the held-out criterion is
evaluated at every L-BFGS iterate (the paper: at every outer step of 20 inner iterations).
``n_inits`` starts are drawn from the grid (the whole grid when ``n_inits`` is at least its
size). No uncertainty: one number per curve.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from bayesmix.data.curves import CurveTable
from bayesmix.errors import InputError, NotEnoughDataError

STEP_DELTA = 0.05
SIZE_DELTA = 0.08
STEP_GRID = (np.linspace(15.0, 23.0, 11), np.linspace(0.65, 0.9, 10))
SIZE_GRID = (np.linspace(15.0, 25.0, 20), np.linspace(0.3, 0.8, 10))
JITTERS = 50


def _huber(residual: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    absolute = np.abs(residual)
    small = absolute <= delta
    return (
        np.where(small, 0.5 * residual**2, delta * (absolute - 0.5 * delta)),
        np.where(small, residual, delta * np.sign(residual)),
    )


def shared_power_law(params: np.ndarray, log_x: np.ndarray, curve: np.ndarray, n_curves: int) -> np.ndarray:
    """``exp(log_c[g]) + exp(alpha (log_x0[g] - log x))`` with ``params = [log_c, log_x0, alpha]``."""
    log_c, log_x0, alpha = params[:n_curves], params[n_curves : 2 * n_curves], params[-1]
    return np.exp(log_c[curve]) + np.exp(np.clip(alpha * (log_x0[curve] - log_x), -60, 60))


def _objective(params, log_x, y, curve, n_curves, delta):
    log_c, log_x0, alpha = params[:n_curves], params[n_curves : 2 * n_curves], params[-1]
    c = np.exp(log_c[curve])
    power = np.exp(np.clip(alpha * (log_x0[curve] - log_x), -60, 60))
    value, g = _huber(c + power - y, delta)
    grad_c = np.bincount(curve, weights=g * c, minlength=n_curves)
    grad_x0 = np.bincount(curve, weights=g * power * alpha, minlength=n_curves)
    grad_alpha = np.sum(g * power * (log_x0[curve] - log_x))
    return value.sum(), np.concatenate([grad_c, grad_x0, [grad_alpha]])


@dataclass(frozen=True)
class PowerLawFit:
    """Point fit of curves sharing one exponent: ``log_c``, ``log_x0`` per curve, ``alpha``."""

    log_c: np.ndarray
    log_x0: np.ndarray
    alpha: float
    criterion: float

    def predict(self, x: float) -> np.ndarray:
        """Loss of every curve at one input value ``x`` (shape ``(curve,)``)."""
        return np.exp(self.log_c) + np.exp(self.alpha * (self.log_x0 - np.log(float(x))))


def fit_shared_power_law(
    log_x: np.ndarray,
    y: np.ndarray,
    curve: np.ndarray,
    held_out: np.ndarray,
    *,
    delta: float,
    grid: tuple[np.ndarray, np.ndarray],
    selection: str,
    n_inits: int,
    seed: int,
) -> PowerLawFit:
    """Fit curves with a shared exponent by the paper's protocol (see the module docstring).

    Parameters
    ----------
    log_x, y, curve
        Log input, loss and curve index of each observation.
    held_out
        Boolean mask of the observations used only to select the iterate and start.
    delta
        Huber threshold.
    grid
        ``(log_x0 values, alpha values)`` of the start grid (times 50 jitters).
    selection
        ``"huber"`` or ``"mse"`` on the held-out observations.
    n_inits
        Starts drawn from the grid.
    seed
        Seed of the jitters and of the draw of starts.
    """
    n_curves = int(curve.max()) + 1
    train = ~held_out
    if not held_out.any():
        held_out = train
    rng = np.random.default_rng(seed)
    log_x0_grid, alpha_grid = grid
    starts = [(a, b, j) for a in log_x0_grid for b in alpha_grid for j in range(JITTERS)]
    if n_inits < len(starts):
        starts = [starts[i] for i in np.sort(rng.choice(len(starts), size=n_inits, replace=False))]
    min_loss = np.log(np.array([y[train & (curve == g)].min() for g in range(n_curves)]))

    def criterion(params: np.ndarray) -> float:
        residual = shared_power_law(params, log_x[held_out], curve[held_out], n_curves) - y[held_out]
        if selection == "mse":
            return float(np.mean(residual**2))
        return float(_huber(residual, delta)[0].sum())

    best, best_value = None, np.inf
    for log_x0, alpha, _ in starts:
        x0 = np.concatenate(
            [
                min_loss + rng.uniform(1.0, 2.0, n_curves),
                log_x0 + rng.uniform(-0.5, 0.5, n_curves),
                [alpha],
            ]
        )
        iterates = [x0.copy()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            minimize(
                _objective,
                x0,
                args=(log_x[train], y[train], curve[train], n_curves, delta),
                jac=True,
                method="L-BFGS-B",
                callback=lambda p, _iterates=iterates: _iterates.append(np.array(p)),
                options={"maxiter": 400},
            )
        for params in iterates:
            value = criterion(params)
            if np.isfinite(value) and value < best_value:
                best, best_value = params, value
    if best is None:
        raise InputError("losses", "the paper protocol found no finite fit", "check the curves")
    return PowerLawFit(best[:n_curves], best[n_curves : 2 * n_curves], float(best[-1]), best_value)


def paper_nested_predict(
    table: CurveTable,
    model_sizes: np.ndarray | list[float],
    tokens: float,
    *,
    n_inits: int = 100,
    seed: int = 0,
) -> pd.DataFrame:
    """The paper's nested point prediction at ``tokens`` for each model size, per mixture and domain.

    Step law per run (exponent shared by the run's domains) extrapolated to ``tokens``; then a
    size law over the runs with one exponent for every (mixture, domain) curve, evaluated at each
    of ``model_sizes``.

    Returns
    -------
    pandas.DataFrame
        Columns ``mixture``, ``domain``, ``model_size``, ``loss``.

    Raises
    ------
    NotEnoughDataError
        Fewer than 2 sizes (one to fit, one to select), or fewer than 3 checkpoints to fit on.
    """
    frame = table.frame
    domains = table.domains
    rows = []
    for i, (run, part) in enumerate(frame.groupby("run", sort=False)):
        curve = pd.Categorical(part["domain"], categories=domains).codes.astype(int)
        tokens_run = np.sort(part["tokens"].unique())
        n_valid = round(len(tokens_run) * 5 / 11)
        if len(tokens_run) - n_valid < 3:
            raise NotEnoughDataError(
                "checkpoints", f"run {run!r} has {len(tokens_run)} checkpoints", "give at least 5"
            )
        held = part["tokens"].to_numpy() >= tokens_run[len(tokens_run) - n_valid] if n_valid else None
        held = np.zeros(len(part), dtype=bool) if held is None else held
        present = np.unique(curve)
        remap = np.full(len(domains), -1)
        remap[present] = np.arange(len(present))
        fit = fit_shared_power_law(
            np.log(part["tokens"].to_numpy()),
            part["loss"].to_numpy(),
            remap[curve],
            held,
            delta=STEP_DELTA,
            grid=STEP_GRID,
            selection="huber",
            n_inits=n_inits,
            seed=seed + i,
        )
        prediction = fit.predict(tokens)
        for j, d in enumerate(present):
            rows.append(
                {
                    "run": run,
                    "mixture": table.runs.loc[run, "mixture"],
                    "model_size": table.runs.loc[run, "model_size"],
                    "domain": domains[d],
                    "loss": prediction[j],
                }
            )
    step = pd.DataFrame(rows)
    sizes = np.sort(step["model_size"].unique())
    if len(sizes) < 2:
        raise NotEnoughDataError("model_size", "one model size only", "train at 2 or more sizes (3+ advised)")
    keys = step[["mixture", "domain"]].drop_duplicates().reset_index(drop=True)
    lookup = {(m, d): g for g, (m, d) in enumerate(zip(keys["mixture"], keys["domain"], strict=True))}
    curve = np.array([lookup[(m, d)] for m, d in zip(step["mixture"], step["domain"], strict=True)])
    fit = fit_shared_power_law(
        np.log(step["model_size"].to_numpy(dtype=float)),
        step["loss"].to_numpy(),
        curve,
        step["model_size"].to_numpy() == sizes[-1],
        delta=SIZE_DELTA,
        grid=SIZE_GRID,
        selection="mse",
        n_inits=n_inits,
        seed=seed + 10_000,
    )
    out = []
    for size in np.atleast_1d(np.asarray(model_sizes, dtype=float)):
        loss = fit.predict(size)
        for g in range(len(keys)):
            out.append(
                {
                    "mixture": keys["mixture"][g],
                    "domain": keys["domain"][g],
                    "model_size": size,
                    "loss": loss[g],
                }
            )
    return pd.DataFrame(out)

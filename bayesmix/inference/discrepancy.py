"""The discrepancy's amplitude from region backtests: how wrong the law is where it has no runs.

The runs inside a region cannot show how wrong the law's form is outside it, so the amplitude
``eta_i`` of the mixture-space discrepancy (:mod:`bayesmix.models.discrepancy`) is estimated from
backtests that leave whole regions out: for each training domain ``j``, the runs with the largest
shares of ``j`` (a fraction ``holdout`` of them) are held out, the law is fitted on the rest, and
the held-out losses are predicted by the law plus a Gaussian process on the fold's residuals.
The length scale (one for the study) and ``eta_i`` (one per validation domain) are the values
that maximise the held-out log predictive density summed over the folds (empirical Bayes over
extrapolations). ``fit(runs, discrepancy=True)`` runs these backtests and carries the form
error in its predictions; ``calibrate_discrepancy(runs).settings`` gives the settings alone.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.data.runs import RunTable
from bayesmix.errors import InputError, SamplerHealthWarning
from bayesmix.inference.predict import law_draws, predict
from bayesmix.laws.base import Law
from bayesmix.models.discrepancy import (
    NOISE_NAME,
    RESIDUAL_NAME,
    Discrepancy,
    eigen,
    gp_moments,
    kernel,
    median_distance,
)

logger = logging.getLogger(__name__)

#: length scales tried, as multiples of the median distance between the runs' mixtures
LENGTHSCALE_FACTORS = (0.25, 0.5, 1.0, 2.0)
#: amplitudes tried per domain, as multiples of the domain's loss spread over the runs
AMPLITUDE_FACTORS = tuple(np.geomspace(1e-3, 3.0, 36))
#: half-width of a central 90% normal interval, in standard deviations
Z90 = 1.6448536269514722
#: the backtests' own 90% intervals must cover at least this share of their held-out losses: a
#: domain's amplitude is raised from its best log density until they do (16 simulated studies:
#: 90% coverage beyond the runs 0.70 -> 0.85, near them 0.91 -> 0.95; benchmarks/RESULTS.md)
COVERAGE_FLOOR = 0.9


@dataclass
class DiscrepancyCalibration:
    """Result of :func:`calibrate_discrepancy`.

    Attributes
    ----------
    settings
        The :class:`~bayesmix.models.discrepancy.Discrepancy` to fit with (fixed ``sd``).
    folds
        One row per held-out region: ``train_domain`` (whose largest shares were held out),
        ``held_out`` (runs), ``share_from`` (the smallest held-out share) and ``share_seen``
        (the largest share left in the fold).
    scores
        Held-out log predictive density (nats, summed over folds and runs) per validation domain
        for the law alone (``law``) and with the chosen discrepancy (``with_discrepancy``), and
        the 90% coverage of the held-out losses of each.
    """

    settings: Discrepancy
    folds: pd.DataFrame
    scores: pd.DataFrame

    def to_json(self) -> str:
        """The settings, folds and scores as JSON (stored with the fit)."""
        return json.dumps(
            {
                "settings": self.settings.to_dict(),
                "folds": self.folds.to_dict(orient="records"),
                "scores": self.scores.reset_index().to_dict(orient="records"),
            }
        )


def region_folds(runs: RunTable, holdout: float) -> list[tuple[str, np.ndarray]]:
    """``(train_domain, held-out positions)`` per training domain: its ``holdout`` largest shares.

    A region is skipped when no held-out run lies beyond the kept runs' range of its share, or
    when the kept runs leave a training domain at 0 in every run (the fold's law could not learn
    that domain's effect: with few runs, holding out the largest shares of a rare domain removes
    every run that trains on it).
    """
    mixtures = runs.mixtures.to_numpy()
    n = len(mixtures)
    k = round(holdout * n)
    folds = []
    for j, name in enumerate(runs.train_domains):
        order = np.argsort(-mixtures[:, j], kind="stable")
        held = np.sort(order[:k])
        kept = mixtures[order[k:]]
        if k == 0 or mixtures[held, j].max() <= kept[:, j].max() + 1e-12:
            continue  # no held-out run lies beyond the fold's range of this share
        if np.any(np.all(kept <= 0.0, axis=0)):
            continue  # the kept runs never train on some domain
        folds.append((name, held))
    return folds


def law_residuals(idata: Any, mixtures: np.ndarray, losses: np.ndarray, seed: int = 0):
    """``losses - E[law(mixtures)]`` ``(run, domain)`` and the fit's noise scale ``(domain,)`` (posterior means)."""
    expected = law_draws(idata, mixtures, seed=seed)[0].mean(axis=0)
    sigma = idata.posterior["sigma"].mean(("chain", "draw")).to_numpy()
    return np.asarray(losses, dtype=float) - expected, np.asarray(sigma, dtype=float)


def attach_residuals(idata: Any, runs: RunTable) -> None:
    """Store what the discrepancy conditions on in ``idata.constant_data`` (in place).

    ``discrepancy_residual`` ``(run, domain)``: the runs' losses minus the law's posterior-mean
    prediction; ``discrepancy_noise`` ``(domain,)``: the posterior-mean noise scale.
    """
    import xarray as xr

    residual, sigma = law_residuals(idata, runs.mixtures.to_numpy(), runs.losses.to_numpy())
    data = idata.constant_data
    run_dim, domain_dim = data["mixtures"].dims[0], "domain"
    data[RESIDUAL_NAME] = xr.DataArray(
        residual, dims=(run_dim, domain_dim), coords={run_dim: data[run_dim].values, domain_dim: list(runs.domains)}
    )
    data[NOISE_NAME] = xr.DataArray(sigma, dims=(domain_dim,), coords={domain_dim: list(runs.domains)})


def _coverage_floor(best: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Per domain, the amplitude index: at least ``best (D,)``, raised to reach the coverage floor.

    The smallest index at or above ``best`` whose backtest coverage ``(A, D)`` reaches
    :data:`COVERAGE_FLOOR`; if none does, the one at or above ``best`` with the highest coverage
    (coverage need not rise with the amplitude).

    The best log density alone picks amplitudes that cover the backtests' held-out losses too
    rarely where a few folds saw little form error; farther out, the misses add up.
    """
    out = np.array(best, copy=True)
    for d in range(coverage.shape[1]):
        ok = np.flatnonzero((np.arange(coverage.shape[0]) >= best[d]) & (coverage[:, d] >= COVERAGE_FLOOR - 1e-12))
        out[d] = ok[0] if len(ok) else best[d] + int(np.argmax(coverage[best[d] :, d]))
    return out


def _log_density(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    return -0.5 * (np.log(2 * np.pi * var) + (y - mean) ** 2 / var)


def calibrate_discrepancy(
    runs: RunTable,
    law: Law | None = None,
    *,
    holdout: float = 0.25,
    method: str = "laplace",
    draws: int = 250,
    chains: int = 2,
    seed: int = 0,
    **fit_options: Any,
) -> DiscrepancyCalibration:
    """Estimate the discrepancy's length scale and amplitudes from region backtests.

    The length scale and each domain's amplitude maximise the held-out log predictive density;
    an amplitude whose 90% intervals cover fewer than :data:`COVERAGE_FLOOR` of the backtests'
    held-out losses is raised until they do (or as far as the grid's best coverage allows).

    Parameters
    ----------
    runs
        The study's runs.
    law
        The law (default :class:`~bayesmix.laws.MixingLaw`).
    holdout
        Fraction of the runs held out per region (the largest shares of one training domain).
    method, draws, chains, seed, **fit_options
        How each fold's law is fitted (:func:`bayesmix.fit`; ``"laplace"`` by default: every
        fold has the same shape, so one compiled model serves them all).

    Returns
    -------
    DiscrepancyCalibration
        ``settings`` to pass to ``fit(..., discrepancy=...)``, and the backtests' figures.

    Raises
    ------
    InputError
        ``holdout`` outside (0, 0.5], no training domain whose largest shares can be held out,
        or a ``discrepancy`` among ``fit_options``.
    """
    from bayesmix.inference.fit import fit

    if not isinstance(runs, RunTable):
        raise InputError("runs", f"got {type(runs).__name__}", "build a RunTable (RunTable.from_wide, ...)")
    if "discrepancy" in fit_options:
        raise InputError(
            "discrepancy", "is not a setting of the backtests' fits (they fit the law alone)", "leave it out"
        )
    if not (isinstance(holdout, float | int) and 0 < holdout <= 0.5):
        raise InputError("holdout", f"got {holdout!r}", "give a fraction in (0, 0.5], e.g. 0.25")
    folds = region_folds(runs, holdout)
    if not folds:
        raise InputError("runs", "no training domain's largest shares can be held out", "add runs that vary the mixture")
    mixtures = runs.mixtures.to_numpy()
    losses = runs.losses.to_numpy()
    spread = np.maximum(losses.std(axis=0), 1e-12)
    median = median_distance(mixtures)
    lengths = median * np.asarray(LENGTHSCALE_FACTORS)
    amplitudes = spread[None, :] * np.asarray(AMPLITUDE_FACTORS)[:, None]  # (A, D)
    # log density per (length, amplitude, domain), summed over folds; the law alone alongside
    total = np.zeros((len(lengths), len(amplitudes), losses.shape[1]))
    hits = np.zeros_like(total)  # held-out losses inside the 90% interval, per (length, amplitude, domain)
    n_held = 0
    alone = np.zeros(losses.shape[1])
    covered_alone, rows = [], []
    started = time.perf_counter()
    for k, (name, held) in enumerate(folds):
        logger.info(
            "form error: region backtest %d/%d (the largest %s shares held out, %d runs; %.0f s so far)",
            k + 1, len(folds), name, len(held), time.perf_counter() - started,
        )
        keep = np.setdiff1d(np.arange(len(mixtures)), held)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplerHealthWarning)
            idata = fit(
                runs.subset(keep), law, method=method, draws=draws, chains=chains, seed=seed, discrepancy=None,
                **fit_options,
            )
        residual, sigma = law_residuals(idata, mixtures[keep], losses[keep], seed)
        at_held = predict(idata, mixtures[held], kind="mean", seed=seed).values  # (S, h, D)
        law_mean, base_var = at_held.mean(axis=0), at_held.var(axis=0) + sigma**2
        y = losses[held]
        n_held += len(held)
        alone += _log_density(y, law_mean, base_var).sum(axis=0)
        covered_alone.append(np.abs(y - law_mean) <= Z90 * np.sqrt(base_var))
        j = list(runs.train_domains).index(name)
        rows.append(
            {
                "train_domain": name,
                "held_out": len(held),
                "share_from": float(mixtures[held, j].min()),
                "share_seen": float(mixtures[keep, j].max()),
            }
        )
        for li, length in enumerate(lengths):
            values, vectors = eigen(mixtures[keep], length)
            cross = kernel(mixtures[held], mixtures[keep], length) @ vectors
            mean, variance = gp_moments(cross, vectors.T @ residual, values, amplitudes, sigma)
            mean, variance = law_mean[None] + mean, base_var[None] + variance  # (A, held, D)
            total[li] += _log_density(y[None], mean, variance).sum(axis=1)
            hits[li] += (np.abs(y[None] - mean) <= Z90 * np.sqrt(variance)).sum(axis=1)
    best_length = int(np.argmax(total.max(axis=1).sum(axis=1)))
    best_amp = _coverage_floor(np.argmax(total[best_length], axis=0), hits[best_length] / n_held)  # (D,)
    columns = np.arange(losses.shape[1])
    sd = amplitudes[best_amp, columns]
    settings = Discrepancy(lengthscale=float(lengths[best_length]), sd=tuple(float(v) for v in sd))
    scores = pd.DataFrame(
        {
            "law": alone,
            "with_discrepancy": total[best_length][best_amp, columns],
            "coverage90_law": np.concatenate(covered_alone).mean(axis=0),
            "coverage90_with_discrepancy": hits[best_length][best_amp, columns] / n_held,
            "sd": sd,
        },
        index=pd.Index(runs.domains, name="domain"),
    )
    return DiscrepancyCalibration(settings, pd.DataFrame(rows), scores)

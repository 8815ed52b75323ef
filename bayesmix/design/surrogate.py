"""The posterior the designer refits after every batch: draws of the target loss at candidates.

Two surrogates, both returning an :class:`EnsemblePosterior` (draws ``(sample, candidate)`` and a
run-noise variance):

* :class:`BootstrapLaw` (default, fast: ~0.1-1 s per refit): the paper's mixing law
  ``c + exp(log_k + t . r^g)`` fitted with the paper's Huber loss (``delta = 0.05``) by L-BFGS,
  once on all runs (from the paper's initialisation grid) and then on ``n_boot`` Bayesian-bootstrap
  reweightings of the runs (Dirichlet(1) weights, warm-started from the full fit). The spread of
  the bootstrap fits stands in for the posterior of the law mean; a weak ridge on ``t`` keeps
  fits on fewer runs than parameters finite. This is the choice inside the active-learning loop:
  a NUTS fit costs seconds to minutes per refit on a busy 2-core box, which a loop of tens of
  refits per seed cannot afford, while ``method="map"`` gives a single draw (no uncertainty, so
  Thompson sampling is greedy and integrated variance is zero).
* :class:`LawFit`: the full engine, ``bayesmix.fit(..., method="nuts")`` (short chains by
  default) then ``bayesmix.predict(kind="mean")``; use it for the final refits or when refits are
  rare compared with runs (a real pretraining study).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from bayesmix.errors import InputError
from bayesmix.inference.paper import PAPER_DELTA, paper_inits
from bayesmix.laws.features import power_features


@dataclass(frozen=True)
class EnsemblePosterior:
    """Draws of the target's law-mean loss: ``predict(mixtures) -> (sample, candidate)``."""

    params: np.ndarray  # (sample, 2 + M): log_c, log_k, t  (BootstrapLaw), or empty for LawFit
    exponent: float
    noise_var: float
    idata: Any = None
    max_draws: int = 200

    def predict(self, mixtures: np.ndarray) -> np.ndarray:
        """Posterior target losses at ``mixtures`` ``(C, M)``, shape ``(sample, C)``."""
        mixtures = np.atleast_2d(np.asarray(mixtures, dtype=float))
        if self.idata is not None:
            from bayesmix.inference.predict import predict

            draws = predict(self.idata, mixtures, kind="mean", max_draws=self.max_draws, seed=0)
            return draws.isel(domain=0).to_numpy()
        features = power_features(mixtures, self.exponent, np)
        log_c, log_k, t = self.params[:, 0], self.params[:, 1], self.params[:, 2:]
        return np.exp(log_c)[:, None] + np.exp(np.clip(log_k[:, None] + t @ features.T, -60.0, 60.0))


def _objective(params: np.ndarray, features: np.ndarray, y: np.ndarray, w: np.ndarray, ridge: float):
    """Weighted paper Huber loss plus ``ridge/2 |t|^2``, with its gradient."""
    log_c, log_k, t = params[0], params[1], params[2:]
    reducible = np.exp(np.clip(log_k + features @ t, -60.0, 60.0))
    c = np.exp(log_c)
    residual = c + reducible - y
    small = np.abs(residual) <= PAPER_DELTA
    value = np.where(small, 0.5 * residual**2, PAPER_DELTA * (np.abs(residual) - 0.5 * PAPER_DELTA))
    g = w * np.where(small, residual, PAPER_DELTA * np.sign(residual))
    gr = g * reducible
    grad = np.concatenate([[np.sum(g) * c, gr.sum()], features.T @ gr + ridge * t])
    return float(w @ value + 0.5 * ridge * t @ t), grad


@dataclass(frozen=True)
class BootstrapLaw:
    """Bayesian-bootstrap ensemble of paper-protocol fits of the mixing law (see module docstring).

    Parameters
    ----------
    exponent
        Power ``g`` of the features ``r^g`` (0.5 does better than the paper's 1 on RegMix).
    n_boot
        Ensemble size (posterior draws).
    n_inits
        Starts from the paper's grid for the fit on all runs.
    ridge
        Weight of ``|t|^2 / 2`` in every fit.
    """

    exponent: float = 0.5
    n_boot: int = 32
    n_inits: int = 8
    ridge: float = 1e-3

    def fit(self, mixtures: np.ndarray, losses: np.ndarray, seed: int) -> EnsemblePosterior:
        """Fit to ``mixtures`` ``(n, M)`` and target ``losses`` ``(n,)``; same seed, same draws."""
        mixtures, y = np.asarray(mixtures, dtype=float), np.asarray(losses, dtype=float)
        if len(y) < 2:
            raise InputError("runs", f"{len(y)} finished runs", "finish at least 2 runs before refitting")
        features = power_features(mixtures, float(self.exponent), np)
        start = self._full_fit(features, y, seed)
        rng = np.random.default_rng(seed)
        params = np.empty((self.n_boot, len(start)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for b in range(self.n_boot):
                w = rng.dirichlet(np.ones(len(y))) * len(y)
                result = minimize(
                    _objective,
                    start,
                    args=(features, y, w, self.ridge),
                    jac=True,
                    method="L-BFGS-B",
                    options={"maxiter": 300},
                )
                params[b] = result.x if np.all(np.isfinite(result.x)) else start
        residual = y - (np.exp(start[0]) + np.exp(np.clip(start[1] + features @ start[2:], -60, 60)))
        sigma = max(1.4826 * float(np.median(np.abs(residual - np.median(residual)))), 1e-4)
        return EnsemblePosterior(params, float(self.exponent), sigma**2)

    def _full_fit(self, features: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
        """Best fit on all runs from a log-linear least-squares start and ``n_inits`` paper starts."""
        c0 = 0.5 * float(y.min())
        design = np.c_[np.ones(len(y)), features]
        coef, *_ = np.linalg.lstsq(design.T @ design + 1e-3 * np.eye(design.shape[1]),
                                   design.T @ np.log(y - c0), rcond=None)
        starts = np.vstack([np.r_[np.log(c0), coef], paper_inits(features.shape[1], self.n_inits, seed)])
        ones = np.ones(len(y))
        best = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for start in starts:
                result = minimize(_objective, start, args=(features, y, ones, self.ridge), jac=True,
                                  method="L-BFGS-B", options={"maxiter": 1000})
                if np.isfinite(result.fun) and (best is None or result.fun < best.fun):
                    best = result
        assert best is not None  # the least-squares start always gives a finite objective
        return best.x

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (:func:`surrogate_from_dict` rebuilds it)."""
        return {"kind": "bootstrap", **asdict(self)}


@dataclass(frozen=True)
class LawFit:
    """The full engine: ``bayesmix.fit`` of ``MixingLaw(exponent)`` to the target, then ``predict``.

    Parameters
    ----------
    exponent
        ``MixingLaw`` exponent (a number, or ``"learn"``).
    method
        ``"nuts"`` (recommended) or ``"map"`` (one draw: no uncertainty).
    draws, tune, chains
        Short NUTS settings for a refit inside the loop.
    max_draws
        Posterior draws used per acquisition.
    """

    exponent: float | str = 0.5
    method: str = "nuts"
    draws: int = 250
    tune: int = 250
    chains: int = 2
    max_draws: int = 200

    def fit(self, mixtures: np.ndarray, losses: np.ndarray, seed: int) -> EnsemblePosterior:
        """Fit to ``mixtures`` ``(n, M)`` (columns ``d0..``) and target ``losses`` ``(n,)``."""
        from bayesmix.data.runs import RunTable
        from bayesmix.inference.fit import fit
        from bayesmix.laws import MixingLaw

        names = [f"d{j}" for j in range(np.shape(mixtures)[1])]
        index = pd.Index([f"r{i}" for i in range(len(losses))], name="run")
        table = RunTable(
            pd.DataFrame(np.asarray(mixtures, dtype=float), index=index, columns=names),
            pd.DataFrame({"target": np.asarray(losses, dtype=float)}, index=index),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = fit(
                table,
                MixingLaw(exponent=self.exponent),
                method=self.method,
                draws=self.draws,
                tune=self.tune,
                chains=self.chains,
                seed=seed,
            )
        sigma = np.asarray(idata.posterior["sigma"]).reshape(-1)
        return EnsemblePosterior(np.empty((0, 0)), 0.0, float(np.mean(sigma**2)), idata, self.max_draws)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (:func:`surrogate_from_dict` rebuilds it)."""
        return {"kind": "lawfit", **asdict(self)}


Surrogate = BootstrapLaw | LawFit


def surrogate_from_dict(spec: dict[str, Any]) -> Surrogate:
    """Rebuild a surrogate from :meth:`BootstrapLaw.to_dict` / :meth:`LawFit.to_dict`."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind == "bootstrap":
        return BootstrapLaw(**spec)
    if kind == "lawfit":
        return LawFit(**spec)
    raise InputError("surrogate", f"unknown kind {kind!r}", "use 'bootstrap' or 'lawfit'")

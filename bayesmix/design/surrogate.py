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
  rare compared with runs (a real pretraining study). Single scale only.

Runs at several scales (model size and tokens)
----------------------------------------------
When runs come from several scales ``s`` (e.g. a small proxy and the target model size),
:meth:`BootstrapLaw.fit` takes each run's scale index and fits one mixing law per scale, the
other scales' laws written as deviations from the **target scale's** law::

    L_T(r) = c + exp(log_k + t . r^g)                                     (target scale)
    L_s(r) = c + delta_s + exp(log_k + kappa_s + (t + b_s) . r^g)         (any other scale s)

* ``delta_s`` is the scale-law offset (the ``A/N^alpha + B/D^beta`` difference of the nested
  laws between the two scales); it is free (a negligible ridge only fixes it when there are no
  target-scale runs: then the target law carries the pooled level of the other scales, and only
  differences between mixtures, which decide the optimum, are meaningful at the target scale);
* ``kappa_s`` (how much larger the mixture-dependent part is at scale ``s``) and ``b_s`` (how the
  mixture's effect itself differs: the optimum may move with scale) have Gaussian priors
  ``N(0, scale_log_k_sd^2)`` and ``N(0, (scale_t_sd * rms(t))^2)`` (``rms(t)``: the size of the
  law's ``t`` in a first fit of all runs with per-scale offsets, so the prior is relative to the
  mixture effect the data show): ridges of weight ``sigma^2 / sd^2``
  (``sigma`` the run-noise sd of the full fit), so runs at scale ``s`` inform the target law as
  far as the data allow the two laws to agree. Every bootstrap member draws its own prior centre
  of ``kappa_s`` and ``b_s`` from these priors ("randomised priors"), so where the data cannot
  tell the laws apart, the ensemble keeps the prior's doubt about the transfer between scales,
  and target-scale predictions stay uncertain until runs at the target scale are bought.

This is a cheap multi-fidelity model (Kennedy and O'Hagan's "scaled truth plus discrepancy" with
the law's own features), not the full nested model of :mod:`bayesmix.inference.nested`: it does
not extrapolate to a target scale with no runs beyond the pooled level, and it assumes the noise
of one run is the same at every scale.
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
    """Draws of the target's law-mean loss: ``predict(mixtures) -> (sample, candidate)``.

    ``scale_terms`` (``(sample, S, 2 + M)``: ``delta_s, kappa_s, b_s`` of every scale, zeros for
    the target scale; see the module docstring) is set by a multi-scale :meth:`BootstrapLaw.fit`.
    """

    params: np.ndarray  # (sample, 2 + M): log_c, log_k, t  (BootstrapLaw), or empty for LawFit
    exponent: float
    noise_var: float
    idata: Any = None
    max_draws: int = 200
    scale_terms: np.ndarray | None = None

    def predict(self, mixtures: np.ndarray, scale: int | np.ndarray | None = None) -> np.ndarray:
        """Posterior losses at ``mixtures`` ``(C, M)``, shape ``(sample, C)``.

        Parameters
        ----------
        mixtures
            ``(C, M)`` mixtures.
        scale
            ``None`` (default): the target scale. Otherwise the scale index of every row (one int
            for all rows, or ``(C,)`` ints) in the order of the fit's scales.
        """
        mixtures = np.atleast_2d(np.asarray(mixtures, dtype=float))
        if self.idata is not None:
            if scale is not None:
                raise InputError("scale", "the NUTS surrogate has one scale", "use BootstrapLaw for several")
            from bayesmix.inference.predict import predict

            draws = predict(self.idata, mixtures, kind="mean", max_draws=self.max_draws, seed=0)
            return draws.isel(domain=0).to_numpy()
        features = power_features(mixtures, self.exponent, np)
        log_c, log_k, t = self.params[:, 0], self.params[:, 1], self.params[:, 2:]
        if scale is None or self.scale_terms is None:
            if scale is not None and np.any(np.asarray(scale) != 0):
                raise InputError("scale", f"got {scale!r} for a single-scale fit", "leave scale=None")
            return np.exp(log_c)[:, None] + np.exp(np.clip(log_k[:, None] + t @ features.T, -60.0, 60.0))
        index = np.broadcast_to(np.asarray(scale, dtype=int), (len(mixtures),))
        terms = self.scale_terms[:, index, :]  # (sample, C, 2 + M)
        slope = t[:, None, :] + terms[:, :, 2:]
        eta = log_k[:, None] + terms[:, :, 1] + np.einsum("scm,cm->sc", slope, features)
        return np.exp(log_c)[:, None] + terms[:, :, 0] + np.exp(np.clip(eta, -60.0, 60.0))


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


def _unpack(params: np.ndarray, m: int, n_scales: int, target: int) -> tuple[np.ndarray, ...]:
    """``log_c, log_k, t`` and the per-scale ``delta (S,), kappa (S,), b (S, M)`` (target row 0)."""
    others = [s for s in range(n_scales) if s != target]
    extra = params[2 + m :].reshape(len(others), 2 + m)
    terms = np.zeros((n_scales, 2 + m))
    terms[others] = extra
    return params[0], params[1], params[2 : 2 + m], terms[:, 0], terms[:, 1], terms[:, 2:], others


def _objective_scaled(
    params: np.ndarray,
    features: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    ridge: float,
    scales: np.ndarray,
    n_scales: int,
    target: int,
    penalty: np.ndarray,
    centre: np.ndarray,
):
    """Weighted Huber loss of the per-scale laws (module docstring) plus ridges, with gradient.

    ``penalty`` and ``centre`` have the shape of the per-scale block ``(S - 1, 2 + M)``: the ridge
    weight and the prior centre of every ``delta_s, kappa_s, b_s``.
    """
    m = features.shape[1]
    log_c, log_k, t, delta, kappa, b, others = _unpack(params, m, n_scales, target)
    slope = t[None, :] + b[scales]
    reducible = np.exp(np.clip(log_k + kappa[scales] + (slope * features).sum(axis=1), -60.0, 60.0))
    c = np.exp(log_c)
    residual = c + delta[scales] + reducible - y
    small = np.abs(residual) <= PAPER_DELTA
    value = np.where(small, 0.5 * residual**2, PAPER_DELTA * (np.abs(residual) - 0.5 * PAPER_DELTA))
    g = w * np.where(small, residual, PAPER_DELTA * np.sign(residual))
    gr = g * reducible
    grad_terms = np.zeros((n_scales, 2 + m))
    grad_terms[:, 0] = np.bincount(scales, weights=g, minlength=n_scales)
    grad_terms[:, 1] = np.bincount(scales, weights=gr, minlength=n_scales)
    np.add.at(grad_terms[:, 2:], scales, features * gr[:, None])
    extra = params[2 + m :].reshape(len(others), 2 + m)
    grad_extra = grad_terms[others] + penalty * (extra - centre)
    grad = np.concatenate([[np.sum(g) * c, gr.sum()], features.T @ gr + ridge * t, grad_extra.ravel()])
    prior = 0.5 * float((penalty * (extra - centre) ** 2).sum())
    return float(w @ value + 0.5 * ridge * t @ t) + prior, grad


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
    scale_t_sd
        Prior sd of every entry of ``b_s``, the difference between a scale's ``t`` and the
        target scale's, relative to the root mean square of ``t`` (fitted once on all runs with
        per-scale offsets): 0.3 lets a scale's mixture effect differ by about 30% (multi-scale fits
        only).
    scale_log_k_sd
        Prior sd of ``kappa_s``, the difference of ``log_k`` (multi-scale fits only).
    """

    exponent: float = 0.5
    n_boot: int = 32
    n_inits: int = 8
    ridge: float = 1e-3
    scale_t_sd: float = 0.3
    scale_log_k_sd: float = 0.5

    def fit(
        self,
        mixtures: np.ndarray,
        losses: np.ndarray,
        seed: int,
        scales: np.ndarray | None = None,
        n_scales: int | None = None,
        target_scale: int = 0,
    ) -> EnsemblePosterior:
        """Fit to ``mixtures`` ``(n, M)`` and target ``losses`` ``(n,)``; same seed, same draws.

        Parameters
        ----------
        mixtures, losses
            The finished runs and their (target-domain) losses.
        seed
            Seed of the bootstrap weights and inits.
        scales
            ``(n,)`` scale index of every run (``None``: one scale, the law of the module
            docstring's first paragraph).
        n_scales
            Number of scales (default ``max(scales) + 1``); scales without runs are allowed.
        target_scale
            Index of the scale whose law is the reference (``predict(scale=None)``).
        """
        mixtures, y = np.asarray(mixtures, dtype=float), np.asarray(losses, dtype=float)
        if len(y) < 2:
            raise InputError("runs", f"{len(y)} finished runs", "finish at least 2 runs before refitting")
        features = power_features(mixtures, float(self.exponent), np)
        if scales is not None:
            scales = np.asarray(scales, dtype=int)
            n_scales = int(scales.max()) + 1 if n_scales is None else int(n_scales)
            if scales.shape != y.shape or scales.min() < 0 or scales.max() >= n_scales:
                raise InputError("scales", f"{scales!r}", f"give one index in [0, {n_scales}) per run")
            if not 0 <= target_scale < n_scales:
                raise InputError("target_scale", f"got {target_scale!r}", f"give an index in [0, {n_scales})")
            if n_scales > 1:
                return self._fit_scaled(features, y, seed, scales, n_scales, int(target_scale))
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

    def _fit_scaled(
        self, features: np.ndarray, y: np.ndarray, seed: int, scales: np.ndarray, n_scales: int, target: int
    ) -> EnsemblePosterior:
        """The multi-scale fit (module docstring): per-scale offsets and pooled deviations."""
        m = features.shape[1]
        others = [s for s in range(n_scales) if s != target]
        # start: the single-scale fit on losses moved to a common level by per-scale medians
        has = [s for s in range(n_scales) if np.any(scales == s)]
        level = float(np.median(y[scales == target])) if target in has else float(np.median(y))
        offset0 = np.array([float(np.median(y[scales == s])) - level if s in has else 0.0 for s in range(n_scales)])
        offset0[target] = 0.0
        base = self._full_fit(features, y - offset0[scales], seed)
        block = np.zeros((len(others), 2 + m))
        block[:, 0] = offset0[others]
        start = np.concatenate([base, block.ravel()])
        residual = y - offset0[scales] - (np.exp(base[0]) + np.exp(np.clip(base[1] + features @ base[2:], -60, 60)))
        sigma = max(1.4826 * float(np.median(np.abs(residual - np.median(residual)))), 1e-3)
        penalty = np.empty((len(others), 2 + m))
        penalty[:, 0] = 1e-6  # the offsets are free; this only fixes them without target-scale runs
        penalty[:, 1] = sigma**2 / self.scale_log_k_sd**2
        t_sd = self.scale_t_sd * max(float(np.sqrt(np.mean(base[2:] ** 2))), 1e-2)  # relative to the law's t
        penalty[:, 2:] = sigma**2 / t_sd**2
        zero = np.zeros_like(penalty)
        ones = np.ones(len(y))
        args = (features, y, ones, self.ridge, scales, n_scales, target, penalty, zero)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            full = minimize(_objective_scaled, start, args=args, jac=True, method="L-BFGS-B",
                            options={"maxiter": 2000})
            start = full.x if np.all(np.isfinite(full.x)) else start
            rng = np.random.default_rng(seed)
            prior_rng = np.random.default_rng([seed, 1])
            params = np.empty((self.n_boot, len(start)))
            for b in range(self.n_boot):
                w = rng.dirichlet(np.ones(len(y))) * len(y)
                centre = np.zeros_like(penalty)
                centre[:, 1] = prior_rng.normal(0.0, self.scale_log_k_sd, size=len(others))
                centre[:, 2:] = prior_rng.normal(0.0, t_sd, size=(len(others), m))
                x0 = start.copy()  # warm start, moved to this member's prior centre
                x0[2 + m :] += centre.ravel()
                result = minimize(
                    _objective_scaled,
                    x0,
                    args=(features, y, w, self.ridge, scales, n_scales, target, penalty, centre),
                    jac=True,
                    method="L-BFGS-B",
                    options={"maxiter": 300},
                )
                params[b] = result.x if np.all(np.isfinite(result.x)) else start
        *_, delta, kappa, b_full, _ = _unpack(start, m, n_scales, target)
        fitted = np.exp(start[0]) + delta[scales] + np.exp(
            np.clip(start[1] + kappa[scales] + ((start[2 : 2 + m] + b_full[scales]) * features).sum(1), -60, 60)
        )
        residual = y - fitted
        noise = max(1.4826 * float(np.median(np.abs(residual - np.median(residual)))), 1e-4)
        terms = np.zeros((self.n_boot, n_scales, 2 + m))
        terms[:, others] = params[:, 2 + m :].reshape(self.n_boot, len(others), 2 + m)
        return EnsemblePosterior(params[:, : 2 + m], float(self.exponent), noise**2, scale_terms=terms)

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
        ``"nuts"`` (recommended), ``"laplace"`` (the fast approximate posterior) or ``"map"``
        (one draw: no uncertainty). Refits after the first reuse the compiled model
        (:mod:`bayesmix.inference.engine`), so a warm NUTS refit takes seconds.
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

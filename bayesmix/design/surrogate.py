"""The posterior the designer refits after every batch: draws of the target loss at candidates.

Three surrogates, each returning an :class:`EnsemblePosterior` (draws ``(sample, candidate)`` and a
run-noise variance); :class:`JointLawFit` is the third, for runs at several model sizes:

* :class:`LawFit` (the designer's default with one scale): the full engine,
  ``bayesmix.fit(..., method="nuts")`` of the mixing law with short chains, then
  ``bayesmix.predict(kind="mean")``; optionally with the law's form error (``discrepancy=True``).
  Refits reuse the compiled model (:mod:`bayesmix.inference.engine`): on the RegMix pool
  (17 training domains, 16-48 runs) an ``ask`` with it took 0.6 s after the first (about 15 s,
  compilation), and its recommendations matched the bootstrap's (benchmarks/RESULTS.md, active
  learning). Until the runs suffice for the law, the bootstrap ensemble stands in.
* :class:`BootstrapLaw` (the default with several scales, and an option): the paper's mixing law
  ``c + exp(log_k + t . r^g)`` fitted with the paper's Huber loss (``delta = 0.05``) by L-BFGS,
  once on all runs (from the paper's initialisation grid) and then on ``n_boot`` Bayesian-bootstrap
  reweightings of the runs (Dirichlet(1) weights, warm-started from the full fit). The spread of
  the bootstrap fits stands in for the posterior of the law mean; a weak ridge on ``t`` keeps
  fits on fewer runs than parameters finite (~0.1-1 s per refit).

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
    scale_idata: tuple[Any, ...] | None = None
    target_scale: int = 0

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
        if self.scale_idata is not None:
            return self._predict_scales(mixtures, scale)
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

    def _predict_scales(self, mixtures: np.ndarray, scale: int | np.ndarray | None) -> np.ndarray:
        """Draws of a joint fit read at each row's scale (the same posterior draws at every scale)."""
        from bayesmix.inference.predict import predict

        assert self.scale_idata is not None
        index = np.broadcast_to(
            np.asarray(self.target_scale if scale is None else scale, dtype=int), (len(mixtures),)
        )
        if index.min() < 0 or index.max() >= len(self.scale_idata):
            raise InputError("scale", f"got {scale!r}", f"give indices in [0, {len(self.scale_idata)})")
        out: np.ndarray | None = None
        for s in np.unique(index):
            rows = np.flatnonzero(index == s)
            draws = predict(self.scale_idata[s], mixtures[rows], kind="mean", max_draws=self.max_draws, seed=0)
            values = draws.isel(domain=0).to_numpy()
            if out is None:
                out = np.empty((values.shape[0], len(mixtures)))
            out[:, rows] = values
        assert out is not None
        return out


@dataclass(frozen=True)
class ColumnsPosterior:
    """A posterior fitted on some mixture columns, predicting from full mixtures (:func:`on_columns`)."""

    posterior: EnsemblePosterior
    columns: tuple[int, ...]

    @property
    def noise_var(self) -> float:
        """The fitted posterior's run-noise variance."""
        return self.posterior.noise_var

    def predict(self, mixtures: np.ndarray, scale: int | np.ndarray | None = None) -> np.ndarray:
        """:meth:`EnsemblePosterior.predict` on the fitted columns of ``mixtures`` ``(C, M)``.

        Raises
        ------
        InputError
            A mixture with a positive share of a column the fit left out.
        """
        mixtures = np.atleast_2d(np.asarray(mixtures, dtype=float))
        left_out = np.delete(mixtures, list(self.columns), axis=1)
        if np.any(left_out > 0):
            raise InputError(
                "mixtures", "give a positive share to a domain the surrogate was fitted without",
                "keep the domains that no run may train on at 0",
            )
        return self.posterior.predict(mixtures[:, list(self.columns)], scale=scale)


def on_columns(posterior: EnsemblePosterior, columns: Any) -> ColumnsPosterior:
    """Wrap ``posterior``, fitted on ``mixtures[:, columns]``, to predict from full mixtures."""
    return ColumnsPosterior(posterior, tuple(int(c) for c in columns))


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
        model_sizes: Any = None,
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
        model_sizes
            Not used (the scales' laws are tied by priors, not by their sizes); accepted so that
            every multi-scale surrogate is called alike.
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


def _fit_possible(mixtures: np.ndarray, losses: np.ndarray, min_runs: int) -> bool:
    """Whether a Bayesian law can be fitted: ``min_runs`` runs and a run on every domain."""
    return len(losses) >= min_runs and bool(np.all(np.any(mixtures > 0, axis=0)))


@dataclass(frozen=True)
class LawFit:
    """The Bayesian surrogate: ``bayesmix.fit`` of ``MixingLaw(exponent)`` to the target, then ``predict``.

    Posterior draws of the law's mean at the candidates, with the law's form error when
    ``discrepancy`` is set: the designer then sees the law's doubt grow away from the runs (the
    discrepancy's amplitude is calibrated on every refit by region backtests,
    :func:`bayesmix.inference.calibrate_discrepancy`), which a surrogate that trusts the law's
    form cannot (its draws agree far from the runs wherever the law's parameters are pinned).

    Parameters
    ----------
    exponent
        ``MixingLaw`` exponent (a number, or ``"learn"``).
    method
        ``"nuts"`` (default), ``"laplace"`` (the fast approximate posterior) or ``"map"``
        (one draw: no uncertainty). Refits after the first reuse the compiled model
        (:mod:`bayesmix.inference.engine`): a warm NUTS refit on 32 runs x 17 domains takes
        about 0.5 s, the first one (compilation) about 15 s.
    draws, tune, chains
        Short NUTS settings for a refit inside the loop.
    max_draws
        Posterior draws used per acquisition.
    discrepancy
        Fit the law's form error (``fit(..., discrepancy="auto")``: on when region backtests
        are possible). Each refit then also fits one Laplace posterior per backtested region
        (about 8 s on 32 runs x 17 domains, warm).

    Notes
    -----
    The law needs one run more than its parameters (``M + 3`` parameters for ``M`` training
    domains with a power exponent, so ``M + 4`` runs) and a run that trains on each domain. Until then :meth:`fit` returns the
    :class:`BootstrapLaw` ensemble of the same law (its ridge keeps such fits finite; a domain
    no run has trained on gets no effect), and ``EnsemblePosterior.idata`` is ``None``.
    """

    exponent: float | str = 0.5
    method: str = "nuts"
    draws: int = 250
    tune: int = 250
    chains: int = 2
    max_draws: int = 200
    discrepancy: bool = False

    def min_runs(self, n_train_domains: int) -> int:
        """Runs the Bayesian fit needs with ``n_train_domains`` training domains."""
        from bayesmix.data.runs import RUNS_MARGIN
        from bayesmix.laws import MixingLaw

        return MixingLaw(exponent=self.exponent).n_parameters(1, n_train_domains) + RUNS_MARGIN

    def fit(self, mixtures: np.ndarray, losses: np.ndarray, seed: int) -> EnsemblePosterior:
        """Fit to ``mixtures`` ``(n, M)`` (columns ``d0..``) and target ``losses`` ``(n,)``."""
        from bayesmix.data.runs import RunTable
        from bayesmix.inference.fit import fit
        from bayesmix.laws import MixingLaw

        mixtures = np.asarray(mixtures, dtype=float)
        losses = np.asarray(losses, dtype=float)
        if not _fit_possible(mixtures, losses, self.min_runs(mixtures.shape[1])):
            exponent = self.exponent if isinstance(self.exponent, int | float) else 0.5
            return BootstrapLaw(exponent=float(exponent)).fit(mixtures, losses, seed=seed)
        names = [f"d{j}" for j in range(mixtures.shape[1])]
        index = pd.Index([f"r{i}" for i in range(len(losses))], name="run")
        table = RunTable(
            pd.DataFrame(mixtures, index=index, columns=names),
            pd.DataFrame({"target": losses}, index=index),
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
                discrepancy="auto" if self.discrepancy else None,
            )
        sigma = np.asarray(idata.posterior["sigma"]).reshape(-1)
        return EnsemblePosterior(np.empty((0, 0)), 0.0, float(np.mean(sigma**2)), idata, self.max_draws)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (:func:`surrogate_from_dict` rebuilds it)."""
        return {"kind": "lawfit", **asdict(self)}


@dataclass(frozen=True)
class JointLawFit:
    """The Bayesian surrogate for runs at several model sizes: the joint mixture x size law.

    Every refit is :func:`bayesmix.fit_joint` of :class:`~bayesmix.laws.JointMixingLaw` (the
    mixing law whose coefficients move linearly in ``ln N``, scale effects pooled) on the runs of
    every scale, read at each scale's model size (:func:`bayesmix.joint_at`) with the same
    posterior draws, so a draw at a small scale and at the target scale are the same law: the
    designer's cross-scale acquisitions see how far a proxy's runs inform the target. A target
    scale without runs is predicted by the law's trend in ``ln N`` (its uncertainty grows with
    the distance).

    Parameters
    ----------
    exponent
        Power of the mixture features (:class:`~bayesmix.laws.JointMixingLaw`).
    draws, tune, chains
        Short NUTS settings for a refit inside the loop (refits reuse the compiled model).
    max_draws
        Posterior draws used per acquisition.

    Notes
    -----
    The scales must differ in model size (the law's coordinate is ``ln N``; scales that differ
    in tokens only are refused by the designer). Until runs of two sizes, one more than the joint
    law's parameters, and a run on every domain are in, :meth:`fit` returns the multi-scale
    :class:`BootstrapLaw` ensemble.

    Measured limits (benchmarks/RESULTS.md, active learning): the designer fits one target
    loss, so the law's scale effects, pooled over validation domains, have one domain to pool
    over; on the nested simulation (4 domains, 64 small and 6 large random runs) its fits had
    divergences and predicted the target size worse than the bootstrap ensemble (regret of the
    recommendation 0.012-0.014 nats against 0.002-0.005), and a cost-aware designer driven by
    it got worse as it bought. Prefer :class:`BootstrapLaw` (the default) for multi-scale designs.
    """

    exponent: float = 1.0
    draws: int = 250
    tune: int = 250
    chains: int = 2
    max_draws: int = 200

    def min_runs(self, n_train_domains: int) -> int:
        """Runs the joint fit needs with ``n_train_domains`` training domains."""
        from bayesmix.data.runs import RUNS_MARGIN
        from bayesmix.laws.joint import JointMixingLaw

        return JointMixingLaw(exponent=self.exponent).n_parameters(1, n_train_domains) + RUNS_MARGIN

    def fit(
        self,
        mixtures: np.ndarray,
        losses: np.ndarray,
        seed: int,
        scales: np.ndarray | None = None,
        n_scales: int | None = None,
        target_scale: int = 0,
        model_sizes: Any = None,
    ) -> EnsemblePosterior:
        """Fit to the runs ``mixtures`` ``(n, M)``, target ``losses`` ``(n,)`` at ``scales`` ``(n,)``.

        Parameters
        ----------
        mixtures, losses, seed, scales, n_scales, target_scale
            As :meth:`BootstrapLaw.fit`.
        model_sizes
            Model size ``N`` (parameters) of every scale, ``(n_scales,)``, distinct.

        Raises
        ------
        InputError
            No ``scales`` or ``model_sizes``, or two scales of one model size.
        """
        from bayesmix.data.runs import RunTable
        from bayesmix.inference.joint import fit_joint, joint_at
        from bayesmix.laws.joint import JointMixingLaw

        mixtures, losses = np.asarray(mixtures, dtype=float), np.asarray(losses, dtype=float)
        if scales is None or model_sizes is None:
            raise InputError("scales", "the joint surrogate needs each run's scale and each scale's model size",
                             "use it through Designer(scales=...), or use LawFit for runs of one scale")
        sizes = np.asarray(model_sizes, dtype=float)
        n_scales = len(sizes) if n_scales is None else int(n_scales)
        if sizes.shape != (n_scales,) or len(np.unique(sizes)) != n_scales or np.any(sizes <= 0):
            raise InputError("model_sizes", f"got {model_sizes!r}",
                             f"give {n_scales} distinct positive model sizes, one per scale")
        scales = np.asarray(scales, dtype=int)
        if len(np.unique(scales)) < 2 or not _fit_possible(mixtures, losses, self.min_runs(mixtures.shape[1])):
            return BootstrapLaw(exponent=float(self.exponent)).fit(
                mixtures, losses, seed=seed, scales=scales, n_scales=n_scales, target_scale=target_scale
            )
        frame = pd.DataFrame(mixtures, columns=[f"mix_d{j}" for j in range(mixtures.shape[1])])
        frame["target"] = losses
        frame["model_size"] = sizes[scales]
        frame["run"] = [f"r{i}" for i in range(len(losses))]
        table = RunTable.from_wide(frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = fit_joint(table, JointMixingLaw(exponent=self.exponent), draws=self.draws, tune=self.tune,
                              chains=self.chains, seed=seed)
            per_scale = tuple(joint_at(idata, float(n)) for n in sizes)
        sigma = np.asarray(per_scale[target_scale].posterior["sigma"]).reshape(-1)
        return EnsemblePosterior(np.empty((0, 0)), 0.0, float(np.mean(sigma**2)), idata, self.max_draws,
                                 scale_idata=per_scale, target_scale=int(target_scale))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (:func:`surrogate_from_dict` rebuilds it)."""
        return {"kind": "jointlawfit", **asdict(self)}


Surrogate = BootstrapLaw | LawFit | JointLawFit


def surrogate_from_dict(spec: dict[str, Any]) -> Surrogate:
    """Rebuild a surrogate from :meth:`BootstrapLaw.to_dict` / :meth:`LawFit.to_dict`."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind == "bootstrap":
        return BootstrapLaw(**spec)
    if kind == "lawfit":
        return LawFit(**spec)
    if kind == "jointlawfit":
        return JointLawFit(**spec)
    raise InputError("surrogate", f"unknown kind {kind!r}", "use 'bootstrap', 'lawfit' or 'jointlawfit'")

"""Fit the nested scaling laws and predict the loss at a target scale for any mixture.

::

    table = CurveTable.from_long(frame)                     # run, domain, loss, tokens, model_size, mix_*
    fitted = fit_nested(table)                               # joint hierarchical model (NUTS)
    draws = predict_target(fitted, model_size=1e9, tokens=1e11, mixtures={"web": .7, "code": .3})
    interval(draws)                                          # per domain and "total"

Stages are carried by their posterior draws (see :mod:`bayesmix.models.nested`): the scaling
stage gives draws of the target-scale loss of every observed mixture; mixtures that were not
observed go through the mixing law, fitted (NUTS) on those draws' mean and full covariance the
first time a target scale is asked for, and cached on the fit (a line is logged on the
``bayesmix.inference.nested`` logger when that fit starts and ends).

The target is checked against the fitted range of the runs (:func:`target_extrapolation`,
:func:`check_target`): how far it extrapolates is reported in e-folds, ``ln(N*/N_max)`` and
``ln(D*/D_max)``; past :data:`WARN_EFOLDS_MODEL_SIZE` / :data:`WARN_EFOLDS_TOKENS` a
:class:`TargetExtrapolationWarning` is issued, and a target below every run or more than
:data:`MAX_EFOLDS` beyond the largest one is refused unless ``force=True``.
"""

from __future__ import annotations

import hashlib
import logging
import numbers
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesmix.data.curves import MIN_SIZES, CurveTable
from bayesmix.data.runs import validate_mixtures
from bayesmix.errors import InputError, NotEnoughDataError
from bayesmix.inference import _arviz, engine
from bayesmix.inference.diagnostics import SamplerHealth, check_health, report_health
from bayesmix.inference.fit import SAMPLERS, _fit_nuts
from bayesmix.inference.nested_discrepancy import discrepancy_factor
from bayesmix.inference.predict import check_seed, posterior_draws
from bayesmix.laws.aggregation import ExplicitAggregation
from bayesmix.laws.mixing import MixingLaw
from bayesmix.laws.scaling import JointScalingLaw, ScalingLaw, SizeLaw, StepLaw
from bayesmix.models.likelihood import check_likelihood
from bayesmix.models.nested import (
    Curves,
    build_joint_model,
    build_mixing_stage_model,
    build_size_stage_model,
    build_step_stage_model,
    size_stage_keys,
)

METHODS = ("joint", "staged")
KINDS = ("predictive", "mean")
VIA = ("auto", "observed", "mixing_law")

#: warn past this many e-folds beyond the largest fitted model size (e^3, about 20x)
WARN_EFOLDS_MODEL_SIZE = 3.0
#: warn past this many e-folds beyond the largest fitted tokens (e^3, about 20x)
WARN_EFOLDS_TOKENS = 3.0
#: refuse (unless forced) a target more than this many e-folds beyond the data (e^7, about 1100x)
MAX_EFOLDS = 7.0
#: the target-scale mixing stage starts its chains within this much of the prior's centre in
#: every sampler coordinate (:func:`bayesmix.inference.engine.jittered_starts`), not PyMC's 1
MIXING_STAGE_START_JITTER = 0.3

logger = logging.getLogger(__name__)


class TargetExtrapolationWarning(UserWarning):
    """The target scale lies far beyond the fitted runs (see :func:`check_target`)."""


@dataclass
class NestedFit:
    """A fitted nested scaling-law model (returned by :func:`fit_nested`).

    Attributes
    ----------
    table
        The curves it was fitted on.
    method
        ``"joint"`` or ``"staged"``.
    scaling
        InferenceData of the joint model, or of stage 1 (step laws) when staged.
    curves
        The curves of :attr:`scaling` (by mixture and domain for joint, by run and domain for
        staged).
    settings
        Sampler settings, reused by the lazily fitted later stages.
    fit_seconds
        Wall time of every NUTS fit so far (later stages add theirs).
    health
        Sampler health per stage name.
    """

    table: CurveTable
    method: str
    scaling: _arviz.InferenceData
    curves: Curves
    settings: dict[str, Any]
    fit_seconds: float = 0.0
    health: dict[str, SamplerHealth] = field(default_factory=dict)
    size_stages: dict[float, tuple[_arviz.InferenceData, Curves]] = field(default_factory=dict)
    mixing_stages: dict[tuple[float, float], _arviz.InferenceData] = field(default_factory=dict)

    @property
    def mixtures(self) -> pd.DataFrame:
        """Observed mixtures (rows) over training domains."""
        return self.table.mixtures

    @property
    def domains(self) -> list[str]:
        """Validation domains."""
        return self.table.domains

    @property
    def single_size(self) -> bool:
        """Whether the runs have one model size (step laws only: longer training of that size)."""
        return len(self.table.model_sizes) == 1


def _check_settings(
    draws: int, tune: int, chains: int, target_accept: float, sampler: str, **options: Any
) -> None:
    """Check fit_nested's arguments (before any model is built or sampled)."""
    engine.check_nuts_settings(draws, tune, chains, target_accept)
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise InputError("sampler", f"unknown sampler {sampler!r}", f"use one of {SAMPLERS}")
    check_seed(options["seed"])
    check_likelihood(options["likelihood"])
    nu = options["nu"]
    if not engine.is_real_number(nu) or not np.isfinite(float(nu)) or nu <= 0:
        raise InputError("nu", f"got {nu!r}", "give the Student-t degrees of freedom, a number > 0 (e.g. 5)")
    for name in ("run_effect", "strict", "progressbar"):
        if not isinstance(options[name], bool | np.bool_):
            raise InputError(name, f"got {options[name]!r}", "give True or False")


def check_target_scale(model_size: Any, tokens: Any) -> None:
    """Raise :class:`InputError` unless the target ``model_size`` and ``tokens`` are finite counts >= 1."""
    for name, value in (("model_size", model_size), ("tokens", tokens)):
        if not engine.is_real_number(value) or not np.isfinite(float(value)) or value < 1:
            raise InputError(
                name, f"got {value!r}", "give the target scale as a count >= 1, in the table's units"
            )


def target_extrapolation(
    source: NestedFit | CurveTable, model_size: float, tokens: float
) -> dict[str, float]:
    """How far the target ``(N*, D*)`` lies from the fitted runs, in e-folds.

    Parameters
    ----------
    source
        A :class:`NestedFit` or the :class:`~bayesmix.data.curves.CurveTable` it was fitted on.
    model_size, tokens
        Target model size ``N*`` and training tokens ``D*`` (the table's units), counts >= 1.

    Returns
    -------
    dict of str to float
        ``model_size`` and ``tokens`` (the target); ``fitted_model_size_min`` /
        ``fitted_model_size_max`` (smallest and largest model size of the runs) and
        ``fitted_tokens_min`` / ``fitted_tokens_max`` (fewest and most tokens of any checkpoint);
        ``extrapolation_efolds_model_size = ln(N*/N_max)`` and
        ``extrapolation_efolds_tokens = ln(D*/D_max)`` (<= 0 at or inside the fitted range).

    Raises
    ------
    InputError
        ``source`` is neither, or the target is not a finite count >= 1.
    """
    if isinstance(source, NestedFit):
        source = source.table
    if not isinstance(source, CurveTable):
        raise InputError(
            "source", f"got {type(source).__name__}", "pass the result of fit_nested or its CurveTable"
        )
    check_target_scale(model_size, tokens)
    sizes = source.runs["model_size"].to_numpy(dtype=float)
    counts = source.frame["tokens"].to_numpy(dtype=float)
    n_max, d_max = float(sizes.max()), float(counts.max())
    return {
        "model_size": float(model_size),
        "tokens": float(tokens),
        "fitted_model_size_min": float(sizes.min()),
        "fitted_model_size_max": n_max,
        "fitted_tokens_min": float(counts.min()),
        "fitted_tokens_max": d_max,
        "extrapolation_efolds_model_size": float(np.log(float(model_size) / n_max)),
        "extrapolation_efolds_tokens": float(np.log(float(tokens) / d_max)),
    }


#: per checked quantity: its name in messages, the warning limit, what a too-large ratio suggests,
#: and how to check it
_TARGET_CHECKS = (
    (
        "model_size",
        "model size",
        WARN_EFOLDS_MODEL_SIZE,
        "the table's model_size column may hold another unit (e.g. millions of parameters)",
        "give the table's model_size and the target in the same unit (parameters)",
    ),
    (
        "tokens",
        "tokens",
        WARN_EFOLDS_TOKENS,
        "the table's tokens column may hold optimiser steps, not tokens",
        "give the tokens column in tokens (steps x tokens per step; CurveTable.from_long converts a "
        "step column with tokens_per_step=) and the target in tokens too",
    ),
)


def check_target(
    source: NestedFit | CurveTable,
    model_size: float,
    tokens: float,
    *,
    force: bool = False,
    force_hint: str = "force=True",
) -> dict[str, float]:
    """Check the target ``(N*, D*)`` against the fitted runs: refuse, warn, or pass.

    Parameters
    ----------
    source
        A :class:`NestedFit` or its :class:`~bayesmix.data.curves.CurveTable`.
    model_size, tokens
        Target model size ``N*`` and training tokens ``D*`` (the table's units).
    force
        Skip the refusals (the warnings are still issued).
    force_hint
        How the caller's user passes ``force`` (named in the error's fix), e.g. ``"force=True"``
        or a command-line flag.

    Returns
    -------
    dict of str to float
        :func:`target_extrapolation`'s numbers.

    Raises
    ------
    InputError
        Field ``model_size`` or ``tokens``, unless ``force``: a target below every run (smaller
        than the smallest fitted model size, or fewer tokens than any checkpoint), or more than
        :data:`MAX_EFOLDS` e-folds beyond the largest fitted value (a ratio that large usually means
        a unit mix-up, e.g. steps in the tokens column). Bad ``source`` or target values always.

    Warns
    -----
    TargetExtrapolationWarning
        The target is more than :data:`WARN_EFOLDS_MODEL_SIZE` (model size) or
        :data:`WARN_EFOLDS_TOKENS` (tokens) e-folds beyond the largest fitted value; the message
        names the e-folds and the fitted range.
    """
    info = target_extrapolation(source, model_size, tokens)
    if not isinstance(force, bool | np.bool_):
        raise InputError("force", f"got {force!r}", "give True or False")
    far = []
    for name, label, warn_at, unit_hint, unit_fix in _TARGET_CHECKS:
        value, efolds = info[name], info[f"extrapolation_efolds_{name}"]
        low, high = info[f"fitted_{name}_min"], info[f"fitted_{name}_max"]
        fitted = f"fitted {label} {low:.4g} to {high:.4g}"
        if not force and value < low:
            raise InputError(
                name,
                f"the target {value:.4g} lies below every run ({fitted}); a scaling law is fitted to "
                "extrapolate beyond the runs, not below them",
                f"give a target at or beyond the largest fitted {label} ({high:.4g}), "
                f"or pass {force_hint} to predict there anyway",
            )
        if not force and efolds > MAX_EFOLDS:
            raise InputError(
                name,
                f"the target {value:.4g} is {efolds:.1f} e-folds ({value / high:.3g}x) beyond the "
                f"largest fitted {label} ({fitted}); more than {MAX_EFOLDS:g} e-folds "
                f"({np.exp(MAX_EFOLDS):.0f}x) is no extrapolation the data supports, and {unit_hint}",
                f"{unit_fix}; or pass {force_hint} to predict there anyway",
            )
        if efolds > warn_at:
            far.append(
                f"{label} {value:.4g} is {efolds:.1f} e-folds ({value / high:.3g}x) beyond the data ({fitted})"
            )
    if far:
        warnings.warn(
            "the target extrapolates far: "
            + "; ".join(far)
            + f" (warned past {WARN_EFOLDS_MODEL_SIZE:g} e-folds in model size, {WARN_EFOLDS_TOKENS:g} "
            "in tokens); the intervals assume the fitted laws hold that far "
            "(calibrate_extrapolation estimates how wrong they were on held-out sizes)",
            TargetExtrapolationWarning,
            stacklevel=3,
        )
    return info


def _sample(
    model: Any,
    settings: Mapping[str, Any],
    names: Sequence[str],
    stage: str,
    fitted_health: dict,
    low_rank: bool | None = None,
    start_jitter: float | None = None,
):
    started = time.perf_counter()
    idata = _fit_nuts(
        model,
        settings["sampler"],
        settings["draws"],
        settings["tune"],
        settings["chains"],
        settings["target_accept"],
        settings["seed"],
        settings["progressbar"],
        low_rank,
        start_jitter=start_jitter if settings["sampler"] == "nutpie" else None,
    )
    seconds = time.perf_counter() - started
    _add_arviz_groups(model, idata, settings["seed"])
    health = check_health(idata, list(names))
    fitted_health[stage] = health
    idata.posterior.attrs["bayesmix_health"] = health.to_json()
    idata.posterior.attrs["bayesmix_fit_seconds"] = float(seconds)
    report_health(health, strict=settings["strict"])
    return idata, seconds


def _add_arviz_groups(model: Any, idata: Any, seed: int) -> None:
    """``log_likelihood`` and ``posterior_predictive`` (float32) on a stage small enough to carry them.

    The same size rule as :func:`bayesmix.fit` (``GROUP_MAX_VALUES`` draws x observations), so
    ``arviz.loo``, ``arviz.compare`` and ``arviz.plot_ppc`` work on a nested stage's InferenceData.
    """
    import pymc as pm

    from bayesmix.inference.fit import GROUP_MAX_VALUES

    posterior = idata.posterior
    if "observed_data" not in idata.groups():
        return
    n_observed = sum(int(v.size) for v in idata.observed_data.data_vars.values())
    if posterior.sizes["chain"] * posterior.sizes["draw"] * n_observed > GROUP_MAX_VALUES:
        return
    with model, engine.quiet():
        pm.compute_log_likelihood(idata, extend_inferencedata=True, progressbar=False)
        replicated = pm.sample_posterior_predictive(idata, progressbar=False, random_seed=int(seed))
    _arviz.set_group(idata, "log_likelihood", idata.log_likelihood.astype("float32"))
    _arviz.set_group(idata, "posterior_predictive", replicated.posterior_predictive.astype("float32"))


def _scaling_names(law: ScalingLaw) -> list[str]:
    return ["level", *(f"slope_{t.input}" for t in law.terms), *law.exponents, "sigma"]


def fit_nested(
    table: CurveTable,
    *,
    method: str = "joint",
    run_effect: bool = True,
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int | None = 1000,
    chains: int = 4,
    target_accept: float = 0.9,
    seed: int = 0,
    likelihood: str = "student_t",
    nu: float = 5.0,
    strict: bool = False,
    progressbar: bool = False,
    mixing_target_accept: float = 0.95,
) -> NestedFit:
    """Fit the scaling stage(s) of the nested pipeline by NUTS.

    Parameters
    ----------
    table
        Validated loss curves (:class:`~bayesmix.data.curves.CurveTable`).
    method
        ``"joint"``: one hierarchical model ``L(N, D)`` over all checkpoints with partial pooling
        of exponents and a per-run effect (recommended). ``"staged"``: the paper's order (step
        law per run, then size law per mixture), each stage carried by its draws; the size
        stage is fitted when a target is asked for (it depends on the target tokens). On a
        table of one model size (``CurveTable.from_long(..., min_sizes=1)``) the staged fit is
        the step laws alone: targets are longer training of that size (``model_size`` equal
        to the runs'), and a new run's interval holds the step laws' uncertainty and the
        checkpoint noise, not a seed-to-seed spread.
    run_effect
        Joint model only: per-run offsets, correlated across domains. Off for a table of final
        losses (one checkpoint per run, ``CurveTable.from_long(..., min_checkpoints=1)``):
        there the joint law is a Chinchilla-style ``L(N, D)`` over the runs' final losses.
    sampler, draws, tune, chains, target_accept, seed, strict, progressbar
        NUTS settings (as in :func:`bayesmix.fit`); the same seed gives the same numbers. Every
        stage tunes ``tune`` steps (default 1,000); ``tune=None`` takes
        :func:`bayesmix.inference.engine.default_tune` per stage.
    likelihood, nu
        Checkpoint noise: ``"student_t"`` (robust, default) or ``"normal"``.
    mixing_target_accept
        ``target_accept`` of the mixing-law stage fitted later for unobserved mixtures (its
        posterior, on a handful of mixtures, has more curvature than the scaling stage's; 0.9
        gave divergences on 6-8 mixtures where 0.95 did not).

    Returns
    -------
    NestedFit

    Raises
    ------
    InputError, NotEnoughDataError
        Bad arguments or a stage without enough data.
    """
    if not isinstance(table, CurveTable):
        raise InputError("table", f"got {type(table).__name__}", "build a CurveTable (CurveTable.from_long)")
    if not isinstance(method, str) or method not in METHODS:
        raise InputError("method", f"unknown method {method!r}", f"use one of {METHODS}")
    _check_settings(
        draws,
        tune,
        chains,
        target_accept,
        sampler,
        seed=seed,
        likelihood=likelihood,
        nu=nu,
        run_effect=run_effect,
        strict=strict,
        progressbar=progressbar,
    )
    if not engine.is_real_number(mixing_target_accept) or not 0.5 <= mixing_target_accept < 1:
        raise InputError(
            "mixing_target_accept", f"got {mixing_target_accept!r}", "give a value in [0.5, 1), e.g. 0.95"
        )
    # the table's own minimums: checkpoints (1 for a table of final losses) and model sizes. One
    # size (a table accepted with min_sizes=1) is fitted by the staged pipeline's step laws alone,
    # which predict longer training of that size; the joint L(N, D) needs two sizes
    if method == "joint" and len(table.model_sizes) == 1 and table.min_sizes < MIN_SIZES:
        raise NotEnoughDataError(
            "model_size",
            f"one model size ({table.model_sizes[0]:.4g}): the joint law L(N, D) needs two to learn how "
            "the loss moves with N",
            "use method='staged': its step law per run predicts longer training of this model size",
        )
    table.check_enough(min_sizes=max(table.min_sizes, MIN_SIZES) if method == "joint" else table.min_sizes)
    settings = {
        "sampler": sampler,
        "draws": int(draws),
        "tune": None if tune is None else int(tune),
        "chains": int(chains),
        "target_accept": float(target_accept),
        "seed": int(seed),
        "progressbar": bool(progressbar),
        "strict": bool(strict),
        "likelihood": likelihood,
        "nu": float(nu),
        "mixing_target_accept": float(mixing_target_accept),
    }
    health: dict[str, SamplerHealth] = {}
    if table.final_losses_only:
        if method != "joint":
            raise InputError(
                "method",
                "the staged pipeline fits a step law per run, and every run of this table has one checkpoint",
                "use method='joint' (one L(N, D) over the runs' final losses)",
            )
        if run_effect:  # one loss per run: a run's offset and its noise are the same number
            logger.info("one checkpoint per run: fitting the joint law without a per-run effect")
            run_effect = False
    if len(table.model_sizes) == 1 and table.final_losses_only:
        raise NotEnoughDataError(
            "checkpoints",
            "one model size and one checkpoint per run: neither a step law nor a size law can be fitted",
            "give each run's loss curve (several checkpoints), or runs at two or more model sizes",
        )
    if method == "joint":
        model, curves, _ = build_joint_model(table, run_effect=run_effect, likelihood=likelihood, nu=nu)
        names = _scaling_names(JointScalingLaw()) + (["run_sd", "run_corr"] if run_effect else [])
        idata, seconds = _sample(model, settings, names, "joint", health)
    else:
        model, curves, _ = build_step_stage_model(table, likelihood=likelihood, nu=nu)
        idata, seconds = _sample(model, settings, _scaling_names(StepLaw()), "step", health)
    idata.posterior.attrs["bayesmix_nested_method"] = method
    return NestedFit(
        table=table,
        method=method,
        scaling=idata,
        curves=curves,
        settings=settings,
        fit_seconds=seconds,
        health=health,
    )


def _law_draws(idata: _arviz.InferenceData, law: ScalingLaw, max_draws: int | None, seed: int):
    return posterior_draws(idata, list(law.parameters), max_draws=max_draws, seed=seed)


def _size_stage(fitted: NestedFit, tokens: float) -> tuple[_arviz.InferenceData, Curves]:
    key = float(tokens)
    if key not in fitted.size_stages:
        step = StepLaw()
        params = _law_draws(fitted.scaling, step, None, 0)
        extrapolated = step.evaluate(params, {"tokens": np.asarray(key)})  # (sample, run/domain curve)
        model, curves, _ = build_size_stage_model(fitted.table, fitted.curves, extrapolated)
        idata, seconds = _sample(
            model, fitted.settings, _scaling_names(SizeLaw()), f"size@{key:.4g}", fitted.health
        )
        fitted.fit_seconds += seconds
        fitted.size_stages[key] = (idata, curves)
    return fitted.size_stages[key]


def _grid(values: np.ndarray, curves: Curves, mixtures: Sequence[str], domains: Sequence[str]) -> np.ndarray:
    """Scatter ``(sample, curve)`` values into ``(sample, mixture, domain)`` (NaN where no curve)."""
    out = np.full((values.shape[0], len(mixtures), len(domains)), np.nan)
    m_pos = {m: j for j, m in enumerate(mixtures)}
    d_pos = {d: j for j, d in enumerate(domains)}
    for g, (m, d) in enumerate(zip(curves.keys["mixture"], curves.keys["domain"], strict=True)):
        out[:, m_pos[m], d_pos[d]] = values[:, g]
    return out


def _new_run_noise(
    idata: _arviz.InferenceData, n: int, n_domains: int, rng: np.random.Generator, nu: float, likelihood: str
) -> np.ndarray:
    """Draws ``(n, domain)`` of how far a new run's final checkpoint sits from the law."""
    names = ["sigma", "run_sd", "run_corr"]
    draws = posterior_draws(idata, names)
    pick = rng.integers(0, draws["sigma"].shape[0], size=n)
    sigma = draws["sigma"][pick]
    shock = (
        rng.standard_t(nu, size=(n, n_domains))
        if likelihood == "student_t"
        else rng.standard_normal((n, n_domains))
    )
    noise = sigma * shock
    if "run_sd" in draws:
        tau, rho = draws["run_sd"][pick], draws["run_corr"][pick][:, None]
        z = np.sqrt(rho) * rng.standard_normal((n, 1)) + np.sqrt(1 - rho) * rng.standard_normal(
            (n, n_domains)
        )
        noise = noise + tau * z
    return noise


def target_draws(
    fitted: NestedFit, model_size: float, tokens: float, *, max_draws: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Law draws ``(sample, mixture, domain)`` at ``(N*, D*)`` for the observed mixtures, and new-run noise.

    Returns
    -------
    (mean, noise)
        ``mean``: the scaling law at the target for each observed mixture (posterior draws);
        ``noise``: matching draws ``(sample, domain)`` of a new run's deviation from its law
        (per-run effect and checkpoint noise).
    """
    rng = np.random.default_rng(seed)
    if fitted.single_size:
        return _single_size_draws(fitted, float(model_size), float(tokens), max_draws, rng, seed)
    mixtures, domains = list(fitted.mixtures.index), fitted.domains
    target = {"model_size": np.asarray(float(model_size)), "tokens": np.asarray(float(tokens))}
    if fitted.method == "joint":
        law: ScalingLaw = JointScalingLaw()
        idata, curves = fitted.scaling, fitted.curves
        likelihood, nu = fitted.settings["likelihood"], fitted.settings["nu"]
        params = _law_draws(idata, law, max_draws, seed)
        mean = _grid(law.evaluate(params, target), curves, mixtures, domains)
        noise = _new_run_noise(idata, mean.shape[0], len(domains), rng, nu, likelihood)
    else:
        idata, curves = _size_stage(fitted, tokens)
        law = SizeLaw()
        params = _law_draws(idata, law, max_draws, seed)
        mean = _grid(law.evaluate(params, target), curves, mixtures, domains)
        # run-to-run spread around the size law (normal) plus stage 1's checkpoint noise
        noise = _new_run_noise(idata, mean.shape[0], len(domains), rng, 1.0, "normal")
        checkpoint = _new_run_noise(
            fitted.scaling,
            mean.shape[0],
            len(domains),
            rng,
            fitted.settings["nu"],
            fitted.settings["likelihood"],
        )
        noise = noise + checkpoint
    return mean, noise


def _single_size_draws(
    fitted: NestedFit, model_size: float, tokens: float, max_draws: int | None, rng: np.random.Generator, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`target_draws` of a staged fit on one model size: the step laws at ``tokens``.

    Each run's step law is evaluated at the target tokens and averaged over the runs of a
    mixture; the noise is the checkpoint noise of the step stage. A run-to-run (seed) spread is
    not in it: the step stage fits each run's own curve, so it does not estimate one.
    """
    (size,) = fitted.table.model_sizes
    if not np.isclose(model_size, size, rtol=1e-9):
        raise InputError(
            "model_size",
            f"is {model_size:.4g}, but the runs have one model size ({size:.4g}): their step laws predict "
            "longer training of that size only",
            f"give model_size={size:.6g}, or add runs at a second model size to predict another",
        )
    step = StepLaw()
    params = _law_draws(fitted.scaling, step, max_draws, seed)
    values = step.evaluate(params, {"tokens": np.asarray(tokens)})  # (sample, run/domain curve)
    keys = size_stage_keys(fitted.table, fitted.curves)
    mixtures, domains = list(fitted.mixtures.index), fitted.domains
    mean = np.full((values.shape[0], len(mixtures), len(domains)), np.nan)
    for (mixture, domain), rows in keys.groupby(["mixture", "domain"], sort=False).groups.items():
        mean[:, mixtures.index(mixture), domains.index(domain)] = values[:, np.asarray(rows)].mean(axis=1)
    noise = _new_run_noise(
        fitted.scaling, mean.shape[0], len(domains), rng, fitted.settings["nu"], fitted.settings["likelihood"]
    )
    return mean, noise


def _mixing_stage(fitted: NestedFit, model_size: float, tokens: float) -> _arviz.InferenceData:
    key = (float(model_size), float(tokens))
    if key not in fitted.mixing_stages:
        mean, _ = target_draws(fitted, model_size, tokens, seed=fitted.settings["seed"])
        if np.isnan(mean).any():
            raise InputError(
                "table",
                "some observed mixtures lack curves for some domains",
                "give every run a loss for every validation domain to fit the mixing law",
            )
        model = build_mixing_stage_model(fitted.mixtures, fitted.domains, mean)
        law = MixingLaw()
        settings = dict(fitted.settings)
        settings["target_accept"] = settings.get("mixing_target_accept", settings["target_accept"])
        logger.info(
            "fitting the mixing law at the target scale (N*=%.4g, D*=%.4g) on %d observed mixtures "
            "(NUTS, %d chains x %d draws; once per target scale, then cached) ...",
            key[0],
            key[1],
            len(fitted.mixtures),
            settings["chains"],
            settings["draws"],
        )
        # the low-rank mass matrix although the stage is small: the curvatures of its domains move
        # together, loosely pinned (quickstart, 4 x 1,000 draws: r_hat 1.069 -> 1.013, bulk ESS
        # 47 -> 283 on log_k, 19 -> 5 divergences). Chains start within +-0.3 of the prior's
        # centre: from PyMC's +-1, 62 of 64 starts lay where the law overflows, and in 3 of 4
        # seeds a chain stuck there (r_hat 1.6-3.5); from +-0.3, none in 4 seeds
        idata, seconds = _sample(
            model,
            settings,
            [p.name for p in law.parameters] + ["sigma"],
            f"mixing@{key[0]:.4g},{key[1]:.4g}",
            fitted.health,
            low_rank=True,
            start_jitter=MIXING_STAGE_START_JITTER,
        )
        logger.info("fitted the mixing law at (N*=%.4g, D*=%.4g) in %.1f s", key[0], key[1], seconds)
        fitted.fit_seconds += seconds
        fitted.mixing_stages[key] = idata
    return fitted.mixing_stages[key]


def _match_observed(frame: pd.DataFrame, observed: pd.DataFrame) -> list[int | None]:
    """Position of the observed mixture equal (1e-6) to each requested row, None for a new one."""
    positions: list[int | None] = []
    obs = observed.to_numpy()
    for row in frame.to_numpy():
        hit = np.flatnonzero(np.abs(obs - row).max(axis=1) < 1e-6)
        positions.append(int(hit[0]) if len(hit) else None)
    return positions


def _mixture_rng(seed: int, row: np.ndarray) -> np.random.Generator:
    """A generator for one mixture's own draws: a function of the seed and the mixture alone."""
    digest = hashlib.sha256((np.round(np.asarray(row, dtype=float), 9) + 0.0).tobytes()).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


def _mixing_law_values(
    fitted: NestedFit,
    model_size: float,
    tokens: float,
    rows: np.ndarray,
    noise: np.ndarray,
    *,
    kind: str,
    max_draws: int | None,
    seed: int,
) -> np.ndarray:
    """Draws ``(sample, mixture, domain)`` of ``rows`` through the mixing law at the target.

    Every draw that is random here is a function of the seed and the mixture itself, never of the
    other mixtures asked for: the run-to-run ``noise`` is picked once per draw (shared by all
    mixtures), the mixing-law misfit per mixture from :func:`_mixture_rng`. The result has as many
    draws as ``noise`` (the scaling stage's), so it sits next to the observed route's draws.
    """
    idata = _mixing_stage(fitted, model_size, tokens)
    law = MixingLaw()
    params = posterior_draws(idata, ["c", "log_k", "t", "sigma"], max_draws=max_draws, seed=seed)
    n_law, n_out = params["sigma"].shape[0], noise.shape[0]
    if n_law != n_out:  # stages sampled with other settings: resample the law's draws to match
        take = np.random.default_rng([seed, 1]).choice(n_law, size=n_out, replace=n_law < n_out)
        params = {name: value[np.sort(take)] for name, value in params.items()}
    params["reference_mixture"] = np.asarray(idata.constant_data["reference_mixture"])
    values = law.evaluate(params, rows, xp=np)
    if kind == "predictive":
        pick = np.random.default_rng(seed).integers(0, n_out, size=n_out)
        misfit = np.stack(
            [_mixture_rng(seed, row).standard_normal((n_out, values.shape[-1])) for row in rows], axis=1
        )
        values = values + params["sigma"][:, None, :] * misfit + noise[pick][:, None, :]
    return values


def predict_target(
    fitted: NestedFit,
    *,
    model_size: float,
    tokens: float,
    mixtures: Any = None,
    kind: str = "predictive",
    composition: Mapping[str, float] | Sequence[float] | None = None,
    via: str = "auto",
    renormalise: bool = False,
    max_draws: int | None = 2000,
    seed: int = 0,
    discrepancy: Any = None,
    force: bool = False,
) -> xr.DataArray:
    """Draws of the loss at the target scale ``(N*, D*)`` per validation domain and in total.

    Parameters
    ----------
    fitted
        Result of :func:`fit_nested`.
    model_size, tokens
        Target model size ``N*`` (same count as the table's ``model_size``, non-embedding by
        default) and target training tokens ``D*``. Checked against the fitted runs
        (:func:`check_target`): refused below every run or more than :data:`MAX_EFOLDS` e-folds
        beyond the largest, warned about past :data:`WARN_EFOLDS_MODEL_SIZE` /
        :data:`WARN_EFOLDS_TOKENS` e-folds.
    mixtures
        ``None`` (the observed mixtures), or a dict / list of dicts / DataFrame / array over the
        training domains, as for :func:`bayesmix.predict`.
    kind
        ``"predictive"``: the final loss of a new run (law + per-run effect + checkpoint noise,
        + mixing-law misfit for unobserved mixtures); ``"mean"``: the law only.
    composition
        Shares of the domains in the total loss; default equal shares. The ``domain`` dim gets
        a ``"total"`` entry (``sum_i s_i L_i``).
    via
        ``"auto"``: per mixture, an observed one directly from the scaling stage and a new one
        through the mixing law (so a mixture's draws do not depend on the other mixtures asked
        for); ``"observed"`` or ``"mixing_law"`` to send every mixture one way.
    renormalise
        Divide mixtures by their sum instead of rejecting those that do not sum to 1.
    max_draws
        Use at most this many posterior draws.
    seed
        Seed of the noise draws and of the draw subset.
    discrepancy
        ``None``, or a model-discrepancy scale for the size extrapolation: the result of
        :func:`~bayesmix.inference.nested_calibration.calibrate_extrapolation` (or its
        ``kappa``). Draws are multiplied by ``exp(kappa * ln(N*/N_max) * z)``, one ``z`` per
        draw shared by every mixture and domain; no change at or below the largest fitted size.
    force
        Predict at a target that :func:`check_target` would refuse (below every run, or more than
        :data:`MAX_EFOLDS` e-folds beyond the data).

    Returns
    -------
    xarray.DataArray
        Dims ``("sample", "mixture", "domain")`` (loss in nats per token); coord ``via`` on
        ``mixture`` (``"observed"`` or ``"mixing_law"``, the route of each mixture); attrs
        ``model_size``, ``tokens``, ``kind``, ``via`` (the route of every mixture, or
        ``"mixed"``), ``health_ok`` (1 when every fitted stage's sampler health is ok; see
        ``fitted.health``), ``extrapolation_efolds_model_size`` (``ln(N*/N_max)``),
        ``extrapolation_efolds_tokens`` (``ln(D*/D_max)``) and the fitted ranges
        ``fitted_model_size_min``/``_max`` and ``fitted_tokens_min``/``_max``
        (:func:`target_extrapolation`).

    Raises
    ------
    InputError, NotEnoughDataError
        Bad arguments, a target refused by :func:`check_target` (field ``model_size`` or
        ``tokens``; the fix names ``force=True``), a mixture that was not observed when the mixing
        law cannot be fitted (too few mixtures), etc.

    Warns
    -----
    TargetExtrapolationWarning
        The target lies more than the warning limits beyond the fitted runs.
    """
    if not isinstance(fitted, NestedFit):
        raise InputError("fitted", f"got {type(fitted).__name__}", "pass the result of fit_nested")
    if not isinstance(kind, str) or kind not in KINDS:
        raise InputError("kind", f"unknown kind {kind!r}", f"use one of {KINDS}")
    if not isinstance(via, str) or via not in VIA:
        raise InputError("via", f"unknown value {via!r}", f"use one of {VIA}")
    check_target_scale(model_size, tokens)
    if not isinstance(force, bool | np.bool_):
        raise InputError("force", f"got {force!r}", "give True or False")
    check_seed(seed)
    if max_draws is not None and (
        not isinstance(max_draws, numbers.Integral) or isinstance(max_draws, bool | np.bool_) or max_draws < 1
    ):
        raise InputError("max_draws", f"got {max_draws!r}", "give a positive integer, or None for all draws")
    if not isinstance(renormalise, bool | np.bool_):
        raise InputError("renormalise", f"got {renormalise!r}", "give True or False")
    if discrepancy is not None:  # checked before any stage is fitted
        discrepancy_factor(discrepancy, 1.0, 1.0, 1, 0)
    shares = composition if composition is not None else dict.fromkeys(fitted.domains, 1.0)
    aggregation = ExplicitAggregation(shares, list(fitted.domains))  # checked before any stage is fitted
    observed = fitted.mixtures
    if mixtures is None:
        frame = observed.copy()
        labels: Any = list(observed.index)
    else:
        frame = validate_mixtures(mixtures, list(observed.columns), renormalise=renormalise)
        labels = list(frame.index) if isinstance(mixtures, pd.DataFrame) else list(range(len(frame)))
    positions = _match_observed(frame, observed)
    if via == "observed" and any(p is None for p in positions):
        raise InputError(
            "mixtures", "some mixtures were not observed", "use via='mixing_law' (or 'auto') to predict them"
        )
    routes = ["observed" if via != "mixing_law" and p is not None else "mixing_law" for p in positions]
    extrapolation = check_target(fitted, model_size, tokens, force=bool(force))  # before any stage is fitted
    mean, noise = target_draws(fitted, model_size, tokens, max_draws=max_draws, seed=seed)
    values = np.empty((mean.shape[0], len(routes), mean.shape[-1]))
    direct = [j for j, route in enumerate(routes) if route == "observed"]
    if direct:
        values[:, direct, :] = mean[:, [positions[j] for j in direct], :]
        if kind == "predictive":
            values[:, direct, :] += noise[:, None, :]
    through_law = [j for j, route in enumerate(routes) if route == "mixing_law"]
    if through_law:
        rows = frame.to_numpy()[through_law]
        values[:, through_law, :] = _mixing_law_values(
            fitted, model_size, tokens, rows, noise, kind=kind, max_draws=max_draws, seed=seed
        )
    if discrepancy is not None:
        largest = float(fitted.table.model_sizes.max())
        factor = discrepancy_factor(discrepancy, model_size, largest, values.shape[0], seed)
        values = values * factor[:, None, None]
    domains = list(fitted.domains)
    total = aggregation(values)
    values = np.concatenate([values, total[..., None]], axis=-1)
    return xr.DataArray(
        values,
        dims=("sample", "mixture", "domain"),
        coords={
            "sample": np.arange(values.shape[0]),
            "mixture": labels,
            "domain": [*domains, "total"],
            "via": ("mixture", routes),
        },
        name="loss",
        attrs={
            **extrapolation,
            "kind": kind,
            "via": routes[0] if len(set(routes)) == 1 else "mixed",
            # sampler health of every stage fitted so far (the prediction rests on all of them)
            "health_ok": int(all(h.ok for h in fitted.health.values())),
        },
    )

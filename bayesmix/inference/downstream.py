r"""Downstream targets: benchmark accuracy from scale, or from a validation loss, with uncertainty.

Teams choose mixtures for benchmark accuracy, not for a validation loss. Following Bhagia et al.
(2024, arXiv 2412.04403) a task's accuracy is predicted in two steps fitted on a ladder of small
models (:mod:`bayesmix.laws.downstream`): the task loss from model size and tokens, then the
accuracy from the task loss. Here both steps are hierarchical over tasks and fitted by NUTS:

::

    data = bm.LadderData.from_olmo(pd.read_csv("ladder_checkpoints.csv"), pd.read_csv("ladder_tasks_long.csv"))
    fit = bm.fit_downstream(data, runs=ladder_runs)              # step 1 + step 2, per task
    cal = bm.calibrate_downstream(fit, data, runs=held_out_runs,  # backtests at several distances
                                  backtests=[(small_fit, larger_runs)], method="posterior")
    acc = bm.predict_downstream(fit, model_size=7e9, tokens=4e12, calibration=cal)
    bm.interval(acc)                                              # per task, 90% by default

    link = bm.fit_downstream_link(data, loss="loss_c4_en")       # accuracy from a validation loss
    bm.optimise(mixing_fit, target=bm.DownstreamTarget(link, domains={"c4_en": 1.0}))

Uncertainty, draw by draw: each posterior draw of step 1 gives a task loss at the target scale;
the same draw of step 2 maps it to an accuracy (the step-1 uncertainty goes through the sigmoid
draw by draw, never as a point). ``kind`` chooses what else the draws carry: ``"expected"`` the
curves alone, ``"run"`` adds what a new training run adds (its seed's luck in the task loss and
its offset from the link, both learnt from the ladder's runs), ``"predictive"`` adds the
evaluation noise of one checkpoint as well (the posterior predictive of an observed accuracy).

The form's error beyond the ladder: the posterior is conditional on the two laws' forms, which
the ladder cannot test far beyond its sizes. :func:`~bayesmix.inference.downstream_calibration.calibrate_downstream` measures the error the
posterior does not explain on held-out larger runs, per e-fold of extrapolation
``e = sqrt(max(0, ln N/N_max)^2 + max(0, ln D/D_max)^2)`` beyond the fitted runs, separately for
the log task loss and for the accuracy at the true task loss. ``method="moment"`` (the
repository's convention, as in
:func:`~bayesmix.inference.nested_calibration.calibrate_extrapolation`) gives a point value
``kappa^2 = max(0, sum(r^2 - s^2) / sum(e^2))`` with ``r`` the held-out residual and ``s^2`` its
predictive variance, and errors independent per task and draw. ``method="posterior"`` pools
backtests at several distances (fits on the smallest sizes predicting every larger size,
``backtests=``) and keeps posterior draws of ``kappa`` and of ``rho``, the share of the error common
to all tasks. With ``calibration=`` a prediction adds ``kappa e z`` (``z ~ Normal(0, 1)``) to both
steps. Assumptions, stated because they matter: the error grows linearly in ``e`` and is
estimated from extrapolations of 1-3 e-folds at most; it has mean zero, so a bias shared by the
targets widens the intervals but does not move them.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesmix.errors import InputError
from bayesmix.inference import _arviz, engine
from bayesmix.inference.diagnostics import finish_nuts_fit, fit_settings
from bayesmix.inference.predict import check_seed, posterior_draws
from bayesmix.laws.downstream import AccuracyLaw, TaskLossLaw
from bayesmix.models.downstream import (
    LINK_MAX_PER_RUN,
    LINK_SKIP,
    N_LAST,
    STEP1_NU,
    LadderData,
    build_link_model,
    build_task_loss_model,
    check_fit_runs,
    link_weights,
    reference_log_size,
)

logger = logging.getLogger(__name__)

#: the posterior variables a fit keeps: the laws' parameters and the noise scales
STEP1_PUBLIC = (
    "E", "log_A", "log_B", "alpha", "beta", "task_loss_sigma",
    "alpha_log_mu", "alpha_log_sd", "beta_log_mu", "beta_log_sd",
)
STEP2_PUBLIC = (
    "a", "L0", "k", "b", "size_effect", "run_sd", "accuracy_sigma",
    "size_effect_mu", "size_effect_sd", "slope_log_mu", "slope_log_sd",
    "ceiling_logit_mu", "ceiling_logit_sd", "run_sd_log_mu", "run_sd_log_sd",
)
#: what the draws of a prediction carry besides the laws (see the module docstring)
KINDS = ("expected", "run", "predictive")
#: a task loss below this (BPB) is treated as this: a posterior draw with ``E`` just below 0 must
#: not turn into a NaN far beyond the ladder
MIN_TASK_LOSS = 1e-3


# ---------------------------------------------------------------------- fitting


def _default_runs(data: LadderData) -> list[str]:
    """Every run that is not a seed rerun and not marked as a target."""
    runs = data.runs
    role = runs["role"].astype(str) if "role" in runs.columns else pd.Series("ladder", index=runs.index)
    return [str(r) for r in runs.index if not str(r).endswith("-rerun") and role.loc[r] != "target"]


def _fit_runs(data: LadderData, runs: Sequence[str] | None) -> tuple[LadderData, pd.DataFrame]:
    """The runs to fit, and the noise measured on them and their reruns (when ``data`` has them)."""
    if not isinstance(data, LadderData):
        raise InputError("data", f"got {type(data).__name__}", "build it with LadderData.from_olmo or from_frames")
    chosen = _default_runs(data) if runs is None else [str(r) for r in ([runs] if isinstance(runs, str) else runs)]
    reruns = [f"{r}-rerun" for r in chosen if f"{r}-rerun" in data.runs.index and f"{r}-rerun" not in chosen]
    noise = data.select(chosen + reruns).noise()
    return data.select(chosen), noise


def _sample(model: Any, draws: int, tune: int, chains: int, target_accept: float, seed: int, progressbar: bool):
    return engine.sample_nuts(
        model, draws=draws, tune=tune, chains=chains, target_accept=target_accept, seed=seed, progressbar=progressbar
    )


def _merge(parts: list[_arviz.InferenceData], keep: Sequence[str]) -> _arviz.InferenceData:
    """One InferenceData from fits of independent models (chain ``c`` of each paired)."""
    chains = min(int(p.posterior.sizes["chain"]) for p in parts)
    draws = min(int(p.posterior.sizes["draw"]) for p in parts)

    def cut(dataset: xr.Dataset) -> xr.Dataset:
        out = dataset.isel(chain=slice(0, chains), draw=slice(0, draws))
        return out.assign_coords(chain=np.arange(chains), draw=np.arange(draws))

    posterior = xr.merge([cut(p.posterior)[[v for v in keep if v in p.posterior]] for p in parts], combine_attrs="drop")
    stats = [cut(p.sample_stats) for p in parts if "sample_stats" in p.groups()]
    out = _arviz.shallow_copy(parts[-1])
    _arviz.set_group(out, "posterior", posterior)
    if stats:
        merged = {}
        if all("diverging" in s for s in stats):
            merged["diverging"] = sum(s["diverging"].astype(int) for s in stats) > 0
        if all("logp" in s for s in stats):
            merged["logp"] = sum(s["logp"] for s in stats)
        _arviz.set_group(out, "sample_stats", xr.Dataset(merged))
    for group in ("constant_data", "observed_data"):
        sets = [getattr(p, group) for p in parts if group in p.groups()]
        if sets:
            _arviz.set_group(out, group, xr.merge(sets, combine_attrs="drop"))
    return out


def _move_observed(idata: _arviz.InferenceData, name: str) -> None:
    """Move ``name`` from ``constant_data`` to ``observed_data`` (an observation held in ``pm.Data``)."""
    if "constant_data" not in idata.groups() or name not in idata.constant_data:
        return
    value = idata.constant_data[name]
    _arviz.set_group(idata, "constant_data", idata.constant_data.drop_vars(name))
    observed = idata.observed_data if "observed_data" in idata.groups() else xr.Dataset()
    _arviz.set_group(idata, "observed_data", observed.assign({name: value}))


def _finish(
    idata: _arviz.InferenceData, info: dict[str, Any], keep: Sequence[str], seed: int, started: float, strict: bool
) -> _arviz.InferenceData:
    return finish_nuts_fit(
        idata, key="bayesmix_downstream", info=info, variables=keep, seed=seed,
        seconds=time.perf_counter() - started, strict=strict,
    )  # fmt: skip


def _settings(draws: Any, tune: Any, chains: Any, target_accept: Any, seed: Any) -> None:
    engine.check_nuts_settings(draws, tune, chains, target_accept)
    check_seed(seed)


def fit_downstream(
    data: LadderData,
    runs: Sequence[str] | None = None,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    target_accept: float = 0.9,
    seed: int = 0,
    n_last: int = N_LAST,
    skip: float = LINK_SKIP,
    max_per_run: int = LINK_MAX_PER_RUN,
    strict: bool = False,
    progressbar: bool = False,
) -> _arviz.InferenceData:
    """Fit the two-step downstream laws, hierarchical over tasks, by NUTS (nutpie).

    Step 1 (task loss from ``N`` and ``D``) is fitted on each run's final task loss, step 2
    (accuracy from task loss) on the runs' checkpoints (see
    :func:`~bayesmix.models.downstream.build_task_loss_model` and
    :func:`~bayesmix.models.downstream.build_link_model`). The two posteriors are
    independent given the data, so the steps are sampled as two models (each compiled once per
    process and structure) and their chains paired.

    Parameters
    ----------
    data
        The ladder (:class:`~bayesmix.models.downstream.LadderData`).
    runs
        The runs to fit (default: every run of ``data`` that is not a ``-rerun`` or a target).
        Seed reruns of these runs found in ``data`` (``<run>-rerun``) inform the noise priors
        only.
    draws, tune, chains, target_accept, seed
        NUTS settings; the same seed gives the same numbers.
    n_last
        Checkpoints averaged into a run's final task loss.
    skip, max_per_run
        Which checkpoints enter step 2 (:meth:`~bayesmix.models.downstream.LadderData.link_points`).
    strict
        Raise :class:`~bayesmix.errors.SamplerHealthError` on sampler problems (else warn).
    progressbar
        Show nutpie's progress bar.

    Returns
    -------
    arviz.InferenceData
        Posterior with dim ``task``: step 1 ``E``, ``log_A``, ``log_B``, ``alpha``, ``beta`` and
        ``task_loss_sigma`` (sd of a run's final log task loss); step 2 ``a``, ``L0``, ``k``,
        ``b``, ``size_effect`` (accuracy per e-fold of model size at the same task loss),
        ``run_sd`` (sd of a run's offset from the link) and ``accuracy_sigma`` (checkpoint noise);
        pooled hyperparameters. ``constant_data``: ``model_size``, ``tokens`` (dim
        ``run``), ``link_loss`` (``checkpoint``, ``task``), ``checkpoint_run``;
        ``observed_data``: ``log_task_loss`` (``run``, ``task``), ``accuracy`` (``checkpoint``,
        ``task``). ``posterior.attrs["bayesmix_downstream"]`` (JSON) holds the tasks, chance
        levels, fitted runs and the largest fitted ``N`` and ``D``.

    Raises
    ------
    InputError, NotEnoughDataError
        Bad settings, unknown runs, fewer than 6 runs or 2 model sizes.
    """
    _settings(draws, tune, chains, target_accept, seed)
    fit, noise = _fit_runs(data, runs)
    check_fit_runs(fit, "the task-loss law")
    started = time.perf_counter()
    finals = fit.final(n_last)
    points = fit.link_points(skip, max_per_run)
    run_names = [str(r) for r in finals.checkpoints["run"]]
    step1 = build_task_loss_model(fit, n_last=n_last, noise=noise)
    step2 = build_link_model(fit, skip=skip, max_per_run=max_per_run, noise=noise)
    logger.info(
        "fitting the downstream laws: %d runs, %d tasks, %d link points (NUTS)",
        len(run_names), len(fit.tasks), len(points.checkpoints),
    )
    parts = [_sample(m, draws, tune, chains, target_accept, seed, progressbar) for m in (step1, step2)]
    keep = (*STEP1_PUBLIC, *STEP2_PUBLIC)
    idata = _merge(parts, keep)
    _move_observed(idata, "accuracy")
    sizes = finals.checkpoint_sizes()
    tokens = finals.checkpoints["tokens"].to_numpy(dtype=float)
    info = {
        "kind": "chained",
        "input": "task_loss",
        "tasks": fit.tasks,
        "chance": [float(c) for c in fit.chance],
        "runs": run_names,
        "max_model_size": float(sizes.max()),
        "max_tokens": float(tokens.max()),
        "loss_range": [float(points.task_loss.to_numpy().min()), float(points.task_loss.to_numpy().max())],
        "log_size_ref": reference_log_size(fit),
        "n_last": int(n_last),
        "skip": float(skip),
        "max_per_run": int(max_per_run),
        "noise": noise.reset_index().to_dict(orient="list"),
    }
    return _finish(idata, info, keep, seed, started, strict)


def fit_downstream_link(
    data: LadderData,
    loss: str | Mapping[str, float] = "loss_c4_en",
    runs: Sequence[str] | None = None,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    target_accept: float = 0.9,
    seed: int = 0,
    skip: float = LINK_SKIP,
    max_per_run: int = LINK_MAX_PER_RUN,
    strict: bool = False,
    progressbar: bool = False,
) -> _arviz.InferenceData:
    """Fit accuracy per task as a sigmoid of a *validation-domain* loss (step 2 on that loss).

    This is the link a data mixing law feeds: the mixing law predicts a validation loss for a
    mixture, the link maps it to each task's accuracy (the paper's "C4 loss" variant). Fit it on
    a ladder trained on one mixture and use it through
    :class:`~bayesmix.optimise.downstream.DownstreamTarget`; it assumes that accuracy depends on the
    mixture only through that loss, which a mixture far from the ladder's can break.

    Parameters
    ----------
    data
        The ladder; its checkpoint table must hold the ``loss`` column(s).
    loss
        A ``loss_<domain>`` column (nats per token), or ``{column: weight}`` for a weighted mean.
    runs, draws, tune, chains, target_accept, seed, skip, max_per_run, strict, progressbar
        As in :func:`fit_downstream`.

    Returns
    -------
    arviz.InferenceData
        Posterior of ``a``, ``L0``, ``k``, ``b``, ``size_effect`` (accuracy per e-fold of model
        size at the same loss), ``run_sd``, ``accuracy_sigma`` (dim ``task``) and the pooled
        hyperparameters; ``constant_data["link_loss"]`` (the loss, repeated over ``task``),
        ``link_log_size`` (dim ``checkpoint``), ``observed_data["accuracy"]``;
        ``posterior.attrs["bayesmix_downstream"]`` holds ``loss`` (the weights), the tasks and the
        fitted range of the loss.

    Raises
    ------
    InputError, NotEnoughDataError
        Unknown loss columns, bad settings, fewer than 3 runs.
    """
    _settings(draws, tune, chains, target_accept, seed)
    weights = link_weights(loss)
    fit, noise = _fit_runs(data, runs)
    started = time.perf_counter()
    model = build_link_model(fit, weights, skip=skip, max_per_run=max_per_run, noise=noise)
    x = fit.link_points(skip, max_per_run).validation_loss(weights)
    idata = _sample(model, draws, tune, chains, target_accept, seed, progressbar)
    idata.posterior = idata.posterior[[v for v in STEP2_PUBLIC if v in idata.posterior]]
    _move_observed(idata, "accuracy")
    finals = fit.final()
    info = {
        "kind": "link",
        "input": weights,
        "tasks": fit.tasks,
        "chance": [float(c) for c in fit.chance],
        "runs": fit.run_names,
        "max_model_size": float(finals.checkpoint_sizes().max()),
        "max_tokens": float(finals.checkpoints["tokens"].max()),
        "loss_range": [float(x.min()), float(x.max())],
        "log_size_ref": reference_log_size(fit),
        "skip": float(skip),
        "max_per_run": int(max_per_run),
        "noise": noise.reset_index().to_dict(orient="list"),
    }
    return _finish(idata, info, STEP2_PUBLIC, seed, started, strict)


def downstream_info(idata: _arviz.InferenceData) -> dict[str, Any]:
    """The settings a downstream fit stores (``posterior.attrs["bayesmix_downstream"]``).

    Raises
    ------
    InputError
        ``idata`` is not a fit of :func:`fit_downstream` or :func:`fit_downstream_link`.
    """
    return fit_settings(
        idata, "bayesmix_downstream", "a downstream fit", "pass the result of bm.fit_downstream or bm.fit_downstream_link"
    )


# ---------------------------------------------------------------------- prediction


@dataclass(frozen=True)
class DownstreamCalibration:
    """Result of :func:`~bayesmix.inference.downstream_calibration.calibrate_downstream`: the form's error per e-fold of extrapolation.

    Attributes
    ----------
    kappa_task_loss
        Sd of the unexplained error of the log task loss per e-fold (0 for a link fit). With
        ``draws``: the root mean square of its posterior draws.
    kappa_accuracy
        Sd of the unexplained error of the accuracy (at the true task loss, or at the true
        validation loss for a link) per e-fold, in accuracy units. With ``draws``: as above.
    residuals
        One row per held-out (backtest, run, task): observed and predicted values, residuals,
        predictive variances and the e-folds.
    draws
        ``method="posterior"`` only: posterior draws of ``kappa_task_loss``, ``rho_task_loss``,
        ``kappa_accuracy`` and ``rho_accuracy`` (``rho``: the share of the error's variance
        common to all tasks). Empty for ``method="moment"``: the kappas are then point values and
        the errors independent over tasks.
    method
        ``"moment"`` or ``"posterior"``.
    """

    kappa_task_loss: float
    kappa_accuracy: float
    residuals: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    draws: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    method: str = "moment"

    def to_dict(self) -> dict[str, float]:
        """The two scales (and, with draws, their 90% intervals and the mean shares), JSON-ready."""
        out = {"kappa_task_loss": float(self.kappa_task_loss), "kappa_accuracy": float(self.kappa_accuracy)}
        if len(self.draws):
            for step in ("task_loss", "accuracy"):
                kappa = self.draws[f"kappa_{step}"].to_numpy()
                out[f"kappa_{step}_q05"] = float(np.quantile(kappa, 0.05))
                out[f"kappa_{step}_q95"] = float(np.quantile(kappa, 0.95))
                out[f"rho_{step}"] = float(self.draws[f"rho_{step}"].mean())
        return out


def extrapolation_efolds(info: Mapping[str, Any], model_size: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """E-folds ``e`` of each target beyond the fitted runs: ``sqrt(max(0, ln N/N_max)^2 + max(0, ln D/D_max)^2)``."""
    over_n = np.maximum(0.0, np.log(np.asarray(model_size, dtype=float) / info["max_model_size"]))
    over_d = np.maximum(0.0, np.log(np.asarray(tokens, dtype=float) / info["max_tokens"]))
    return np.sqrt(over_n**2 + over_d**2)


def _positive_vector(value: Any, name: str, n: int | None = None) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, dtype=float)) if value is not None else None
    if arr is None or arr.ndim != 1 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise InputError(name, f"got {value!r}", f"give one positive number per target ({name} > 0)")
    if n is not None and len(arr) != n:
        raise InputError(name, f"has {len(arr)} values for {n} targets", "give one value per target")
    return arr


def _check_kind(kind: Any) -> None:
    if kind not in KINDS:
        raise InputError("kind", f"got {kind!r}", f"use one of {list(KINDS)}")


def _calibration_scales(calibration: Any) -> tuple[float, float]:
    if calibration is None:
        return 0.0, 0.0
    if isinstance(calibration, DownstreamCalibration):
        return float(calibration.kappa_task_loss), float(calibration.kappa_accuracy)
    raise InputError("calibration", f"got {type(calibration).__name__}", "pass calibrate_downstream's result, or None")


def _form_error(
    calibration: DownstreamCalibration | None, step: str, efolds: np.ndarray, shape: tuple[int, ...],
    rng: np.random.Generator,
) -> np.ndarray | None:
    """The form's error beyond the ladder, ``kappa e z``, to add to draws ``(sample, target, task)``.

    A point calibration draws ``z`` independently per sample, target and task. A posterior one
    draws ``(kappa, rho)`` per sample from its posterior and ``z_t = sqrt(rho) g + sqrt(1 - rho)
    u_t`` per sample and task, shared by the targets (the error is a direction the fitted form
    takes, growing with the e-folds). ``None`` when there is nothing to add.
    """
    kappa_loss, kappa_acc = _calibration_scales(calibration)
    kappa = kappa_loss if step == "task_loss" else kappa_acc
    if calibration is None or kappa <= 0:
        return None
    e = np.asarray(efolds, dtype=float)[None, :, None]
    if not len(calibration.draws):
        return kappa * e * rng.standard_normal(shape)
    pick = rng.integers(0, len(calibration.draws), size=shape[0])
    kappas = calibration.draws[f"kappa_{step}"].to_numpy(dtype=float)[pick]
    rhos = calibration.draws[f"rho_{step}"].to_numpy(dtype=float)[pick]
    common = rng.standard_normal((shape[0], 1))
    own = rng.standard_normal((shape[0], shape[2]))
    z = np.sqrt(rhos)[:, None] * common + np.sqrt(1.0 - rhos)[:, None] * own
    return kappas[:, None, None] * e * z[:, None, :]


def link_parameters(idata: _arviz.InferenceData, max_draws: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Step-2 draws by name, each ``(sample, task)``.

    ``a``, ``L0``, ``k``, ``b``, ``size_effect``, ``run_sd``, ``accuracy_sigma``.
    """
    names = ["a", "L0", "k", "b", "size_effect", "run_sd", "accuracy_sigma"]
    raw = posterior_draws(idata, names, max_draws=max_draws, seed=seed)
    missing = [n for n in names if n not in raw]
    if missing:
        raise InputError("idata", f"has no {missing} in its posterior", "pass a downstream fit")
    return {k: np.ascontiguousarray(v, dtype=float) for k, v in raw.items()}


def _accuracy_draws(
    params: Mapping[str, np.ndarray], loss: np.ndarray, size_offset: np.ndarray, kind: str,
    calibration: DownstreamCalibration | None, efolds: np.ndarray, rng: np.random.Generator,
) -> np.ndarray:
    """Accuracy ``(sample, target, task)`` at losses ``(sample | 1, target, task | 1)``.

    ``size_offset`` is ``ln N - ln N_ref`` of each target ``(target,)``.
    """
    acc = np.asarray(AccuracyLaw.evaluate(params, loss, xp=np))
    acc = acc + params["size_effect"][:, None, :] * np.asarray(size_offset, dtype=float)[None, :, None]
    shape = acc.shape
    error = _form_error(calibration, "accuracy", efolds, shape, rng)
    if error is not None:
        acc = acc + error
    if kind in ("run", "predictive"):
        acc = acc + params["run_sd"][:, None, :] * rng.standard_normal(shape)
    if kind == "predictive":
        acc = acc + params["accuracy_sigma"][:, None, :] * rng.standard_normal(shape)
    return np.clip(acc, 0.0, 1.0)


def predict_downstream(
    idata: _arviz.InferenceData,
    *,
    model_size: Any = None,
    tokens: Any = None,
    loss: Any = None,
    kind: str = "predictive",
    output: str = "accuracy",
    calibration: DownstreamCalibration | None = None,
    average: Mapping[str, float] | None = None,
    targets: Sequence[str] | None = None,
    max_draws: int | None = None,
    seed: int = 0,
) -> xr.DataArray:
    """Draws of each task's accuracy (or task loss) at target scales, step-1 uncertainty carried through.

    Parameters
    ----------
    idata
        A fit of :func:`fit_downstream` (chained) or :func:`fit_downstream_link` (link).
    model_size, tokens
        Chained fits: the targets' ``N`` (non-embedding parameters) and ``D`` (tokens), one value
        per target. With ``loss`` too, they only set the e-folds of extrapolation for
        ``calibration``.
    loss
        Chained fits: the task loss (BPB) per target and task, ``(target, task)``, to predict
        from step 2 alone. Link fits: the validation loss per target, ``(target,)``.
    kind
        ``"expected"``, ``"run"`` or ``"predictive"`` (default): see the module docstring.
    output
        ``"accuracy"`` (default) or ``"task_loss"`` (chained fits, from scale: step 1 only).
    calibration
        :func:`~bayesmix.inference.downstream_calibration.calibrate_downstream`'s result: adds the form's error beyond the ladder.
    average
        ``{task: weight}``: adds a task ``"average"``, the weighted mean of those tasks per draw.
    targets
        Names of the targets (default ``target0``, ``target1``, ...).
    max_draws, seed
        Posterior draws used (a seeded subset) and the seed of every random draw.

    Returns
    -------
    xarray.DataArray
        Dims ``(sample, target, task)``, named ``accuracy`` (a fraction) or ``task_loss`` (BPB);
        ``bm.interval`` summarises it.

    Raises
    ------
    InputError
        Missing or bad inputs for the fit's kind, unknown tasks in ``average``, bad ``kind``.
    """
    info = downstream_info(idata)
    _check_kind(kind)
    check_seed(seed)
    if output not in ("accuracy", "task_loss"):
        raise InputError("output", f"got {output!r}", "use 'accuracy' or 'task_loss'")
    _calibration_scales(calibration)
    tasks = list(info["tasks"])
    rng = np.random.default_rng([int(seed), 20241205])
    if info["kind"] == "link":
        if loss is None:
            raise InputError("loss", "is missing for a link fit", "give the validation loss per target, e.g. [2.9, 3.1]")
        x = np.atleast_1d(np.asarray(loss, dtype=float))
        if x.ndim != 1 or not np.all(np.isfinite(x)) or np.any(x <= 0):
            raise InputError("loss", f"got {x.tolist()}", "give one finite validation loss (nats/token, > 0) per target")
        _warn_outside(x, info)
        if output != "accuracy":
            raise InputError("output", "a link fit predicts accuracy only", "use output='accuracy'")
        n = len(x)
        efolds = _efolds_or_zero(info, model_size, tokens, n)
        params = link_parameters(idata, max_draws, seed)
        offset = _size_offset(info, model_size, n)
        values = _accuracy_draws(params, x[None, :, None], offset, kind, calibration, efolds, rng)
    else:
        if loss is not None:
            x = np.asarray(loss, dtype=float)
            if x.ndim == 1 and len(tasks) == 1:
                x = x[:, None]
            if x.ndim != 2 or x.shape[1] != len(tasks) or not np.all(np.isfinite(x)) or np.any(x <= 0):
                raise InputError("loss", f"got shape {x.shape}", f"give task losses (BPB > 0) shaped (target, {len(tasks)})")
            if output != "accuracy":
                raise InputError("output", "with loss= only step 2 runs", "use output='accuracy'")
            _warn_outside(x, info)
            n = x.shape[0]
            efolds = _efolds_or_zero(info, model_size, tokens, n)
            params = link_parameters(idata, max_draws, seed)
            offset = _size_offset(info, model_size, n)
            values = _accuracy_draws(params, x[None], offset, kind, calibration, efolds, rng)
        else:
            sizes = _positive_vector(model_size, "model_size")
            toks = _positive_vector(tokens, "tokens", len(sizes))
            n = len(sizes)
            efolds = extrapolation_efolds(info, sizes, toks)
            names = [*TaskLossLaw.parameters, "task_loss_sigma"]
            raw = posterior_draws(idata, names, max_draws=max_draws, seed=seed)
            step1 = {k: np.asarray(v, dtype=float) for k, v in raw.items()}
            mean = np.maximum(np.asarray(TaskLossLaw.evaluate(step1, sizes, toks, xp=np)), MIN_TASK_LOSS)
            log_loss = np.log(mean)
            error = _form_error(calibration, "task_loss", efolds, log_loss.shape, rng)
            if error is not None:
                log_loss = log_loss + error
            if kind in ("run", "predictive"):
                seed_luck = rng.standard_t(STEP1_NU, size=log_loss.shape)
                log_loss = log_loss + step1["task_loss_sigma"][:, None, :] * seed_luck
            task_loss = np.exp(log_loss)
            if output == "task_loss":
                values = task_loss
            else:
                params = link_parameters(idata, max_draws, seed)
                offset = np.log(sizes) - info["log_size_ref"]
                values = _accuracy_draws(params, task_loss, offset, kind, calibration, efolds, rng)
    labels = [f"target{i}" for i in range(n)] if targets is None else [str(t) for t in targets]
    if len(labels) != n:
        raise InputError("targets", f"has {len(labels)} names for {n} targets", "give one name per target")
    out = xr.DataArray(
        values,
        dims=("sample", "target", "task"),
        coords={"target": labels, "task": tasks},
        name=output,
        attrs={"kind": kind, "calibrated": calibration is not None, "units": "fraction" if output == "accuracy" else "BPB"},
    )
    if average is not None:
        weights = _task_weights(average, tasks)
        mean = (out * xr.DataArray(weights, dims="task", coords={"task": tasks})).sum("task")
        out = xr.concat([out, mean.expand_dims(task=["average"])], dim="task")
        out.name = output
    return out


def _warn_outside(loss: np.ndarray, info: Mapping[str, Any]) -> None:
    """Warn when losses lie outside the range the link was fitted on (the sigmoid is extrapolated)."""
    low, high = info.get("loss_range", [-np.inf, np.inf])
    outside = loss[(loss < low) | (loss > high)]
    if outside.size:
        warnings.warn(
            f"loss {outside.tolist()} lies outside the losses the link was fitted on ({low:.3g} to {high:.3g}): "
            "the accuracy there is the sigmoid's extrapolation, which the ladder did not test",
            UserWarning,
            stacklevel=3,
        )


def _size_offset(info: Mapping[str, Any], model_size: Any, n: int) -> np.ndarray:
    """``ln N - ln N_ref`` per target (0, the ladder's centre, when no size is given)."""
    if model_size is None:
        return np.zeros(n)
    return np.log(_positive_vector(model_size, "model_size", n)) - info["log_size_ref"]


def _efolds_or_zero(info: Mapping[str, Any], model_size: Any, tokens: Any, n: int) -> np.ndarray:
    if model_size is None and tokens is None:
        return np.zeros(n)
    sizes = np.full(n, info["max_model_size"]) if model_size is None else _positive_vector(model_size, "model_size", n)
    toks = np.full(n, info["max_tokens"]) if tokens is None else _positive_vector(tokens, "tokens", n)
    return extrapolation_efolds(info, sizes, toks)


def _task_weights(weights: Any, tasks: Sequence[str]) -> np.ndarray:
    """``{task: weight}`` as normalised weights over ``tasks``.

    Raises
    ------
    InputError
        Not a mapping, unknown tasks, or weights that are not non-negative with a positive sum.
    """
    if not isinstance(weights, Mapping) or not weights:
        raise InputError("tasks", f"got {weights!r}", "give a mapping task -> weight, e.g. {'mmlu': 1.0}")
    unknown = [t for t in weights if t not in tasks]
    if unknown:
        raise InputError("tasks", f"unknown task(s) {unknown}", f"use tasks of the fit: {list(tasks)}")
    out = np.zeros(len(tasks))
    for task, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float | np.integer | np.floating) or not (
            np.isfinite(weight) and weight >= 0
        ):
            raise InputError("tasks", f"weight {weight!r} of {task!r}", "give non-negative weights")
        out[list(tasks).index(task)] = float(weight)
    if out.sum() <= 0:
        raise InputError("tasks", "all weights are zero", "give at least one positive weight")
    return out / out.sum()


# ---------------------------------------------------------------------- calibration

"""Numbers behind the report's figures, computed from a posterior (each usable alone).

* :func:`predictive_check`: posterior predictive intervals at the observed runs' mixtures vs the
  observed losses (coverage); leave-one-out (PSIS-LOO) for the fit's own runs.
* :func:`interaction_summary`: posterior mean and interval of every entry of the interaction
  matrix ``t`` (validation domain x training domain).
* :func:`fan_draws`: draws of the fitted scaling law of one observed mixture along a token grid,
  per model size (the "extrapolation fan").
* :func:`nearest_observed_mixture`: the observed mixture of a nested fit closest to a mixture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.data.runs import RunTable, validate_mixtures
from bayesmix.errors import InputError
from bayesmix.inference import _arviz
from bayesmix.inference.nested import NestedFit
from bayesmix.inference.predict import (
    fitted_runs,
    fitted_spec,
    interval,
    law_draws,
    log_likelihood_values,
    posterior_draws,
    predict,
)
from bayesmix.laws.scaling import JointScalingLaw, ScalingLaw, StepLaw
from bayesmix.models.discrepancy import DiscrepancyDraws

#: the interaction parameter of each law family, in order of preference
INTERACTION_NAMES = ("t", "beta")


def check_prob(prob: Any, field: str = "prob") -> float:
    """Return ``prob`` as a float, or raise :class:`InputError` unless it lies in (0, 1)."""
    if (
        not isinstance(prob, int | float | np.integer | np.floating)
        or isinstance(prob, bool)
        or not 0 < float(prob) < 1
    ):
        raise InputError(field, f"got {prob!r}", "give a probability in (0, 1), e.g. 0.9")
    return float(prob)


def observed_runs(
    idata: _arviz.InferenceData, runs: RunTable | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The mixtures ``(run, train_domain)`` and losses ``(run, domain)`` a fit was made on.

    Parameters
    ----------
    idata
        A fit from :func:`bayesmix.fit`.
    runs
        The runs to compare with (e.g. held-out runs); default the fit's own runs, read from its
        ``constant_data`` and ``observed_data``.

    Raises
    ------
    InputError
        When ``runs`` does not match the fit's domains, or the fit holds no run-level data (a
        target-scale fit of the nested pipeline) and ``runs`` is not given.
    """
    spec = fitted_spec(idata)
    if runs is not None:
        if not isinstance(runs, RunTable):
            raise InputError(
                "runs", f"got {type(runs).__name__}", "give a RunTable (or None for the fit's runs)"
            )
        missing = [d for d in spec.domains if d not in runs.domains]
        if missing:
            raise InputError(
                "runs", f"no losses for the fitted domains {missing}", "give runs with those columns"
            )
        mixtures = validate_mixtures(runs.mixtures, list(spec.train_domains), field_name="runs")
        return mixtures, runs.losses[list(spec.domains)].astype(float)
    try:
        mix, loss = fitted_runs(idata)
    except InputError:
        raise InputError(
            "runs",
            "the fit holds no run-level observations (e.g. a target-scale fit of the nested pipeline)",
            "pass the runs to compare with as a RunTable",
        ) from None
    index = pd.Index([str(r) for r in mix["run"].to_numpy()], name="run")
    mixtures = pd.DataFrame(mix.to_numpy(), index=index, columns=list(spec.train_domains))
    losses = pd.DataFrame(loss.to_numpy(), index=index, columns=[str(d) for d in loss["domain"].to_numpy()])
    return mixtures, losses[list(spec.domains)]


def predictive_check(
    idata: _arviz.InferenceData,
    runs: RunTable | None = None,
    *,
    prob: float = 0.9,
    max_draws: int | None = 1000,
    seed: int = 0,
    loo: bool | None = None,
) -> pd.DataFrame:
    """Posterior predictive interval of every observed loss, and whether it holds the observation.

    A fit's intervals at its own runs are too easy a test: the runs were used to fit it, and a law
    with several parameters per domain for a few runs per domain bends towards them (on the
    quickstart's 10 runs x 4 domains, 31 parameters: 40 of 40 losses inside, mean error 0.28
    nats in-sample, 0.43 left out). So for the fit's own runs the intervals are leave-one-out
    (PSIS-LOO, Vehtari, Gelman & Gabry 2017): each loss is predicted from the posterior
    reweighted as if that loss had not been observed. Held-out ``runs`` are predicted directly.

    Parameters
    ----------
    idata
        A fit from :func:`bayesmix.fit`.
    runs
        Runs to check (held-out runs, say); default the fit's own runs. A given run that is one
        of the fit's own (same name, mixture and losses) is checked as one.
    prob
        Probability of the equal-tailed predictive intervals.
    max_draws, seed
        Posterior draws used (at most) and the seed of the draw subset and of the run noise.
    loo
        Leave-one-out intervals for the fit's own runs. ``None`` (default): where the fit allows
        it (at least 2 posterior draws used, independent run noise, a law that reads no per-run
        inputs); else in-sample. With a discrepancy term its paths at a left-out run are the
        Gaussian process's leave-one-out (the form error as the other runs predict it), not
        the paths conditioned on that run. ``True`` raises where it is not possible; ``False``: in-sample. PSIS uses
        relative efficiency 1 (its ``k`` may differ slightly from ``arviz.loo``'s), and a left-out
        loss still shaped the priors' data scales (the losses' mean and spread), a negligible
        influence beyond a handful of runs.

    Returns
    -------
    pandas.DataFrame
        One row per (run, domain): ``run``, ``domain``, ``observed``, ``mean``, ``lower``,
        ``upper``, ``inside`` (the observation lies in the interval), ``method`` (``"loo"``,
        ``"in-sample"`` or ``"held-out"``: a run the fit was not made on) and ``pareto_k``
        (PSIS's shape estimate of each left-out loss; above 0.7 its leave-one-out interval is
        unreliable; infinite where a draw's likelihood was not finite and the cell stayed
        in-sample; NaN otherwise). The coverage is ``frame["inside"].mean()``.

    Raises
    ------
    InputError
        ``loo=True`` where leave-one-out is not possible, ``loo`` not a bool or None, or bad
        ``runs``/``prob``.
    """
    prob = check_prob(prob)
    if loo is not None and not isinstance(loo, bool):
        raise InputError("loo", f"got {loo!r}", "give True, False or None (leave-one-out where possible)")
    mixtures, losses = observed_runs(idata, runs)
    positions = _own_positions(idata, mixtures, losses)
    own = positions >= 0
    reason = _no_loo_reason(idata, max_draws) or (None if own.any() else "none of the runs is the fit's own")
    if loo and reason:
        raise InputError("loo", f"leave-one-out intervals are not possible here: {reason}", "use loo=None")
    domains = list(losses.columns)
    draws = predict(idata, mixtures, kind="predictive", max_draws=max_draws, seed=seed).sel(domain=domains)
    summary = interval(draws, prob=prob).transpose("mixture", "domain")
    centre, lower, upper = (summary[name].to_numpy() for name in ("mean", "lower", "upper"))
    observed = losses.to_numpy(dtype=float)
    values = draws.transpose("sample", "mixture", "domain").to_numpy()
    tail = (1.0 - prob) / 2.0
    method = np.where(own, "in-sample", "held-out")[:, None].repeat(len(domains), axis=1).astype(object)
    pareto = np.full(observed.shape, np.nan)
    if reason is None and loo is not False:
        spec = fitted_spec(idata)
        mean_draws, params = law_draws(idata, mixtures.to_numpy()[own], max_draws=max_draws, seed=seed)
        if mean_draws.shape[0] != values.shape[0]:  # predict and law_draws read the same draw subset
            raise AssertionError(f"{mean_draws.shape[0]} law draws for {values.shape[0]} predictive draws")
        log_lik = log_likelihood_values(
            observed[own], mean_draws, params["sigma"], likelihood=spec.likelihood, nu=spec.nu
        )
        finite = np.isfinite(log_lik).all(axis=0)  # a cell with a non-finite draw keeps its in-sample interval
        log_w, k = _arviz.psis_log_weights(np.moveaxis(np.where(np.isfinite(log_lik), -log_lik, 0.0), 0, -1))
        weights = np.exp(log_w)  # PSIS's log weights are normalised
        left_out = values[:, own]
        if "discrepancy" in spec.extra:
            left_out = _discrepancy_left_out(idata, spec, left_out, positions[own], domains, seed)
        cells = np.moveaxis(left_out, 0, -1)  # (run, domain, sample)
        for target, value in (
            (centre, (weights * cells).sum(axis=-1)),
            (lower, _weighted_quantile(cells, weights, tail)),
            (upper, _weighted_quantile(cells, weights, 1.0 - tail)),
            (pareto, np.where(finite, k, np.inf)),
        ):
            target[own] = np.where(finite, value, target[own])
        method[own] = np.where(finite, "loo", "in-sample")
    rows = []
    for j, run in enumerate(mixtures.index):
        for d, domain in enumerate(domains):
            rows.append(
                {
                    "run": str(run),
                    "domain": domain,
                    "observed": float(observed[j, d]),
                    "mean": float(centre[j, d]),
                    "lower": float(lower[j, d]),
                    "upper": float(upper[j, d]),
                    "inside": bool(lower[j, d] <= observed[j, d] <= upper[j, d]),
                    "method": str(method[j, d]),
                    "pareto_k": float(pareto[j, d]),
                }
            )
    return pd.DataFrame(rows)


def _discrepancy_left_out(
    idata: _arviz.InferenceData,
    spec: Any,
    values: np.ndarray,
    positions: np.ndarray,
    domains: list[str],
    seed: int,
) -> np.ndarray:
    """Predictive draws ``(sample, run, domain)`` of own runs with the form error left out too.

    ``values`` are :func:`~bayesmix.predict`'s draws at the fit's runs ``positions``: the law, the
    discrepancy's sample paths (conditioned on every run's residual, so at a run they replay it)
    and run noise. The paths are swapped for the Gaussian process's leave-one-out at each run
    (:meth:`~bayesmix.models.discrepancy.ResidualGP.leave_one_out`): the form error as the other
    runs predict it. The residuals were taken from the law fitted with every run.
    """
    paths = DiscrepancyDraws.from_idata(idata, spec.extra["discrepancy"], values.shape[0], seed)
    columns = [list(spec.domains).index(d) for d in domains]
    mixtures = np.asarray(idata.constant_data["mixtures"], dtype=float)[positions]
    replayed = paths.values(mixtures)[..., columns]
    mean, variance = paths.gp.leave_one_out()
    noise = np.random.default_rng([int(seed), 2]).standard_normal(values.shape)
    loo = mean[positions][:, columns] + np.sqrt(variance[positions][:, columns]) * noise
    return values - replayed + loo


def _own_positions(idata: _arviz.InferenceData, mixtures: pd.DataFrame, losses: pd.DataFrame) -> np.ndarray:
    """Each given run's position among the fit's own runs (same name, mixture and losses), else -1."""
    try:
        own_mixtures, own_losses = observed_runs(idata)
    except InputError:
        return np.full(len(mixtures), -1)
    position = {str(run): i for i, run in enumerate(own_mixtures.index)}
    fitted = np.hstack([own_mixtures.to_numpy(dtype=float), own_losses.to_numpy(dtype=float)])
    given = np.hstack([mixtures.to_numpy(dtype=float), losses.to_numpy(dtype=float)])
    out = np.full(len(given), -1)
    for j, run in enumerate(mixtures.index):
        i = position.get(str(run))
        if i is not None and np.allclose(fitted[i], given[j], rtol=0.0, atol=1e-12):
            out[j] = i
    return out


def _no_loo_reason(idata: _arviz.InferenceData, max_draws: int | None) -> str | None:
    """Why leave-one-out intervals are not possible for this fit (None when they are)."""
    spec = fitted_spec(idata)
    posterior = idata.posterior
    n = posterior.sizes["chain"] * posterior.sizes["draw"]
    if n < 2:
        return f"a point fit (method={spec.method!r}) has no posterior draws to reweight"
    if max_draws is not None and max_draws < 2:
        return f"max_draws={max_draws} leaves no posterior draws to reweight"
    if "sigma_shared" in posterior:
        return "noise='shared' makes a run's losses one joint observation"
    if spec.build_law().run_inputs:
        return "the law reads per-run inputs"
    return None


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` over the last axis of ``values`` with normalised ``weights`` (same shape)."""
    order = np.argsort(values, axis=-1)
    ordered = np.take_along_axis(values, order, axis=-1)
    cumulative = np.cumsum(np.take_along_axis(weights, order, axis=-1), axis=-1)
    # the first value whose cumulative weight reaches q (a step function, as for equal weights)
    index = np.minimum((cumulative < q).sum(axis=-1, keepdims=True), values.shape[-1] - 1)
    return np.take_along_axis(ordered, index, axis=-1)[..., 0]


def interaction_draws(idata: _arviz.InferenceData) -> tuple[str, np.ndarray, list[str], list[str]]:
    """Draws of the fitted law's interaction matrix.

    Returns
    -------
    (name, draws, rows, columns)
        The parameter's name (``"t"`` for the mixing laws, ``"beta"`` for the linear law), its
        draws ``(sample, row, train_domain)`` and the row and column labels. Rows are the
        validation domains (``"domain/component"`` for an implicit law's components).

    Raises
    ------
    InputError
        If the fitted law has no interaction matrix.
    """
    fitted_spec(idata)
    posterior = idata.posterior
    name = next(
        (n for n in INTERACTION_NAMES if n in posterior and "train_domain" in posterior[n].dims), None
    )
    if name is None:
        raise InputError(
            "idata",
            "the fitted law has no interaction matrix (no 't' or 'beta' over train_domain)",
            "fit a MixingLaw, ImplicitMixingLaw or LinearLaw",
        )
    values = posterior[name].stack(sample=("chain", "draw")).transpose("sample", ..., "train_domain")
    row_dims = [d for d in values.dims if d not in ("sample", "train_domain")]
    if row_dims:
        stacked = values.stack(row=row_dims).transpose("sample", "row", "train_domain")
        labels = ["/".join(str(v) for v in np.atleast_1d(key)) for key in stacked["row"].to_numpy()]
    else:
        stacked, labels = values.expand_dims(row=1, axis=1), [name]
    columns = [str(c) for c in values["train_domain"].to_numpy()]
    return name, np.asarray(stacked.to_numpy(), dtype=float), labels, columns


def interaction_summary(idata: _arviz.InferenceData, *, prob: float = 0.9) -> pd.DataFrame:
    """Posterior mean and equal-tailed interval of each interaction entry ``t_ij``.

    Rows of ``t`` are zero-sum in the mixing laws (see :mod:`bayesmix.laws.mixing`), so an entry
    measures how much training domain ``j`` helps validation domain ``i`` *relative to the average
    training domain*: negative lowers the loss.

    Parameters
    ----------
    idata
        A fit whose law has an interaction matrix.
    prob
        Probability of the intervals.

    Returns
    -------
    pandas.DataFrame
        One row per entry: ``domain`` (row label), ``train_domain``, ``mean``, ``lower``,
        ``upper``, ``excludes_zero`` (False for a point fit: no interval), plus ``attrs``
        ``parameter`` and ``n_draws``.
    """
    prob = check_prob(prob)
    name, draws, rows, columns = interaction_draws(idata)
    tail = (1 - prob) / 2
    lower, upper = np.quantile(draws, [tail, 1 - tail], axis=0)
    mean = draws.mean(axis=0)
    point = draws.shape[0] == 1
    records = []
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            excludes = (not point) and bool(lower[i, j] > 0 or upper[i, j] < 0)
            records.append(
                {
                    "domain": row,
                    "train_domain": column,
                    "mean": float(mean[i, j]),
                    "lower": float(lower[i, j]),
                    "upper": float(upper[i, j]),
                    "excludes_zero": excludes,
                }
            )
    frame = pd.DataFrame(records)
    frame.attrs.update({"parameter": name, "n_draws": int(draws.shape[0]), "prob": prob})
    return frame


def check_nested(nested: Any) -> NestedFit:
    """Raise :class:`InputError` unless ``nested`` is a :class:`~bayesmix.NestedFit`."""
    if not isinstance(nested, NestedFit):
        raise InputError("nested", f"got {type(nested).__name__}", "pass the result of bayesmix.fit_nested")
    return nested


def nearest_observed_mixture(nested: NestedFit, mixture: Mapping[str, float] | Sequence[float] | None) -> str:
    """Id of the observed mixture of ``nested`` closest (L1) to ``mixture``.

    ``None`` gives the one closest to the mean of the observed mixtures; an observed id
    (``"m0"``...) is returned as is. Training domains absent from ``mixture`` count as 0.
    """
    check_nested(nested)
    observed = nested.mixtures
    if isinstance(mixture, str):
        if mixture not in observed.index:
            raise InputError(
                "mixture", f"unknown observed mixture {mixture!r}", f"use one of {list(observed.index)}"
            )
        return mixture
    if mixture is None:
        point = observed.to_numpy().mean(axis=0)
    else:
        if isinstance(mixture, pd.Series):
            mixture = mixture.to_dict()
        frame = validate_mixtures(mixture, list(observed.columns), renormalise=True, field_name="mixture")
        point = frame.to_numpy()[0]
    distance = np.abs(observed.to_numpy() - point[None, :]).sum(axis=1)
    return str(observed.index[int(np.argmin(distance))])


def _scaling_law(nested: NestedFit) -> ScalingLaw:
    return JointScalingLaw() if nested.method == "joint" else StepLaw()


def fan_draws(
    nested: NestedFit,
    mixture: str,
    domain: str,
    tokens: np.ndarray,
    model_sizes: Sequence[float] | None = None,
    *,
    max_draws: int | None = 500,
    seed: int = 0,
) -> tuple[np.ndarray, list[float]]:
    """Draws of the fitted scaling law of one observed mixture along a token grid.

    Parameters
    ----------
    nested
        A fit from :func:`bayesmix.fit_nested`.
    mixture
        An observed mixture id (see :func:`nearest_observed_mixture`).
    domain
        A validation domain, or ``"total"`` (equal-weight mean over the domains, as
        :func:`~bayesmix.predict_target` reports it).
    tokens
        Token grid ``(grid,)``.
    model_sizes
        Joint fits: the sizes to draw the law at (default the sizes that mixture was trained
        at). Staged fits ignore it: their step law is per run, so the rows are the mixture's
        runs (one per observed size).
    max_draws, seed
        Posterior draws used (at most) and the seed of the subset.

    Returns
    -------
    (numpy.ndarray, list of float)
        The law's expected loss, draws ``(sample, size, grid)``, and the model size of each row.
    """
    check_nested(nested)
    domains = list(nested.domains)
    if domain != "total" and domain not in domains:
        raise InputError("domain", f"unknown domain {domain!r}", f"use 'total' or one of {domains}")
    if mixture not in nested.mixtures.index:
        raise InputError(
            "mixture", f"unknown observed mixture {mixture!r}", f"use one of {list(nested.mixtures.index)}"
        )
    tokens = np.asarray(tokens, dtype=float)
    if tokens.ndim != 1 or not np.all(np.isfinite(tokens)) or np.any(tokens <= 0):
        raise InputError("tokens", "is not a 1-D array of positive token counts", "give positive numbers")
    law = _scaling_law(nested)
    params = posterior_draws(nested.scaling, list(law.parameters), max_draws=max_draws, seed=seed)
    keys = nested.curves.keys
    wanted = domains if domain == "total" else [domain]
    runs = nested.table.runs
    if nested.method == "joint":
        if model_sizes is None:
            model_sizes = sorted(runs.loc[runs["mixture"] == mixture, "model_size"].unique())
        sizes = [float(s) for s in model_sizes]
        groups = [("mixture", mixture, size) for size in sizes]
    else:
        chosen = runs[runs["mixture"] == mixture].sort_values("model_size")
        sizes = [float(s) for s in chosen["model_size"]]
        groups = [("run", run, size) for run, size in zip(chosen.index, sizes, strict=True)]
    out = []
    for column, key, size in groups:
        per_domain = []
        for d in wanted:
            hit = np.flatnonzero((keys[column].to_numpy() == key) & (keys["domain"].to_numpy() == d))
            if not len(hit):
                raise InputError(
                    "domain", f"mixture {mixture!r} has no curve for domain {d!r}", "pick another"
                )
            g = int(hit[0])
            curve = {name: params[name][:, g][:, None] for name in law.parameters}
            inputs = {"tokens": tokens[None, :], "model_size": np.asarray(size)}
            per_domain.append(law.evaluate(curve, inputs))
        out.append(np.mean(per_domain, axis=0))
    return np.stack(out, axis=1), sizes


def observed_curve_points(nested: NestedFit, mixture: str, domain: str) -> pd.DataFrame:
    """Observed checkpoints of one mixture's runs: ``run``, ``model_size``, ``tokens``, ``loss``.

    For ``domain="total"`` the loss is the mean over the domains at checkpoints where every
    domain was evaluated.
    """
    frame = nested.table.frame
    rows = frame[frame["mixture"] == mixture]
    if domain != "total":
        return rows[rows["domain"] == domain][["run", "model_size", "tokens", "loss"]].reset_index(drop=True)
    n_domains = len(nested.domains)
    grouped = rows.groupby(["run", "model_size", "tokens"], sort=True)["loss"].agg(["mean", "size"])
    grouped = grouped[grouped["size"] == n_domains].reset_index()
    return grouped.rename(columns={"mean": "loss"})[["run", "model_size", "tokens", "loss"]]

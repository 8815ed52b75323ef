"""How sure the posterior is about the optimum, and what the data cannot tell yet.

* :func:`optimum_draws`: per posterior draw, the target loss at the optimum and at the reference
  (the :class:`~bayesmix.OptimisationResult` keeps only their summary).
* :func:`optimum_location_draws`: the posterior of the optimum's *location*: the mixture that
  minimises the target under each of a random subset of posterior draws (per-draw argmin).
* :func:`what_data_cannot_tell`: plain-language findings computed from the posterior (uncertain
  interactions, wide optimum shares, an undecided comparison with the reference, extrapolation,
  sampler problems, too few runs per parameter).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.data.runs import RunTable
from bayesmix.errors import InputError
from bayesmix.inference import _arviz
from bayesmix.inference.diagnostics import SamplerHealth, stored_health
from bayesmix.inference.nested import NestedFit
from bayesmix.inference.predict import check_seed, fitted_spec
from bayesmix.optimise.draws import LawDraws
from bayesmix.optimise.problem import Problem
from bayesmix.optimise.report import OptimisationResult
from bayesmix.optimise.solver import solve
from bayesmix.optimise.targets import Target, resolve_target
from bayesmix.report.summaries import check_nested, check_prob, interaction_summary, observed_runs

#: limits of the optimisation problem that :func:`optimum_location_draws` passes on to each draw
LIMIT_KEYS = (
    "bounds", "fixed", "exclude", "tokens", "max_epochs", "target_tokens", "tokens_sd", "epochs_prob", "reference",
    "trust_region",
)
#: P(beats reference) inside this range means the data cannot tell yet
UNDECIDED = (0.2, 0.8)
#: rule of thumb: fewer observed mixtures than this many per parameter of one domain's law is thin
RUNS_PER_PARAMETER = 2.0
#: at most this many interaction entries are named in a finding's message
MAX_NAMED = 6
#: fit methods whose draws are a posterior (with diagnostics); the others are point fits
POSTERIOR_METHODS = ("nuts", "laplace")


def check_result(result: Any) -> OptimisationResult:
    """Raise :class:`InputError` unless ``result`` is an :class:`~bayesmix.OptimisationResult`."""
    if not isinstance(result, OptimisationResult):
        raise InputError("result", f"got {type(result).__name__}", "pass the result of bayesmix.optimise")
    return result


def _check_pair(idata: _arviz.InferenceData, result: OptimisationResult) -> None:
    check_result(result)
    spec = fitted_spec(idata)
    if [str(d) for d in result.mixture.index] != list(spec.train_domains):
        raise InputError(
            "result",
            f"its training domains {list(result.mixture.index)} are not the fit's {list(spec.train_domains)}",
            "pass the fit the optimum was computed from",
        )


def result_target(result: OptimisationResult, domains: Sequence[str], target: Any = None) -> Target:
    """The :class:`~bayesmix.optimise.Target` of an optimisation result.

    A domain or ``"mean"`` target is rebuilt from its name; a mapping or function target must be
    given again as ``target``, or be stored in ``result.extra["target"]`` (the result only keeps
    its name).
    """
    if target is None:
        target = result.extra.get("target")
    if target is not None:
        return resolve_target(target, domains)
    if result.target in domains or result.target == "mean":
        return resolve_target(result.target, domains)
    raise InputError(
        "target",
        f"the result's target {result.target!r} cannot be rebuilt from its name",
        "pass the same target you gave bayesmix.optimise (the mapping or the function)",
    )


def optimum_draws(
    idata: _arviz.InferenceData,
    result: OptimisationResult,
    *,
    target: Any = None,
    max_draws: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Per posterior draw, the expected target loss at the optimum ``r*`` and at the reference.

    Uses the same thinned draws as :func:`bayesmix.optimise` when given its ``max_draws`` and
    ``seed`` (defaults: the result's number of draws and seed 0, the optimiser's default), so the
    mean of each column is the result's ``summary.loc["target"]`` mean and
    ``mean(optimum < reference)`` is its ``p_beats_reference``.

    Parameters
    ----------
    idata
        The fit the optimum was computed from.
    result
        The optimiser's answer.
    target
        The target given to :func:`bayesmix.optimise`; needed only for a mapping or function
        target (a domain or ``"mean"`` is rebuilt from the result).
    max_draws, seed
        The posterior draws to use (see above).

    Returns
    -------
    pandas.DataFrame
        Columns ``optimum`` and ``reference``, one row per draw.
    """
    _check_pair(idata, result)
    check_seed(seed)
    n = result.n_draws if max_draws is None else max_draws
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        raise InputError("max_draws", f"got {max_draws!r}", "give a positive integer, or None")
    draws = LawDraws.from_idata(idata, max_draws=int(n), seed=seed)
    aim = result_target(result, draws.domains, target)
    mixtures = np.vstack([result.mixture.to_numpy(dtype=float), result.reference.to_numpy(dtype=float)])
    values = aim(draws.losses(mixtures))  # (sample, 2)
    return pd.DataFrame(values, columns=["optimum", "reference"]).rename_axis("draw")


def _one_draw(draws: LawDraws, i: int) -> LawDraws:
    return draws.pick(np.array([i]))


def optimum_location_draws(
    idata: _arviz.InferenceData,
    result: OptimisationResult,
    *,
    n: int = 40,
    n_starts: int = 3,
    target: Any = None,
    seed: int = 0,
    **limits: Any,
) -> pd.DataFrame:
    """Posterior draws of the optimum's location: the best mixture under each of ``n`` draws.

    For each of ``n`` posterior draws (a random subset under ``seed``; all of them when there are
    fewer) the law of that draw is minimised over the same constrained simplex by the optimiser's
    solver (SLSQP from the reference, ``r*`` and the simplex centre, ...). The spread of these
    argmins is how well the data locate the optimal mixture: a share whose interval is wide is
    one the data cannot pin down. Each draw's law is deterministic, so the risk measure does not
    enter; probabilistic loss constraints are not applied (they are statements about the whole
    posterior, not about one draw).

    The limits are those ``r*`` was chosen within: the result's ``box`` (bounds, fixed shares,
    exclusions, token caps and trust region, as the optimiser applied them), so the intervals of
    the optimal shares respect the same constraints as the optimum. Limits given here instead
    (any of ``**limits`` but ``reference``) rebuild the box from them, as
    :func:`bayesmix.optimise` would; so does a result that records no box.

    Parameters
    ----------
    idata
        The fit the optimum was computed from.
    result
        The optimiser's answer (its mixture is one of the starts).
    n
        Number of posterior draws.
    n_starts
        Solver starts per draw.
    target
        The target given to :func:`bayesmix.optimise` when it was a mapping or a function.
    seed
        Seed of the draw subset and of the solver's random starts.
    **limits
        The mixture limits given to :func:`bayesmix.optimise`: ``bounds``, ``fixed``,
        ``exclude``, ``tokens``, ``max_epochs``, ``target_tokens``, ``reference``,
        ``trust_region``; needed only for a result that records no ``box`` (see above).

    Returns
    -------
    pandas.DataFrame
        One row per draw (index ``draw``: its position in the stacked posterior), one column per
        training domain.
    """
    _check_pair(idata, result)
    check_seed(seed)
    for name, value, low in (("n", n, 1), ("n_starts", n_starts, 1)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
            raise InputError(name, f"got {value!r}", f"give an integer >= {low}")
    unknown = sorted(set(limits) - set(LIMIT_KEYS))
    if unknown:
        raise InputError("limits", f"unknown keywords {unknown}", f"use some of {list(LIMIT_KEYS)}")
    recorded = result.box
    if (
        recorded is not None
        and not set(limits) - {"reference"}
        and tuple(recorded.domains) == tuple(str(d) for d in result.mixture.index)
    ):
        # the optimum's own limits, trust region included: no second trust region on top
        problem = Problem.from_idata(idata, "mean", max_draws=None, seed=seed, trust_region=None, **limits)
        problem = replace(problem, box=recorded)
    else:
        problem = Problem.from_idata(idata, "mean", max_draws=None, seed=seed, **limits)
    aim = result_target(result, problem.draws.domains, target)
    problem = replace(problem, target=aim, prior_mixture=result.mixture.to_numpy(dtype=float))
    total = problem.draws.n_draws
    picks = (
        np.arange(total)
        if n >= total
        else np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
    )
    rows = []
    for i in picks:
        single = replace(problem, draws=_one_draw(problem.draws, int(i)))
        rows.append(solve(single, n_starts=int(n_starts), seed=seed).mixture.to_numpy())
    index = pd.Index(picks.astype(int), name="draw")
    return pd.DataFrame(np.vstack(rows), index=index, columns=list(problem.draws.train_domains))


@dataclass(frozen=True)
class Finding:
    """One thing the data cannot tell yet (or a caveat on what they tell).

    Attributes
    ----------
    topic
        ``"interaction"``, ``"optimum_share"``, ``"beats_reference"``, ``"extrapolation"``,
        ``"sampler"``, ``"point_fit"`` or ``"runs_per_parameter"``.
    message
        The plain-language finding, with its numbers.
    data
        The numbers behind it (JSON-ready).
    """

    topic: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


def parse_target_scale(target_scale: Any) -> tuple[float, float] | None:
    """``(model_size, tokens)`` from a mapping with those keys or a pair; ``None`` stays ``None``."""
    if target_scale is None:
        return None
    if isinstance(target_scale, Mapping):
        missing = [k for k in ("model_size", "tokens") if k not in target_scale]
        if missing:
            raise InputError("target_scale", f"missing {missing}", "give {'model_size': N, 'tokens': D}")
        pair = (target_scale["model_size"], target_scale["tokens"])
    elif isinstance(target_scale, Sequence) and not isinstance(target_scale, str) and len(target_scale) == 2:
        pair = tuple(target_scale)
    else:
        raise InputError(
            "target_scale", f"got {target_scale!r}", "give {'model_size': N, 'tokens': D} or (N, D)"
        )
    values = []
    for name, value in zip(("model_size", "tokens"), pair, strict=True):
        if (
            not isinstance(value, int | float | np.integer | np.floating)
            or isinstance(value, bool)
            or not np.isfinite(value)
            or value <= 0
        ):
            raise InputError(f"target_scale[{name!r}]", f"got {value!r}", "give a positive number")
        values.append(float(value))
    return values[0], values[1]


def fit_target_scale(idata: _arviz.InferenceData) -> tuple[float, float] | None:
    """The target scale of a target-scale fit (``bayesmix.inference.nested_target.target_fit``), else None."""
    extra = fitted_spec(idata).extra or {}
    if "model_size" in extra and "tokens" in extra:
        return float(extra["model_size"]), float(extra["tokens"])
    return None


def _n_observed_mixtures(idata: _arviz.InferenceData, runs: RunTable | None) -> int:
    if runs is not None:
        return runs.n_runs
    try:
        return len(observed_runs(idata)[0])
    except InputError:
        mixtures = idata.constant_data["mixtures"] if "constant_data" in idata.groups() else None
        return 0 if mixtures is None else int(mixtures.shape[0])


def _interaction_findings(fit: _arviz.InferenceData, name: str, prob: float) -> list[Finding]:
    try:
        table = interaction_summary(fit, prob=prob)
    except InputError:  # a law without an interaction matrix
        return []
    if table.attrs["n_draws"] < 2:
        return []
    covers = table[~table["excludes_zero"]].copy()
    if covers.empty:
        return []
    covers["width"] = covers["upper"] - covers["lower"]
    covers = covers.sort_values("width", ascending=False)
    named = [
        f"{r.train_domain} -> {r.domain} [{r.lower:.2f}, {r.upper:.2f}]"
        for r in covers.head(MAX_NAMED).itertuples()
    ]
    more = f" and {len(covers) - MAX_NAMED} more" if len(covers) > MAX_NAMED else ""
    parameter = table.attrs["parameter"]
    message = (
        f"In {name}, {len(covers)} of {len(table)} interaction entries {parameter}_ij have a {prob:.0%} interval "
        f"that covers 0, so the data cannot tell whether more of training domain j helps or hurts validation "
        f"domain i (relative to the average training domain): {'; '.join(named)}{more}."
    )
    entries = [
        {"domain": r.domain, "train_domain": r.train_domain, "lower": r.lower, "upper": r.upper}
        for r in covers.itertuples()
    ]
    return [
        Finding("interaction", message, {"fit": name, "entries": entries, "prob": prob, "of": len(table)})
    ]


def _health_findings(name: str, health: SamplerHealth) -> list[Finding]:
    if health.method not in POSTERIOR_METHODS:
        message = (
            f"{name[0].upper()}{name[1:]} is a {health.method} point fit: it has no posterior uncertainty, so its intervals hold only "
            f"run noise and every probability it reports is 0 or 1; fit with NUTS to know how sure to be."
        )
        return [Finding("point_fit", message, {"fit": name, "method": health.method})]
    if health.ok:
        return []
    message = f"The sampler of {name} reports problems, so its intervals may be wrong: " + "; ".join(
        health.problems
    )
    data = {
        "fit": name,
        "divergences": health.divergences,
        "max_rhat": health.max_rhat,
        "min_ess_bulk": health.min_ess_bulk,
        "problems": list(health.problems),
    }
    return [Finding("sampler", message, data)]


def target_stage(idata: _arviz.InferenceData) -> str | None:
    """The name of the nested fit's stage a target-scale fit comes from (``"mixing@N,D"``), else None."""
    scale = fit_target_scale(idata)
    return None if scale is None else f"mixing@{scale[0]:.4g},{scale[1]:.4g}"


def _fit_findings(
    fit: _arviz.InferenceData,
    name: str,
    runs: RunTable | None,
    nested: NestedFit | None,
    prob: float,
    runs_per_parameter: float,
) -> list[Finding]:
    spec = fitted_spec(fit)
    findings = _interaction_findings(fit, name, prob)
    health = stored_health(fit)
    stage = target_stage(fit)
    # a target-scale fit's health is the nested fit's mixing stage: reported once, with the stages
    if health is not None and not (nested is not None and stage in nested.health):
        findings += _health_findings(name, health)
    law = spec.build_law()
    per_domain = law.n_parameters(len(spec.domains), len(spec.train_domains))
    n_mixtures = _n_observed_mixtures(fit, runs)
    ratio = n_mixtures / per_domain
    if ratio < runs_per_parameter:
        message = (
            f"{name[0].upper()}{name[1:]} has {n_mixtures} observed mixtures for {per_domain} parameters per domain's law "
            f"({ratio:.1f} per parameter, below the rule of thumb of {runs_per_parameter:g}): the law is held up "
            f"mostly by its priors; add runs or merge rare training domains."
        )
        data = {"fit": name, "mixtures": n_mixtures, "parameters": per_domain, "ratio": ratio}
        findings.append(Finding("runs_per_parameter", message, data))
    return findings


def what_data_cannot_tell(
    fit: _arviz.InferenceData | None = None,
    *,
    runs: RunTable | None = None,
    target_fit: _arviz.InferenceData | None = None,
    result: OptimisationResult | None = None,
    location_draws: pd.DataFrame | None = None,
    nested: NestedFit | None = None,
    target_scale: Mapping[str, float] | Sequence[float] | None = None,
    prob: float = 0.9,
    wide: float = 0.2,
    runs_per_parameter: float = RUNS_PER_PARAMETER,
) -> list[Finding]:
    """Plain-language findings on what the posterior does not pin down yet, each computed.

    Checks (each only when its inputs are given):

    * interaction entries whose ``prob`` interval covers 0 (``fit``, ``target_fit``);
    * training domains whose optimal share has a ``prob`` interval wider than ``wide`` over the
      optimum's location draws (``location_draws``, see :func:`optimum_location_draws`);
    * ``P(beats reference)`` of the optimum between 0.2 and 0.8 (``result``);
    * the extrapolation factors of the target scale, ``N* / max observed N`` and
      ``D* / max observed D``, when above 1 (``nested`` and ``target_scale``; a target-scale fit
      carries its own scale);
    * sampler problems or a point fit (``fit``, ``target_fit`` and every stage of ``nested``);
    * fewer than ``runs_per_parameter`` observed mixtures per parameter of one domain's law
      (``fit``, ``target_fit``).

    Parameters
    ----------
    fit
        A fit from :func:`bayesmix.fit` (the proxy runs' mixing law).
    runs
        The runs of ``fit`` (default: read from the fit).
    target_fit
        The mixing law at the target scale
        (:func:`bayesmix.inference.nested_target.target_fit`), which also gives the target scale.
    result, location_draws
        The optimiser's answer and the draws of its location.
    nested, target_scale
        A nested fit and the target ``{"model_size": N, "tokens": D}`` (or ``(N, D)``).
    prob
        Probability of the intervals.
    wide
        Interval width of an optimum share that counts as wide.
    runs_per_parameter
        Threshold of the runs-per-parameter check.

    Returns
    -------
    list of Finding
        Empty when nothing is flagged.
    """
    prob = check_prob(prob)
    if not isinstance(wide, int | float) or not 0 < wide < 1:
        raise InputError("wide", f"got {wide!r}", "give a share width in (0, 1), e.g. 0.2")
    if nested is not None:
        check_nested(nested)
    findings: list[Finding] = []
    scale = parse_target_scale(target_scale)
    for idata, name, its_runs in (
        (fit, "the mixing-law fit", runs),
        (target_fit, "the target-scale mixing law", None),
    ):
        if idata is None:
            continue
        if scale is None:
            scale = fit_target_scale(idata)
        findings += _fit_findings(idata, name, its_runs, nested, prob, runs_per_parameter)
    if location_draws is not None:
        if not isinstance(location_draws, pd.DataFrame) or location_draws.empty:
            raise InputError(
                "location_draws", "is not a non-empty DataFrame", "pass optimum_location_draws(...)"
            )
        tail = (1 - prob) / 2
        low, high = np.quantile(location_draws.to_numpy(dtype=float), [tail, 1 - tail], axis=0)
        for domain, lo, hi in zip(location_draws.columns, low, high, strict=True):
            if hi - lo > wide:
                message = (
                    f"The optimal share of {domain} is not pinned down: under {prob:.0%} of the posterior's laws "
                    f"the best share lies between {lo:.2f} and {hi:.2f} (width {hi - lo:.2f} > {wide:g})."
                )
                findings.append(
                    Finding("optimum_share", message, {"train_domain": str(domain), "lower": lo, "upper": hi})
                )
    if result is not None:
        check_result(result)
        p = float(result.p_beats_reference)
        if UNDECIDED[0] <= p <= UNDECIDED[1]:
            message = (
                f"The data cannot tell yet whether the chosen mixture beats the reference on {result.target!r}: "
                f"P(beats reference) = {p:.2f}."
            )
            findings.append(Finding("beats_reference", message, {"p_beats_reference": p}))
    if nested is not None:
        for stage, health in nested.health.items():
            findings += _health_findings(f"the nested fit's {stage} stage", health)
        if scale is not None:
            max_size = float(nested.table.model_sizes.max())
            max_tokens = float(nested.table.frame["tokens"].max())
            size_factor, token_factor = scale[0] / max_size, scale[1] / max_tokens
            if size_factor > 1 or token_factor > 1:
                message = (
                    f"The target scale (N* = {scale[0]:.3g}, D* = {scale[1]:.3g}) is {size_factor:.3g}x the largest "
                    f"model size and {token_factor:.3g}x the most tokens observed: beyond the data the "
                    f"scaling law's form is assumed, not tested; a run nearer the target would check it."
                )
                data = {
                    "model_size_factor": size_factor,
                    "tokens_factor": token_factor,
                    "max_model_size": max_size,
                    "max_tokens": max_tokens,
                }
                findings.append(Finding("extrapolation", message, data))
    return findings


def findings_json(findings: Sequence[Finding]) -> str:
    """The findings as JSON (topic, message, data)."""
    return json.dumps(
        [{"topic": f.topic, "message": f.message, "data": f.data} for f in findings], default=float
    )

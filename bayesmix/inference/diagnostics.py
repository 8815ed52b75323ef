"""Sampler health: divergences, r_hat and effective sample sizes, reported, never swallowed."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bayesmix.errors import SamplerHealthError, SamplerHealthWarning
from bayesmix.inference import _arviz

RHAT_LIMIT = 1.01
ESS_PER_CHAIN = 100


@dataclass(frozen=True)
class SamplerHealth:
    """What the sampler says about a fit.

    Attributes
    ----------
    method
        ``"nuts"`` (sampler diagnostics apply), ``"laplace"`` (the approximation's Pareto ``k``)
        or a point method (``"map"``/``"paper"``: nothing to check).
    chains, draws
        Number of chains and draws per chain.
    divergences
        Divergent transitions after tuning.
    max_rhat, min_ess_bulk, min_ess_tail
        Worst values over the law's parameters and noise scales.
    pareto_k
        ``"laplace"`` fits: Pareto ``k`` of the importance ratios of the draws (posterior over the
        Gaussian); below 0.7 the Gaussian matches the joint posterior (see :func:`laplace_health`).
    problems
        Human-readable list of what is wrong; empty when healthy.
    """

    method: str
    chains: int = 0
    draws: int = 0
    divergences: int = 0
    max_rhat: float = float("nan")
    min_ess_bulk: float = float("nan")
    min_ess_tail: float = float("nan")
    problems: list[str] = field(default_factory=list)
    pareto_k: float = float("nan")

    @property
    def ok(self) -> bool:
        """True when there is no problem."""
        return not self.problems

    def to_json(self) -> str:
        """JSON for the InferenceData attrs."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SamplerHealth:
        """Inverse of :meth:`to_json`."""
        return cls(**json.loads(text))

    def __str__(self) -> str:
        if self.method == "laplace":
            head = (
                f"Laplace approximation, {self.chains * self.draws} draws, Pareto k {self.pareto_k:.2f} "
                "(joint posterior matched below 0.7)"
            )
            return head + ("" if self.ok else "\nProblems: " + "; ".join(self.problems))
        if self.method != "nuts":
            return f"{self.method} point fit: no sampler diagnostics (no posterior uncertainty)"
        head = (
            f"{self.chains} chains x {self.draws} draws, {self.divergences} divergences, "
            f"max r_hat {self.max_rhat:.3f}, min ESS bulk {self.min_ess_bulk:.0f} / tail {self.min_ess_tail:.0f}"
        )
        return head + ("" if self.ok else "\nProblems: " + "; ".join(self.problems))


def check_health(idata: _arviz.InferenceData, var_names: list[str], method: str = "nuts") -> SamplerHealth:
    """Compute :class:`SamplerHealth` of a NUTS fit over ``var_names``."""
    if method != "nuts":
        return SamplerHealth(method=method)
    posterior = idata.posterior
    chains, draws = int(posterior.sizes["chain"]), int(posterior.sizes["draw"])
    names = [v for v in var_names if v in posterior]
    divergences = 0
    if "sample_stats" in idata.groups() and "diverging" in idata.sample_stats:
        divergences = int(np.asarray(idata.sample_stats["diverging"]).sum())

    def worst(dataset, reducer) -> tuple[float, str]:
        values = {name: float(reducer(np.asarray(dataset[name]))) for name in names if dataset[name].size}
        finite = {k: v for k, v in values.items() if np.isfinite(v)}
        if not finite:
            return float("nan"), ""
        key = (max if reducer is np.nanmax else min)(finite, key=finite.get)
        return finite[key], key

    problems = []
    if chains > 1:
        max_rhat, rhat_var = worst(_arviz.rhat(idata, names), np.nanmax)
    else:
        max_rhat, rhat_var = float("nan"), ""
    min_bulk, bulk_var = worst(_arviz.ess_bulk(idata, names), np.nanmin)
    min_tail, _ = worst(_arviz.ess_tail(idata, names), np.nanmin)
    if divergences:
        problems.append(
            f"{divergences} divergent transitions: raise target_accept (e.g. 0.95) or check the data for outliers"
        )
    if max_rhat > RHAT_LIMIT:
        problems.append(f"r_hat {max_rhat:.3f} > {RHAT_LIMIT} for {rhat_var!r}: chains disagree, run longer")
    if min_bulk < ESS_PER_CHAIN * chains:
        problems.append(f"bulk ESS {min_bulk:.0f} < {ESS_PER_CHAIN * chains} for {bulk_var!r}: draw more")
    return SamplerHealth(
        method=method,
        chains=chains,
        draws=draws,
        divergences=divergences,
        max_rhat=max_rhat,
        min_ess_bulk=min_bulk,
        min_ess_tail=min_tail,
        problems=problems,
    )


def laplace_health(result: Any, chains: int, draws: int) -> SamplerHealth:
    """:class:`SamplerHealth` of a Laplace fit (:class:`bayesmix.inference.approx.LaplaceDraws`).

    Problems: the mode search did not converge, or the curvature at the mode is not positive in
    some direction (the Gaussian is then a guess there). The Pareto ``k`` of the joint
    importance ratios is recorded but not a problem by itself: over the 70-300 parameters of a
    mixing law it exceeds 0.7 even where the predictive intervals agree with NUTS (see
    ``benchmarks/speed.py``), so it is read as a warning light for the joint posterior, not
    for predictions.
    """
    problems = []
    if not result.mode.converged:
        problems.append("the posterior mode search did not converge; fit with method='nuts'")
    if not np.isfinite(result.pareto_k):
        problems.append(
            "most Laplace draws fall where the log density is not finite (Pareto k infinite): "
            "fit with method='nuts'"
        )
    if result.hessian_clipped:
        problems.append(
            f"{result.hessian_clipped} direction(s) without curvature at the mode (a flat or saddle "
            "posterior): fit with method='nuts'"
        )
    return SamplerHealth(
        method="laplace", chains=int(chains), draws=int(draws), problems=problems, pareto_k=float(result.pareto_k)
    )


def report_health(health: SamplerHealth, strict: bool = False) -> None:
    """Warn (or raise, when ``strict``) if the fit has problems."""
    if health.ok:
        return
    message = "Sampler problems: " + "; ".join(health.problems)
    if strict:
        raise SamplerHealthError(message)
    warnings.warn(message, SamplerHealthWarning, stacklevel=3)


def health_of(idata: _arviz.InferenceData) -> SamplerHealth:
    """The :class:`SamplerHealth` stored in a fit's attrs."""
    return SamplerHealth.from_json(idata.posterior.attrs["bayesmix_health"])

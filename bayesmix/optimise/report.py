"""The optimiser's answer: the chosen mixture, its predicted losses with intervals, and odds.

The odds that it beats the reference mixture are computed from the same posterior draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.errors import InputError
from bayesmix.optimise.constraints import Box
from bayesmix.optimise.problem import Problem


@dataclass
class OptimisationResult:
    """Result of :func:`bayesmix.optimise.optimise`.

    Attributes
    ----------
    mixture, reference
        The chosen mixture ``r*`` and the reference mixture, indexed by training domain.
    objective
        The minimised objective at ``r*`` (risk of the target over the draws, plus any pull).
    summary
        Rows: the validation domains and ``"target"``; columns ``mean``, ``lower``, ``upper`` of the
        expected loss at ``r*`` and ``ref_mean``, ``ref_lower``, ``ref_upper`` at the reference
        (equal-tailed intervals of probability ``prob``).
    p_beats_reference
        Posterior probability that the target loss at ``r*`` is below that at the reference,
        ``mean(T_s(r*) < T_s(r_ref))`` over the same draws ``s``.
    loss_constraints
        One row per loss constraint: required and achieved probability at ``r*`` on the draws.
    starts
        Per solver start: the objective reached and whether it was feasible.
    target, risk, level, prob, n_draws, seconds
        What was optimised, on how many draws, and how long it took.
    health
        The :class:`~bayesmix.inference.diagnostics.SamplerHealth` of the fit the draws came
        from (``None`` when the fit stored none); ``to_dict`` reports it as ``health_ok``.
    support
        How far ``r*`` lies from the fit's runs (see
        :meth:`~bayesmix.optimise.support.Support.describe`), plus ``trust_region`` (the margin
        used, ``None`` when off) and ``trust_applied`` (whether it narrowed the limits); ``None``
        when the fit does not store its runs' mixtures.
    box
        The per-domain limits ``r*`` was chosen within, as the solver applied them (bounds, fixed
        shares, exclusions, token caps and the trust region); ``None`` for a result built
        elsewhere. The report's draws of the optimum's location
        (:func:`~bayesmix.report.optimum_location_draws`) are solved within the same limits.
    """

    mixture: pd.Series
    reference: pd.Series
    objective: float
    summary: pd.DataFrame
    p_beats_reference: float
    loss_constraints: pd.DataFrame
    starts: pd.DataFrame
    target: str
    risk: str
    level: float
    prob: float
    n_draws: int
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    health: Any = None
    support: dict[str, Any] | None = None
    box: Box | None = None

    @property
    def extrapolation(self) -> bool:
        """Whether ``r*`` lies beyond the runs (a share outside their range, or far from every run)."""
        return bool(self.support and self.support["extrapolation"])

    @property
    def expected_loss(self) -> float:
        """Posterior mean of the target loss at ``r*``."""
        return float(self.summary.loc["target", "mean"])

    def to_dict(self, digits: int = 6) -> dict[str, Any]:
        """JSON-ready summary: mixture, reference, target loss and its interval, P(beats reference)."""
        from bayesmix.optimise.export import mixture_dict

        target = self.summary.loc["target"]
        return {
            "mixture": mixture_dict(self.mixture, digits),
            "reference": mixture_dict(self.reference, digits),
            "target": self.target,
            "risk": self.risk,
            "level": self.level,
            "objective": round(float(self.objective), digits),
            "expected_loss": round(float(target["mean"]), digits),
            "interval": [round(float(target["lower"]), digits), round(float(target["upper"]), digits)],
            "interval_prob": self.prob,
            "reference_expected_loss": round(float(target["ref_mean"]), digits),
            "p_beats_reference": round(float(self.p_beats_reference), digits),
            "n_draws": self.n_draws,
            "health_ok": None if self.health is None else bool(self.health.ok),
            "extrapolation": None if self.support is None else self.extrapolation,
            "support": None if self.support is None else _rounded(self.support, digits),
        }

    def __repr__(self) -> str:
        top = self.mixture[self.mixture > 5e-4].sort_values(ascending=False)
        shares = ", ".join(f"{k}={v:.3f}" for k, v in top.items())
        t = self.summary.loc["target"]
        return (
            f"OptimisationResult(target={self.target!r}, risk={self.risk!r}: {shares}; "
            f"loss {t['mean']:.4f} [{t['lower']:.4f}, {t['upper']:.4f}] vs reference {t['ref_mean']:.4f}; "
            f"P(beats reference)={self.p_beats_reference:.3f}"
            + ("; EXTRAPOLATION beyond the runs)" if self.extrapolation else ")")
        )


def _rounded(value: Any, digits: int) -> Any:
    """``value`` with every float rounded to ``digits`` (nested dicts and lists)."""
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, float):
        return round(value, digits)
    return value


def summarise(
    problem: Problem,
    mixture: np.ndarray,
    *,
    prob: float = 0.9,
    starts: pd.DataFrame | None = None,
    seconds: float = 0.0,
) -> OptimisationResult:
    """Evaluate ``mixture`` and the problem's reference on the problem's draws and build the result."""
    if not 0 < prob < 1:
        raise InputError("prob", f"got {prob}", "give a probability in (0, 1), e.g. 0.9")
    domains = list(problem.draws.domains)
    losses = problem.per_domain(np.vstack([mixture, problem.reference]))  # (S, 2, D)
    target = problem.target(losses)  # (S, 2)
    table = np.concatenate([losses, target[..., None]], axis=-1)  # (S, 2, D + 1)
    tail = (1 - prob) / 2
    lower, upper = np.quantile(table, [tail, 1 - tail], axis=0)
    mean = table.mean(axis=0)
    summary = pd.DataFrame(
        {
            "mean": mean[0],
            "lower": lower[0],
            "upper": upper[0],
            "ref_mean": mean[1],
            "ref_lower": lower[1],
            "ref_upper": upper[1],
        },
        index=pd.Index([*domains, "target"], name="domain"),
    )
    achieved = problem.constraint_probabilities(mixture)[0]
    constraints = pd.DataFrame(
        {
            "constraint": [c.describe() for c in problem.loss_constraints],
            "required": [c.prob for c in problem.loss_constraints],
            "achieved": achieved,
        }
    )
    train = list(problem.draws.train_domains)
    support = None
    if problem.support is not None:
        support = {
            **problem.support.describe(mixture),
            "trust_region": problem.trust_region,
            "trust_applied": problem.trust_applied,
        }
    return OptimisationResult(
        mixture=pd.Series(mixture, index=train, name="share"),
        reference=pd.Series(problem.reference, index=train, name="share"),
        objective=float(problem.objective_many(mixture)[0]),
        summary=summary,
        p_beats_reference=float(np.mean(target[:, 0] < target[:, 1])),
        loss_constraints=constraints,
        starts=starts if starts is not None else pd.DataFrame(),
        target=problem.target.name,
        risk=problem.risk,
        level=problem.level,
        prob=prob,
        n_draws=problem.draws.n_draws,
        seconds=seconds,
        support=support,
        box=problem.box,
    )

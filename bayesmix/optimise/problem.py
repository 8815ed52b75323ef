"""The optimisation problem: a target, a risk measure and constraints over fixed posterior draws.

Everything is a sample-average approximation: the posterior is represented by a fixed, thinned
set of draws, so the objective is a deterministic function of the mixture and the solver, the grid
search and the Dirichlet baseline all rank mixtures by exactly the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bayesmix.data.runs import validate_mixtures
from bayesmix.errors import InputError
from bayesmix.inference import _arviz
from bayesmix.optimise.constraints import (
    Box,
    LossConstraint,
    build_box,
    check_loss_constraints,
    with_trust_region,
)
from bayesmix.optimise.draws import LawDraws
from bayesmix.optimise.risk import check_risk, risk_value_and_grad, risk_values
from bayesmix.optimise.support import DEFAULT_TRUST_MARGIN, Support, check_margin
from bayesmix.optimise.targets import Target, resolve_target

#: mixtures evaluated per batch when ranking many mixtures (bounds the memory of ``draws x batch``)
BATCH_CELLS = 4_000_000


def one_mixture(value: Any, domains: Sequence[str], field_name: str) -> np.ndarray:
    """A single mixture (mapping or sequence) as an array in the order of ``domains``."""
    frame = validate_mixtures(value, list(domains), renormalise=True, field_name=field_name)
    if len(frame) != 1:
        raise InputError(field_name, f"has {len(frame)} rows", "give one mixture")
    return frame.to_numpy()[0]


def smoothed_order_statistic(values: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Kernel-weighted order statistic of ``values (sample, ...)`` around 0-based ``rank``.

    Returns the smoothed value ``(...)`` and the weight of each draw ``(sample, ...)``: a Gaussian
    kernel over ranks (bandwidth 1% of the draws, at least half a rank). It is continuous in the
    draws, unlike the raw order statistic, and keeps a gradient everywhere (unlike a sigmoid count).
    """
    n = values.shape[0]
    bandwidth = max(0.5, 0.01 * n)
    ranks = np.argsort(np.argsort(values, axis=0, kind="stable"), axis=0, kind="stable")
    weights = np.exp(-0.5 * ((ranks - rank) / bandwidth) ** 2)
    weights /= weights.sum(axis=0, keepdims=True)
    return (weights * values).sum(axis=0), weights


def epoch_caps(
    run_inputs: Sequence[str], max_epochs: float | Mapping[str, float] | None, tokens: Mapping[str, float] | None
) -> float | Mapping[str, float] | None:
    """The hard epoch caps :func:`~bayesmix.optimise.build_box` applies, by what the law knows.

    ``None`` means 1 epoch for laws that do not model repetition, and no cap for laws that read
    each run's ``tokens`` (they price repetition in the loss); a mapping leaves the domains it
    does not name at 1 epoch, or uncapped for such laws.
    """
    aware = "tokens" in run_inputs
    if max_epochs is None:
        return None if aware else 1.0
    if aware and isinstance(max_epochs, Mapping):
        return {name: max_epochs.get(name, float("inf")) for name in {*(tokens or {}), *max_epochs}}
    return max_epochs


def required_rank(n_draws: int, prob: float) -> int:
    """0-based rank of the order statistic that must be ``<= threshold`` for ``P(L <= t) >= prob``."""
    return min(n_draws - 1, max(0, int(np.ceil(prob * n_draws - 1e-9)) - 1))


@dataclass
class Problem:
    """Minimise ``risk(target(L(r)))`` (plus an optional pull) over the constrained simplex.

    Build it with :meth:`from_idata`; :func:`bayesmix.optimise.solve` solves it and
    :func:`bayesmix.optimise.grid_search` enumerates it.
    """

    draws: LawDraws
    target: Target
    box: Box
    risk: str = "mean"
    level: float = 0.9
    loss_constraints: tuple[LossConstraint, ...] = ()
    prior_mixture: np.ndarray | None = None
    pull: float = 0.0
    reference: np.ndarray | None = None
    #: thresholds the solver uses (tightened when the exact check on draws fails)
    solver_thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: the runs the fit saw (``None`` when the fit does not store them)
    support: Support | None = None
    #: margin of the trust region in shares (``None``: off) and whether it narrowed the box
    trust_region: float | None = None
    trust_applied: bool = False

    @classmethod
    def from_idata(
        cls,
        idata: _arviz.InferenceData,
        target: str | Mapping[str, float] | Sequence[float] | Callable[[np.ndarray], np.ndarray] = "mean",
        *,
        risk: str = "mean",
        level: float = 0.9,
        bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
        fixed: Mapping[str, float] | None = None,
        exclude: Sequence[str] = (),
        tokens: Mapping[str, float] | None = None,
        max_epochs: float | Mapping[str, float] | None = None,
        target_tokens: float | None = None,
        tokens_sd: float | Mapping[str, float] | None = None,
        epochs_prob: float = 0.9,
        prior_mixture: Mapping[str, float] | Sequence[float] | None = None,
        pull: float = 0.0,
        loss_constraints: Sequence[LossConstraint] = (),
        reference: Mapping[str, float] | Sequence[float] | None = None,
        trust_region: float | None = DEFAULT_TRUST_MARGIN,
        max_draws: int | None = 1000,
        seed: int = 0,
    ) -> Problem:
        """Set up the problem from a fit; see :func:`bayesmix.optimise.optimise` for the arguments."""
        check_risk(risk, level)
        draws = LawDraws.from_idata(
            idata, max_draws=max_draws, seed=seed, tokens=tokens, target_tokens=target_tokens
        )
        check_loss_constraints(loss_constraints, draws.domains)
        if "tokens" in draws.law.run_inputs:  # the law's own token counts, unless the call gives others
            tokens = {**getattr(draws.law, "available_tokens", {}), **(tokens or {})} or None
        max_epochs = epoch_caps(draws.law.run_inputs, max_epochs, tokens)
        box = build_box(
            draws.train_domains,
            bounds=bounds,
            fixed=fixed,
            exclude=exclude,
            tokens=tokens,
            max_epochs=max_epochs,
            target_tokens=target_tokens,
            tokens_sd=tokens_sd,
            epochs_prob=epochs_prob,
        )
        check_margin(trust_region)
        support = Support.from_idata(idata)
        applied = False
        if trust_region is not None and support is not None:
            lower, upper = support.trust_limits(trust_region)
            what = "trust region (the runs' range" + (f" + {trust_region:g})" if trust_region else ")")
            box, applied = with_trust_region(box, lower, upper, what)
        if not (np.isfinite(pull) and pull >= 0):
            raise InputError("pull", f"got {pull!r}", "give a non-negative strength (loss units)")
        prior = None if prior_mixture is None else one_mixture(prior_mixture, draws.train_domains, "prior_mixture")
        if pull > 0 and prior is None:
            raise InputError("prior_mixture", "is missing while pull > 0", "give the mixture to pull towards")
        if reference is not None:
            ref = one_mixture(reference, draws.train_domains, "reference")
        elif draws.reference_mixture is not None:
            ref = draws.reference_mixture / draws.reference_mixture.sum()
        else:
            ref = np.full(len(draws.train_domains), 1.0 / len(draws.train_domains))
        constraints = tuple(loss_constraints)
        return cls(
            draws=draws,
            target=resolve_target(target, draws.domains),
            box=box,
            risk=risk,
            level=level,
            loss_constraints=constraints,
            prior_mixture=prior,
            pull=float(pull),
            reference=ref,
            solver_thresholds=np.array([c.threshold for c in constraints], dtype=float),
            support=support,
            trust_region=trust_region,
            trust_applied=applied,
        )

    # ---- exact evaluation on the draws (many mixtures at once) ----------------------------------

    def per_domain(self, mixtures: np.ndarray) -> np.ndarray:
        """Per-draw losses ``(sample, mixture, domain)``."""
        return self.draws.losses(np.atleast_2d(mixtures))

    def _batches(self, mixtures: np.ndarray) -> list[np.ndarray]:
        cells = max(1, self.draws.n_draws * len(self.draws.domains))
        size = max(1, BATCH_CELLS // cells)
        mixtures = np.atleast_2d(mixtures)
        return [mixtures[i : i + size] for i in range(0, len(mixtures), size)]

    def objective_many(self, mixtures: np.ndarray) -> np.ndarray:
        """Exact objective (risk of the target over the draws, plus pull) of each mixture row."""
        out = []
        for batch in self._batches(mixtures):
            out.append(risk_values(self.target(self.per_domain(batch)), self.risk, self.level))
        value = np.concatenate(out)
        if self.pull > 0:
            value = value + self.pull * ((np.atleast_2d(mixtures) - self.prior_mixture) ** 2).sum(axis=1)
        return value

    def constraint_probabilities(self, mixtures: np.ndarray) -> np.ndarray:
        """``P(L_i(r) <= threshold)`` on the draws, shape ``(mixture, constraint)``."""
        mixtures = np.atleast_2d(mixtures)
        if not self.loss_constraints:
            return np.zeros((len(mixtures), 0))
        out = []
        for batch in self._batches(mixtures):
            losses = self.per_domain(batch)
            cols = [
                (losses[:, :, self.draws.domains.index(c.domain)] <= c.threshold).mean(axis=0)
                for c in self.loss_constraints
            ]
            out.append(np.stack(cols, axis=-1))
        return np.concatenate(out)

    def feasible_many(self, mixtures: np.ndarray) -> np.ndarray:
        """Whether each mixture satisfies the box and (exactly, on the draws) every loss constraint."""
        mixtures = np.atleast_2d(mixtures)
        ok = self.box.contains(mixtures)
        if self.loss_constraints:
            required = np.array([c.prob for c in self.loss_constraints])
            ok &= np.all(self.constraint_probabilities(mixtures) >= required - 1e-12, axis=1)
        return ok

    # ---- smooth pieces for the gradient-based solver (one mixture) ------------------------------

    def objective_and_grad(self, r: np.ndarray) -> tuple[float, np.ndarray]:
        """Objective and its gradient with respect to the mixture ``r``."""
        per_domain, jacobian = self.draws.value_and_jacobian(r)  # (S, D), (S, D, M)
        values = self.target(per_domain)
        grads = np.einsum("sd,sdm->sm", self.target.gradient(per_domain), jacobian)
        value, grad = risk_value_and_grad(values, grads, self.risk, self.level)
        if self.pull > 0:
            value += self.pull * float(((r - self.prior_mixture) ** 2).sum())
            grad = grad + 2 * self.pull * (r - self.prior_mixture)
        return value, grad

    def smooth_constraints(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``threshold - smoothed required quantile`` per loss constraint (>= 0 is feasible), and its jacobian."""
        per_domain, jacobian = self.draws.value_and_jacobian(r)
        n = per_domain.shape[0]
        values, rows = [], []
        for c, threshold in zip(self.loss_constraints, self.solver_thresholds, strict=True):
            i = self.draws.domains.index(c.domain)
            quantile, weights = smoothed_order_statistic(per_domain[:, i], required_rank(n, c.prob))
            values.append(threshold - quantile)
            rows.append(-(weights[:, None] * jacobian[:, i, :]).sum(axis=0))
        return np.array(values), np.array(rows).reshape(len(values), len(r))

    def with_thresholds(self, thresholds: np.ndarray) -> Problem:
        """A copy whose solver uses tightened thresholds (the exact check keeps the user's)."""
        return replace(self, solver_thresholds=np.asarray(thresholds, dtype=float))

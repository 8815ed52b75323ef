"""Gradient-based solver over the posterior draws (SLSQP, analytic gradients, several starts).

The simplex and the box limits are handled exactly by SLSQP (one equality, bounds); loss
constraints enter as smoothed quantile constraints and are then checked exactly on the draws. When
the exact check fails, the solver's thresholds are tightened by the shortfall and it runs again.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from bayesmix.errors import InputError
from bayesmix.inference import _arviz
from bayesmix.inference.engine import one_blas_thread
from bayesmix.optimise.constraints import LossConstraint
from bayesmix.optimise.problem import Problem, required_rank
from bayesmix.optimise.report import OptimisationResult, summarise
from bayesmix.optimise.support import DEFAULT_TRUST_MARGIN
from bayesmix.optimise.targets import Target

#: rounds of threshold tightening when a solution misses a loss constraint on the exact check
TIGHTEN_ROUNDS = 4


def _starts(problem: Problem, n_starts: int, seed: int) -> list[np.ndarray]:
    """Feasible (box) starting points: reference, prior, box centre, then seeded Dirichlet draws."""
    box = problem.box
    m = len(box.domains)
    points = [problem.reference]
    if problem.prior_mixture is not None:
        points.append(problem.prior_mixture)
    points.append(np.full(m, 1.0 / m))
    rng = np.random.default_rng(seed)
    while len(points) < max(n_starts, 1):
        points.append(rng.dirichlet(np.full(m, 0.5)))
    return [box.project(p) for p in points[: max(n_starts, 1)]]


def _slsqp(problem: Problem, start: np.ndarray, maxiter: int) -> np.ndarray:
    """One SLSQP run from ``start`` over the free shares; returns a mixture projected onto the box."""
    box = problem.box
    free = box.free
    if free.size == 0:
        return start
    base = start.copy()

    def full(x: np.ndarray) -> np.ndarray:
        r = base.copy()
        r[free] = x
        return r

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = problem.objective_and_grad(full(x))
        return value, grad[free]

    pinned = float(np.delete(start, free).sum())
    constraints: list[dict[str, Any]] = [
        {"type": "eq", "fun": lambda x: np.array([x.sum() + pinned - 1.0]), "jac": lambda x: np.ones((1, x.size))}
    ]
    if problem.loss_constraints:
        constraints.append(
            {
                "type": "ineq",
                "fun": lambda x: problem.smooth_constraints(full(x))[0],
                "jac": lambda x: problem.smooth_constraints(full(x))[1][:, free],
            }
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = minimize(
            fun,
            start[free],
            jac=True,
            method="SLSQP",
            bounds=list(zip(box.lower[free], box.upper[free], strict=True)),
            constraints=constraints,
            options={"maxiter": maxiter, "ftol": 1e-12},
        )
    return box.project(full(np.asarray(out.x, dtype=float)))


def _quantile_at(problem: Problem, mixture: np.ndarray) -> np.ndarray:
    """The exact order statistic each loss constraint needs ``<= threshold``, at ``mixture``."""
    losses = problem.per_domain(mixture)[:, 0, :]
    n = losses.shape[0]
    out = []
    for c in problem.loss_constraints:
        column = np.sort(losses[:, problem.draws.domains.index(c.domain)])
        out.append(column[required_rank(n, c.prob)])
    return np.array(out)


def _lowest_quantile(problem: Problem, constraint: LossConstraint, maxiter: int) -> float:
    """The lowest value over the box of the order statistic ``constraint`` needs (the domain alone)."""
    n = problem.draws.n_draws
    rank = required_rank(n, constraint.prob)
    domain = problem.draws.domains.index(constraint.domain)
    alone = Problem(
        draws=problem.draws,
        target=Target(constraint.domain, weights=np.eye(len(problem.draws.domains))[domain]),
        box=problem.box,
        risk="quantile" if n > 1 else "mean",
        level=rank / (n - 1) if n > 1 else 0.5,
        reference=problem.reference,
    )
    found = [_slsqp(alone, s, maxiter) for s in _starts(alone, 4, 0)]
    return min(float(np.sort(alone.per_domain(r)[:, 0, domain])[rank]) for r in found)


def _explain_infeasible(problem: Problem, candidates: list[np.ndarray], maxiter: int) -> InputError:
    """An error naming the loss constraints no candidate met, with the best each can do alone."""
    best = min(candidates, key=lambda r: float(problem.objective_many(r)[0]))
    achieved = problem.constraint_probabilities(best)[0]
    parts = []
    for j, c in enumerate(problem.loss_constraints):
        if achieved[j] >= c.prob - 1e-12:
            continue
        lowest = _lowest_quantile(problem, c, maxiter)
        alone = "reachable alone" if lowest <= c.threshold else f"unreachable even alone (lowest {lowest:.4g})"
        parts.append(f"{c.describe()}: achieved {achieved[j]:.3f} at the best mixture, {alone}")
    return InputError(
        "loss_constraints",
        "infeasible: no mixture within the limits meets " + "; ".join(parts or ["the loss constraints jointly"]),
        "raise a threshold, lower a probability, or relax the mixture limits",
    )


def solve(
    problem: Problem, *, n_starts: int = 8, seed: int = 0, maxiter: int = 300, prob: float = 0.9
) -> OptimisationResult:
    """Minimise the problem's objective over the constrained simplex from several starts.

    Parameters
    ----------
    problem
        A :class:`~bayesmix.optimise.problem.Problem`.
    n_starts
        Number of SLSQP starts (the reference, the prior if any, the centre, then Dirichlet draws).
    seed
        Seed of the random starts: the same seed gives the same answer.
    maxiter
        SLSQP iterations per start.
    prob
        Probability of the reported intervals.

    Raises
    ------
    InputError
        If no mixture meets the loss constraints (the message names them).
    """
    with one_blas_thread():
        return _solve(problem, n_starts=n_starts, seed=seed, maxiter=maxiter, prob=prob)


def _solve(problem: Problem, *, n_starts: int, seed: int, maxiter: int, prob: float) -> OptimisationResult:
    start_time = time.perf_counter()
    starts = _starts(problem, n_starts, seed)
    thresholds = np.array([c.threshold for c in problem.loss_constraints], dtype=float)
    rows: list[dict[str, Any]] = []
    candidates: list[np.ndarray] = []
    chosen = None
    for round_ in range(TIGHTEN_ROUNDS if problem.loss_constraints else 1):
        current = problem.with_thresholds(thresholds)
        found = [_slsqp(current, s, maxiter) for s in starts]
        candidates += found
        values = problem.objective_many(np.vstack(found))
        feasible = problem.feasible_many(np.vstack(found))
        rows += [
            {"round": round_, "start": i, "objective": float(v), "feasible": bool(f)}
            for i, (v, f) in enumerate(zip(values, feasible, strict=True))
        ]
        if feasible.any():
            chosen = found[int(np.argmin(np.where(feasible, values, np.inf)))]
            break
        best = found[int(np.argmin(values))]
        shortfall = np.maximum(_quantile_at(problem, best) - np.array([c.threshold for c in problem.loss_constraints]), 0)
        thresholds = thresholds - shortfall - 1e-6 * (1 + np.abs(thresholds))
    if chosen is None:
        raise _explain_infeasible(problem, candidates, maxiter)
    return summarise(
        problem, chosen, prob=prob, starts=pd.DataFrame(rows), seconds=time.perf_counter() - start_time
    )


def optimise(
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
    n_starts: int = 8,
    prob: float = 0.9,
    seed: int = 0,
) -> OptimisationResult:
    """The training mixture that minimises the posterior expected (or risk-adjusted) target loss.

    Sample-average approximation: the posterior is represented by at most ``max_draws`` draws
    (chosen under ``seed``); the law's expected loss (no run noise) is evaluated on each, with
    analytic mixture gradients for the built-in laws, and SLSQP minimises the objective over the
    simplex from ``n_starts`` starts.

    Parameters
    ----------
    idata
        A fit from :func:`bayesmix.fit` (NUTS, MAP or paper protocol; a point fit has one draw).
    target
        A fitted domain (an :class:`~bayesmix.laws.ImplicitMixingLaw` fit's modelled column, e.g.
        ``"total"``, is one), ``"mean"`` (equal-weight mean of the domains), a mapping
        ``domain -> share`` (explicit composition of the validation set), or a vectorised function
        ``f(losses (..., domain)) -> (...)`` of the per-domain losses.
    risk, level
        ``"mean"`` (posterior expected loss), ``"quantile"`` (the ``level`` posterior quantile) or
        ``"cvar"`` (mean of the worst ``1 - level`` of the draws).
    bounds, fixed, exclude
        Per-domain ``(lower, upper)`` limits, pinned shares, and domains with share 0.
    tokens, max_epochs, target_tokens
        Token availability: ``tokens`` (unique tokens per training domain), the planned run's
        ``target_tokens`` and the hard cap ``r_j * target_tokens <= max_epochs_j * tokens_j``.
        ``max_epochs=None`` (default) is 1 epoch for laws that do not model repetition, and no
        cap for a repetition-aware fit (:class:`~bayesmix.laws.RepetitionMixingLaw`), whose
        loss pays for repetition smoothly: there ``target_tokens`` is the run's ``D`` (required)
        and ``tokens`` its ``U_j`` (replacing the law's ``available_tokens`` for the domains
        named); a number or mapping still caps the epochs, for both kinds of law.
    tokens_sd, epochs_prob
        Token counts known only roughly: the relative uncertainty (sd of the log) of each
        domain's ``tokens``, one number or ``domain -> sd``; the epoch cap then holds with
        probability ``epochs_prob`` (a chance constraint, see
        :func:`~bayesmix.optimise.constraints.build_box`). It tightens a cap, so with a
        repetition-aware fit give ``max_epochs`` too.
    prior_mixture, pull
        Adds ``pull * ||r - prior_mixture||^2`` (loss units) to the objective: a pull toward a
        mixture you trust (e.g. the natural token distribution).
    loss_constraints
        :class:`~bayesmix.optimise.LossConstraint` items ``P(L_i(r) <= threshold) >= prob``:
        smoothed for the solver, then checked exactly on the draws.
    reference
        The mixture to compare against; default the fit's ``reference_mixture`` (mean mixture
        of its runs).
    trust_region
        Keep ``r*`` inside the runs' support: each share within the range of shares the fit's
        runs cover, widened by this margin (shares) on each side; default ``0.0`` (the runs'
        range). ``None`` turns it off. Limits you set yourself win where they disagree with it.
        Either way the result's ``support`` says how far ``r*`` lies from the runs (see
        :mod:`bayesmix.optimise.support`).
    max_draws, n_starts, seed
        Draws used, solver starts, and the seed of both.
    prob
        Probability of the reported intervals.

    Returns
    -------
    OptimisationResult
        The mixture, per-domain and target losses with intervals at it and at the reference,
        ``P(target(r*) < target(r_ref))`` from the same draws, and ``support`` (how far ``r*``
        lies from the runs; ``result.extrapolation`` is true beyond them).

    Raises
    ------
    InputError
        Bad arguments, or constraints no mixture satisfies (naming the binding ones).
    """
    _check_arguments(
        bounds=bounds, fixed=fixed, exclude=exclude, tokens=tokens, loss_constraints=loss_constraints,
        max_draws=max_draws, n_starts=n_starts, seed=seed,
    )
    problem = Problem.from_idata(
        idata,
        target,
        risk=risk,
        level=level,
        bounds=bounds,
        fixed=fixed,
        exclude=exclude,
        tokens=tokens,
        max_epochs=max_epochs,
        target_tokens=target_tokens,
        tokens_sd=tokens_sd,
        epochs_prob=epochs_prob,
        prior_mixture=prior_mixture,
        pull=pull,
        loss_constraints=loss_constraints,
        reference=reference,
        trust_region=trust_region,
        max_draws=max_draws,
        seed=seed,
    )
    result = solve(problem, n_starts=n_starts, seed=seed, prob=prob)
    stored = idata.posterior.attrs.get("bayesmix_health")
    if stored is not None:  # the fit's sampler health travels with every answer drawn from it
        from bayesmix.inference.diagnostics import SamplerHealth

        result.health = SamplerHealth.from_json(stored)
    return result


def _check_arguments(
    *,
    bounds: Any,
    fixed: Any,
    exclude: Any,
    tokens: Any,
    loss_constraints: Any,
    max_draws: Any,
    n_starts: Any,
    seed: Any,
) -> None:
    """Raise :class:`InputError` on arguments of :func:`optimise` of the wrong type or range.

    Parameters
    ----------
    bounds, fixed, exclude, tokens, loss_constraints, max_draws, n_starts, seed
        The arguments of :func:`optimise` of the same names.
    """
    from bayesmix.inference.predict import check_seed

    for name, value in (("bounds", bounds), ("fixed", fixed), ("tokens", tokens)):
        if value is not None and not isinstance(value, Mapping):
            raise InputError(name, f"got a {type(value).__name__}", "give a mapping domain -> value, or None")
    if isinstance(exclude, str) or not isinstance(exclude, Sequence | set | frozenset):
        raise InputError("exclude", f"got {exclude!r}", "give a list of training-domain names, e.g. ['code']")
    if isinstance(loss_constraints, LossConstraint) or not isinstance(loss_constraints, Sequence):
        raise InputError("loss_constraints", f"got {loss_constraints!r}", "give a list of LossConstraint items")
    for item in loss_constraints:
        if not isinstance(item, LossConstraint):
            raise InputError(
                "loss_constraints", f"item {item!r} is not a LossConstraint", "build them with LossConstraint(...)"
            )
    integer = (int, np.integer)
    if max_draws is not None and (
        not isinstance(max_draws, integer) or isinstance(max_draws, bool) or max_draws < 1
    ):
        raise InputError("max_draws", f"got {max_draws!r}", "give a positive integer, or None for all draws")
    if not isinstance(n_starts, integer) or isinstance(n_starts, bool) or n_starts < 1:
        raise InputError("n_starts", f"got {n_starts!r}", "give a positive integer number of solver starts")
    check_seed(seed)

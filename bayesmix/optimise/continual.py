r"""Continual pretraining (paper section 5): the *critical proportion* of a new domain.

A model trained on an original domain is further trained on a mixture of it and a new domain.
The critical proportion is the largest share ``x`` of the new domain such that the loss on the
original domain stays at or below a threshold with a stated posterior probability:

.. math::

    x^* = \max\{x : P(L_{orig}((1 - x) r_{base} + x e_{new}) \le \text{threshold}) \ge p\}.

This is the loss constraint :class:`~bayesmix.optimise.LossConstraint` applied along the segment
from the base mixture to the new domain: the same constraint passed to
:func:`~bayesmix.optimise.optimise` (with ``fixed``/``bounds`` restricting the mixture to those two
domains) keeps any optimised mixture on the safe side. Here the segment is one-dimensional, so the
constraint is evaluated exactly on the draws on a grid and refined by bisection.

The fit must include the continual-pretraining runs (mixtures of the original and new domain
and the original domain's loss after the continued training); the law is then fitted as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesmix.errors import InputError
from bayesmix.inference import _arviz
from bayesmix.inference.engine import is_real_number as engine_number
from bayesmix.optimise.constraints import LossConstraint, check_loss_constraints
from bayesmix.optimise.draws import LawDraws
from bayesmix.optimise.problem import one_mixture


@dataclass
class CriticalProportion:
    """The largest safe share of the new domain, and the probability curve along the way.

    Attributes
    ----------
    share
        The critical proportion ``x*`` (0 when even ``x = 0`` misses the constraint: see
        ``feasible``).
    probability
        ``P(L_orig <= threshold)`` at ``x*``.
    feasible
        Whether ``x = 0`` meets the constraint at all.
    constraint
        The loss constraint used.
    curve
        ``share`` vs ``probability`` and the mean loss on the grid.
    posterior_share
        The paper's critical proportion as a posterior: the median, over posterior draws, of
        each draw's largest share whose loss on the original domain stays at or below the
        threshold (interpolated between grid points).
    interval
        Central ``level`` credible interval of that posterior.
    level
        Probability of ``interval``.
    """

    share: float
    probability: float
    feasible: bool
    constraint: LossConstraint
    curve: pd.DataFrame
    posterior_share: float = float("nan")
    interval: tuple[float, float] = (float("nan"), float("nan"))
    level: float = 0.9


def critical_proportion(
    idata: _arviz.InferenceData,
    original: str,
    new: str,
    threshold: float,
    prob: float = 0.9,
    *,
    base: Mapping[str, float] | Sequence[float] | None = None,
    loss_domain: str | None = None,
    grid: int = 201,
    max_draws: int | None = 1000,
    seed: int = 0,
    level: float = 0.9,
) -> CriticalProportion:
    """The largest share of ``new`` that keeps ``P(L_original <= threshold) >= prob``.

    Parameters
    ----------
    idata
        A fit whose training domains include ``new`` (and ``original`` unless ``base`` is given).
    original
        The original training domain (the base mixture is all of it unless ``base`` is given).
    new
        The new training domain whose share is raised.
    threshold, prob
        The loss constraint on the original domain.
    base
        The mixture continued from (default: only ``original``).
    loss_domain
        Validation domain of the constraint (default: ``original``).
    grid
        Number of grid points on ``[0, 1]`` before bisection.
    max_draws, seed
        Posterior draws used and the seed of their subset.
    level
        Probability of the credible interval of the critical share
        (:attr:`CriticalProportion.interval`).

    Returns
    -------
    CriticalProportion
        ``share`` is the largest share safe with probability ``prob`` (the decision);
        ``posterior_share`` and ``interval`` are the posterior of the critical share itself.
    """
    if not (engine_number(level) and 0 < float(level) < 1):
        raise InputError("level", f"got {level!r}", "give a probability in (0, 1), e.g. 0.9")
    draws = LawDraws.from_idata(idata, max_draws=max_draws, seed=seed)
    for name, field in ((new, "new"), (original, "original")):
        if name not in draws.train_domains and not (field == "original" and base is not None):
            raise InputError(field, f"unknown training domain {name!r}", f"use one of {list(draws.train_domains)}")
    if new == original:
        raise InputError("new", f"is the original domain {new!r}", "give the domain whose share is raised")
    if loss_domain is None and original not in draws.domains:
        raise InputError("loss_domain", f"{original!r} is not a validation domain of the fit", f"give one of {list(draws.domains)}")
    constraint = LossConstraint(loss_domain or original, float(threshold), float(prob))
    check_loss_constraints([constraint], draws.domains)
    start = one_mixture(base if base is not None else {original: 1.0}, draws.train_domains, "base")
    end = np.eye(len(draws.train_domains))[draws.train_domains.index(new)]
    column = draws.domains.index(constraint.domain)

    def probability(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        losses = draws.losses((1 - x)[:, None] * start + x[:, None] * end)[:, :, column]
        return (losses <= constraint.threshold).mean(axis=0), losses.mean(axis=0)

    xs = np.linspace(0.0, 1.0, grid)
    probs, means = probability(xs)
    curve = pd.DataFrame({"share": xs, "probability": probs, "mean_loss": means})
    per_draw = _per_draw_critical(draws.losses((1 - xs)[:, None] * start + xs[:, None] * end)[:, :, column], xs, constraint.threshold)
    posterior = {
        "posterior_share": float(np.median(per_draw)),
        "interval": tuple(float(v) for v in np.quantile(per_draw, [(1 - level) / 2, (1 + level) / 2])),
        "level": float(level),
    }
    ok = probs >= prob
    if not ok[0]:
        return CriticalProportion(0.0, float(probs[0]), False, constraint, curve, **posterior)
    # the first grid point that fails bounds the safe segment that starts at x = 0
    first_bad = int(np.argmin(ok)) if not ok.all() else len(xs)
    if first_bad == len(xs):
        return CriticalProportion(1.0, float(probs[-1]), True, constraint, curve, **posterior)
    lo, hi = xs[first_bad - 1], xs[first_bad]
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if probability(np.array([mid]))[0][0] >= prob else (lo, mid)
    return CriticalProportion(float(lo), float(probability(np.array([lo]))[0][0]), True, constraint, curve, **posterior)


def _per_draw_critical(losses: np.ndarray, xs: np.ndarray, threshold: float) -> np.ndarray:
    """Each draw's largest share (from 0) with loss <= threshold, linear between grid points.

    ``losses`` is ``(sample, grid)`` along the segment; a draw over the threshold at 0 gives 0,
    one never over it gives 1.
    """
    over = losses > threshold
    first = np.where(over.any(axis=1), over.argmax(axis=1), len(xs))
    out = np.ones(len(losses))
    for i, k in enumerate(first):
        if k == 0:
            out[i] = 0.0
        elif k < len(xs):
            a, b = losses[i, k - 1], losses[i, k]
            out[i] = xs[k - 1] + (xs[k] - xs[k - 1]) * (threshold - a) / (b - a)
    return out

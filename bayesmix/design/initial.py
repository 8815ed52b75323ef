"""Space-filling designs on the (constrained) simplex.

Candidates are drawn from Dirichlet distributions - half with full support, half on a random
subset of the free domains, so sparse mixtures are available - and moved into the optimiser's box
(bounds, fixed shares, exclusions, token caps: :class:`bayesmix.optimise.Box`) by Euclidean
projection. The design is then chosen greedily: each next point maximises its distance to the
nearest point already in the design (existing and pending runs included), times a weight.

Zero-share down-weighting (option ``zero_weight``): Ye et al. (2024) note that mixtures which
zero out a training domain behave differently from the rest (the power law in the proportions
is steepest near 0), and give them less weight in the design. Here a candidate that gives share 0
to a domain the box allows to be positive has its maximin score multiplied by ``zero_weight``
(1 = no down-weighting, 0 = never choose such mixtures).
"""

from __future__ import annotations

import numpy as np

from bayesmix.errors import InputError
from bayesmix.optimise.constraints import Box

ZERO = 1e-9


def feasible_candidates(box: Box, n: int, rng: np.random.Generator, sparse_share: float = 0.5) -> np.ndarray:
    """``n`` random mixtures inside ``box``, projected onto it.

    Dirichlet(1) draws, a ``sparse_share`` of them on a random subset of the free domains.

    Parameters
    ----------
    box
        Limits from :func:`bayesmix.optimise.build_box`.
    n
        Number of candidates.
    rng
        Random source.
    sparse_share
        Fraction of candidates supported on a random subset of domains.

    Returns
    -------
    numpy.ndarray
        ``(n, M)`` mixtures, each inside ``box``.
    """
    m = len(box.domains)
    free = box.free
    out = np.empty((n, m))
    for i in range(n):
        point = np.zeros(m)
        support = free
        if len(free) > 1 and rng.random() < sparse_share:
            size = int(rng.integers(1, len(free) + 1))
            support = rng.choice(free, size=size, replace=False)
        if len(support):
            point[support] = rng.dirichlet(np.ones(len(support)))
        out[i] = point
    return project_rows(box, out)


def project_rows(box: Box, points: np.ndarray) -> np.ndarray:
    """Euclidean projection of every row onto ``{sum r = 1, lower <= r <= upper}``.

    Vectorised bisection, as :meth:`bayesmix.optimise.Box.project` does for one point.
    """
    points = np.atleast_2d(points)
    lo = (points - box.upper).min(axis=1) - 1.0
    hi = (points - box.lower).max(axis=1) + 1.0
    for _ in range(100):
        shift = 0.5 * (lo + hi)
        above = np.clip(points - shift[:, None], box.lower, box.upper).sum(axis=1) > 1
        lo, hi = np.where(above, shift, lo), np.where(above, hi, shift)
    r = np.clip(points - 0.5 * (lo + hi)[:, None], box.lower, box.upper)
    gap = 1.0 - r.sum(axis=1, keepdims=True)  # spread the rounding error over domains with slack
    room = np.where(gap > 0, box.upper - r, r - box.lower)
    total = room.sum(axis=1, keepdims=True)
    r = r + np.where(total > 0, gap * room / np.where(total > 0, total, 1.0), 0.0)
    return np.clip(r, box.lower, box.upper)


def zeroes_free_domain(mixtures: np.ndarray, box: Box) -> np.ndarray:
    """Whether each mixture gives share 0 to a domain the box allows to be positive."""
    allowed = box.upper > ZERO
    return np.any((np.atleast_2d(mixtures) <= ZERO) & allowed, axis=1)


def maximin_select(
    candidates: np.ndarray,
    n: int,
    existing: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy weighted maximin: indices of ``n`` candidates, each farthest from those before it.

    Parameters
    ----------
    candidates
        ``(C, M)`` mixtures.
    n
        How many to pick (at most ``C``).
    existing
        ``(E, M)`` mixtures already in the design (runs done or pending), or ``None``.
    weights
        ``(C,)`` multipliers of each candidate's distance score, or ``None`` (all 1).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` distinct candidate indices in the order chosen.
    """
    c = len(candidates)
    if n > c:
        raise InputError("n", f"{n} points from {c} candidates", "ask for fewer or give more candidates")
    weights = np.ones(c) if weights is None else np.asarray(weights, dtype=float)
    nearest = np.full(c, np.inf)
    if existing is not None and len(existing):
        diff = candidates[:, None, :] - np.asarray(existing)[None, :, :]
        nearest = np.sqrt((diff**2).sum(-1)).min(axis=1)
    chosen: list[int] = []
    for _ in range(n):
        finite = np.where(np.isfinite(nearest), nearest, 10.0)  # 10 > any distance on the simplex
        value = finite * weights
        value[chosen] = -np.inf
        pick = int(np.argmax(value))
        chosen.append(pick)
        nearest = np.minimum(nearest, np.sqrt(((candidates - candidates[pick]) ** 2).sum(-1)))
    return np.asarray(chosen, dtype=int)


def space_filling(
    n: int,
    box: Box,
    rng: np.random.Generator,
    *,
    existing: np.ndarray | None = None,
    zero_weight: float = 1.0,
    n_candidates: int = 2000,
) -> np.ndarray:
    """A space-filling design of ``n`` mixtures inside ``box``.

    Parameters
    ----------
    n
        Number of mixtures.
    box
        Feasible region (:func:`bayesmix.optimise.build_box`).
    rng
        Random source (same seed, same design).
    existing
        Mixtures already run or pending, which the design keeps away from.
    zero_weight
        In ``[0, 1]``: score multiplier of mixtures that zero out an allowed domain (see the
        module docstring); 1 disables the down-weighting.
    n_candidates
        Size of the random candidate set the design is chosen from.

    Returns
    -------
    numpy.ndarray
        ``(n, M)`` mixtures inside ``box``.
    """
    if int(n) != n or n < 1:
        raise InputError("n", f"got {n!r}", "ask for at least 1 mixture")
    if not 0 <= zero_weight <= 1:
        raise InputError("zero_weight", f"got {zero_weight!r}", "give a weight in [0, 1]")
    candidates = feasible_candidates(box, max(int(n_candidates), int(n)), rng)
    weights = np.where(zeroes_free_domain(candidates, box), zero_weight, 1.0)
    return candidates[maximin_select(candidates, int(n), existing, weights)]

"""Where a designer may propose a run: candidate mixtures, duplicates and space-filling picks.

* :func:`candidates` - the mixtures an ask scores: a fixed pool, or random feasible mixtures
  plus local moves around the current recommendation;
* :func:`far_enough` - the duplicate rule: a candidate within ``min_distance`` (Euclidean) of a
  run is excluded;
* :func:`farthest` - the fallback and exploration pick: the allowed candidate farthest from every
  run and pick, optionally per unit cost;
* :func:`initial_batch` - a space-filling batch (:mod:`bayesmix.design.initial`), from the pool
  when there is one.
"""

from __future__ import annotations

import numpy as np

from bayesmix.design.initial import feasible_candidates, maximin_select, project_rows, space_filling
from bayesmix.errors import InputError
from bayesmix.optimise.constraints import Box


def candidates(
    box: Box, pool: np.ndarray | None, n_candidates: int, rng: np.random.Generator, centre: np.ndarray | None
) -> np.ndarray:
    """Candidate mixtures ``(C, M)`` inside ``box``.

    Parameters
    ----------
    box
        The limits every candidate satisfies.
    pool
        Fixed candidates; returned as they are when given.
    n_candidates
        Random feasible candidates to draw (without a pool).
    rng
        Source of the random candidates.
    centre
        The current recommendation: ``n_candidates // 4`` local moves towards random feasible
        mixtures (step 2 to 30 %) are added around it; ``None``: none.
    """
    if pool is not None:
        return pool
    cands = feasible_candidates(box, n_candidates, rng)
    if centre is not None:  # local moves around the recommendation
        k = n_candidates // 4
        step = rng.uniform(0.02, 0.3, size=(k, 1))
        local = (1 - step) * centre + step * feasible_candidates(box, k, rng)
        cands = np.vstack([cands, project_rows(box, local)])
    return cands


def far_enough(cands: np.ndarray, taken: np.ndarray, min_distance: float) -> np.ndarray:
    """Which candidates lie at least ``min_distance`` from every row of ``taken`` (all, if none)."""
    if not len(taken):
        return np.ones(len(cands), dtype=bool)
    dist = np.sqrt(((cands[:, None, :] - taken[None, :, :]) ** 2).sum(-1)).min(axis=1)
    return dist >= min_distance


def farthest(
    cands: np.ndarray,
    taken: np.ndarray,
    pair_mixture: np.ndarray,
    chosen: list[int],
    allowed: np.ndarray,
    cost: np.ndarray | None = None,
) -> int | None:
    """The allowed pair whose mixture is farthest from every run and pick (per unit cost).

    Parameters
    ----------
    cands
        Candidate mixtures ``(C, M)``.
    taken
        Mixtures of the finished and pending runs ``(n, M)``.
    pair_mixture
        The candidate mixture of each (mixture, scale) pair ``(P,)``.
    chosen
        Pairs already picked for this batch.
    allowed
        Which pairs may be picked ``(P,)``.
    cost
        Cost of each pair ``(P,)``; the distance is divided by it when given.

    Returns
    -------
    int or None
        The pair's index; ``None`` when no pair is allowed.
    """
    if not allowed.any():
        return None
    taken = np.vstack([taken, cands[pair_mixture[chosen]]])
    far = np.sqrt(((cands[:, None, :] - taken[None, :, :]) ** 2).sum(-1)).min(axis=1)[pair_mixture]
    far = far / cost if cost is not None else far
    return int(np.argmax(np.where(allowed, far, -np.inf)))


def initial_batch(
    n: int,
    box: Box,
    taken: np.ndarray,
    rng: np.random.Generator,
    *,
    pool: np.ndarray | None,
    min_distance: float,
    zero_weight: float,
) -> np.ndarray:
    """``n`` space-filling mixtures ``(n, M)`` inside ``box``, away from the ``taken`` runs.

    Without a pool, :func:`~bayesmix.design.initial.space_filling` (``zero_weight`` down-weights
    mixtures that zero out a domain); with one, a maximin selection from the unused pool
    mixtures inside ``box`` (at least ``min_distance`` from every run) after a random start.

    Raises
    ------
    InputError
        Fewer than ``n`` unused pool mixtures.
    """
    if pool is None:
        return space_filling(n, box, rng, existing=taken, zero_weight=zero_weight)
    free = pool[far_enough(pool, taken, min_distance) & box.contains(pool)]
    if len(free) < n:
        raise InputError("n", f"{n} runs but {len(free)} unused pool mixtures", "ask for fewer")
    order = rng.permutation(len(free))  # random start, then maximin
    return free[order][maximin_select(free[order], n, taken if len(taken) else None)]

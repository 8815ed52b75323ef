"""Search baselines on the same draws as the solver.

Exhaustive simplex grids (the paper's enumeration) and RegMix's recipe (many Dirichlet
mixtures, average the best ``top``).
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass
from itertools import chain, combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import comb

from bayesmix.errors import InputError
from bayesmix.inference.predict import check_seed
from bayesmix.optimise.problem import Problem

#: refuse grids (and Dirichlet searches) with more mixtures than this: they would not fit in memory or time
MAX_GRID_POINTS = 2_000_000


@dataclass
class SearchResult:
    """Best mixture a search found, its objective on the problem's draws, and the effort spent."""

    mixture: pd.Series
    objective: float
    n_evaluated: int
    n_feasible: int
    seconds: float


def simplex_grid(n_domains: int, steps: int) -> np.ndarray:
    """All mixtures with shares in ``{0, 1/steps, ..., 1}`` summing to 1, shape ``(C(steps+M-1, M-1), M)``.

    Raises
    ------
    InputError
        ``steps`` or ``n_domains`` not a positive integer, or a grid of more than
        :data:`MAX_GRID_POINTS` points (the message gives the largest ``steps`` that fits).
    """
    if not _is_count(n_domains) or n_domains < 1:
        raise InputError("n_domains", f"got {n_domains!r}", "give a positive integer")
    if not _is_count(steps) or steps < 1:
        raise InputError("steps", f"got {steps!r}", "give a positive integer (the grid is 1/steps)")
    n_domains, steps = int(n_domains), int(steps)
    if n_domains == 1:
        return np.ones((1, 1))
    size = _grid_size(n_domains, steps)
    if size is None:
        largest = _largest_steps(n_domains)
        raise InputError(
            "steps",
            f"steps={_short(steps)} gives more than {MAX_GRID_POINTS:,} grid points over {n_domains} domains "
            "(too many for memory and time)",
            f"use steps <= {largest} for {n_domains} domains, or optimise/dirichlet_search instead"
            if largest
            else f"{n_domains} domains are too many for a grid; use optimise or dirichlet_search",
        )
    flat = chain.from_iterable(combinations(range(steps + n_domains - 1), n_domains - 1))
    bars = np.fromiter(flat, dtype=np.int64, count=size * (n_domains - 1)).reshape(size, n_domains - 1)
    edges = np.hstack([np.full((size, 1), -1), bars, np.full((size, 1), steps + n_domains - 1)])
    return (np.diff(edges, axis=1) - 1) / steps


def _grid_size(n_domains: int, steps: int) -> int | None:
    """Points of the ``1/steps`` grid over ``n_domains``, or None when more than :data:`MAX_GRID_POINTS`.

    Huge requests are recognised from bounds and a log-gamma estimate, without the exact
    binomial coefficient (which for millions of steps or domains would itself take minutes).
    """
    if n_domains == 1:
        return 1
    if steps > MAX_GRID_POINTS or n_domains > MAX_GRID_POINTS:  # the grid has > steps and > n_domains points
        return None
    log_size = math.lgamma(steps + n_domains) - math.lgamma(n_domains) - math.lgamma(steps + 1)
    if log_size > math.log(MAX_GRID_POINTS) + 1.0:
        return None
    size = int(comb(steps + n_domains - 1, n_domains - 1, exact=True))
    return size if size <= MAX_GRID_POINTS else None


def _short(value: int) -> str:
    text = str(value)
    return text if len(text) <= 15 else f"{text[:3]}...({len(text)} digits)"


def _largest_steps(n_domains: int) -> int:
    """The largest ``steps`` whose grid has at most :data:`MAX_GRID_POINTS` points (0 if none)."""
    if _grid_size(n_domains, 1) is None:
        return 0
    low, high = 1, MAX_GRID_POINTS
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if _grid_size(n_domains, mid) is not None else (low, mid - 1)
    return low


def _is_count(value: Any) -> bool:
    """An integer (Python or numpy), never a bool, a float or text."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _check_problem(problem: Any) -> None:
    if not isinstance(problem, Problem):
        raise InputError(
            "problem", f"got {type(problem).__name__}", "build one with bayesmix.optimise.Problem.from_idata"
        )


def _result(problem: Problem, mixture: np.ndarray, n: int, n_ok: int, start: float) -> SearchResult:
    series = pd.Series(mixture, index=list(problem.draws.train_domains), name="share")
    value = float(problem.objective_many(mixture)[0])
    return SearchResult(series, value, n, n_ok, time.perf_counter() - start)


def grid_search(problem: Problem, steps: int) -> SearchResult:
    """Exhaustive search of the ``1/steps`` simplex grid: the best feasible grid mixture.

    Raises
    ------
    InputError
        Bad ``steps`` (see :func:`simplex_grid`), or no grid point satisfies the constraints (try
        a finer grid).
    """
    _check_problem(problem)
    start = time.perf_counter()
    grid = simplex_grid(len(problem.draws.train_domains), steps)
    feasible = problem.feasible_many(grid)
    if not feasible.any():
        raise InputError("steps", f"no point of the 1/{steps} grid meets the constraints", "use a finer grid")
    values = problem.objective_many(grid[feasible])
    best = grid[feasible][int(np.argmin(values))]
    return _result(problem, best, len(grid), int(feasible.sum()), start)


def dirichlet_search(
    problem: Problem,
    n: int = 100_000,
    top: int = 128,
    centre: np.ndarray | None = None,
    seed: int = 0,
    screen_draws: int | None = 200,
) -> SearchResult:
    """RegMix's recipe: ``n`` Dirichlet mixtures around ``centre``, average the ``top`` best.

    Mixtures are ``Dirichlet(c * M * centre)`` with ``c ~ Uniform(0.1, 5)`` per mixture (small
    ``c``: sparse mixtures; large: close to the centre, by default the problem's reference, i.e.
    the fit's mean mixture, standing in for the natural token distribution). They are ranked by
    the objective on ``screen_draws`` posterior draws (all when ``None``); the average of the best
    ``top`` feasible ones is the answer, scored on all of the problem's draws.

    Raises
    ------
    InputError
        ``n`` not an integer in ``[1, MAX_GRID_POINTS]``, ``top`` or ``screen_draws`` not a
        positive integer, ``seed`` not a non-negative integer, ``centre`` not a mixture over the
        problem's training domains, or no sampled mixture meets the constraints.
    """
    _check_problem(problem)
    if not _is_count(n) or not 1 <= n <= MAX_GRID_POINTS:
        raise InputError(
            "n", f"got {n!r}", f"give an integer from 1 to {MAX_GRID_POINTS:,} (100,000 is RegMix's recipe)"
        )
    if not _is_count(top) or top < 1:
        raise InputError("top", f"got {top!r}", "give a positive integer (RegMix averages the best 128)")
    if screen_draws is not None and (not _is_count(screen_draws) or screen_draws < 1):
        raise InputError("screen_draws", f"got {screen_draws!r}", "give a positive integer, or None for all")
    check_seed(seed)
    m = len(problem.draws.train_domains)
    if centre is None:
        centre = problem.reference if problem.reference is not None else np.full(m, 1.0 / m)
    else:
        try:
            centre = np.asarray(centre, dtype=float)
        except (TypeError, ValueError):
            centre = np.full(0, np.nan)
        if (
            centre.shape != (m,)
            or not np.isfinite(centre).all()
            or (centre < 0).any()
            or abs(centre.sum() - 1.0) > 1e-6
        ):
            raise InputError(
                "centre",
                f"got {centre!r}",
                f"give a mixture over the {m} training domains {list(problem.draws.train_domains)} (sums to 1)",
            )
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.1, 5.0, size=n)[:, None]
    alpha = np.maximum(scale * m * centre[None, :], 1e-3)
    mixtures = rng.gamma(alpha)
    mixtures /= mixtures.sum(axis=1, keepdims=True)
    mixtures = mixtures[np.all(np.isfinite(mixtures), axis=1)]
    screen = problem if screen_draws is None else _with_draws(problem, screen_draws, seed)
    feasible = screen.feasible_many(mixtures)
    if not feasible.any():
        raise InputError(
            "n", "no Dirichlet mixture meets the constraints", "sample more or relax the constraints"
        )
    kept = mixtures[feasible]
    values = screen.objective_many(kept)
    best = kept[np.argsort(values, kind="stable")[:top]].mean(axis=0)
    return _result(problem, problem.box.project(best), len(mixtures), int(feasible.sum()), start)


def _with_draws(problem: Problem, n: int, seed: int) -> Problem:
    from dataclasses import replace

    return replace(problem, draws=problem.draws.subset(n, seed))

"""Search baselines on the same draws as the solver.

Exhaustive simplex grids (the paper's enumeration) and RegMix's recipe (many Dirichlet
mixtures, average the best ``top``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.special import comb

from bayesmix.errors import InputError
from bayesmix.optimise.problem import Problem

#: refuse grids with more points than this (they would not fit in memory or time)
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
    """All mixtures with shares in ``{0, 1/steps, ..., 1}`` summing to 1, shape ``(C(steps+M-1, M-1), M)``."""
    if steps < 1 or n_domains < 1:
        raise InputError("steps", f"got steps={steps}, domains={n_domains}", "give positive integers")
    size = int(comb(steps + n_domains - 1, n_domains - 1, exact=True))
    if size > MAX_GRID_POINTS:
        raise InputError("steps", f"{size} grid points for {n_domains} domains", "use fewer steps")
    bars = np.array(list(combinations(range(steps + n_domains - 1), n_domains - 1)), dtype=int).reshape(size, -1)
    edges = np.hstack([np.full((size, 1), -1), bars, np.full((size, 1), steps + n_domains - 1)])
    return (np.diff(edges, axis=1) - 1) / steps


def _result(problem: Problem, mixture: np.ndarray, n: int, n_ok: int, start: float) -> SearchResult:
    series = pd.Series(mixture, index=list(problem.draws.train_domains), name="share")
    value = float(problem.objective_many(mixture)[0])
    return SearchResult(series, value, n, n_ok, time.perf_counter() - start)


def grid_search(problem: Problem, steps: int) -> SearchResult:
    """Exhaustive search of the ``1/steps`` simplex grid: the best feasible grid mixture.

    Raises
    ------
    InputError
        If no grid point satisfies the constraints (try a finer grid).
    """
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
    """
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    centre = problem.reference if centre is None else np.asarray(centre, dtype=float)
    m = centre.size
    scale = rng.uniform(0.1, 5.0, size=n)[:, None]
    alpha = np.maximum(scale * m * centre[None, :], 1e-3)
    mixtures = rng.gamma(alpha)
    mixtures /= mixtures.sum(axis=1, keepdims=True)
    mixtures = mixtures[np.all(np.isfinite(mixtures), axis=1)]
    screen = problem if screen_draws is None else _with_draws(problem, screen_draws, seed)
    feasible = screen.feasible_many(mixtures)
    if not feasible.any():
        raise InputError("n", "no Dirichlet mixture meets the constraints", "sample more or relax the constraints")
    kept = mixtures[feasible]
    values = screen.objective_many(kept)
    best = kept[np.argsort(values, kind="stable")[:top]].mean(axis=0)
    return _result(problem, problem.box.project(best), len(mixtures), int(feasible.sum()), start)


def _with_draws(problem: Problem, n: int, seed: int) -> Problem:
    from dataclasses import replace

    return replace(problem, draws=problem.draws.subset(n, seed))

"""Choosing the training mixture under posterior uncertainty.

``optimise(idata, target=...)`` minimises the posterior expected (or quantile / CVaR) target loss
over the simplex under box, token and probabilistic loss constraints; ``grid_search`` and
``dirichlet_search`` are the exhaustive-grid and RegMix-style baselines on the same draws;
``critical_proportion`` is the continual-pretraining use of a loss constraint;
``export_mixture`` writes the chosen mixture for a pretraining framework, with the tokens and
epochs of each domain for a token budget.
"""

from bayesmix.optimise.constraints import Box, LossConstraint, build_box
from bayesmix.optimise.continual import CriticalProportion, critical_proportion
from bayesmix.optimise.draws import LawDraws
from bayesmix.optimise.export import (
    FORMATS,
    RepetitionWarning,
    TokenPlan,
    export_mixture,
    interleave_snippet,
    mixture_dict,
    parse_tokens,
    to_json,
    to_yaml,
    token_plan,
)
from bayesmix.optimise.problem import Problem
from bayesmix.optimise.report import OptimisationResult
from bayesmix.optimise.search import SearchResult, dirichlet_search, grid_search, simplex_grid
from bayesmix.optimise.solver import optimise, solve
from bayesmix.optimise.targets import Target, resolve_target

__all__ = [
    "FORMATS",
    "Box",
    "CriticalProportion",
    "LawDraws",
    "LossConstraint",
    "OptimisationResult",
    "Problem",
    "RepetitionWarning",
    "SearchResult",
    "Target",
    "TokenPlan",
    "build_box",
    "critical_proportion",
    "dirichlet_search",
    "export_mixture",
    "grid_search",
    "interleave_snippet",
    "mixture_dict",
    "optimise",
    "parse_tokens",
    "resolve_target",
    "simplex_grid",
    "solve",
    "to_json",
    "to_yaml",
    "token_plan",
]

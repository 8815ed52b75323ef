"""Acquisition functions: pure functions of posterior draws of the target loss.

Every function takes ``draws`` of shape ``(sample, candidate)`` - the posterior (law-mean) target
loss of each candidate run under each posterior draw - and returns one score per candidate,
**higher is better** (buy the argmax). Lower loss is better throughout.

* :func:`thompson` - Thompson sampling of the optimum: the negated loss under one random draw, so
  the argmax is a draw from the posterior of the optimum's location.
* :func:`expected_improvement` - ``E[max(best - L(c), 0)]``; exactly zero where no draw improves.
* :func:`integrated_variance_reduction` - expected reduction of the posterior variance of the
  target loss, summed over candidates weighted by their posterior probability of being the
  optimum (so it buys runs that teach about the region near the optimum), under a Gaussian
  (linear, ensemble) approximation of the update.
* :func:`cost_aware` - any score divided by the run's compute ``6 N D`` (:func:`compute_cost`).

Runs at several scales (:func:`score_pairs`): a candidate is a (mixture, scale) pair and its
draws are the loss *at its own scale*, while the goal is the optimum at the target scale. IVR
handles that exactly (the variance reduced is the target-scale variance, through the ensemble's
cross-scale covariance: ``region=``). Thompson and EI score the pair's mixture at the target scale
and multiply by the posterior correlation between the pair's loss and the target-scale loss of the
same mixture (:func:`transfer_correlation`; 1 at the target scale), as in the augmented EI of
Huang et al. (2006): a proxy run is worth what it reveals about the target. Without a cost, a
proxy run therefore never scores above the same mixture at the target scale; divided by the
cost it wins when it is cheap and well correlated.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bayesmix.errors import InputError

ACQUISITIONS = ("thompson", "ei", "ivr", "random")


def _check_draws(draws: np.ndarray) -> np.ndarray:
    draws = np.asarray(draws, dtype=float)
    if draws.ndim != 2 or draws.shape[0] < 1 or draws.shape[1] < 1:
        raise InputError("draws", f"shape {draws.shape}", "give an array (sample, candidate) with both >= 1")
    if not np.all(np.isfinite(draws)):
        raise InputError("draws", "non-finite values", "give finite predicted losses")
    return draws


def optimum_probability(draws: np.ndarray) -> np.ndarray:
    """Posterior probability that each candidate has the lowest loss (share of draws where it wins)."""
    draws = _check_draws(draws)
    wins = np.bincount(np.argmin(draws, axis=1), minlength=draws.shape[1])
    return wins / draws.shape[0]


def thompson(draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thompson sampling: the negated loss of every candidate under one randomly chosen draw.

    Parameters
    ----------
    draws
        Posterior target losses ``(sample, candidate)``.
    rng
        Chooses the draw.

    Returns
    -------
    numpy.ndarray
        ``(candidate,)`` scores; their argmax is a sample of the optimum's location.
    """
    draws = _check_draws(draws)
    return -draws[int(rng.integers(draws.shape[0]))]


def expected_improvement(draws: np.ndarray, best: float) -> np.ndarray:
    """Monte-Carlo expected improvement ``mean_s max(best - draws[s, c], 0)``.

    Parameters
    ----------
    draws
        Posterior target losses ``(sample, candidate)``.
    best
        Incumbent loss to beat (e.g. the posterior-mean loss of the current recommendation).

    Returns
    -------
    numpy.ndarray
        ``(candidate,)``, non-negative; zero for a candidate that improves in no draw.
    """
    draws = _check_draws(draws)
    if not np.isfinite(best):
        raise InputError("best", f"got {best!r}", "give a finite incumbent loss")
    return np.maximum(best - draws, 0.0).mean(axis=0)


def integrated_variance_reduction(
    draws: np.ndarray,
    noise_var: float,
    weights: np.ndarray | None = None,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """Expected reduction of the weighted posterior variance if each candidate were observed once.

    With the ensemble covariance ``C`` of the draws and run noise variance ``s2``, observing
    candidate ``c`` reduces the variance at ``z`` by ``C[z, c]^2 / (C[c, c] + s2)`` (Gaussian
    update). The score is ``sum_z w_z C[z, c]^2 / (C[c, c] + s2)``.

    Parameters
    ----------
    draws
        Posterior losses of the candidates ``(sample, candidate)``; needs at least 2 samples.
    noise_var
        Variance of one run's observed loss about the law (``sigma^2``), ``>= 0``.
    weights
        ``(z,)`` non-negative weights of the region of interest; default the posterior
        probability of being the optimum (:func:`optimum_probability` of ``region``), i.e.
        variance near the optimum.
    region
        ``(sample, z)`` draws (same samples) of the quantities whose variance counts, e.g. the
        target-scale losses when the candidates are runs at other scales; default ``draws``.

    Returns
    -------
    numpy.ndarray
        ``(candidate,)``, non-negative.
    """
    draws = _check_draws(draws)
    if draws.shape[0] < 2:
        raise InputError("draws", "one sample has no variance", "give at least 2 posterior draws")
    if not (np.isfinite(noise_var) and noise_var >= 0):
        raise InputError("noise_var", f"got {noise_var!r}", "give a variance >= 0")
    region = draws if region is None else _check_draws(region)
    if region.shape[0] != draws.shape[0]:
        raise InputError("region", f"{region.shape[0]} samples, draws have {draws.shape[0]}", "give the same draws")
    weights = optimum_probability(region) if weights is None else np.asarray(weights, dtype=float)
    if weights.shape != (region.shape[1],) or np.any(weights < 0):
        raise InputError("weights", f"shape {weights.shape}", "give one non-negative weight per region point")
    centred = draws - draws.mean(axis=0)
    n = draws.shape[0] - 1
    keep = np.flatnonzero(weights > 0)
    region_centred = (region - region.mean(axis=0))[:, keep]
    cov = region_centred.T @ centred / n  # (kept z, candidate)
    var = (centred**2).sum(axis=0) / n
    return (weights[keep, None] * cov**2).sum(axis=0) / (var + noise_var + 1e-300)


def transfer_correlation(draws: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Posterior correlation of every candidate's loss with the target-scale loss of its mixture.

    Parameters
    ----------
    draws
        ``(sample, candidate)`` losses at the candidates' own scales.
    target
        ``(sample, candidate)`` target-scale losses of the same mixtures.

    Returns
    -------
    numpy.ndarray
        ``(candidate,)`` in ``[0, 1]``: negative correlations count as 0; 1 where the two columns
        are identical (a run at the target scale), 0 where either has no spread otherwise.
    """
    draws, target = _check_draws(draws), _check_draws(target)
    if draws.shape != target.shape:
        raise InputError("target", f"shape {target.shape} != draws {draws.shape}", "give matching draws")
    a, b = draws - draws.mean(axis=0), target - target.mean(axis=0)
    denom = np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))
    rho = np.where(denom > 0, (a * b).sum(axis=0) / np.where(denom > 0, denom, 1.0), 0.0)
    rho = np.where(np.all(draws == target, axis=0), 1.0, rho)
    return np.clip(rho, 0.0, 1.0)


def compute_cost(n_params: float | np.ndarray, tokens: float | np.ndarray) -> np.ndarray:
    """Training compute of a run, ``6 N D`` FLOPs (``N`` non-embedding parameters, ``D`` tokens)."""
    n_params, tokens = np.asarray(n_params, dtype=float), np.asarray(tokens, dtype=float)
    if np.any(~np.isfinite(n_params) | (n_params <= 0)) or np.any(~np.isfinite(tokens) | (tokens <= 0)):
        raise InputError("n_params, tokens", "non-positive or non-finite", "give positive sizes")
    return 6.0 * n_params * tokens


def cost_aware(scores: np.ndarray, cost: float | np.ndarray) -> np.ndarray:
    """Score per unit of compute: ``scores / cost`` (``cost`` from :func:`compute_cost`)."""
    cost = np.asarray(cost, dtype=float)
    if np.any(~np.isfinite(cost) | (cost <= 0)):
        raise InputError("cost", "non-positive or non-finite", "give positive compute costs")
    return np.asarray(scores, dtype=float) / cost


def score(
    name: str,
    draws: np.ndarray,
    *,
    rng: np.random.Generator,
    best: float,
    noise_var: float,
    cost: np.ndarray | None = None,
) -> np.ndarray:
    """Evaluate the acquisition ``name`` (one of :data:`ACQUISITIONS`), optionally per unit cost."""
    table: dict[str, Callable[[], np.ndarray]] = {
        "thompson": lambda: thompson(draws, rng),
        "ei": lambda: expected_improvement(draws, best),
        "ivr": lambda: integrated_variance_reduction(draws, noise_var),
        "random": lambda: rng.random(np.shape(draws)[1]),
    }
    if name not in table:
        raise InputError("acquisition", f"unknown acquisition {name!r}", f"use one of {ACQUISITIONS}")
    values = table[name]()
    if cost is None:
        return values
    if name == "thompson":  # a sampled loss is not a gain: rank by the gain over the draw's worst
        values = values - values.min()
    return cost_aware(values, cost)


def score_pairs(
    name: str,
    draws: np.ndarray,
    target: np.ndarray,
    mixture_of: np.ndarray,
    *,
    rng: np.random.Generator,
    best: float,
    noise_var: float,
    cost: np.ndarray | None = None,
) -> np.ndarray:
    """Acquisition of (mixture, scale) candidate pairs for the target-scale optimum.

    Parameters
    ----------
    name
        One of :data:`ACQUISITIONS`.
    draws
        ``(sample, pair)`` losses of every pair at its own scale.
    target
        ``(sample, C)`` target-scale losses of the candidate mixtures.
    mixture_of
        ``(pair,)`` column of ``target`` holding each pair's mixture.
    rng, best, noise_var
        As in :func:`score` (``best`` is a target-scale loss).
    cost
        ``(pair,)`` compute of each pair (:func:`compute_cost`), or ``None`` (no division).

    Returns
    -------
    numpy.ndarray
        ``(pair,)`` scores, higher is better (see the module docstring).
    """
    draws, target = _check_draws(draws), _check_draws(target)
    mixture_of = np.asarray(mixture_of, dtype=int)
    if mixture_of.shape != (draws.shape[1],) or mixture_of.min() < 0 or mixture_of.max() >= target.shape[1]:
        raise InputError("mixture_of", f"shape {mixture_of.shape}", "give one target column per pair")
    if name == "ivr":
        values = integrated_variance_reduction(draws, noise_var, region=target)
    elif name == "random":
        values = rng.random(draws.shape[1])
    elif name in ("thompson", "ei"):
        if name == "thompson":
            gain = thompson(target, rng)
            gain = gain - gain.min()  # the gain over the draw's worst mixture, >= 0
        else:
            gain = expected_improvement(target, best)
        values = gain[mixture_of] * transfer_correlation(draws, target[:, mixture_of])
    else:
        raise InputError("acquisition", f"unknown acquisition {name!r}", f"use one of {ACQUISITIONS}")
    return values if cost is None else cost_aware(values, cost)

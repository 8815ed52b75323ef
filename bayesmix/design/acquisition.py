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
* :func:`~bayesmix.design.knowledge_gradient.knowledge_gradient` (``"kg"``) - the expected
  reduction of the loss of the mixture the team would choose (the lowest posterior mean) from one
  more run: the value of a run for the decision, batch-aware through the pending runs' fantasies.
* :func:`cost_aware` - any score divided by the run's compute ``6 N D`` (:func:`compute_cost`).
* :func:`region_variance_batch` - a batch of runs, each revealing several losses (one per
  validation domain), chosen greedily to reduce the posterior variance of the predicted losses
  over a target region (e.g. given target mixtures at every model size), each pick conditioning
  the ensemble covariance before the next (Gaussian update), optionally a fixed number per group
  (e.g. per model size).

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

from bayesmix.design.knowledge_gradient import knowledge_gradient
from bayesmix.errors import InputError

ACQUISITIONS = ("thompson", "ei", "ivr", "kg", "random")


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


def region_variance_batch(
    draws: np.ndarray,
    region: np.ndarray,
    noise_var: float | np.ndarray,
    counts: np.ndarray | list[int],
    groups: np.ndarray | None = None,
    exclude: np.ndarray | list[int] | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy batch that most reduces the weighted posterior variance of ``region``.

    Candidate ``c`` reveals ``K`` outputs (e.g. the losses of ``K`` validation domains) with noise
    variances ``N_c``. With ``C`` the covariance of the draws of all candidate outputs and region
    values, observing ``c`` reduces the weighted region variance by
    ``tr(M_c^-1 C[c, z] W C[z, c])``, ``M_c = C[c, c] + diag(N_c)``. The best candidate is taken,
    the covariance is conditioned on its (not yet known) outcome,
    ``C <- C - C[:, c] M_c^-1 C[c, :]``, and the next is chosen, so a batch does not buy the same
    information twice.

    Parameters
    ----------
    draws
        ``(sample, candidate, K)`` posterior draws of the outputs each candidate run would reveal
        (the law's mean, not the noisy observation); at least 2 samples.
    region
        ``(sample, Z)`` draws (same samples) of the quantities whose variance counts, e.g. the
        predicted losses at the target mixtures.
    noise_var
        Noise variance of one observed output: a number, ``(K,)`` or ``(candidate, K)``; ``>= 0``.
    counts
        How many candidates to choose from each group (one group when ``groups`` is ``None``).
    groups
        ``(candidate,)`` group index in ``[0, len(counts))`` of every candidate, e.g. its model
        size; ``None``: one group. Groups take turns (round robin) until each has its count.
    exclude
        Candidate indices never chosen (runs already done or pending).
    weights
        ``(Z,)`` non-negative weights of the region values (default 1 each).

    Returns
    -------
    numpy.ndarray
        The chosen candidate indices, in the order chosen.

    Raises
    ------
    InputError
        Shapes that do not match, fewer than 2 samples, non-finite draws, negative noise or
        weights, or a group with fewer free candidates than its count.
    """
    draws = np.asarray(draws, dtype=float)
    region = _check_draws(region)
    if draws.ndim != 3 or draws.shape[0] < 2 or not np.all(np.isfinite(draws)):
        raise InputError("draws", f"shape {draws.shape}", "give finite draws (sample >= 2, candidate, output)")
    s, c, k = draws.shape
    if region.shape[0] != s:
        raise InputError("region", f"{region.shape[0]} samples, draws have {s}", "give the same draws")
    noise = np.broadcast_to(np.asarray(noise_var, dtype=float), (c, k)) if np.ndim(noise_var) < 2 else np.asarray(
        noise_var, dtype=float
    )
    if noise.shape != (c, k) or not np.all(np.isfinite(noise)) or np.any(noise < 0):
        raise InputError("noise_var", f"shape {np.shape(noise_var)}", "give variances >= 0: a number, (K,) or (C, K)")
    z = region.shape[1]
    weights = np.ones(z) if weights is None else np.asarray(weights, dtype=float)
    if weights.shape != (z,) or np.any(weights < 0):
        raise InputError("weights", f"shape {weights.shape}", "give one non-negative weight per region value")
    counts = np.asarray(counts, dtype=int)
    groups = np.zeros(c, dtype=int) if groups is None else np.asarray(groups, dtype=int)
    if groups.shape != (c,) or groups.min() < 0 or groups.max() >= len(counts) or np.any(counts < 0):
        raise InputError("groups", f"shape {groups.shape}", f"give one index in [0, {len(counts)}) per candidate")
    free = np.ones(c, dtype=bool)
    if exclude is not None:
        free[np.asarray(exclude, dtype=int)] = False
    for g, n in enumerate(counts):
        if np.sum(free & (groups == g)) < n:
            raise InputError("counts", f"group {g} needs {n} of {np.sum(free & (groups == g))} free candidates",
                             "ask for fewer runs")
    values = np.concatenate([draws.reshape(s, c * k), region], axis=1)
    centred = values - values.mean(axis=0)
    cov = centred.T @ centred / (s - 1)
    outputs = np.arange(c * k).reshape(c, k)
    target = np.arange(c * k, c * k + z)
    chosen: list[int] = []
    left = counts.copy()
    while left.sum() > 0:
        for g in range(len(counts)):
            if left[g] == 0:
                continue
            options = np.flatnonzero(free & (groups == g))
            block = cov[outputs[options][:, :, None], outputs[options][:, None, :]]  # (n, K, K)
            m = block + noise[options][:, :, None] * np.eye(k) + 1e-12 * np.eye(k)
            a = cov[outputs[options]][:, :, target]  # (n, K, Z)
            gain = np.einsum("nkz,z,nlz->nkl", a, weights, a)
            score = np.trace(np.linalg.solve(m, gain), axis1=1, axis2=2)
            pick = int(options[int(np.argmax(score))])
            rows = outputs[pick]
            m_pick = cov[np.ix_(rows, rows)] + np.diag(noise[pick]) + 1e-12 * np.eye(k)
            cov = cov - cov[:, rows] @ np.linalg.solve(m_pick, cov[rows, :])
            chosen.append(pick)
            free[pick] = False
            left[g] -= 1
    return np.asarray(chosen, dtype=int)


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
        "kg": lambda: knowledge_gradient(draws, noise_var),
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
    elif name == "kg":  # the target-scale decision, informed by a run at its own scale
        values = knowledge_gradient(target, noise_var, observed=draws)
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

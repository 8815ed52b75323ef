"""Fantasy updates of posterior draws for pending runs (kriging believer on an ensemble).

A pending run has no loss yet. To choose the next point of a batch as if it were already known,
the draws are conditioned on a *fantasy* observation at the pending candidate with the ensemble
Kalman update (perturbed observations): the variance at the pending point and at correlated
points shrinks, so acquisitions stop preferring the same place, while the posterior mean stays
where it was (the fantasy value is the posterior mean: "kriging believer").
"""

from __future__ import annotations

import numpy as np


def condition_on(
    draws: np.ndarray,
    index: int,
    noise_var: float,
    rng: np.random.Generator,
    value: float | None = None,
) -> np.ndarray:
    """Draws conditioned on observing candidate ``index`` with noise variance ``noise_var``.

    Parameters
    ----------
    draws
        ``(sample, candidate)`` posterior target losses.
    index
        The candidate observed (a pending run).
    noise_var
        Run-noise variance of that observation (``>= 0``; a small floor is added).
    rng
        Draws the perturbation of each ensemble member's observation.
    value
        The observed (or fantasised) loss; default the posterior mean at ``index``.

    Returns
    -------
    numpy.ndarray
        Updated draws, same shape.
    """
    draws = np.asarray(draws, dtype=float)
    column = draws[:, index]
    n = draws.shape[0]
    if n < 2:
        return draws.copy()
    value = float(column.mean()) if value is None else float(value)
    centred = draws - draws.mean(axis=0)
    var = float(centred[:, index] @ centred[:, index]) / (n - 1)
    noise_var = max(float(noise_var), 1e-12)
    gain = (centred.T @ centred[:, index]) / (n - 1) / (var + noise_var)  # (candidate,)
    perturbed = value + rng.normal(0.0, np.sqrt(noise_var), size=n)
    return draws + np.outer(perturbed - column, gain)

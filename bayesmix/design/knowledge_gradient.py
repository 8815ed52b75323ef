r"""The knowledge gradient: how much one more run lowers the loss of the mixture the team will choose.

After the runs, the team trains the candidate with the lowest posterior mean loss,
:math:`\min_j \mu_j`. Observing candidate *c* (one run, noise variance :math:`\sigma^2`) moves the
posterior means of every candidate it is correlated with. Under the posterior draws' Gaussian
approximation (the ensemble's mean :math:`\mu` and covariance :math:`\Sigma`, the same update
:func:`~bayesmix.design.fantasy.condition_on` applies to pending runs), the means after the
observation are :math:`\mu + b_c Z` with :math:`Z \sim N(0, 1)` and
:math:`b_c = \Sigma_{\cdot c} / \sqrt{\Sigma_{cc} + \sigma^2}`, so the expected reduction of the
chosen mixture's loss is

.. math::

    \mathrm{KG}(c) = \min_j \mu_j - \mathbb{E}_Z\big[\min_j (\mu_j + b_{jc} Z)\big] \ge 0

(Frazier, Powell and Dayanik 2009, "The knowledge-gradient policy for correlated normal beliefs").
It values a run by what it changes in the *decision*, not by how uncertain the run itself is: a
run far from every plausible optimum has a knowledge gradient near 0 however uncertain its loss.
The expectation over :math:`Z` is an average over equiprobable quantiles of :math:`Z`. Pending runs enter by conditioning
the draws on them first (kriging believer), so a batch is chosen greedily, each point valued
given the ones before it.
"""

from __future__ import annotations

import numpy as np

from bayesmix.errors import InputError

#: equiprobable points of the expectation over the observation (the minimum is piecewise linear
#: in Z, which a Gauss-Hermite rule integrates poorly)
QUADRATURE_POINTS = 128
#: candidates scored at once (memory: candidates x BLOCK x QUADRATURE_POINTS floats)
BLOCK = 64


def knowledge_gradient(
    draws: np.ndarray,
    noise_var: float,
    candidates: np.ndarray | None = None,
    observed: np.ndarray | None = None,
) -> np.ndarray:
    """Expected reduction of the chosen candidate's posterior mean loss from one run at each candidate.

    Parameters
    ----------
    draws
        ``(sample, candidate)`` posterior target losses (at least 2 samples): the decision is
        among these candidates.
    noise_var
        Variance of one run's observed loss around the law (``>= 0``; nats^2).
    candidates
        Indices (columns of ``observed``) to score; default all.
    observed
        ``(sample, run)`` draws of what each possible run would show, when it is not the target
        loss itself (a run at a smaller scale: it informs the target-scale decision through the
        posterior correlation); default ``draws``.

    Returns
    -------
    numpy.ndarray
        ``(len(candidates),)`` knowledge gradients, in loss units (nats/token), ``>= 0``.

    Raises
    ------
    InputError
        ``draws`` not a 2-D array with at least 2 samples, or a negative or non-finite ``noise_var``.
    """
    draws = np.asarray(draws, dtype=float)
    if draws.ndim != 2 or draws.shape[0] < 2 or not np.all(np.isfinite(draws)):
        raise InputError("draws", f"has shape {draws.shape} or non-finite values", "give finite (sample, candidate) draws, >= 2 samples")
    if not (np.isfinite(noise_var) and noise_var >= 0):
        raise InputError("noise_var", f"got {noise_var!r}", "give the run-noise variance, >= 0")
    seen = draws if observed is None else np.asarray(observed, dtype=float)
    if seen.ndim != 2 or seen.shape[0] != draws.shape[0] or not np.all(np.isfinite(seen)):
        raise InputError("observed", f"has shape {seen.shape}", f"give ({draws.shape[0]}, run) finite draws, the samples of draws")
    index = np.arange(seen.shape[1]) if candidates is None else np.asarray(candidates, dtype=int)
    n = draws.shape[0]
    mean = draws.mean(axis=0)
    centred = draws - mean
    seen_centred = seen - seen.mean(axis=0)
    from scipy.stats import norm

    z = norm.ppf((np.arange(QUADRATURE_POINTS) + 0.5) / QUADRATURE_POINTS)  # equiprobable points
    w = np.full(QUADRATURE_POINTS, 1.0 / QUADRATURE_POINTS)
    out = np.empty(len(index))
    for start in range(0, len(index), BLOCK):  # bounded memory: (candidate, block, point)
        block = index[start : start + BLOCK]
        cov = centred.T @ seen_centred[:, block] / (n - 1)  # (candidate, block)
        var = (seen_centred[:, block] ** 2).sum(axis=0) / (n - 1)
        b = cov / np.sqrt(np.maximum(var + noise_var, 1e-18))
        moved = mean[:, None, None] + b[:, :, None] * z[None, None, :]
        out[start : start + len(block)] = (moved.min(axis=0) * w).sum(axis=-1)  # E_Z min_j
    return np.maximum(mean.min() - out, 0.0)

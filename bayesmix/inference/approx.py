"""The posterior mode and the Laplace approximation, on the compiled model NUTS uses.

Both work in the sampler's unconstrained coordinates (log scales, the identified coordinates of
the laws) and use the log density *with* the transforms' Jacobians, so the mode is that of the
density the sampler explores: in hierarchical models the constrained-space mode can sit at a
spread of 0 (a funnel's neck), the unconstrained one does not.

* :func:`find_mode`: BFGS (L-BFGS above 200 parameters, then modified Newton steps when it
  stops short) on the compiled log density and gradient from several jittered starts; the best
  optimum is kept. On a warm compiled model this takes milliseconds to a few seconds.
* :func:`laplace`: a Gaussian at the mode with the inverse Hessian of the negative log density
  (central differences of the compiled gradient) as covariance, drawn in unconstrained space and
  mapped to every model variable. The importance ratios ``p / q`` of the draws give the
  Pareto-smoothed diagnostic ``k`` (Vehtari et al. 2024, "Pareto smoothed importance sampling"),
  recorded in the fit's health: below 0.7 the Gaussian matches the joint posterior. Over the
  70-300 parameters of a mixing law it is usually above that while the *predictive* intervals
  still agree with NUTS; that agreement is what ``benchmarks/speed.py`` checks, and why NUTS
  stays the default for final fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesmix.inference import _arviz
from bayesmix.inference.engine import Compiled

#: dense BFGS (inverse Hessian kept in full) up to this many parameters, L-BFGS above (dense
#: BFGS took 532 s on 1,123 parameters where L-BFGS and two Newton steps took seconds)
DENSE_BFGS_MAX_DIM = 200
#: Newton steps (finite-difference Hessian, backtracking) that polish an unconverged optimum
NEWTON_STEPS = 6
#: a mode is converged when the Newton step left is shorter than 0.1 posterior sd (decrement 0.01)
NEWTON_DECREMENT = 0.01


@dataclass(frozen=True)
class Mode:
    """The posterior mode in unconstrained coordinates.

    Attributes
    ----------
    x
        The mode, shape ``(n_dim,)``.
    logp
        The log density there (with Jacobians).
    converged
        Whether the mode is stationary (after the Newton polish when the optimiser stopped short).
    n_starts
        Starts tried.
    """

    x: np.ndarray
    logp: float
    converged: bool
    n_starts: int


def find_mode(comp: Compiled, *, seed: int = 0, n_starts: int = 4, max_iter: int = 2000) -> Mode:
    """Maximise the compiled log density from ``n_starts`` jittered starts (BFGS / L-BFGS + Newton).

    Parameters
    ----------
    comp
        The compiled model (:func:`bayesmix.inference.engine.compiled`).
    seed
        Seeds the starts: the same seed gives the same mode.
    n_starts
        Number of starts (nutpie's jittered initial points, seeds ``seed .. seed + n - 1``).
    max_iter
        Iteration limit per start.

    Raises
    ------
    FloatingPointError
        When no start reaches a finite log density.
    """
    from scipy.optimize import minimize

    def negative(x: np.ndarray) -> tuple[float, np.ndarray]:
        logp, grad = comp.logp_dlogp(x)
        if not np.isfinite(logp):
            return 1e300, np.zeros_like(x)
        return -logp, -grad

    best: tuple[float, np.ndarray, bool] | None = None
    for i in range(max(int(n_starts), 1)):
        start = comp.initial_point(int(seed) + i)
        if start.size <= DENSE_BFGS_MAX_DIM:
            result = minimize(negative, start, jac=True, method="BFGS", options={"maxiter": int(max_iter), "gtol": 1e-6})
        else:
            result = minimize(
                negative,
                start,
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": int(max_iter), "maxcor": 30, "ftol": 1e-13, "gtol": 1e-5},
            )
        # converged: a stationary point to the precision of the log density (a line search that
        # can make no further progress there counts, as it does in Stan's optimiser)
        converged = result.jac is not None and _stationary(-float(result.fun), np.asarray(result.jac))
        if np.isfinite(result.fun) and result.fun < 1e299 and (best is None or result.fun < best[0]):
            best = (float(result.fun), np.asarray(result.x, dtype=float), converged)
    if best is None:
        raise FloatingPointError("no start reached a finite log density")
    x, converged = best[1], best[2]
    if not converged:
        x, converged = newton_polish(comp, x)
    return Mode(x=x, logp=comp.logp_dlogp(x)[0], converged=converged, n_starts=int(n_starts))


def _stationary(logp: float, grad: np.ndarray) -> bool:
    return float(np.max(np.abs(grad))) < 1e-3 * max(1.0, abs(float(logp))) ** 0.5


def newton_polish(comp: Compiled, x: np.ndarray, steps: int = NEWTON_STEPS) -> tuple[np.ndarray, bool]:
    """Modified Newton steps (finite-difference Hessian, |eigenvalues|, backtracking) from a near-optimum.

    Quasi-Newton methods stop short on the flat, badly scaled optima of large hierarchical laws
    (L-BFGS 0.7 nats below the mode on a 1,123-parameter study). Converged means the Newton
    step left is shorter than a tenth of a posterior standard deviation (``g' H^-1 g < 0.01``,
    the Newton decrement), a criterion in the posterior's own units whatever the parameter count.
    """
    logp, grad = comp.logp_dlogp(x)
    for _ in range(int(steps)):
        try:
            values, vectors = np.linalg.eigh(hessian(comp, x))
        except (np.linalg.LinAlgError, FloatingPointError):
            return x, False
        # modified Newton: negative or tiny curvature is replaced by its size (a saddle's
        # direction is then climbed, not descended)
        floor = 1e-8 * max(float(np.max(np.abs(values))), 1e-300)
        step = vectors @ ((vectors.T @ grad) / np.maximum(np.abs(values), floor))
        decrement = float(grad @ step)
        if 0 <= decrement < NEWTON_DECREMENT:
            return x, True
        size = 1.0
        while size > 1e-4:
            trial = x + size * step
            trial_logp, trial_grad = comp.logp_dlogp(trial)
            if np.isfinite(trial_logp) and trial_logp >= logp:
                break
            size /= 2
        else:
            return x, False
        x, logp, grad = trial, trial_logp, trial_grad
    return x, _stationary(logp, grad)


def hessian(comp: Compiled, x: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Hessian of the negative log density at ``x`` by central differences of the gradient."""
    n = x.size
    out = np.empty((n, n))
    for i in range(n):
        h = step * max(1.0, abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        out[:, i] = -(comp.logp_dlogp(up)[1] - comp.logp_dlogp(down)[1]) / (2 * h)
    if not np.isfinite(out).all():
        raise FloatingPointError("the log density's gradient is not finite next to the mode")
    return 0.5 * (out + out.T)


@dataclass(frozen=True)
class LaplaceDraws:
    """Draws of a Laplace approximation.

    Attributes
    ----------
    posterior
        Every stored variable, arrays ``(chain, draw, ...)``.
    pareto_k
        Pareto ``k`` of the importance ratios ``p / q`` (reliable below 0.7).
    hessian_clipped
        Eigenvalues of the Hessian that were not positive and were raised (a flat or saddle
        direction at the mode: the Gaussian is then a guess in that direction).
    mode
        The mode it is centred on.
    """

    posterior: dict[str, np.ndarray]
    pareto_k: float
    hessian_clipped: int
    mode: Mode


def laplace(
    comp: Compiled,
    *,
    draws: int = 1000,
    chains: int = 4,
    seed: int = 0,
    n_starts: int = 4,
    fixed: tuple[str, ...] = (),
) -> LaplaceDraws:
    """Laplace approximation of the posterior of a compiled model.

    Parameters
    ----------
    comp
        The compiled model.
    draws, chains
        The draws are split into ``chains`` groups only to keep the posterior's usual shape
        ``(chain, draw, ...)``; they are independent.
    seed
        Seeds the mode's starts and the draws.
    n_starts
        Starts of :func:`find_mode`.
    fixed
        Names of variables (their unconstrained value variables, e.g. ``"slope_deviation_sd_log__"``)
        held at the mode: the Gaussian is the Laplace approximation *conditional* on them (an
        empirical-Bayes treatment of a hierarchy's spreads, whose posterior is far from Gaussian
        in any parameterisation).
    """
    mode = find_mode(comp, seed=seed, n_starts=n_starts)
    h = hessian(comp, mode.x)
    names, slices, _ = comp.nutpie.shape_info if hasattr(comp, "nutpie") else ((), (), ())
    held = np.zeros(mode.x.size, dtype=bool)
    for name, where in zip(names, slices, strict=False):
        if name in fixed:
            held[where] = True
    free = ~held
    values, vectors = np.linalg.eigh(h[np.ix_(free, free)])
    # directions without curvature get the variance of the flattest curved direction (not 1e8
    # times it): they are reported as a problem, and the draws stay finite
    positive = values[values > 1e-8 * max(float(np.max(np.abs(values))), 1e-300)]
    floor = float(positive.min()) if positive.size else 1.0
    clipped = int(values.size - positive.size)
    values = np.maximum(values, floor)
    # x = mode + V diag(1/sqrt(lambda)) z  has covariance H^-1 (over the free coordinates)
    scale = vectors / np.sqrt(values)[None, :]
    rng = np.random.default_rng(int(seed))
    n = int(draws) * int(chains)
    z = rng.standard_normal((n, int(free.sum())))
    xs = np.repeat(mode.x[None, :], n, axis=0)
    xs[:, free] += z @ scale.T
    log_q = -0.5 * np.sum(z**2, axis=1)
    log_p = np.array([comp.logp_dlogp(x)[0] for x in xs])
    log_ratio = log_p - log_q
    log_ratio = np.where(np.isfinite(log_ratio), log_ratio, -np.inf)
    pareto_k = _arviz.pareto_k(log_ratio)
    expanded = [comp.expand(x) for x in xs]
    posterior = {
        name: np.stack([e[name] for e in expanded]).reshape(int(chains), int(draws), *np.shape(expanded[0][name]))
        for name in expanded[0]
    }
    return LaplaceDraws(posterior=posterior, pareto_k=pareto_k, hessian_clipped=clipped, mode=mode)

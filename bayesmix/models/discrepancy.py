r"""The law's form error: a Gaussian-process discrepancy over mixture space, on the law's residuals.

Every law is a functional form; between and beyond the runs it can be wrong by a smooth amount
that the runs alone do not show. The discrepancy adds, per validation domain ``i``,

.. math::

    L_i(r) = \mathrm{law}_i(r) + \delta_i(r), \qquad
    \delta_i \sim \mathcal{GP}\big(0,\ \eta_i^2 \exp(-\lVert r - r' \rVert^2 / 2\ell^2)\big),

over the mixture proportions ``r`` (shares, Euclidean distance), conditioned on the law's
residuals at the runs (``y - E[law(X)]``, with the fit's noise ``sigma_i``). Near the runs
``delta`` follows what the law missed there; far from them its variance returns to
``eta_i^2``, so intervals widen exactly where the law's form, not the runs, decides.

**Where the scale comes from.** The runs inside a region cannot show how wrong the form is
outside it, so ``eta_i`` and ``ell`` come from region backtests
(:func:`~bayesmix.inference.calibrate_discrepancy`: the runs with the largest shares of each
training domain held out in turn), as the values with the best held-out log predictive density
(empirical Bayes over extrapolations), each amplitude raised where needed until the backtests' own
90% intervals cover 90% of their held-out losses.

**Why on the residuals (a modular, "cut" model).** The same GP inside the PyMC model, jointly
with the law, was measured to be worse: with ``eta`` learned, NUTS mixed badly (r_hat 1.08, ESS
40 on 40 runs) and the joint mode overfits (``eta`` 0.2-0.5 nats with the noise halved); with
``eta`` fixed at the backtests' value the law and the GP trade places, and on RegMix (fit below
the 75th percentile of a domain's share, predict the runs above it) the joint model's error was
1.13 nats on GitHub against 0.08 for the law plus the GP on its residuals. The residual GP is
also the model the backtests validate.

**Draws as functions.** Each posterior draw gets one GP sample path by *pathwise conditioning*
(Matheron's rule; Wilson et al. 2020, "Efficiently sampling functions from Gaussian process
posteriors"): a prior path from random Fourier features (Rahimi & Recht 2007) corrected by the
kernel regression of its misfit at the runs. The path is a deterministic, differentiable
function of ``r``: the optimiser ranks mixtures by exactly the numbers ``predict`` reports, and
two mixtures' draws are correlated as the GP says (P(beats reference) is right).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesmix.errors import InputError

#: random Fourier features of the prior paths
N_FEATURES = 512
#: seed of the Fourier frequencies (fixed: the same fit gives the same functions everywhere)
FEATURE_SEED = 20240311
#: names of the fit's stored inputs of the discrepancy (``constant_data``)
RESIDUAL_NAME = "discrepancy_residual"
NOISE_NAME = "discrepancy_noise"


@dataclass(frozen=True)
class Discrepancy:
    """Settings of the mixture-space discrepancy (see the module docstring).

    Parameters
    ----------
    lengthscale
        Kernel length scale in shares (Euclidean distance between mixtures).
    sd
        The amplitudes ``eta_i``, one per validation domain (nats).

    Notes
    -----
    ``Discrepancy()`` (both ``None``) asks :func:`bayesmix.fit` to estimate them by
    :func:`~bayesmix.inference.calibrate_discrepancy`.
    """

    lengthscale: float | None = None
    sd: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.lengthscale is not None and not (
            isinstance(self.lengthscale, int | float | np.floating)
            and np.isfinite(self.lengthscale)
            and self.lengthscale > 0
        ):
            raise InputError(
                "discrepancy", f"lengthscale {self.lengthscale!r}", "give a positive length in shares, e.g. 0.5"
            )
        if self.sd is not None:
            values = np.asarray(self.sd, dtype=float)
            if values.ndim != 1 or not np.all(np.isfinite(values)) or np.any(values <= 0):
                raise InputError("discrepancy", f"sd {self.sd!r}", "give one positive amplitude (nats) per domain")
            object.__setattr__(self, "sd", tuple(float(v) for v in values))
        if (self.lengthscale is None) != (self.sd is None):
            raise InputError(
                "discrepancy",
                "give both lengthscale and sd, or neither",
                "use Discrepancy() to estimate both from region backtests",
            )

    @property
    def complete(self) -> bool:
        """Whether the length scale and the amplitudes are set (nothing left to calibrate)."""
        return self.lengthscale is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (stored in the fit's model spec)."""
        return {"lengthscale": self.lengthscale, "sd": None if self.sd is None else list(self.sd)}

    @classmethod
    def coerce(cls, value: Any) -> Discrepancy | None:
        """``None``/``False`` -> off; ``True`` -> estimate; a dict or :class:`Discrepancy` as given."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, Discrepancy):
            return value
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"lengthscale", "sd"})
            if unknown:
                raise InputError("discrepancy", f"unknown settings {unknown}", "use lengthscale and sd")
            return cls(**value)
        raise InputError(
            "discrepancy",
            f"got {value!r}",
            "give \"auto\" (the default: estimated from region backtests where possible), True (estimated, "
            "or an error), None (the law alone), or Discrepancy(lengthscale=..., sd=...)",
        )


def median_distance(mixtures: np.ndarray) -> float:
    """Median Euclidean distance between distinct run mixtures (shares); 0.5 when there is one."""
    x = np.unique(np.round(np.asarray(mixtures, dtype=float), 9), axis=0)
    if len(x) < 2:
        return 0.5
    d = np.sqrt(np.maximum(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1), 0.0))
    return float(np.median(d[np.triu_indices(len(x), 1)]))


def kernel(a: np.ndarray, b: np.ndarray, lengthscale: float) -> np.ndarray:
    """Squared-exponential kernel (unit variance) between rows of ``a (n, M)`` and ``b (m, M)``."""
    sq = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return np.exp(-0.5 * np.maximum(sq, 0.0) / lengthscale**2)


@dataclass(frozen=True)
class ResidualGP:
    """The GP of one study's residuals: eigenbasis of the runs' kernel, and the residuals in it.

    ``C_i = eta_i^2 K + sigma_i^2 I = U diag(eta_i^2 s + sigma_i^2) U^T`` per domain, with
    ``K = U diag(s) U^T`` the runs' kernel matrix.
    """

    runs: np.ndarray  # (n, M)
    lengthscale: float
    eta: np.ndarray  # (D,)
    sigma: np.ndarray  # (D,)
    values: np.ndarray  # s (n,)
    vectors: np.ndarray  # U (n, n)
    projected: np.ndarray  # U^T residual (n, D)

    @classmethod
    def build(cls, runs: np.ndarray, residual: np.ndarray, sigma: np.ndarray, lengthscale: float, eta: np.ndarray):
        """The GP of ``residual (n, D)`` at ``runs (n, M)`` with noise ``sigma (D,)``."""
        runs = np.asarray(runs, dtype=float)
        values, vectors = eigen(runs, lengthscale)
        eta, sigma = np.asarray(eta, dtype=float), np.maximum(np.asarray(sigma, dtype=float), 1e-12)
        projected = vectors.T @ np.asarray(residual, dtype=float)
        return cls(runs, float(lengthscale), eta, sigma, values, vectors, projected)

    @property
    def inverse(self) -> np.ndarray:
        """``1 / (eta^2 s + sigma^2)``, the diagonal of ``C^-1`` in the eigenbasis: ``(n, D)``."""
        return 1.0 / (self.eta[None, :] ** 2 * self.values[:, None] + self.sigma[None, :] ** 2)

    @property
    def alpha(self) -> np.ndarray:
        """``U^T C^-1 residual`` per domain: ``(n, D)``."""
        return self.inverse * self.projected

    def cross(self, mixtures: np.ndarray) -> np.ndarray:
        """``k(r, X) U``, shape ``(q, n)``."""
        return kernel(np.atleast_2d(mixtures), self.runs, self.lengthscale) @ self.vectors

    def leave_one_out(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of ``delta`` at each run from the other runs' residuals, each ``(n, D)``.

        The closed form of a Gaussian process's leave-one-out (Rasmussen & Williams 2006, eq.
        5.12): with ``C = eta^2 K + sigma^2 I``, the residual of run ``i`` given the others has
        mean ``res_i - [C^-1 res]_i / [C^-1]_ii`` and variance ``1 / [C^-1]_ii``; less the
        noise ``sigma^2``, that variance is the discrepancy's own.
        """
        inverse = self.inverse  # (n, D), C^-1 in the eigenbasis
        diagonal = (self.vectors**2) @ inverse  # [C^-1]_ii
        solved = self.vectors @ (inverse * self.projected)  # C^-1 res
        residual = self.vectors @ self.projected
        mean = residual - solved / diagonal
        variance = np.maximum(1.0 / diagonal - self.sigma[None, :] ** 2, 0.0)
        return mean, variance

    def mean_and_variance(self, mixtures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of ``delta`` at ``mixtures``, each ``(q, D)`` (closed form)."""
        mean, variance = gp_moments(self.cross(mixtures), self.projected, self.values, self.eta[None], self.sigma)
        return mean[0], variance[0]


def eigen(runs: np.ndarray, lengthscale: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues ``s (n,)`` (clipped at 0) and eigenvectors ``U (n, n)`` of the runs' kernel matrix."""
    values, vectors = np.linalg.eigh(kernel(runs, runs, lengthscale))
    return np.maximum(values, 0.0), vectors


def gp_moments(
    cross: np.ndarray, projected: np.ndarray, values: np.ndarray, eta: np.ndarray, sigma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and variance of the residual GP for many amplitudes at once.

    Parameters
    ----------
    cross
        ``k(r, X) U`` at the new mixtures, ``(q, n)``.
    projected
        ``U^T residual``, ``(n, D)``.
    values
        Eigenvalues of the runs' kernel matrix, ``(n,)``.
    eta
        Amplitudes ``(A, D)``.
    sigma
        Noise scales ``(D,)``.

    Returns
    -------
    mean, variance
        Each ``(A, q, D)``.
    """
    eta2 = eta[:, None, :] ** 2  # (A, 1, D)
    inverse = 1.0 / (eta2 * values[None, :, None] + sigma[None, None, :] ** 2)  # (A, n, D)
    mean = eta2 * np.einsum("qn,and->aqd", cross, inverse * projected[None])
    variance = eta2 * (1.0 - eta2 * np.einsum("qn,and->aqd", cross**2, inverse))
    return mean, np.maximum(variance, 0.0)


@dataclass
class DiscrepancyDraws:
    """Posterior sample paths of the discrepancy, one per draw (pathwise conditioning).

    ``delta_s,i(r) = eta_i phi(r) w_s,i + eta_i^2 k(r, X) C_i^-1 (res_i - eta_i Phi(X) w_s,i - sigma_i e_s,i)``
    with ``phi`` the random Fourier features, ``w_s,i ~ N(0, I_F)`` and ``e_s,i ~ N(0, I_n)``.

    Attributes
    ----------
    gp
        The study's :class:`ResidualGP`.
    weights
        Prior-path weights ``(sample, domain, F)``.
    coords
        ``U^T C^-1 (res - eta Phi(X) w - sigma e)`` per draw: ``(sample, domain, n)``.
    """

    gp: ResidualGP
    weights: np.ndarray
    coords: np.ndarray

    @classmethod
    def build(cls, gp: ResidualGP, n_draws: int, seed: int) -> DiscrepancyDraws:
        """``n_draws`` sample paths of ``gp`` under ``seed``."""
        rng = np.random.default_rng([int(seed), FEATURE_SEED])
        n_domains = len(gp.eta)
        weights = rng.standard_normal((n_draws, n_domains, N_FEATURES))
        noise = rng.standard_normal((n_draws, n_domains, len(gp.runs)))  # U^T e has the law of e
        prior_at_runs = np.einsum("nf,sdf->sdn", gp.vectors.T @ _features(gp.runs, gp.lengthscale), weights)
        inverse = gp.inverse
        misfit = (inverse * gp.projected).T[None] - inverse.T[None] * (
            gp.eta[None, :, None] * prior_at_runs + gp.sigma[None, :, None] * noise
        )
        return cls(gp, weights, misfit)

    @classmethod
    def from_idata(cls, idata: Any, settings: dict[str, Any], n_draws: int, seed: int) -> DiscrepancyDraws:
        """Sample paths for a fit that stores its residuals (``fit(..., discrepancy=...)``)."""
        data = idata.constant_data
        gp = ResidualGP.build(
            np.asarray(data["mixtures"], dtype=float),
            np.asarray(data[RESIDUAL_NAME], dtype=float),
            np.asarray(data[NOISE_NAME], dtype=float),
            float(settings["lengthscale"]),
            np.asarray(settings["sd"], dtype=float),
        )
        return cls.build(gp, n_draws, seed)

    @property
    def n_draws(self) -> int:
        """Number of sample paths."""
        return int(self.weights.shape[0])

    def subset(self, pick: np.ndarray) -> DiscrepancyDraws:
        """The paths of draws ``pick`` only."""
        return DiscrepancyDraws(self.gp, self.weights[pick], self.coords[pick])

    def values(self, mixtures: np.ndarray) -> np.ndarray:
        """``delta`` at ``mixtures (q, M)`` per draw: ``(sample, q, domain)``."""
        mixtures = np.atleast_2d(np.asarray(mixtures, dtype=float))
        eta = self.gp.eta
        prior = np.einsum("qf,sdf->sqd", _features(mixtures, self.gp.lengthscale), self.weights)
        update = np.einsum("qn,sdn->sqd", self.gp.cross(mixtures), self.coords)
        return eta * prior + eta**2 * update

    def value_and_jacobian(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``delta`` at one mixture ``(sample, domain)`` and its gradient ``(sample, domain, M)``."""
        r = np.asarray(r, dtype=float)
        gp, eta = self.gp, self.gp.eta
        k = kernel(r[None, :], gp.runs, gp.lengthscale)[0]  # (n,)
        dk = -(k[:, None] * (r[None, :] - gp.runs)) / gp.lengthscale**2  # (n, M)
        cross, dcross = k @ gp.vectors, gp.vectors.T @ dk  # (n,), (n, M)
        omega, offset = _frequencies(gp.runs.shape[1], gp.lengthscale)
        phase = omega @ r + offset
        f = np.sqrt(2.0 / N_FEATURES) * np.cos(phase)
        df = -np.sqrt(2.0 / N_FEATURES) * np.sin(phase)[:, None] * omega  # (F, M)
        value = eta * np.einsum("f,sdf->sd", f, self.weights) + eta**2 * np.einsum("n,sdn->sd", cross, self.coords)
        jac = eta[:, None] * np.einsum("fk,sdf->sdk", df, self.weights) + (eta**2)[:, None] * np.einsum(
            "nk,sdn->sdk", dcross, self.coords
        )
        return value, jac


@functools.lru_cache(maxsize=32)
def _frequencies(n_dims: int, lengthscale: float) -> tuple[np.ndarray, np.ndarray]:
    """Fourier frequencies ``(F, M)`` and phases ``(F,)`` of the squared-exponential kernel.

    Cached: the optimiser asks for them at every gradient evaluation. Treat as read-only.
    """
    rng = np.random.default_rng(FEATURE_SEED)
    return rng.standard_normal((N_FEATURES, n_dims)) / lengthscale, rng.uniform(0.0, 2 * np.pi, N_FEATURES)


def _features(x: np.ndarray, lengthscale: float) -> np.ndarray:
    """Random Fourier features ``(q, F)``: ``E[phi(a) . phi(b)] = k(a, b)``."""
    omega, offset = _frequencies(x.shape[1], lengthscale)
    return np.sqrt(2.0 / N_FEATURES) * np.cos(x @ omega.T + offset)

r"""Loss curves simulated from known nested scaling laws: ground truth for the nested models' tests.

The truth is

.. math::

    L_i(r, N, D) = E_i(r) + A_i N^{-\alpha_i} + B_i D^{-\beta_i} + u_{ri} + \varepsilon,

where ``E_i(r)`` is a per-domain mixing law of the mixture (the paper's M4, from
:func:`bayesmix.data.simulate.random_law`), so the target-scale loss is exactly an M4 law in
the mixture; ``u_ri`` is a per-run offset (shared by all checkpoints of a run) and ``epsilon``
independent checkpoint noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesmix.data.simulate import SimulatedLaw, random_law, random_mixtures

#: reference scales at which the simulated reducible terms have their stated sizes
REFERENCE_SIZE = 5e7
REFERENCE_TOKENS = 5e9


@dataclass(frozen=True)
class NestedTruth:
    """True parameters of simulated nested scaling laws (one entry per validation domain)."""

    mixing: SimulatedLaw
    log_A: np.ndarray
    alpha: np.ndarray
    log_B: np.ndarray
    beta: np.ndarray
    run_sd: float
    noise_sd: float

    @property
    def domains(self) -> tuple[str, ...]:
        """Validation domains."""
        return self.mixing.domains

    def mean_loss(self, mixtures: np.ndarray, model_size: float, tokens: float) -> np.ndarray:
        """Noise-free losses ``(mixture, domain)`` at one scale."""
        irreducible = self.mixing.mean_loss(np.atleast_2d(mixtures))
        size = np.exp(self.log_A - self.alpha * np.log(model_size))
        data = np.exp(self.log_B - self.beta * np.log(tokens))
        return irreducible + size[None, :] + data[None, :]


def random_nested_truth(
    n_domains: int = 3,
    seed: int = 0,
    domains: Sequence[str] | None = None,
    run_sd: float = 0.01,
    noise_sd: float = 0.005,
) -> NestedTruth:
    """Draw nested laws: exponents 0.2-0.4, reducible size/data terms 0.4-0.9 / 0.3-0.6 nats."""
    rng = np.random.default_rng(seed + 101)
    mixing = random_law(n_domains, seed=seed, domains=domains, noise_sd=0.0, loss_scale=0.6)
    alpha = rng.uniform(0.22, 0.38, size=n_domains)
    beta = rng.uniform(0.22, 0.38, size=n_domains)
    size_term = rng.uniform(0.4, 0.9, size=n_domains)
    data_term = rng.uniform(0.3, 0.6, size=n_domains)
    return NestedTruth(
        mixing=mixing,
        log_A=np.log(size_term) + alpha * np.log(REFERENCE_SIZE),
        alpha=alpha,
        log_B=np.log(data_term) + beta * np.log(REFERENCE_TOKENS),
        beta=beta,
        run_sd=float(run_sd),
        noise_sd=float(noise_sd),
    )


def simulate_curves(
    truth: NestedTruth,
    n_mixtures: int = 6,
    model_sizes: Sequence[float] = (2e7, 5e7, 1.2e8),
    tokens: Sequence[float] | None = None,
    seed: int = 0,
    mixtures: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Simulate every mixture at every size, evaluated at every checkpoint, as a long table.

    Parameters
    ----------
    truth
        The laws (:func:`random_nested_truth`).
    n_mixtures
        Number of random mixtures (ignored when ``mixtures`` is given).
    model_sizes
        Non-embedding parameter counts.
    tokens
        Checkpoints (training tokens); default 8 log-spaced from 1e9 to 2e10.
    seed
        Seed of the mixtures, run effects and noise.
    mixtures
        Given mixtures ``(mixture, train_domain)`` instead of random ones.

    Returns
    -------
    (pandas.DataFrame, numpy.ndarray)
        The long table (``run``, ``domain``, ``loss``, ``tokens``, ``model_size``, ``mix_*``)
        and the mixtures used.
    """
    rng = np.random.default_rng(seed + 202)
    checkpoints = np.geomspace(1e9, 2e10, 8) if tokens is None else np.asarray(tokens, dtype=float)
    if mixtures is None:
        mixtures = random_mixtures(n_mixtures, len(truth.mixing.train_domains), seed=seed)
    domains = truth.domains
    rows = []
    for m, mixture in enumerate(mixtures):
        for size in model_sizes:
            run = f"mix{m:02d}-N{size:.3g}"
            effect = rng.normal(0.0, truth.run_sd, size=len(domains))
            for d in checkpoints:
                mean = truth.mean_loss(mixture, size, d)[0]
                noisy = mean + effect + rng.normal(0.0, truth.noise_sd, size=len(domains))
                for i, domain in enumerate(domains):
                    row = {"run": run, "domain": domain, "loss": noisy[i], "tokens": d, "model_size": size}
                    row.update(
                        {f"mix_{t}": p for t, p in zip(truth.mixing.train_domains, mixture, strict=True)}
                    )
                    rows.append(row)
    return pd.DataFrame(rows), np.asarray(mixtures)

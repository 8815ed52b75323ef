"""Run tables simulated from a known mixing law: the embedded example data and test ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesmix.data.runs import RunTable
from bayesmix.errors import InputError

DEFAULT_DOMAINS = ("web", "code", "papers", "books", "wiki", "math", "dialogue")


@dataclass(frozen=True)
class SimulatedLaw:
    """True parameters of a per-domain mixing law in the paper's form ``c + exp(log_k0 + t . r)``.

    ``t`` rows are zero-sum (any other choice is the same function). :meth:`truth_at` gives the
    parameters as :class:`~bayesmix.laws.MixingLaw` reports them for a reference mixture.
    """

    domains: tuple[str, ...]
    train_domains: tuple[str, ...]
    c: np.ndarray
    log_k0: np.ndarray
    t: np.ndarray
    noise_sd: np.ndarray

    def mean_loss(self, mixtures: np.ndarray) -> np.ndarray:
        """Noise-free losses ``(mixture, domain)``."""
        return self.c[None, :] + np.exp(self.log_k0[None, :] + mixtures @ self.t.T)

    def truth_at(self, reference_mixture: np.ndarray) -> dict[str, np.ndarray]:
        """``c``, ``log_k`` (reducible loss at the reference, log) and ``t`` as the law reports them."""
        return {"c": self.c, "log_k": self.log_k0 + self.t @ reference_mixture, "t": self.t}


def random_law(
    n_train_domains: int = 3,
    seed: int = 0,
    domains: Sequence[str] | None = None,
    noise_sd: float = 0.01,
    loss_scale: float = 1.0,
) -> SimulatedLaw:
    """Draw a realistic law: each domain helps itself most, others help or hurt a little.

    Parameters
    ----------
    n_train_domains
        ``M``; validation domains are the same domains.
    seed
        Seed of the draw.
    domains
        Names (default: the first ``M`` of web, code, papers, books, wiki, math, dialogue).
    noise_sd
        Standard deviation of run-to-run noise, in nats.
    loss_scale
        Multiplies the constants and reducible losses: 1 gives losses around 2.5-4 (a ~1B
        model), about 2 gives losses around 5-7 (a 1M-parameter proxy).
    """
    rng = np.random.default_rng(seed)
    if domains is None:
        if n_train_domains > len(DEFAULT_DOMAINS):
            domains = [f"domain{j}" for j in range(n_train_domains)]
        else:
            domains = DEFAULT_DOMAINS[:n_train_domains]
    domains = tuple(domains)
    if len(domains) != n_train_domains:
        raise InputError(
            "domains", f"{len(domains)} names for {n_train_domains} domains", "give one per domain"
        )
    m = n_train_domains
    t = rng.normal(0.0, 0.4, size=(m, m))
    t[np.diag_indices(m)] = -rng.uniform(1.0, 3.0, size=m)
    t -= t.mean(axis=1, keepdims=True)
    c = loss_scale * rng.uniform(1.8, 3.0, size=m)
    reducible_at_uniform = loss_scale * rng.uniform(0.3, 1.0, size=m)
    log_k0 = np.log(reducible_at_uniform) - t @ np.full(m, 1.0 / m)
    return SimulatedLaw(domains, domains, c, log_k0, t, np.full(m, noise_sd))


def random_mixtures(n: int, n_domains: int, seed: int = 0, concentration: float = 1.0) -> np.ndarray:
    """Dirichlet mixtures; a quarter of them with one or two domains zeroed (as in real studies)."""
    rng = np.random.default_rng(seed)
    mixtures = rng.dirichlet(np.full(n_domains, concentration), size=n)
    sparse = rng.random(n) < 0.25
    for row in np.flatnonzero(sparse):
        drop = rng.choice(n_domains, size=rng.integers(1, max(2, n_domains // 3) + 1), replace=False)
        if len(drop) < n_domains:
            mixtures[row, drop] = 0.0
            mixtures[row] /= mixtures[row].sum()
    return mixtures


def simulate_runs(
    law: SimulatedLaw,
    n_runs: int,
    seed: int = 0,
    student_t_df: float | None = None,
    mixtures: np.ndarray | None = None,
    shared_sd: float = 0.0,
) -> RunTable:
    """Simulate proxy runs of ``law`` on random (or given) mixtures, with Gaussian or Student-t noise.

    ``shared_sd`` adds a per-run offset common to all domains (a run that is better or worse
    everywhere), as real runs show.
    """
    rng = np.random.default_rng(seed + 1)
    if mixtures is None:
        mixtures = random_mixtures(n_runs, len(law.train_domains), seed=seed)
    mean = law.mean_loss(mixtures)
    if student_t_df is None:
        noise = rng.normal(size=mean.shape)
    else:
        noise = rng.standard_t(student_t_df, size=mean.shape)
    losses = mean + noise * law.noise_sd[None, :] + shared_sd * rng.normal(size=(len(mean), 1))
    index = pd.Index([f"run{i:04d}" for i in range(len(mixtures))], name="run")
    return RunTable(
        pd.DataFrame(mixtures, index=index, columns=list(law.train_domains)),
        pd.DataFrame(losses, index=index, columns=list(law.domains)),
    )


def example_runs(n_runs: int = 24, seed: int = 7) -> tuple[RunTable, SimulatedLaw]:
    """The embedded example study: 5 domains, ``n_runs`` runs of a known law (for the demo)."""
    law = random_law(5, seed=seed, noise_sd=0.01)
    return simulate_runs(law, n_runs, seed=seed), law

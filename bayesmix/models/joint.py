"""Bind the joint mixture x model-size law to runs of several model sizes.

Dims: ``run``, ``domain``, ``train_domain`` as in the mixing model, and the per-run covariate
``z = ln(N / N_ref)`` as data (``log_size``). The likelihood is the mixing model's (Student-t or
normal, one noise scale per domain), with the noise free to change with model size
(``sigma_i(z) = sigma_i exp(s_i z)``, the ``s_i`` pooled over domains): larger proxies are often
less noisy than small ones, and not by the same factor on every validation set.

With ``available_tokens`` the law also reads each run's training tokens (the run table's
``tokens`` column, data ``tokens``) and ``1 / U_j`` per training domain (data
``inverse_unique_tokens``), both as data: a refit with other token counts or other unique tokens
reuses the compiled model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesmix.data.runs import RunTable
from bayesmix.errors import InputError, NotEnoughDataError
from bayesmix.laws.joint import JointMixingLaw
from bayesmix.laws.repetition import inverse_tokens
from bayesmix.models.likelihood import check_likelihood, observe
from bayesmix.models.mixing_model import run_input_values, summarise_data


def run_sizes(runs: RunTable) -> np.ndarray:
    """Each run's model size ``N`` (parameters) from the table's ``model_size`` column.

    Raises
    ------
    InputError
        No ``model_size`` column, or sizes that are missing, not positive or not finite.
    NotEnoughDataError
        Fewer than two distinct model sizes (the law's scale terms need two).
    """
    if "model_size" not in runs.meta.columns:
        raise InputError(
            "model_size",
            "the run table has no model_size column",
            "add each run's model size in parameters as a model_size column",
        )
    sizes = runs.meta["model_size"].to_numpy(dtype=float)
    if not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
        raise InputError("model_size", "has missing, zero or negative sizes", "give every run its size in parameters")
    if len(np.unique(sizes)) < 2:
        raise NotEnoughDataError(
            "model_size",
            f"all runs have one model size ({sizes[0]:.4g})",
            "add runs at a second model size, or fit the mixing law alone (bayesmix.fit)",
        )
    return sizes


def reference_size(sizes: np.ndarray) -> float:
    """``N_ref``: the geometric mean of the distinct fitted model sizes."""
    return float(np.exp(np.mean(np.log(np.unique(sizes)))))


def build_joint_model(
    law: JointMixingLaw, runs: RunTable, *, likelihood: str = "student_t", nu: float = 5.0
) -> Any:
    """The PyMC model of ``law`` on runs of two or more model sizes.

    Parameters
    ----------
    law
        The joint law.
    runs
        Validated runs with a ``model_size`` column (parameters).
    likelihood, nu
        As in :func:`~bayesmix.models.mixing_model.build_model`.

    Returns
    -------
    pymc.Model

    Raises
    ------
    InputError, NotEnoughDataError
        See :func:`run_sizes`; fewer runs per domain than the law has parameters; with
        ``available_tokens``, no ``tokens`` column (or bad token counts) or an unknown domain.
    """
    import pymc as pm
    import pytensor.tensor as pt

    check_likelihood(likelihood)
    sizes = run_sizes(runs)
    runs.check_enough_runs(
        law.n_parameters(len(runs.domains), len(runs.train_domains)),
        what=f"the joint mixture x size law with {len(runs.train_domains)} training domains",
    )
    data = summarise_data(runs)
    z = np.log(sizes / reference_size(sizes))
    repetition: dict[str, np.ndarray] = {}
    if law.repetition is not None:
        repetition["tokens"] = run_input_values(runs, "tokens", law)
        repetition["inverse_unique_tokens"] = inverse_tokens(runs.train_domains, law.repetition.available_tokens)
    coords = {"run": [str(r) for r in runs.mixtures.index], "domain": runs.domains, "train_domain": runs.train_domains}
    with pm.Model(coords=coords) as model:
        mixtures = pm.Data("mixtures", runs.mixtures.to_numpy(), dims=("run", "train_domain"))
        log_size = pm.Data("log_size", z, dims="run")
        values: dict[str, Any] = {
            "reference_mixture": pm.Data(
                "reference_mixture", np.asarray(data.mixture_mean, dtype=float), dims="train_domain"
            ),
            "exponent": pm.Data("exponent", np.asarray(law.exponent)),
        }
        if repetition:
            values["tokens"] = pm.Data("tokens", repetition["tokens"], dims="run")
            values["inverse_unique_tokens"] = pm.Data(
                "inverse_unique_tokens", repetition["inverse_unique_tokens"], dims="train_domain"
            )
        values.update(law.build_priors(data))
        mean = law.evaluate(values, mixtures, log_size, xp=pt)
        sigma = pm.HalfNormal("sigma", sigma=data.loss_sd, dims="domain")
        noise_mu = pm.Normal("sigma_per_efold_mu", 0.0, 0.5)
        noise_sd = pm.HalfNormal("sigma_per_efold_sd", 0.25)
        noise_per_efold = pm.Deterministic(
            "sigma_per_efold", noise_mu + noise_sd * pm.Normal("sigma_per_efold_z", 0.0, 1.0, dims="domain"), dims="domain"
        )
        scale = sigma[None, :] * pt.exp(log_size[:, None] * noise_per_efold[None, :])
        observed = pm.Data("loss_observed", runs.losses.to_numpy(), dims=("run", "domain"))
        observe("loss", mean, scale, observed, likelihood, nu, ("run", "domain"))
    return model

"""Fit the joint mixture x model-size law, and turn it into a mixing-law fit at any model size.

Use it when the runs of a study come at two or more model sizes and their *final* losses are what
is known (no loss curves: RegMix's 1M and 60M runs; a ladder of final checkpoints): one
hierarchical model learns the mixing law at every size at once, so a size seen in a few runs
borrows what the others teach about each training domain's effect. Where runs have loss curves,
the nested pipeline (:func:`bayesmix.fit_nested`) fits steps and size laws instead; which one
predicts a study better is measured in ``benchmarks/extrapolation.py`` (cross-scale keys).

::

    joint = bm.fit_joint(runs)                      # runs: RunTable with a model_size column
    at_60m = bm.joint_at(joint, model_size=6e7)     # an ordinary mixing-law fit at 60M
    bm.predict(at_60m, mixtures); bm.optimise(at_60m, target="pile_cc")

With repeated data (runs that pass over a small domain more than once, a ``tokens`` column with
each run's training tokens)::

    law = bm.JointMixingLaw(available_tokens={"papers": 2e9})
    joint = bm.fit_joint(runs, law)
    at_1b = bm.joint_at(joint, model_size=1e9)      # a RepetitionMixingLaw fit at 1B
    bm.optimise(at_1b, target="mean", target_tokens=1e11)
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np

from bayesmix.data.runs import RunTable
from bayesmix.errors import InputError
from bayesmix.inference import _arviz, engine
from bayesmix.inference.diagnostics import SamplerHealth, finish_nuts_fit, fit_settings
from bayesmix.laws.joint import SCALE_PARAMETERS, JointMixingLaw
from bayesmix.laws.mixing import MixingLaw
from bayesmix.laws.repetition import RepetitionMixingLaw
from bayesmix.models.joint import build_joint_model, reference_size, run_sizes
from bayesmix.models.mixing_model import ModelSpec

logger = logging.getLogger(__name__)

#: the posterior variables a joint fit keeps and checks (the law, its scale terms, the repetition
#: terms of a law with available tokens, and the noise)
PUBLIC = ("c", "log_k", "t", *SCALE_PARAMETERS, "r_star", "waste_cost", "sigma", "sigma_per_efold")
#: beyond this many e-folds of model size past the fitted sizes, :func:`joint_at` warns
WARN_EFOLDS = 3.0


def fit_joint(
    runs: RunTable,
    law: JointMixingLaw | None = None,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    target_accept: float = 0.9,
    seed: int = 0,
    likelihood: str = "student_t",
    nu: float = 5.0,
    strict: bool = False,
    progressbar: bool = False,
) -> _arviz.InferenceData:
    """Fit the joint mixture x model-size law by NUTS (nutpie, compiled once per structure).

    Parameters
    ----------
    runs
        Runs of two or more model sizes: :class:`~bayesmix.RunTable` with a ``model_size`` column
        (parameters) and final losses (nats/token) per validation domain. Run ids must be unique
        across sizes. A law with ``available_tokens`` also needs a ``tokens`` column (each run's
        training tokens).
    law
        The law (default :class:`~bayesmix.laws.joint.JointMixingLaw`).
    draws, tune, chains, target_accept, seed
        NUTS settings; the same seed gives the same numbers.
    likelihood, nu
        ``"student_t"`` (``nu`` degrees of freedom) or ``"normal"``.
    strict
        Raise :class:`~bayesmix.errors.SamplerHealthError` on divergences, r_hat or low ESS
        (otherwise a :class:`~bayesmix.errors.SamplerHealthWarning`).
    progressbar
        Show nutpie's progress bar.

    Returns
    -------
    arviz.InferenceData
        Posterior of ``c``, ``log_k``, ``t`` (at ``N_ref``), the scale terms, ``sigma`` and
        ``sigma_per_efold`` (and ``r_star``, ``waste_cost`` with ``available_tokens``) with named
        dims; ``constant_data`` (mixtures, ``log_size``; ``tokens`` and ``inverse_unique_tokens``
        with ``available_tokens``),
        ``observed_data``; ``posterior.attrs["bayesmix_joint"]`` (JSON: law options, domains,
        ``reference_size``, fitted sizes, likelihood) and ``bayesmix_health``.

    Raises
    ------
    InputError, NotEnoughDataError
        No ``model_size`` column or one size only; too few runs; bad settings; a law with
        ``available_tokens`` on runs without a ``tokens`` column.
    """
    law = JointMixingLaw() if law is None else law
    if not isinstance(runs, RunTable):
        raise InputError("runs", f"got {type(runs).__name__}", "build a RunTable with a model_size column")
    engine.check_nuts_settings(draws, tune, chains, target_accept)
    sizes = run_sizes(runs)
    model = build_joint_model(law, runs, likelihood=likelihood, nu=nu)
    logger.info(
        "fitting the joint mixture x size law to %d runs at %d model sizes (NUTS)", runs.n_runs, len(np.unique(sizes))
    )
    started = time.perf_counter()
    idata = engine.sample_nuts(
        model, draws=draws, tune=tune, chains=chains, target_accept=target_accept, seed=seed, progressbar=progressbar
    )
    keep = [name for name in PUBLIC if name in idata.posterior]
    idata.posterior = idata.posterior[keep]
    info = {
        "law": {"name": law.name, "options": law.options()},
        "domains": list(runs.domains),
        "train_domains": list(runs.train_domains),
        "reference_size": reference_size(sizes),
        "sizes": sorted(float(s) for s in np.unique(sizes)),
        "likelihood": likelihood,
        "nu": float(nu),
    }
    seconds = time.perf_counter() - started
    finish_nuts_fit(idata, key="bayesmix_joint", info=info, variables=keep, seed=seed, seconds=seconds, strict=strict)
    return idata


def joint_info(idata: _arviz.InferenceData) -> dict[str, Any]:
    """The settings a joint fit stores (``posterior.attrs["bayesmix_joint"]``).

    Raises
    ------
    InputError
        ``idata`` is not a fit of :func:`fit_joint`.
    """
    return fit_settings(idata, "bayesmix_joint", "a joint mixture x size fit", "pass the result of bayesmix.fit_joint")


def joint_at(idata: _arviz.InferenceData, model_size: float) -> _arviz.InferenceData:
    """The joint fit as an ordinary mixing-law fit at model size ``model_size``.

    Every posterior draw of the joint law gives the M4 coefficients at ``z = ln(N / N_ref)``
    (:meth:`~bayesmix.laws.joint.JointMixingLaw.at`) and the noise at that size, so
    :func:`bayesmix.predict`, :func:`bayesmix.optimise` and the report take the result as they
    take :func:`bayesmix.fit`'s. Its ``constant_data["mixtures"]`` are every fitted run's mixture
    (the support in mixture space, whatever the size); it has no observed runs.

    A fit of the law with ``available_tokens`` gives a
    :class:`~bayesmix.laws.RepetitionMixingLaw` fit instead: its posterior also holds the joint
    posterior's ``r_star`` and ``waste_cost`` draws and its ``constant_data`` the available
    tokens (``inverse_unique_tokens``) and the fitted runs' ``tokens``, so
    ``predict(..., tokens=D)`` and ``optimise(..., target_tokens=D)`` price repetition at that
    size.

    Parameters
    ----------
    idata
        A fit of :func:`fit_joint`.
    model_size
        The model size ``N`` (parameters).

    Returns
    -------
    arviz.InferenceData
        A :class:`~bayesmix.laws.MixingLaw` fit (the joint law's exponent), or a
        :class:`~bayesmix.laws.RepetitionMixingLaw` fit for a law with ``available_tokens``;
        ``ModelSpec.extra["joint"]`` holds the size, ``N_ref`` and the e-folds beyond the fitted
        sizes.

    Raises
    ------
    InputError
        ``model_size`` not a positive number, or ``idata`` not a joint fit.

    Warns
    -----
    UserWarning
        ``model_size`` lies more than :data:`WARN_EFOLDS` e-folds outside the fitted sizes: the
        law is linear in ``ln N``, an assumption the data cannot test that far out.
    """
    info = joint_info(idata)
    if isinstance(model_size, bool) or not isinstance(model_size, int | float | np.integer | np.floating) or not (
        np.isfinite(model_size) and model_size > 0
    ):
        raise InputError("model_size", f"got {model_size!r}", "give the model size in parameters, e.g. 6e7")
    z = float(np.log(model_size / info["reference_size"]))
    low, high = np.log(min(info["sizes"])), np.log(max(info["sizes"]))
    outside = max(np.log(model_size) - high, low - np.log(model_size), 0.0)
    if outside > WARN_EFOLDS:
        warnings.warn(
            f"model_size {model_size:.4g} lies {outside:.1f} e-folds outside the fitted sizes "
            f"({min(info['sizes']):.4g} to {max(info['sizes']):.4g}): the joint law is linear in ln N, "
            "which these runs cannot test that far out",
            UserWarning,
            stacklevel=2,
        )
    joint = JointMixingLaw(**info["law"]["options"])
    posterior = idata.posterior
    values = {name: posterior[name].to_numpy() for name in PUBLIC if name in posterior}
    at = JointMixingLaw.at(values, z)
    sigma = values["sigma"] * np.exp(values["sigma_per_efold"] * z)
    coords = {
        "chain": posterior["chain"].to_numpy(),
        "draw": posterior["draw"].to_numpy(),
        "domain": info["domains"],
        "train_domain": info["train_domains"],
        "run": idata.constant_data["mixtures"]["run"].to_numpy(),
    }
    dims = {
        "c": ["domain"],
        "log_k": ["domain"],
        "t": ["domain", "train_domain"],
        "r_star": ["train_domain"],
        "waste_cost": ["domain"],
        "sigma": ["domain"],
        "mixtures": ["run", "train_domain"],
        "reference_mixture": ["train_domain"],
        "inverse_unique_tokens": ["train_domain"],
        "tokens": ["run"],
    }
    draws = {"c": at["c"], "log_k": at["log_k"], "t": at["t"], "sigma": sigma}
    constants = {
        "mixtures": idata.constant_data["mixtures"].to_numpy(),
        "reference_mixture": idata.constant_data["reference_mixture"].to_numpy(),
    }
    law: MixingLaw | RepetitionMixingLaw
    if joint.repetition is None:
        law = MixingLaw(exponent=joint.exponent, self_effect=joint.self_effect)
        constants["exponent"] = np.asarray(joint.exponent)
    else:
        # R* and beta do not move with model size: the joint posterior's draws hold at every size
        law = joint.repetition
        draws.update({name: values[name] for name in ("r_star", "waste_cost")})
        for name in ("inverse_unique_tokens", "tokens"):
            constants[name] = idata.constant_data[name].to_numpy()
    out = _arviz.from_dict(draws, coords=coords, dims=dims, constant_data=constants)
    spec = ModelSpec(
        law=law.spec(),
        domains=tuple(info["domains"]),
        train_domains=tuple(info["train_domains"]),
        likelihood=info["likelihood"],
        nu=info["nu"],
        method="joint",
        extra={
            "joint": {
                "model_size": float(model_size),
                "reference_size": info["reference_size"],
                "fitted_sizes": info["sizes"],
                "extrapolation_efolds": float(outside),
            }
        },
    )
    attrs = out.posterior.attrs
    attrs["bayesmix_spec"] = spec.to_json()
    attrs["bayesmix_spec_hash"] = spec.hash
    for key in ("bayesmix_health", "bayesmix_versions", "bayesmix_seed"):
        attrs[key] = idata.posterior.attrs[key]
    return out


def joint_health(idata: _arviz.InferenceData) -> SamplerHealth:
    """The sampler health recorded in a joint fit."""
    return SamplerHealth.from_json(idata.posterior.attrs["bayesmix_health"])

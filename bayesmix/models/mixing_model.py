"""Bind a mixing law to a run table: coords, data containers, priors and the robust likelihood.

The model is *joint* over all validation domains (the law's hierarchy pools across them) with
a Student-t likelihood on the raw losses (the Bayesian counterpart of the paper's Huber loss)
and one noise scale per domain. Dims: ``run``, ``domain`` (validation domains),
``train_domain`` (mixture components) plus any the law adds (e.g. ``component``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bayesmix.data.runs import RunTable
from bayesmix.errors import InputError
from bayesmix.laws.base import DataSummary, Law, law_from_spec
from bayesmix.models.likelihood import check_likelihood, observe

NOISE_MODELS = ("independent", "shared")


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines a fitted model besides the data: saved with every fit.

    Attributes
    ----------
    law
        The law's spec (``{"name": ..., "options": {...}}``).
    domains, train_domains
        Validation and training domain names, in order.
    likelihood
        ``"student_t"`` (default) or ``"normal"``.
    nu
        Degrees of freedom of the Student-t likelihood.
    noise
        ``"independent"``: each domain's run noise is independent; ``"shared"``: a run's noises
        across domains are correlated through one shared factor (covariance
        ``diag(sigma^2) + tau tau^T``), which real runs show and which totals over domains need.
    method
        ``"nuts"``, ``"map"`` or ``"paper"``.
    """

    law: dict[str, Any]
    domains: tuple[str, ...]
    train_domains: tuple[str, ...]
    likelihood: str = "student_t"
    nu: float = 5.0
    noise: str = "independent"
    method: str = "nuts"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys)."""
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical JSON: two fits with the same spec share it."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        """Inverse of :meth:`to_json`."""
        raw = json.loads(text)
        raw["domains"] = tuple(raw["domains"])
        raw["train_domains"] = tuple(raw["train_domains"])
        return cls(**raw)

    def build_law(self) -> Law:
        """The law object of this spec."""
        return law_from_spec(self.law)


def summarise_data(runs: RunTable) -> DataSummary:
    """The data summary that scales a law's default priors."""
    return DataSummary.from_arrays(
        runs.mixtures.to_numpy(), runs.losses.to_numpy(), tuple(runs.domains), tuple(runs.train_domains)
    )


def symbolic_scales(data: DataSummary) -> DataSummary:
    """``data`` with the per-domain loss mean and spread as ``pm.Data`` (inside a model context).

    The compiled model then reads them as data, so a refit on other runs of the same structure
    reuses the compiled function (:mod:`bayesmix.inference.engine`) instead of compiling again.
    """
    import dataclasses

    import pymc as pm

    return dataclasses.replace(
        data,
        loss_mean=pm.Data("prior_loss_mean", np.asarray(data.loss_mean, dtype=float), dims="domain"),
        loss_sd=pm.Data("prior_loss_sd", np.asarray(data.loss_sd, dtype=float), dims="domain"),
    )


def run_input_values(runs: RunTable, name: str, law: Law) -> np.ndarray:
    """The run table's ``name`` column, a per-run input of ``law`` (:attr:`Law.run_inputs`): ``(run,)``.

    Raises
    ------
    InputError
        The column is missing, or holds missing, infinite, zero or negative values.
    """
    if name not in runs.meta.columns:
        raise InputError(
            name,
            f"the run table has no {name!r} column, which the {law.name} law reads for every run "
            "(for 'tokens': the run's total training tokens D)",
            f"add a {name!r} column to the table (RunTable.from_wide and from_long read it by that name), "
            "or build RunTable(mixtures, losses, "
            f"meta=pandas.DataFrame({{{name!r}: values}}, index=mixtures.index))",
        )
    column = runs.meta[name]
    if not column.index.equals(runs.mixtures.index):
        column = column.reindex(runs.mixtures.index)
    values = column.to_numpy(dtype=float)
    ok = np.isfinite(values) & (values > 0)
    bad = [str(run) for run, good in zip(runs.mixtures.index, ok, strict=True) if not good]
    if bad:
        raise InputError(
            name,
            f"has missing, infinite, zero or negative values for run(s) {bad[:5]}",
            f"give every run its {name} as a positive number, or drop those runs",
        )
    return values


def check_model_settings(law: Law, runs: RunTable, likelihood: str, nu: float, noise: str) -> None:
    """Refuse settings :func:`build_model` cannot use, before any work is done.

    Raises
    ------
    InputError
        An unknown ``likelihood`` or ``noise``, ``noise="shared"`` with one validation domain,
        or ``nu`` not a positive number.
    NotEnoughDataError
        Fewer runs than the law has parameters per validation domain plus
        :data:`bayesmix.data.runs.RUNS_MARGIN`.
    """
    check_likelihood(likelihood)
    if noise not in NOISE_MODELS:
        raise InputError("noise", f"unknown noise model {noise!r}", f"use one of {NOISE_MODELS}")
    if noise == "shared" and len(runs.domains) < 2:
        raise InputError(
            "noise", "'shared' noise needs at least two validation domains", "use noise='independent'"
        )
    if not np.isfinite(nu) or nu <= 0:
        raise InputError("nu", f"got {nu}", "give a positive number of degrees of freedom (e.g. 5)")
    n_params = law.n_parameters(len(runs.domains), len(runs.train_domains))
    runs.check_enough_runs(
        n_params, what=f"the {law.name} law with {len(runs.train_domains)} training domains"
    )


def build_model(
    law: Law, runs: RunTable, *, likelihood: str = "student_t", nu: float = 5.0, noise: str = "independent"
) -> Any:
    """Build the PyMC model of ``law`` on ``runs``.

    Parameters
    ----------
    law
        The law (e.g. :class:`~bayesmix.laws.MixingLaw`).
    runs
        The validated run table.
    likelihood
        ``"student_t"`` (robust to outlier runs) or ``"normal"``.
    nu
        Degrees of freedom of the Student-t.
    noise
        ``"independent"`` or ``"shared"`` (see :class:`ModelSpec`); ``"shared"`` needs at least
        two validation domains and marginalises the shared factor analytically (a multivariate
        Student-t / normal per run), so it adds ``D`` parameters, not one per run.

    Returns
    -------
    pymc.Model

    Raises
    ------
    NotEnoughDataError
        Fewer runs than the law has parameters per validation domain plus
        :data:`bayesmix.data.runs.RUNS_MARGIN`.
    """
    import pymc as pm
    import pytensor.tensor as pt

    check_model_settings(law, runs, likelihood, nu, noise)
    data = summarise_data(runs)
    coords = {
        "run": [str(r) for r in runs.mixtures.index],
        "domain": runs.domains,
        "train_domain": runs.train_domains,
        **law.extra_coords(),
    }
    constant_dims = {spec.name: spec.dims for spec in law.constants}
    with pm.Model(coords=coords) as model:
        mixtures = pm.Data("mixtures", runs.mixtures.to_numpy(), dims=("run", "train_domain"))
        values: dict[str, Any] = {}
        for name in law.run_inputs:
            values[name] = pm.Data(name, run_input_values(runs, name, law), dims="run")
        constants = law.constant_values(data)
        for name, value in constants.items():
            values[name] = pm.Data(name, value, dims=constant_dims.get(name))
        for name, value in law.derived_inputs(runs.mixtures.to_numpy(), constants).items():
            if not name.startswith("derived_"):
                raise ValueError(f"{type(law).__name__}.derived_inputs: {name!r} must start with 'derived_'")
            values[name] = pm.Data(name, value)
        scales = symbolic_scales(data) if law.symbolic_data else data
        values.update(law.build_priors(scales))
        mean = law.evaluate(values, mixtures, xp=pt)
        sigma = pm.HalfNormal("sigma", sigma=scales.loss_sd, dims="domain")
        observed = pm.Data("loss_observed", runs.losses.to_numpy(), dims=("run", "domain"))
        if noise == "shared":
            shared = pm.HalfNormal("sigma_shared", sigma=scales.loss_sd, dims="domain")
            cov = pt.diag(sigma**2) + pt.outer(shared, shared)
            if likelihood == "student_t":
                pm.MvStudentT("loss", nu=nu, mu=mean, scale=cov, observed=observed, dims=("run", "domain"))
            else:
                pm.MvNormal("loss", mu=mean, cov=cov, observed=observed, dims=("run", "domain"))
        else:
            observe("loss", mean, sigma, observed, likelihood, nu, ("run", "domain"))
    return model

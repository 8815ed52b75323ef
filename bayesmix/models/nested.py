r"""PyMC models of the nested scaling-law pipeline: joint, staged, and the mixing-law stage.

Two ways to get the loss at a target scale ``(N*, D*)`` for each observed mixture:

**Joint** (:func:`build_joint_model`, the default). One hierarchical model over every
checkpoint of every run: for run ``r`` (mixture ``m``, size ``N_r``), domain ``i`` and tokens
``D``

.. math::

    L = E_{mi} + A_{mi} N_r^{-\alpha_{mi}} + B_{mi} D^{-\beta_{mi}} + u_{ri} + \varepsilon,

with the exponents pooled across mixtures and domains (see
:meth:`bayesmix.laws.scaling.ScalingLaw.build_priors`), a Student-t checkpoint noise
``epsilon`` with one scale per domain, and a **per-run effect** ``u_ri`` that models the
correlation of the checkpoints of one run: every checkpoint of a run shares its offset (a
different architecture at the same ``N``, a lucky seed). It is correlated across domains:
``u_ri = tau_i (sqrt(rho) z_r + sqrt(1 - rho) z_ri)`` with standard normal ``z``. A new run at
the target scale draws a new ``u``, so run-to-run spread enters the predictive intervals.

**Staged** (the paper's order, :func:`build_step_stage_model`, :func:`build_size_stage_model`).
Stage 1 fits a step law per (run, domain) (exponents pooled) and extrapolates each curve to
``D*``. Stage 2 fits a size law per (mixture, domain) to those extrapolations. The stage-1
posterior is carried into stage 2 by its draws' mean and full covariance over all (run, domain)
pairs, as a Gaussian measurement model: ``mean ~ MvNormal(size law, C + diag(sigma_i^2))``
where ``C`` is the covariance of the stage-1 draws (it holds the shared uncertainty of the
pooled exponent, which a per-point standard error would drop) and ``sigma_i`` is the
run-to-run spread around the size law. Within-run checkpoint correlation is absorbed in stage 1
by each run having its own curve.

**Mixing stage** (:func:`build_mixing_stage_model`). The per-domain mixing law
(:class:`~bayesmix.laws.MixingLaw`, same priors and coordinates as the law engine) is fitted to
the target-scale losses of the observed mixtures, again through a Gaussian measurement model
with the mean and full covariance (over mixtures x domains) of the previous stage's draws, plus
a misfit scale per domain. It then predicts any mixture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.data.curves import CurveTable
from bayesmix.errors import InputError, NotEnoughDataError
from bayesmix.laws.base import DataSummary
from bayesmix.laws.mixing import MixingLaw
from bayesmix.laws.scaling import JointScalingLaw, ScalingLaw, ScalingSummary, SizeLaw, StepLaw
from bayesmix.models.likelihood import observe

#: relative jitter added to the diagonal of measurement covariances estimated from draws
COVARIANCE_JITTER = 1e-6


@dataclass(frozen=True)
class Curves:
    """Observations grouped into curves (one scaling-law curve each).

    Attributes
    ----------
    names
        Curve names (``"<group>/<domain>"``).
    keys
        DataFrame, one row per curve, with the grouping columns (``mixture`` or ``run``) and
        ``domain``.
    index
        Curve of each observation (row of the table's frame).
    domain_index
        Position (in ``domains``) of each curve's domain.
    domains
        Validation domain names.
    """

    names: list[str]
    keys: pd.DataFrame
    index: np.ndarray
    domain_index: np.ndarray
    domains: list[str]


def group_curves(frame: pd.DataFrame, by: str, domains: Sequence[str]) -> Curves:
    """Group rows of a curve frame by (``by``, ``domain``) into :class:`Curves`."""
    keys = frame[[by, "domain"]].drop_duplicates().reset_index(drop=True)
    names = [f"{g}/{d}" for g, d in zip(keys[by], keys["domain"], strict=True)]
    lookup = {(g, d): j for j, (g, d) in enumerate(zip(keys[by], keys["domain"], strict=True))}
    index = np.array([lookup[(g, d)] for g, d in zip(frame[by], frame["domain"], strict=True)], dtype=int)
    position = {d: j for j, d in enumerate(domains)}
    domain_index = np.array([position[d] for d in keys["domain"]], dtype=int)
    return Curves(names=names, keys=keys, index=index, domain_index=domain_index, domains=list(domains))


def _domain_medians(values: np.ndarray, domain_index: np.ndarray, n_domains: int) -> np.ndarray:
    return np.array([np.median(values[domain_index == i]) for i in range(n_domains)])


def gaussian_measurement(name: str, mean: Any, draws: np.ndarray, extra_sd: Any, dims: Any = None) -> Any:
    """Observe the mean of ``draws`` as ``MvNormal(mean, cov(draws) + diag(extra_sd^2))``.

    Parameters
    ----------
    name
        Name of the observed variable.
    mean
        Model tensor of the flattened expected values, length ``K``.
    draws
        Draws ``(sample, K)`` of the previous stage: their mean is observed, their covariance is
        the measurement error (the previous stage's posterior uncertainty, correlations included).
    extra_sd
        Tensor (length ``K``) of the extra spread this stage models (run-to-run or misfit).
    dims
        Name of the model's dim of length ``K`` (so the observed data has a named dim).
    """
    import pymc as pm
    import pytensor.tensor as pt

    draws = np.asarray(draws, dtype=float)
    observed = draws.mean(axis=0)
    cov = np.atleast_2d(np.cov(draws, rowvar=False))
    cov = cov + np.eye(len(observed)) * COVARIANCE_JITTER * max(float(np.mean(np.diag(cov))), 1e-12)
    total = pt.as_tensor_variable(cov) + pt.diag(extra_sd**2)
    return pm.MvNormal(name, mu=mean, cov=total, observed=observed, dims=dims)


def scaling_summary(
    law: ScalingLaw, loss: np.ndarray, curves: Curves, inputs: dict[str, np.ndarray]
) -> ScalingSummary:
    """The :class:`ScalingSummary` of observations for ``law``'s inputs."""
    return ScalingSummary.from_observations(
        loss,
        curves.index,
        {k: inputs[k] for k in law.inputs},
        curves.names,
        curves.domains,
        curves.domain_index,
    )


def build_joint_model(
    table: CurveTable,
    *,
    law: ScalingLaw | None = None,
    run_effect: bool = True,
    likelihood: str = "student_t",
    nu: float = 5.0,
) -> tuple[Any, Curves, ScalingSummary]:
    """The joint hierarchical model over (mixture, size, step); see the module docstring.

    Parameters
    ----------
    table
        Validated curves.
    law
        Default :class:`~bayesmix.laws.scaling.JointScalingLaw`.
    run_effect
        Add the per-run effect ``u_ri`` (recommended: checkpoints of a run are correlated).
    likelihood, nu
        Checkpoint noise: ``"student_t"`` with ``nu`` degrees of freedom, or ``"normal"``.

    Returns
    -------
    (pymc.Model, Curves, ScalingSummary)
    """
    import pymc as pm

    law = JointScalingLaw() if law is None else law
    if law.inputs != ("model_size", "tokens"):
        raise InputError("law", f"the joint model needs a law of size and tokens, got {law!r}", "use 'joint'")
    frame = table.frame
    domains = table.domains
    curves = group_curves(frame, "mixture", domains)
    inputs = {"model_size": frame["model_size"].to_numpy(), "tokens": frame["tokens"].to_numpy()}
    loss = frame["loss"].to_numpy()
    summary = scaling_summary(law, loss, curves, inputs)
    runs = list(table.runs.index)
    run_pos = {r: j for j, r in enumerate(runs)}
    run_index = np.array([run_pos[r] for r in frame["run"]], dtype=int)
    dom_pos = {d: j for j, d in enumerate(domains)}
    obs_domain = np.array([dom_pos[d] for d in frame["domain"]], dtype=int)
    spread = _domain_medians(summary.spread, curves.domain_index, len(domains))
    coords = {"curve": curves.names, "domain": domains, "run": runs, "obs": np.arange(len(frame))}
    with pm.Model(coords=coords) as model:
        size = pm.Data("model_size", inputs["model_size"], dims="obs")
        tokens = pm.Data("tokens", inputs["tokens"], dims="obs")
        params = law.build_priors(summary, dim="curve")
        per_obs = {name: value[curves.index] for name, value in params.items()}
        mean = law.evaluate(per_obs, {"model_size": size, "tokens": tokens}, xp=_pt())
        if run_effect:
            tau = pm.HalfNormal("run_sd", sigma=0.5 * spread, dims="domain")
            rho = pm.Beta("run_corr", 2.0, 2.0)
            z_shared = pm.Normal("run_z_shared", 0.0, 1.0, dims="run")
            z_own = pm.Normal("run_z", 0.0, 1.0, dims=("run", "domain"))
            effect = pm.Deterministic(
                "run_effect",
                tau[None, :] * (pm.math.sqrt(rho) * z_shared[:, None] + pm.math.sqrt(1 - rho) * z_own),
                dims=("run", "domain"),
            )
            mean = mean + effect[run_index, obs_domain]
        sigma = pm.HalfNormal("sigma", sigma=spread, dims="domain")
        observe("loss", mean, sigma[obs_domain], loss, likelihood, nu, "obs")
    return model, curves, summary


def build_step_stage_model(
    table: CurveTable, *, likelihood: str = "student_t", nu: float = 5.0
) -> tuple[Any, Curves, ScalingSummary]:
    """Stage 1 of the staged pipeline: a step law per (run, domain), exponents pooled.

    Returns
    -------
    (pymc.Model, Curves, ScalingSummary)
        Curves are grouped by ``run``.
    """
    import pymc as pm

    law = StepLaw()
    frame = table.frame
    domains = table.domains
    curves = group_curves(frame, "run", domains)
    inputs = {"tokens": frame["tokens"].to_numpy()}
    loss = frame["loss"].to_numpy()
    summary = scaling_summary(law, loss, curves, inputs)
    obs_domain = curves.domain_index[curves.index]
    spread = _domain_medians(summary.spread, curves.domain_index, len(domains))
    coords = {"curve": curves.names, "domain": domains, "obs": np.arange(len(frame))}
    with pm.Model(coords=coords) as model:
        tokens = pm.Data("tokens", inputs["tokens"], dims="obs")
        params = law.build_priors(summary, dim="curve")
        per_obs = {name: value[curves.index] for name, value in params.items()}
        mean = law.evaluate(per_obs, {"tokens": tokens}, xp=_pt())
        sigma = pm.HalfNormal("sigma", sigma=spread, dims="domain")
        observe("loss", mean, sigma[obs_domain], loss, likelihood, nu, "obs")
    return model, curves, summary


def size_stage_keys(table: CurveTable, step_curves: Curves) -> pd.DataFrame:
    """Stage 1's curve keys (run, domain) with each run's ``mixture`` and ``model_size`` added."""
    keys = step_curves.keys.copy()
    keys["mixture"] = table.runs.loc[keys["run"], "mixture"].to_numpy()
    keys["model_size"] = table.runs.loc[keys["run"], "model_size"].to_numpy()
    return keys


def build_size_stage_model(
    table: CurveTable, step_curves: Curves, extrapolated: np.ndarray
) -> tuple[Any, Curves, ScalingSummary]:
    """Stage 2 of the staged pipeline: a size law per (mixture, domain) on stage-1 draws.

    Parameters
    ----------
    table
        The curves of stage 1.
    step_curves
        Stage 1's curves (by run and domain).
    extrapolated
        Stage-1 draws ``(sample, curve)`` of each (run, domain) loss at the target tokens.

    Returns
    -------
    (pymc.Model, Curves, ScalingSummary)
        Curves grouped by ``mixture``; the observations are stage 1's curves.
    """
    import pymc as pm

    law = SizeLaw()
    keys = size_stage_keys(table, step_curves)
    sizes_per_group = keys.groupby(["mixture", "domain"])["model_size"].nunique()
    if (sizes_per_group < 2).any():
        (mixture, domain) = sizes_per_group.idxmin()
        raise NotEnoughDataError(
            "model_size",
            f"mixture {mixture!r} has runs at one model size only for domain {domain!r}",
            "train that mixture at 2 or more sizes, or use the joint model (it pools over mixtures)",
        )
    curves = group_curves(keys, "mixture", step_curves.domains)
    inputs = {"model_size": keys["model_size"].to_numpy()}
    loss = extrapolated.mean(axis=0)
    summary = scaling_summary(law, loss, curves, inputs)
    spread = _domain_medians(summary.spread, curves.domain_index, len(curves.domains))
    obs_domain = curves.domain_index[curves.index]
    coords = {"curve": curves.names, "domain": curves.domains, "obs": step_curves.names}
    with pm.Model(coords=coords) as model:
        size = pm.Data("model_size", inputs["model_size"], dims="obs")
        params = law.build_priors(summary, dim="curve")
        per_obs = {name: value[curves.index] for name, value in params.items()}
        mean = law.evaluate(per_obs, {"model_size": size}, xp=_pt())
        sigma = pm.HalfNormal("sigma", sigma=spread, dims="domain")
        gaussian_measurement("loss", mean, extrapolated, sigma[obs_domain], dims="obs")
    return model, curves, summary


def build_mixing_stage_model(
    mixtures: pd.DataFrame, domains: Sequence[str], target: np.ndarray, law: MixingLaw | None = None
) -> Any:
    """Stage 3: the mixing law on target-scale draws ``(sample, mixture, domain)``.

    ``law`` defaults to :class:`MixingLaw` with non-centred slopes (``centred=False``).

    Raises
    ------
    NotEnoughDataError
        Fewer mixtures than the mixing law has parameters per domain.
    """
    import pymc as pm

    # non-centred slopes: one row per observed mixture, observed through the previous stages'
    # uncertainty (0.1-0.3 nats at the quickstart's target), so the data do not pin each domain's
    # slopes down; there, 4 chains x 1,000 draws: centred 73 divergences (r_hat 1.05), this form 8
    law = MixingLaw(centred=False) if law is None else law
    n_mix, n_dom = target.shape[1], target.shape[2]
    needed = law.n_parameters(n_dom, mixtures.shape[1])
    if n_mix < needed:
        raise NotEnoughDataError(
            "mixtures",
            f"{n_mix} observed mixtures; the mixing law over {mixtures.shape[1]} training domains "
            f"needs at least {needed} to predict other mixtures",
            "train more mixtures, or ask only for the observed ones",
        )
    means = target.mean(axis=0)
    data = DataSummary.from_arrays(mixtures.to_numpy(), means, tuple(domains), tuple(mixtures.columns))
    coords = {
        "mixture": [str(m) for m in mixtures.index],
        "domain": list(domains),
        "train_domain": [str(c) for c in mixtures.columns],
        # the flattened (mixture, domain) cells the measurement model observes, mixture-major
        "mixture_domain": [f"{m}/{d}" for m in mixtures.index for d in domains],
        **law.extra_coords(),
    }
    constant_dims = {spec.name: spec.dims for spec in law.constants}
    with pm.Model(coords=coords) as model:
        mix = pm.Data("mixtures", mixtures.to_numpy(), dims=("mixture", "train_domain"))
        values: dict[str, Any] = {}
        for name, value in law.constant_values(data).items():
            values[name] = pm.Data(name, value, dims=constant_dims.get(name))
        values.update(law.build_priors(data))
        mean = law.evaluate(values, mix, xp=_pt())
        sigma = pm.HalfNormal("sigma", sigma=data.loss_sd, dims="domain")
        extra = _pt().broadcast_to(sigma[None, :], (n_mix, n_dom)).flatten()
        gaussian_measurement(
            "loss", mean.flatten(), target.reshape(target.shape[0], -1), extra, dims="mixture_domain"
        )
    return model


def _pt() -> Any:
    import pytensor.tensor as pt

    return pt

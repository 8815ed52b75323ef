"""Sampler health (divergences, r_hat, effective sample sizes), summaries and PSIS-LOO comparison.

:func:`summary` is ArviZ's summary of the variables worth reading; :func:`loo` and
:func:`compare` score fits of different laws on the same runs by PSIS leave-one-out
cross-validation (ArviZ's ``loo`` and ``compare``).
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bayesmix.errors import InputError, SamplerHealthError, SamplerHealthWarning
from bayesmix.inference import _arviz
from bayesmix.inference.predict import add_log_likelihood, fitted_runs, fitted_spec
from bayesmix.laws.mixing import CONTRAST_DIM

RHAT_LIMIT = 1.01
ESS_PER_CHAIN = 100


@dataclass(frozen=True)
class SamplerHealth:
    """What the sampler says about a fit.

    Attributes
    ----------
    method
        ``"nuts"`` (sampler diagnostics apply), ``"laplace"`` (the approximation's Pareto ``k``)
        or a point method (``"map"``/``"paper"``: nothing to check).
    chains, draws
        Number of chains and draws per chain.
    divergences
        Divergent transitions after tuning.
    max_rhat, min_ess_bulk, min_ess_tail
        Worst values over the law's parameters and noise scales.
    pareto_k
        ``"laplace"`` fits: Pareto ``k`` of the importance ratios of the draws (posterior over the
        Gaussian); below 0.7 the Gaussian matches the joint posterior (see :func:`laplace_health`).
    problems
        Human-readable list of what is wrong; empty when healthy.
    dropped_chains
        NUTS chains left out because they were stuck in a mode of negligible posterior mass
        (:func:`bayesmix.inference.engine.drop_stuck_chains`); ``chains`` counts those kept.
    """

    method: str
    chains: int = 0
    draws: int = 0
    divergences: int = 0
    max_rhat: float = float("nan")
    min_ess_bulk: float = float("nan")
    min_ess_tail: float = float("nan")
    problems: list[str] = field(default_factory=list)
    pareto_k: float = float("nan")
    dropped_chains: int = 0

    @property
    def ok(self) -> bool:
        """True when there is no problem."""
        return not self.problems

    def to_json(self) -> str:
        """JSON for the InferenceData attrs."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SamplerHealth:
        """Inverse of :meth:`to_json`."""
        return cls(**json.loads(text))

    def __str__(self) -> str:
        if self.method == "laplace":
            head = (
                f"Laplace approximation, {self.chains * self.draws} draws, Pareto k {self.pareto_k:.2f} "
                "(joint posterior matched below 0.7)"
            )
            return head + ("" if self.ok else "\nProblems: " + "; ".join(self.problems))
        if self.method != "nuts":
            return f"{self.method} point fit: no sampler diagnostics (no posterior uncertainty)"
        head = (
            f"{self.chains} chains x {self.draws} draws, {self.divergences} divergences, "
            f"max r_hat {self.max_rhat:.3f}, min ESS bulk {self.min_ess_bulk:.0f} / tail {self.min_ess_tail:.0f}"
        )
        if self.dropped_chains:
            head += f" ({self.dropped_chains} stuck chain{'s' if self.dropped_chains > 1 else ''} dropped)"
        return head + ("" if self.ok else "\nProblems: " + "; ".join(self.problems))


def check_health(idata: _arviz.InferenceData, var_names: list[str], method: str = "nuts") -> SamplerHealth:
    """Compute :class:`SamplerHealth` of a NUTS fit over ``var_names``."""
    if method != "nuts":
        return SamplerHealth(method=method)
    posterior = idata.posterior
    chains, draws = int(posterior.sizes["chain"]), int(posterior.sizes["draw"])
    names = [v for v in var_names if v in posterior]
    divergences = 0
    if "sample_stats" in idata.groups() and "diverging" in idata.sample_stats:
        divergences = int(np.asarray(idata.sample_stats["diverging"]).sum())

    def worst(dataset, reducer) -> tuple[float, str]:
        values = {name: float(reducer(np.asarray(dataset[name]))) for name in names if dataset[name].size}
        finite = {k: v for k, v in values.items() if np.isfinite(v)}
        if not finite:
            return float("nan"), ""
        key = (max if reducer is np.nanmax else min)(finite, key=finite.get)
        return finite[key], key

    problems = []
    if chains > 1:
        max_rhat, rhat_var = worst(_arviz.rhat(idata, names), np.nanmax)
    else:
        max_rhat, rhat_var = float("nan"), ""
    min_bulk, bulk_var = worst(_arviz.ess_bulk(idata, names), np.nanmin)
    min_tail, _ = worst(_arviz.ess_tail(idata, names), np.nanmin)
    if divergences:
        problems.append(
            f"{divergences} divergent transitions: raise target_accept (e.g. 0.95) or check the data for outliers"
        )
    if max_rhat > RHAT_LIMIT:
        problems.append(f"r_hat {max_rhat:.3f} > {RHAT_LIMIT} for {rhat_var!r}: chains disagree, run longer")
    if min_bulk < ESS_PER_CHAIN * chains:
        problems.append(f"bulk ESS {min_bulk:.0f} < {ESS_PER_CHAIN * chains} for {bulk_var!r}: draw more")
    dropped = len(json.loads(posterior.attrs.get("bayesmix_dropped_chains", "[]")))
    return SamplerHealth(
        method=method,
        chains=chains,
        draws=draws,
        dropped_chains=dropped,
        divergences=divergences,
        max_rhat=max_rhat,
        min_ess_bulk=min_bulk,
        min_ess_tail=min_tail,
        problems=problems,
    )


def laplace_health(result: Any, chains: int, draws: int) -> SamplerHealth:
    """:class:`SamplerHealth` of a Laplace fit (:class:`bayesmix.inference.approx.LaplaceDraws`).

    Problems: the mode search did not converge, or the curvature at the mode is not positive in
    some direction (the Gaussian is then a guess there). The Pareto ``k`` of the joint
    importance ratios is recorded but not a problem by itself: over the 70-300 parameters of a
    mixing law it exceeds 0.7 even where the predictive intervals agree with NUTS (see
    ``benchmarks/speed.py``), so it is read as a warning light for the joint posterior, not
    for predictions.
    """
    problems = []
    if not result.mode.converged:
        problems.append("the posterior mode search did not converge; fit with method='nuts'")
    if not np.isfinite(result.pareto_k):
        problems.append(
            "most Laplace draws fall where the log density is not finite (Pareto k infinite): "
            "fit with method='nuts'"
        )
    if result.hessian_clipped:
        problems.append(
            f"{result.hessian_clipped} direction(s) without curvature at the mode (a flat or saddle "
            "posterior): fit with method='nuts'"
        )
    return SamplerHealth(
        method="laplace", chains=int(chains), draws=int(draws), problems=problems, pareto_k=float(result.pareto_k)
    )


def report_health(health: SamplerHealth, strict: bool = False) -> None:
    """Warn (or raise, when ``strict``) if the fit has problems."""
    if health.ok:
        return
    message = "Sampler problems: " + "; ".join(health.problems)
    if strict:
        raise SamplerHealthError(message)
    warnings.warn(message, SamplerHealthWarning, stacklevel=3)


def fit_settings(idata: _arviz.InferenceData, key: str, what: str, fix: str) -> dict[str, Any]:
    """The settings :func:`finish_nuts_fit` recorded under ``key``.

    Raises
    ------
    InputError
        ``idata`` holds no such settings: it is not ``what`` (``fix`` says what to pass).
    """
    try:
        return json.loads(idata.posterior.attrs[key])
    except (AttributeError, KeyError, TypeError):
        raise InputError("idata", f"is not {what}", fix) from None


def stored_health(idata: _arviz.InferenceData) -> SamplerHealth | None:
    """The sampler health recorded in a fit, or None when it holds none."""
    text = idata.posterior.attrs.get("bayesmix_health")
    return None if text is None else SamplerHealth.from_json(text)


def finish_nuts_fit(
    idata: _arviz.InferenceData,
    *,
    key: str,
    info: Mapping[str, Any],
    variables: Sequence[str],
    seed: int,
    seconds: float,
    strict: bool = False,
) -> _arviz.InferenceData:
    """Record a NUTS fit's settings, health, versions, seed and time in ``posterior.attrs``; report its health.

    Parameters
    ----------
    idata
        The fit (changed in place and returned).
    key
        Attribute holding ``info`` as JSON (e.g. ``"bayesmix_joint"``).
    info
        The settings that rebuild the fit's law and read its draws.
    variables
        Posterior variables whose r_hat, ESS and divergences make the health.
    seed, seconds
        The sampler's seed and the fit's wall time.
    strict
        Raise :class:`~bayesmix.errors.SamplerHealthError` on problems (otherwise warn).
    """
    from bayesmix.versions import package_versions

    health = check_health(idata, [v for v in variables if v in idata.posterior], method="nuts")
    attrs = idata.posterior.attrs
    attrs[key] = json.dumps(info)
    attrs["bayesmix_health"] = health.to_json()
    attrs["bayesmix_versions"] = json.dumps(package_versions(), sort_keys=True)
    attrs["bayesmix_seed"] = int(seed)
    attrs["bayesmix_fit_seconds"] = float(seconds)
    report_health(health, strict)
    return idata


def health_of(idata: _arviz.InferenceData) -> SamplerHealth:
    """The :class:`SamplerHealth` stored in a fit's attrs."""
    return SamplerHealth.from_json(idata.posterior.attrs["bayesmix_health"])


# --------------------------------------------------------------------------- summary

#: a standardised (non-centred) offset: a name with a ``z`` word (``level_z``, ``run_z_shared``)
_OFFSET = re.compile(r"(^|_)z(_|$)")
#: the observation units :func:`loo` and :func:`compare` leave out
LOO_UNITS = ("run", "observation")


def public_variables(idata: _arviz.InferenceData) -> list[str]:
    """The posterior variables a summary shows by default, in the posterior's order.

    All but the sampler's internals: transformed copies (``*_log__``, ``*_interval__``, any name
    ending in ``__``; fits do not store them, but a foreign InferenceData may), standardised
    non-centred offsets (a ``z`` word in the name: ``level_z``, ``slope_column_z``,
    ``slope_coef_z``, ``run_z``, ...) and coordinates in the zero-sum basis of the training
    domains (a ``train_contrast`` dim: ``slope_coef``), which mean nothing outside the sampler;
    the law's parameters (``c``, ``log_k``, ``t``, ...), the noise scales, the hierarchy's
    means and spreads and ``level`` stay.

    Raises
    ------
    InputError
        ``idata`` has no posterior.
    """
    posterior = getattr(idata, "posterior", None)
    if posterior is None:
        raise InputError(
            "idata", "has no posterior group", "pass a fit returned by bayesmix.fit or bayesmix.load"
        )
    return [
        str(name)
        for name, variable in posterior.data_vars.items()
        if not str(name).endswith("__")
        and not _OFFSET.search(str(name))
        and CONTRAST_DIM not in variable.dims
    ]


def summary(idata: _arviz.InferenceData, var_names: Sequence[str] | None = None, **kwargs: Any) -> Any:
    """ArviZ's summary table of a fit's public variables (``arviz.summary``).

    Parameters
    ----------
    idata
        A fit (or any InferenceData with a posterior).
    var_names
        The variables to show; default :func:`public_variables` (no sampler internals).
    **kwargs
        Passed to ``arviz.summary`` (``hdi_prob``, ``kind``, ``round_to``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per element (``t[web, code]``), ArviZ's columns (mean, sd, HDI, MCSE, ESS, r_hat).

    Raises
    ------
    InputError
        No posterior, or a name in ``var_names`` that is not a posterior variable.
    """
    names = public_variables(idata) if var_names is None else [str(v) for v in var_names]
    missing = [name for name in names if name not in idata.posterior]
    if missing:
        raise InputError(
            "var_names",
            f"{missing} are not posterior variables",
            f"use names among {list(idata.posterior.data_vars)}",
        )
    return _arviz.summary(idata, var_names=names, **kwargs)


# --------------------------------------------------------------------------- PSIS-LOO


def _check_unit(unit: str) -> None:
    if unit not in LOO_UNITS:
        raise InputError("unit", f"got {unit!r}", f"use one of {LOO_UNITS}")


def _loo_ready(idata: Any, unit: str, field: str) -> _arviz.InferenceData:
    """``idata`` with its ``log_likelihood["loss"]`` per ``unit`` (computed when absent; never in place).

    Raises :class:`InputError` for anything but a fit with posterior draws of a run table.
    """
    if not isinstance(idata, _arviz.InferenceData):
        raise InputError(
            field, f"got a {type(idata).__name__}", "pass fits returned by bayesmix.fit or bayesmix.load"
        )
    try:
        spec = fitted_spec(idata)
        fitted_runs(idata)
    except InputError as err:
        raise InputError(field, err.problem, err.fix) from None
    n_draws = int(idata.posterior.sizes["chain"]) * int(idata.posterior.sizes["draw"])
    if n_draws < 2:
        raise InputError(
            field,
            f"is a point fit (method={spec.method!r}, one draw): PSIS-LOO needs posterior draws",
            "fit with method='nuts' (or 'laplace', approximately)",
        )
    if "log_likelihood" in idata.groups() and "loss" in idata.log_likelihood:
        pointwise = idata.log_likelihood
    else:
        pointwise = add_log_likelihood(_arviz.shallow_copy(idata)).log_likelihood
    loss = pointwise["loss"]
    if unit == "run" and "domain" in loss.dims:
        pointwise = pointwise.assign(loss=loss.astype(float).sum("domain"))
    elif unit == "observation" and "domain" not in loss.dims:
        raise InputError(
            "unit",
            f"{field} has shared run noise (noise='shared'): a run's losses are one joint observation",
            "use unit='run'",
        )
    return _arviz.with_group(idata, "log_likelihood", pointwise)


def loo(idata: _arviz.InferenceData, *, unit: str = "run", pointwise: bool = False) -> Any:
    """PSIS leave-one-out cross-validation of a fit (``arviz.loo``).

    It scores the law: a fit's form-error term (the default ``discrepancy="auto"``) is fitted to
    the same runs' residuals after the law and is not part of the log likelihood.

    Parameters
    ----------
    idata
        A NUTS (or, approximately, Laplace) fit. Its ``log_likelihood`` group is used, or
        computed (:func:`~bayesmix.inference.predict.add_log_likelihood`) on a copy when absent.
    unit
        What is left out: ``"run"`` (default; all of a run's losses, the question "how well does
        the law predict a new mixture") or ``"observation"`` (one loss of one run and domain,
        the unit ``arviz.loo(idata)`` uses on the stored group; not for ``noise="shared"``).
    pointwise
        Also return the pointwise elpd and Pareto ``k`` values.

    Returns
    -------
    arviz.ELPDData
        ``elpd_loo`` (log score, higher is better), ``se``, ``p_loo`` and the Pareto ``k``
        warning; ``k > 0.7`` marks runs whose leave-one-out estimate is unreliable.

    Raises
    ------
    InputError
        Not a fit of a run table, a point fit (``"map"``/``"paper"``), or a bad ``unit``.
    """
    _check_unit(unit)
    return _arviz.loo(_loo_ready(idata, unit, "idata"), pointwise=pointwise)


def compare(fits: Mapping[str, _arviz.InferenceData], *, unit: str = "run") -> Any:
    """Rank fits of different laws (or priors, noise models) on the same runs by PSIS-LOO.

    ``arviz.compare`` with ``ic="loo"`` on the log scale. The fits must have been made on the
    same runs (mixtures, losses, domains); their ``log_likelihood`` groups are used, or computed
    on copies when absent, so old saved fits compare too. LOO on a Laplace fit is approximate
    (its draws come from a Gaussian, not the posterior). The laws are compared, not their
    form-error terms (see :func:`loo`).

    Parameters
    ----------
    fits
        Names (table rows) to fits, at least two.
    unit
        ``"run"`` (default) or ``"observation"``, as in :func:`loo`. Fits with ``noise="shared"``
        and ``noise="independent"`` compare by run only.

    Returns
    -------
    pandas.DataFrame
        ArviZ's table, best first: ``rank``, ``elpd_loo``, ``p_loo``, ``elpd_diff``, ``weight``,
        ``se``, ``dse``, ``warning`` (Pareto ``k > 0.7`` somewhere), ``scale``.

    Raises
    ------
    InputError
        Fewer than two fits, a name that is not a string, a fit that is not a bayesmix fit of a
        run table or is a point fit, fits of different runs, or a bad ``unit``.
    """
    _check_unit(unit)
    if not isinstance(fits, Mapping):
        raise InputError(
            "fits",
            f"got a {type(fits).__name__}",
            "give a dict of names to fits, e.g. {'mixing': a, 'linear': b}",
        )
    if len(fits) < 2:
        raise InputError("fits", f"got {len(fits)} fit(s)", "give at least two fits to compare")
    ready: dict[str, _arviz.InferenceData] = {}
    reference: tuple[str, Any, Any] | None = None
    for name, idata in fits.items():
        if not isinstance(name, str):
            raise InputError(
                "fits", f"has a name {name!r} that is not a string", "name each fit with a string"
            )
        field = f"fits[{name!r}]"
        ready[name] = _loo_ready(idata, unit, field)
        mixtures, loss = fitted_runs(idata)
        if reference is None:
            reference = (name, mixtures, loss)
        else:
            _check_same_runs(reference, (name, mixtures, loss))
    return _arviz.compare(ready)


def _check_same_runs(first: tuple[str, Any, Any], other: tuple[str, Any, Any]) -> None:
    """Raise :class:`InputError` unless two fits' runs (names, mixtures, losses) are the same."""
    (name_a, mix_a, loss_a), (name_b, mix_b, loss_b) = first, other
    problem = None
    for dim in ("run", "domain"):
        if list(loss_a[dim].to_numpy()) != list(loss_b[dim].to_numpy()):
            problem = f"were fitted to other {dim}s ({loss_a.sizes[dim]} and {loss_b.sizes[dim]})"
            break
    else:
        if list(mix_a["train_domain"].to_numpy()) != list(mix_b["train_domain"].to_numpy()):
            problem = "have other training domains"
        elif not np.array_equal(mix_a.to_numpy(), mix_b.to_numpy()):
            problem = "were fitted to runs with other mixtures"
        elif not np.array_equal(loss_a.to_numpy(), loss_b.to_numpy()):
            problem = "were fitted to runs with other losses"
    if problem is not None:
        raise InputError(
            "fits",
            f"{name_a!r} and {name_b!r} {problem}: PSIS-LOO compares fits of the same runs only",
            "fit every law to the same RunTable",
        )

"""Predictions from a fitted law: posterior(-predictive) draws for any mixtures, and intervals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesmix.data.runs import validate_mixtures
from bayesmix.errors import InputError
from bayesmix.inference import _arviz
from bayesmix.laws.aggregation import ExplicitAggregation
from bayesmix.models.discrepancy import DiscrepancyDraws
from bayesmix.models.mixing_model import ModelSpec

KINDS = ("predictive", "mean")
INTERVAL_KINDS = ("eti", "hdi")
#: noise draws used for the predictive distribution of a point fit (MAP or the paper protocol)
POINT_FIT_NOISE_DRAWS = 2000


def fitted_spec(idata: _arviz.InferenceData) -> ModelSpec:
    """The :class:`~bayesmix.models.ModelSpec` stored in a fit."""
    try:
        return ModelSpec.from_json(idata.posterior.attrs["bayesmix_spec"])
    except (AttributeError, KeyError):
        raise InputError(
            "idata",
            "is not a bayesmix fit (no bayesmix_spec in posterior.attrs)",
            "pass the result of bayesmix.fit",
        ) from None


def posterior_draws(
    idata: _arviz.InferenceData, names: Sequence[str], max_draws: int | None = None, seed: int = 0
):
    """Posterior variables stacked to a leading ``sample`` axis (thinned to ``max_draws``)."""
    posterior = idata.posterior
    n = posterior.sizes["chain"] * posterior.sizes["draw"]
    pick = None
    if max_draws is not None and n > max_draws:
        pick = np.sort(np.random.default_rng(seed).choice(n, size=max_draws, replace=False))
    out = {}
    for name in names:
        if name not in posterior:
            continue
        stacked = posterior[name].stack(sample=("chain", "draw")).transpose("sample", ...)
        values = stacked.to_numpy()
        out[name] = values if pick is None else values[pick]
    return out


def predict(
    idata: _arviz.InferenceData,
    mixtures: Any,
    *,
    kind: str = "predictive",
    composition: Mapping[str, float] | Sequence[float] | None = None,
    renormalise: bool = False,
    max_draws: int | None = None,
    seed: int = 0,
) -> xr.DataArray:
    """Draws of the loss of each validation domain for new mixtures.

    Parameters
    ----------
    idata
        A fit returned by :func:`bayesmix.fit` (or :func:`bayesmix.load`).
    mixtures
        DataFrame with training-domain columns (missing domains are 0), a dict (one mixture),
        a list of dicts, or an array ``(mixture, train_domain)``.
    kind
        ``"predictive"``: the loss a new run would show (law + run noise); ``"mean"``: the
        expected loss only (for comparing mixtures and optimising). Both include the law's
        form error when the fit has a discrepancy term (``fit(..., discrepancy=True)``): its
        draws widen with the distance from the runs.
    composition
        Shares of the validation set over the fitted domains: adds a ``"total"`` entry to the
        ``domain`` dim (explicit aggregation, ``sum_i s_i L_i``).
    renormalise
        Divide each mixture by its sum instead of rejecting those that do not sum to 1.
    max_draws
        Use at most this many posterior draws (a random subset under ``seed``).
    seed
        Seed of the noise draws and of the subset.

    Returns
    -------
    xarray.DataArray
        Dims ``("sample", "mixture", "domain")``; attrs ``kind`` and, when the fit stored its
        sampler health, ``health_ok`` (1 or 0) and ``health`` (JSON).
    """
    if kind not in KINDS:
        raise InputError("kind", f"unknown kind {kind!r}", f"use one of {KINDS}")
    check_seed(seed)
    if max_draws is not None and (not _is_int(max_draws) or max_draws < 1):
        raise InputError("max_draws", f"got {max_draws!r}", "give a positive integer, or None for all draws")
    spec = fitted_spec(idata)
    frame = validate_mixtures(mixtures, spec.train_domains, renormalise=renormalise)
    mean, params = law_draws(idata, frame.to_numpy(), max_draws=max_draws, seed=seed)
    if mean.shape[0] == 1 and (kind == "predictive" or "discrepancy" in spec.extra):
        # a point fit: its spread is the plug-in noise (and the discrepancy's), so draw that many times
        mean = np.repeat(mean, POINT_FIT_NOISE_DRAWS, axis=0)
        for name in ("sigma", "sigma_shared"):
            if name in params:
                params[name] = np.repeat(params[name], POINT_FIT_NOISE_DRAWS, axis=0)
    if "discrepancy" in spec.extra:
        paths = DiscrepancyDraws.from_idata(idata, spec.extra["discrepancy"], mean.shape[0], seed)
        mean = mean + paths.values(frame.to_numpy())
    n_samples = mean.shape[0]
    if kind == "predictive":
        mean = mean + _run_noise(params, spec, mean.shape, np.random.default_rng(seed))
    domains = list(spec.domains)
    if composition is not None:
        total = ExplicitAggregation(composition, domains)(mean)
        mean = np.concatenate([mean, total[..., None]], axis=-1)
        domains = [*domains, "total"]
    index = frame.index if isinstance(mixtures, pd.DataFrame) else np.arange(len(frame))
    return xr.DataArray(
        mean,
        dims=("sample", "mixture", "domain"),
        coords={"sample": np.arange(n_samples), "mixture": np.asarray(index), "domain": domains},
        name="loss",
        attrs={"kind": kind, **_health_attrs(idata)},
    )


def law_draws(
    idata: _arviz.InferenceData, mixtures: np.ndarray, max_draws: int | None = None, seed: int = 0
) -> tuple[np.ndarray, dict[str, Any]]:
    """The law alone (no discrepancy) at ``mixtures (mixture, train_domain)``: ``(sample, mixture, domain)``.

    Also returns the parameter draws used (with ``sigma`` and, if fitted, ``sigma_shared``).
    """
    spec = fitted_spec(idata)
    law = spec.build_law()
    names = [p.name for p in law.parameters] + ["exponent", "sigma", "sigma_shared"]
    params: dict[str, Any] = posterior_draws(idata, names, max_draws=max_draws, seed=seed)
    constants = idata.constant_data if "constant_data" in idata.groups() else {}
    for spec_constant in law.constants:
        params[spec_constant.name] = np.asarray(constants[spec_constant.name])
    if "exponent" not in params and "exponent" in constants:
        params["exponent"] = float(np.asarray(constants["exponent"]).reshape(-1)[0])
    return np.asarray(law.evaluate(params, np.atleast_2d(mixtures), xp=np)), params


def _health_attrs(idata: _arviz.InferenceData) -> dict[str, Any]:
    """``health_ok`` and ``health`` (JSON) of the fit, for the attrs of what is drawn from it."""
    stored = idata.posterior.attrs.get("bayesmix_health")
    if stored is None:
        return {}
    from bayesmix.inference.diagnostics import SamplerHealth

    return {"health_ok": int(SamplerHealth.from_json(stored).ok), "health": stored}


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_seed(seed: Any, field: str = "seed") -> None:
    """Raise :class:`InputError` unless ``seed`` is a non-negative integer (numpy's seed rule)."""
    if not _is_int(seed) or seed < 0:
        raise InputError(field, f"got {seed!r}", "give a non-negative integer, e.g. 0")


def _run_noise(params: dict[str, Any], spec: ModelSpec, shape: tuple[int, ...], rng: np.random.Generator):
    """Draws of a new run's noise, shape ``(sample, mixture, domain)``, as the likelihood models it."""
    noise = params["sigma"][:, None, :] * rng.standard_normal(size=shape)
    if "sigma_shared" in params:  # one factor shared by the domains of a run
        noise = noise + params["sigma_shared"][:, None, :] * rng.standard_normal(size=shape[:2])[..., None]
    if spec.likelihood == "student_t":  # a (multivariate) t: normal noise over sqrt(chi2_nu / nu)
        scale_shape = (*shape[:2], 1) if "sigma_shared" in params else shape
        noise = noise / np.sqrt(rng.chisquare(spec.nu, size=scale_shape) / spec.nu)
    return noise


def interval(
    draws: xr.DataArray, prob: float = 0.9, kind: str = "eti", sample_dim: str = "sample"
) -> xr.Dataset:
    """Mean, median and a central (``"eti"``) or highest-density (``"hdi"``) interval of draws.

    Parameters
    ----------
    draws
        Draws with a ``sample_dim`` dimension (e.g. the output of :func:`predict`).
    prob
        Probability mass inside the interval, in (0, 1).
    kind
        ``"eti"``: equal-tailed; ``"hdi"``: highest density.
    sample_dim
        The dimension holding the draws.

    Returns
    -------
    xarray.Dataset
        ``mean``, ``median``, ``lower``, ``upper`` with the remaining dims of ``draws``.
    """
    if not isinstance(draws, xr.DataArray):
        raise InputError(
            "draws", f"got a {type(draws).__name__}", "give an xarray.DataArray, e.g. the output of predict"
        )
    if (
        not isinstance(prob, int | float | np.integer | np.floating)
        or isinstance(prob, bool)
        or not 0 < prob < 1
    ):
        raise InputError("prob", f"got {prob!r}", "give a probability in (0, 1), e.g. 0.9")
    if kind not in INTERVAL_KINDS:
        raise InputError("kind", f"unknown interval kind {kind!r}", f"use one of {INTERVAL_KINDS}")
    if sample_dim not in draws.dims:
        raise InputError(
            "sample_dim", f"{sample_dim!r} is not a dim of the draws {draws.dims}", "name the draw dim"
        )
    if kind == "eti":
        tail = (1 - prob) / 2
        bounds = draws.quantile([tail, 1 - tail], dim=sample_dim)
        lower = bounds.isel(quantile=0, drop=True)
        upper = bounds.isel(quantile=1, drop=True)
    else:
        hdi = _arviz.hdi(draws, prob, sample_dim=sample_dim)
        lower, upper = hdi["lower"], hdi["upper"]
    return xr.Dataset(
        {
            "mean": draws.mean(sample_dim),
            "median": draws.median(sample_dim),
            "lower": lower,
            "upper": upper,
        },
        attrs={"prob": prob, "kind": kind},
    )

"""Predictions from a fitted law: posterior(-predictive) draws for any mixtures, and intervals.

Also the fit's ArviZ groups at the fitted runs (:func:`add_log_likelihood`,
:func:`add_posterior_predictive`) and the conversion of draws to ArviZ's ``(chain, draw)`` form
(:func:`to_chain_draw`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesmix.data.runs import validate_mixtures
from bayesmix.errors import InputError
from bayesmix.inference import _arviz
from bayesmix.laws.aggregation import ExplicitAggregation
from bayesmix.laws.base import Law
from bayesmix.models.discrepancy import DiscrepancyDraws
from bayesmix.models.mixing_model import ModelSpec

KINDS = ("predictive", "mean")
INTERVAL_KINDS = ("eti", "hdi")
#: noise draws used for the predictive distribution of a point fit (MAP or the paper protocol)
POINT_FIT_NOISE_DRAWS = 2000
#: layouts of the draw dim of :func:`predict`: ``sample`` (one dim) or ArviZ's ``chain``/``draw``
DRAW_DIMS = ("sample", "chain_draw")
#: number types of the ``log_likelihood`` and ``posterior_predictive`` groups
GROUP_DTYPES = ("float32", "float64")
#: posterior draws evaluated at once for those groups (bounds the memory of the law's intermediates:
#: 250 draws x 512 runs x 13 domains is 13 MB per float64 array)
GROUP_CHUNK_DRAWS = 250


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
    draw_dims: str = "sample",
    tokens: float | Sequence[float] | np.ndarray | None = None,
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
    draw_dims
        ``"sample"`` (default): one draw dim ``sample``, which every bayesmix function takes.
        ``"chain_draw"``: ArviZ's ``chain`` and ``draw`` dims instead (the same values, see
        :func:`to_chain_draw`), so ``arviz.hdi``, ``arviz.ess`` and the like accept the draws.
    tokens
        Training tokens ``D`` of the run each mixture is for: one number for all, or one per
        mixture. Required by laws that read each run's tokens (``Law.run_inputs``, e.g.
        :class:`~bayesmix.laws.RepetitionMixingLaw`, whose repetition depends on ``D``); refused
        by the others.

    Returns
    -------
    xarray.DataArray
        Dims ``("sample", "mixture", "domain")`` (or ``("chain", "draw", "mixture", "domain")``);
        attrs ``kind``, ``chains`` (the number of chains the ``sample`` dim holds in order, 1 when
        the draws were thinned or are a point fit's noise draws) and, when the fit stored its
        sampler health, ``health_ok`` (1 or 0) and ``health`` (JSON).

    Raises
    ------
    InputError
        Unknown ``kind`` or ``draw_dims``, a bad seed or ``max_draws``, mixtures that do not fit
        the fitted training domains, ``tokens`` missing, given to a law that does not read it, or
        not positive, or ``idata`` that is not a bayesmix fit.
    """
    if kind not in KINDS:
        raise InputError("kind", f"unknown kind {kind!r}", f"use one of {KINDS}")
    if draw_dims not in DRAW_DIMS:
        raise InputError("draw_dims", f"got {draw_dims!r}", f"use one of {DRAW_DIMS}")
    check_seed(seed)
    if max_draws is not None and (not _is_int(max_draws) or max_draws < 1):
        raise InputError("max_draws", f"got {max_draws!r}", "give a positive integer, or None for all draws")
    spec = fitted_spec(idata)
    frame = validate_mixtures(mixtures, spec.train_domains, renormalise=renormalise)
    inputs = new_run_inputs(spec.build_law(), len(frame), tokens=tokens)
    mean, params = law_draws(idata, frame.to_numpy(), max_draws=max_draws, seed=seed, inputs=inputs)
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
    posterior = idata.posterior
    chains = int(posterior.sizes["chain"])
    # the draws keep the posterior's chain-major order unless they were thinned or repeated
    in_order = n_samples == chains * int(posterior.sizes["draw"])
    out = xr.DataArray(
        mean,
        dims=("sample", "mixture", "domain"),
        coords={"sample": np.arange(n_samples), "mixture": np.asarray(index), "domain": domains},
        name="loss",
        attrs={"kind": kind, "chains": chains if in_order else 1, **_health_attrs(idata)},
    )
    return to_chain_draw(out) if draw_dims == "chain_draw" else out


def to_chain_draw(draws: xr.DataArray, sample_dim: str = "sample") -> xr.DataArray:
    """Draws with one ``sample`` dim rearranged to ArviZ's ``chain`` and ``draw`` dims.

    ArviZ's functions (``arviz.hdi``, ``arviz.ess``, ``arviz.plot_posterior``, ...) reduce over
    ``chain`` and ``draw``; bayesmix's own (:func:`interval`, the optimiser, the reports) over
    ``sample``. No draw is reordered: ``sample`` holds the draws chain after chain, and
    its ``chains`` attribute (set by :func:`predict`) says how many chains; without it (draws
    thinned by ``max_draws``, a point fit's noise draws, draws from elsewhere) they become one
    chain, which ArviZ's intervals treat the same but its convergence diagnostics cannot split.

    Parameters
    ----------
    draws
        Draws with a ``sample_dim`` dim, e.g. ``predict``'s or ``predict_target``'s output.
    sample_dim
        The dim holding the draws.

    Returns
    -------
    xarray.DataArray
        Dims ``("chain", "draw", *others)`` with integer ``chain`` and ``draw`` coordinates; the
        other dims, their coordinates, the name and the attrs are kept.

    Raises
    ------
    InputError
        ``draws`` is not a DataArray, has no ``sample_dim`` dim, or already has a ``chain`` or
        ``draw`` dim.
    """
    if not isinstance(draws, xr.DataArray):
        raise InputError(
            "draws", f"got a {type(draws).__name__}", "give an xarray.DataArray, e.g. the output of predict"
        )
    if sample_dim not in draws.dims:
        raise InputError(
            "sample_dim", f"{sample_dim!r} is not a dim of the draws {draws.dims}", "name the draw dim"
        )
    if {"chain", "draw"} & set(draws.dims):
        raise InputError(
            "draws", f"already have ArviZ's chain/draw dims {draws.dims}", "use them as they are"
        )
    n = int(draws.sizes[sample_dim])
    chains = draws.attrs.get("chains", 1)
    if not _is_int(chains) or chains < 1 or n % chains:
        chains = 1
    ordered = draws.transpose(sample_dim, ...)
    others = [d for d in ordered.dims if d != sample_dim]
    values = ordered.to_numpy().reshape(int(chains), n // int(chains), *ordered.shape[1:])
    coords = {
        name: coord
        for name, coord in draws.coords.items()
        if sample_dim not in coord.dims and name not in ("chain", "draw")
    }
    coords.update(chain=np.arange(int(chains)), draw=np.arange(n // int(chains)))
    return xr.DataArray(
        values, dims=("chain", "draw", *others), coords=coords, name=draws.name, attrs=dict(draws.attrs)
    )


def _from_chain_draw(draws: xr.DataArray) -> xr.DataArray:
    """The inverse of :func:`to_chain_draw`: ``chain`` and ``draw`` merged into ``sample``."""
    ordered = draws.transpose("chain", "draw", ...)
    others = list(ordered.dims[2:])
    n_chain, n_draw = int(ordered.sizes["chain"]), int(ordered.sizes["draw"])
    coords = {name: coord for name, coord in draws.coords.items() if not {"chain", "draw"} & set(coord.dims)}
    coords["sample"] = np.arange(n_chain * n_draw)
    return xr.DataArray(
        ordered.to_numpy().reshape(n_chain * n_draw, *ordered.shape[2:]),
        dims=("sample", *others),
        coords=coords,
        name=draws.name,
        attrs={**draws.attrs, "chains": n_chain},
    )


def new_run_inputs(law: Law, n_mixtures: int, *, tokens: Any = None) -> dict[str, np.ndarray]:
    """The per-run inputs ``law`` reads (:attr:`~bayesmix.laws.Law.run_inputs`) for new mixtures.

    Parameters
    ----------
    law
        The fitted law.
    n_mixtures
        Number of mixtures predicted.
    tokens
        Training tokens of each mixture's run: one number, or ``n_mixtures`` of them.

    Returns
    -------
    dict
        ``name -> (n_mixtures,)`` float array per run input of the law (empty for most laws).

    Raises
    ------
    InputError
        An input the law needs is missing, one it does not read is given, or values are not
        positive finite numbers or not one per mixture.
    """
    given = {} if tokens is None else {"tokens": tokens}
    for name in given:
        if name not in law.run_inputs:
            raise InputError(
                name, f"the fitted {law.name} law does not read a run's {name}", f"drop {name}= from the call"
            )
    out: dict[str, np.ndarray] = {}
    for name in law.run_inputs:
        if name not in given:
            raise InputError(
                name,
                f"the fitted {law.name} law needs the {name} of the run each mixture is for "
                "(for 'tokens': its total training tokens D)",
                f"pass {name}=<one number, or one per mixture>, e.g. predict(fit, mixtures, {name}=1e10)",
            )
        try:
            values = np.broadcast_to(np.asarray(given[name], dtype=float).reshape(-1), (n_mixtures,)).copy()
        except (TypeError, ValueError):
            raise InputError(
                name,
                f"got {given[name]!r} for {n_mixtures} mixture(s)",
                "give one positive number, or one per mixture",
            ) from None
        if not np.all(np.isfinite(values) & (values > 0)):
            raise InputError(name, f"got {given[name]!r}", "give positive finite numbers")
        out[name] = values
    return out


def law_draws(
    idata: _arviz.InferenceData,
    mixtures: np.ndarray,
    max_draws: int | None = None,
    seed: int = 0,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The law alone (no discrepancy) at ``mixtures (mixture, train_domain)``: ``(sample, mixture, domain)``.

    ``inputs`` are the mixtures' per-run inputs (:func:`new_run_inputs`). Also returns the
    parameter draws used (with ``sigma`` and, if fitted, ``sigma_shared``).
    """
    law, params, _ = _law_params(idata, max_draws=max_draws, seed=seed)
    params.update(inputs or {})
    return np.asarray(law.evaluate(params, np.atleast_2d(mixtures), xp=np)), params


def _law_params(
    idata: _arviz.InferenceData, max_draws: int | None = None, seed: int = 0
) -> tuple[Law, dict[str, Any], set[str]]:
    """The fitted law, its parameter draws (leading ``sample`` axis) and constants, and which are draws."""
    spec = fitted_spec(idata)
    law = spec.build_law()
    names = [p.name for p in law.parameters] + ["exponent", "sigma", "sigma_shared"]
    params: dict[str, Any] = posterior_draws(idata, names, max_draws=max_draws, seed=seed)
    sampled = set(params)
    constants = idata.constant_data if "constant_data" in idata.groups() else {}
    for spec_constant in law.constants:
        params[spec_constant.name] = np.asarray(constants[spec_constant.name])
    if "exponent" not in params and "exponent" in constants:
        params["exponent"] = float(np.asarray(constants["exponent"]).reshape(-1)[0])
    return law, params, sampled


# --------------------------------------------------------------------------- ArviZ groups


def fitted_runs(idata: _arviz.InferenceData) -> tuple[xr.DataArray, xr.DataArray]:
    """The runs a fit was made on: mixtures ``(run, train_domain)`` and losses ``(run, domain)``.

    Raises
    ------
    InputError
        ``idata`` is not a bayesmix fit or holds no runs (``constant_data["mixtures"]`` and
        ``observed_data["loss"]`` with those dims).
    """
    fitted_spec(idata)
    groups = idata.groups()
    if (
        "constant_data" not in groups
        or "observed_data" not in groups
        or "mixtures" not in idata.constant_data
        or "loss" not in idata.observed_data
    ):
        raise InputError(
            "idata",
            "holds no runs (constant_data['mixtures'] and observed_data['loss'])",
            "pass a fit returned by bayesmix.fit or bayesmix.load",
        )
    mixtures, loss = idata.constant_data["mixtures"], idata.observed_data["loss"]
    if set(mixtures.dims) != {"run", "train_domain"} or set(loss.dims) != {"run", "domain"}:
        raise InputError(
            "idata",
            f"its runs have dims {mixtures.dims} and {loss.dims}, not (run, train_domain) and (run, domain)",
            "pass a fit of a run table returned by bayesmix.fit or bayesmix.load",
        )
    return mixtures.transpose("run", "train_domain"), loss.transpose("run", "domain")


def _check_dtype(dtype: Any) -> np.dtype:
    if str(dtype) not in GROUP_DTYPES:
        raise InputError("dtype", f"got {dtype!r}", f"use one of {GROUP_DTYPES}")
    return np.dtype(str(dtype))


def _chunks(idata: _arviz.InferenceData):
    """``(slice, law mean (sample, run, domain), params of the slice)`` over the posterior's draws."""
    mixtures, _ = fitted_runs(idata)
    law, params, sampled = _law_params(idata)
    for name in law.run_inputs:  # the fitted runs' own inputs
        params[name] = np.asarray(idata.constant_data[name], dtype=float)
    rows = mixtures.to_numpy()
    n = int(idata.posterior.sizes["chain"]) * int(idata.posterior.sizes["draw"])
    for start in range(0, n, GROUP_CHUNK_DRAWS):
        part = slice(start, min(start + GROUP_CHUNK_DRAWS, n))
        chunk = {name: (value[part] if name in sampled else value) for name, value in params.items()}
        yield part, np.asarray(law.evaluate(chunk, rows, xp=np), dtype=float), chunk


def _group(idata: _arviz.InferenceData, values: np.ndarray, dims: tuple[str, ...], attrs: dict) -> xr.Dataset:
    """A ``loss`` variable ``(chain, draw, *dims)`` with the posterior's and the runs' coordinates."""
    posterior = idata.posterior
    _, loss = fitted_runs(idata)
    n_chain, n_draw = int(posterior.sizes["chain"]), int(posterior.sizes["draw"])
    coords = {"chain": posterior["chain"].to_numpy(), "draw": posterior["draw"].to_numpy()}
    coords.update({dim: loss[dim].to_numpy() for dim in dims})
    array = xr.DataArray(
        values.reshape(n_chain, n_draw, *values.shape[1:]), dims=("chain", "draw", *dims), coords=coords
    )
    return xr.Dataset({"loss": array}, attrs=attrs)


def log_likelihood_values(
    observed: np.ndarray,
    mean: np.ndarray,
    sigma: np.ndarray,
    *,
    likelihood: str,
    nu: float,
    sigma_shared: np.ndarray | None = None,
) -> np.ndarray:
    """Pointwise log density of the runs' losses under the fit's observation model.

    Parameters
    ----------
    observed
        Losses ``(run, domain)``, in nats.
    mean
        The law's mean loss ``(sample, run, domain)``.
    sigma
        Per-domain noise scales ``(sample, domain)``.
    likelihood, nu
        ``"student_t"`` with ``nu`` degrees of freedom, or ``"normal"``
        (:mod:`bayesmix.models.likelihood`).
    sigma_shared
        ``(sample, domain)`` loadings of the noise factor a run's domains share (``noise="shared"``);
        ``None`` for independent noise.

    Returns
    -------
    numpy.ndarray
        Independent noise: ``(sample, run, domain)``, the log density of each loss. Shared noise:
        ``(sample, run)``, the joint log density of each run's losses (a multivariate normal, or
        PyMC's multivariate Student-t with scale matrix ``diag(sigma^2) + sigma_shared
        sigma_shared^T``), computed with the matrix determinant lemma and Sherman-Morrison.
    """
    from scipy.special import gammaln

    residual = observed[None, :, :] - mean
    if sigma_shared is None:
        z = residual / sigma[:, None, :]
        log_scale = np.log(sigma)[:, None, :]
        if likelihood == "student_t":
            const = gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
            return const - log_scale - (nu + 1) / 2 * np.log1p(z**2 / nu)
        return -0.5 * np.log(2 * np.pi) - log_scale - 0.5 * z**2
    n_dom = residual.shape[-1]
    variance = sigma**2  # (sample, domain)
    loading = sigma_shared / variance  # D^-1 tau
    denominator = 1.0 + np.sum(sigma_shared * loading, axis=-1)  # 1 + tau' D^-1 tau, (sample,)
    log_det = np.sum(np.log(variance), axis=-1) + np.log(denominator)
    projected = np.einsum("srd,sd->sr", residual, loading)  # r' D^-1 tau
    maha = np.sum(residual**2 / variance[:, None, :], axis=-1) - projected**2 / denominator[:, None]
    if likelihood == "student_t":
        const = gammaln((nu + n_dom) / 2) - gammaln(nu / 2) - n_dom / 2 * np.log(nu * np.pi)
        return const - 0.5 * log_det[:, None] - (nu + n_dom) / 2 * np.log1p(maha / nu)
    return -0.5 * (n_dom * np.log(2 * np.pi) + log_det[:, None] + maha)


def add_log_likelihood(idata: _arviz.InferenceData, *, dtype: str = "float32") -> _arviz.InferenceData:
    """Add (or replace) the ``log_likelihood`` group: the log density of each fitted loss at every draw.

    It is what ``arviz.loo``, ``arviz.waic`` and ``arviz.compare`` read, computed from the
    posterior, the fit's constants and its observed losses with the fit's observation model
    (the law plus Student-t or normal run noise; see :func:`log_likelihood_values`). It works on
    fits loaded from files made before fits carried the group.

    Parameters
    ----------
    idata
        A fit returned by :func:`bayesmix.fit` or :func:`bayesmix.load` (changed in place).
    dtype
        ``"float32"`` (default: half the memory and file size; a log density of order 1-10 is
        then exact to ~1e-6, far below what PSIS-LOO resolves) or ``"float64"``.

    Returns
    -------
    arviz.InferenceData
        ``idata`` itself, with ``log_likelihood["loss"]`` of dims ``(chain, draw, run, domain)``
        (independent noise) or ``(chain, draw, run)`` (``noise="shared"``: a run's losses are
        one joint observation), named like ``observed_data["loss"]``.

    Raises
    ------
    InputError
        ``idata`` is not a bayesmix fit of a run table, or ``dtype`` is not one of
        :data:`GROUP_DTYPES`.
    """
    number = _check_dtype(dtype)
    spec = fitted_spec(idata)
    _, loss = fitted_runs(idata)
    observed = loss.to_numpy().astype(float)
    parts = []
    shared = False
    for _, mean, chunk in _chunks(idata):
        shared = "sigma_shared" in chunk
        values = log_likelihood_values(
            observed,
            mean,
            np.asarray(chunk["sigma"], dtype=float),
            likelihood=spec.likelihood,
            nu=spec.nu,
            sigma_shared=np.asarray(chunk["sigma_shared"], dtype=float) if shared else None,
        )
        parts.append(values.astype(number))
    dims = ("run",) if shared else ("run", "domain")
    attrs = {
        "bayesmix_likelihood": spec.likelihood,
        "bayesmix_nu": float(spec.nu),
        "bayesmix_noise": spec.noise,
    }
    _arviz.set_group(idata, "log_likelihood", _group(idata, np.concatenate(parts), dims, attrs))
    return idata


def add_posterior_predictive(
    idata: _arviz.InferenceData, *, seed: int | None = None, dtype: str = "float32"
) -> _arviz.InferenceData:
    """Add (or replace) the ``posterior_predictive`` group: replicated losses of the fitted runs.

    One replicate per posterior draw: the law at each run's mixture plus new run noise drawn as
    the likelihood models it (the same noise as ``predict(kind="predictive")``), so
    ``arviz.plot_ppc`` and ``arviz.plot_loo_pit`` compare it with ``observed_data["loss"]``. A
    discrepancy term (``fit(..., discrepancy=True)``) is not added: it is fitted to these runs'
    residuals after the law, so at the runs it would replay them.

    Parameters
    ----------
    idata
        A fit returned by :func:`bayesmix.fit` or :func:`bayesmix.load` (changed in place).
    seed
        Seed of the noise draws; default the fit's own seed (``posterior.attrs["bayesmix_seed"]``).
    dtype
        ``"float32"`` (default; losses in nats are then exact to ~3e-7) or ``"float64"``.

    Returns
    -------
    arviz.InferenceData
        ``idata`` itself, with ``posterior_predictive["loss"]`` of dims
        ``(chain, draw, run, domain)``.

    Raises
    ------
    InputError
        ``idata`` is not a bayesmix fit of a run table, a bad ``seed``, or a ``dtype`` not in
        :data:`GROUP_DTYPES`.
    """
    number = _check_dtype(dtype)
    spec = fitted_spec(idata)
    if seed is None:
        seed = int(idata.posterior.attrs.get("bayesmix_seed", 0))
    check_seed(seed)
    rng = np.random.default_rng([int(seed), 1])
    parts = []
    for _, mean, chunk in _chunks(idata):
        noise = _run_noise(
            {k: np.asarray(chunk[k], dtype=float) for k in ("sigma", "sigma_shared") if k in chunk},
            spec,
            mean.shape,
            rng,
        )
        parts.append((mean + noise).astype(number))
    attrs = {"bayesmix_seed": int(seed)}
    _arviz.set_group(
        idata, "posterior_predictive", _group(idata, np.concatenate(parts), ("run", "domain"), attrs)
    )
    return idata


def _health_attrs(idata: _arviz.InferenceData) -> dict[str, Any]:
    """``health_ok`` and ``health`` (JSON) of the fit, for the attrs of what is drawn from it."""
    stored = idata.posterior.attrs.get("bayesmix_health")
    if stored is None:
        return {}
    # a fit is healthy when its stored SamplerHealth lists no problem (read without importing
    # the diagnostics module, which imports this one)
    return {"health_ok": int(not json.loads(stored).get("problems")), "health": stored}


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
        Draws with a ``sample_dim`` dimension (e.g. the output of :func:`predict`), or with
        ArviZ's ``chain`` and ``draw`` dims instead (``predict(..., draw_dims="chain_draw")``,
        :func:`to_chain_draw`; then ``sample_dim`` is left at ``"sample"``).
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
    if sample_dim == "sample" and sample_dim not in draws.dims and {"chain", "draw"} <= set(draws.dims):
        draws = _from_chain_draw(draws)
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

"""Every ArviZ call of bayesmix lives here, so moving to ArviZ 1.x changes one file.

The rest of the package sees ``InferenceData`` only through these functions and plain xarray.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

InferenceData = az.InferenceData


def from_dict(
    posterior: dict[str, np.ndarray],
    *,
    coords: dict[str, Any],
    dims: dict[str, list[str]],
    constant_data: dict[str, np.ndarray] | None = None,
    observed_data: dict[str, np.ndarray] | None = None,
    sample_stats: dict[str, np.ndarray] | None = None,
) -> InferenceData:
    """Build InferenceData from arrays shaped ``(chain, draw, ...)``."""
    return az.from_dict(
        posterior=posterior,
        constant_data=constant_data,
        observed_data=observed_data,
        sample_stats=sample_stats,
        coords=coords,
        dims=dims,
    )


def rhat(idata: InferenceData, var_names: list[str] | None = None) -> xr.Dataset:
    """Rank-normalised split r_hat per variable element."""
    return az.rhat(idata, var_names=var_names)


def ess_bulk(idata: InferenceData, var_names: list[str] | None = None) -> xr.Dataset:
    """Bulk effective sample size per variable element."""
    return az.ess(idata, var_names=var_names, method="bulk")


def ess_tail(idata: InferenceData, var_names: list[str] | None = None) -> xr.Dataset:
    """Tail effective sample size per variable element."""
    return az.ess(idata, var_names=var_names, method="tail")


def hdi(draws: xr.DataArray, prob: float, sample_dim: str = "sample") -> xr.Dataset:
    """Highest-density interval of ``draws`` over ``sample_dim``; returns ``lower``/``upper``."""
    ordered = draws.transpose(sample_dim, ...)
    others = [d for d in ordered.dims if d != sample_dim]
    coords = {name: coord for name, coord in draws.coords.items() if sample_dim not in coord.dims}
    arranged = xr.DataArray(
        ordered.to_numpy()[None], dims=("chain", "draw", *others), coords=coords, name=draws.name or "x"
    )
    out = az.hdi(arranged, hdi_prob=prob)
    var = next(iter(out.data_vars))
    return xr.Dataset(
        {"lower": out[var].sel(hdi="lower", drop=True), "upper": out[var].sel(hdi="higher", drop=True)}
    )


def summary(idata: InferenceData, var_names: list[str] | None = None, **kwargs: Any) -> Any:
    """ArviZ's summary table (pandas); ``kwargs`` go to ``arviz.summary``."""
    return az.summary(idata, var_names=var_names, **kwargs)


def loo(idata: InferenceData, *, var_name: str = "loss", pointwise: bool = False) -> Any:
    """PSIS-LOO (``arviz.loo``) of ``idata``'s ``log_likelihood[var_name]``: ArviZ's ``ELPDData``."""
    return az.loo(idata, var_name=var_name, pointwise=pointwise)


def compare(fits: dict[str, InferenceData], *, var_name: str = "loss") -> Any:
    """``arviz.compare`` by PSIS-LOO (log scale): ArviZ's table, best fit first."""
    return az.compare(fits, ic="loo", var_name=var_name, scale="log")


def set_group(idata: InferenceData, group: str, dataset: xr.Dataset) -> None:
    """Put ``dataset`` in ``idata`` as ``group`` (in place), replacing a group of that name."""
    if group in idata.groups():
        setattr(idata, group, dataset)
    else:
        idata.add_groups({group: dataset})


def shallow_copy(idata: InferenceData) -> InferenceData:
    """A new InferenceData holding ``idata``'s groups (the datasets are shared, not copied)."""
    return az.InferenceData(**{name: getattr(idata, name) for name in idata.groups()})


def with_group(idata: InferenceData, group: str, dataset: xr.Dataset) -> InferenceData:
    """A new InferenceData with ``idata``'s groups (shared, not copied) and ``dataset`` as ``group``."""
    groups = {name: getattr(idata, name) for name in idata.groups()}
    groups[group] = dataset
    return az.InferenceData(**groups)


def to_netcdf(idata: InferenceData, path: str, compress: bool = False) -> None:
    """Write InferenceData to a netCDF file (uncompressed unless ``compress``).

    zlib gains little on posterior draws and costs much time: on a RegMix-size fit with its
    float32 log likelihood (130 MB of arrays) it wrote 121.5 MB in 4.2 s against 130 MB in
    0.14 s uncompressed; the posterior alone 22.8 MB against 23.5 MB.

    Raises
    ------
    OSError
        Before anything is written (``ENOSPC`` / ``EFBIG``), when the arrays alone would not fit in
        the free disk space or under the process's file-size limit: a netCDF write that fails
        half-way leaves the HDF5 library in a state that crashes the interpreter at exit.
    """
    from bayesmix.data.files import check_room

    size = sum(int(v.nbytes) for group in idata.groups() for v in getattr(idata, group).variables.values())
    check_room(path, size + size // 10 + 64 * 1024)
    idata.to_netcdf(path, compress=compress)


def from_netcdf(path: str) -> InferenceData:
    """Read InferenceData from a netCDF file (into memory; the file is closed afterwards)."""
    idata = az.from_netcdf(path)
    for group in idata.groups():
        getattr(idata, group).load()
    return idata


def copy(idata: InferenceData) -> InferenceData:
    """A deep copy of InferenceData (its groups and their attrs)."""
    return idata.copy()


def add_groups(
    idata: InferenceData,
    groups: dict[str, dict[str, np.ndarray]],
    *,
    coords: dict[str, Any],
    dims: dict[str, list[str]],
) -> None:
    """Add groups of plain arrays without chain/draw dims (``constant_data``, ...) in place."""
    datasets = {}
    for group, values in groups.items():
        variables = {}
        for name, value in values.items():
            value = np.asarray(value)
            names = list(dims.get(name, []))[: value.ndim]
            names += [f"{name}_dim_{i}" for i in range(len(names), value.ndim)]
            var_coords = {d: coords[d] for d in names if d in coords and len(coords[d]) == value.shape[names.index(d)]}
            variables[name] = xr.DataArray(value, dims=names, coords=var_coords)
        datasets[group] = xr.Dataset(variables)
    idata.add_groups(datasets)


def psis_log_weights(log_ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pareto-smoothed, normalised importance log weights over the last axis, and their ``k``.

    ``log_ratios`` is ``(..., sample)`` (for leave-one-out: minus each observation's log
    likelihood); returns the log weights (same shape) and ``k`` (shape ``...``).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weights, k = az.psislw(np.asarray(log_ratios, dtype=float))
    return np.asarray(weights), np.asarray(k)


def pareto_k(log_ratios: np.ndarray) -> float:
    """Pareto ``k`` of importance log ratios (PSIS); ``inf`` when no ratio is finite."""
    finite = np.asarray(log_ratios, dtype=float)
    if not np.isfinite(finite).any():
        return float("inf")
    finite = np.where(np.isfinite(finite), finite, np.min(finite[np.isfinite(finite)]) - 1e3)
    return float(psis_log_weights(finite - finite.max())[1])

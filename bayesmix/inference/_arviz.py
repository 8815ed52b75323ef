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
    arranged = draws.rename({sample_dim: "draw"}).expand_dims("chain", 0)
    out = az.hdi(arranged, hdi_prob=prob)
    var = next(iter(out.data_vars))
    return xr.Dataset(
        {"lower": out[var].sel(hdi="lower", drop=True), "upper": out[var].sel(hdi="higher", drop=True)}
    )


def summary(idata: InferenceData, var_names: list[str] | None = None) -> Any:
    """ArviZ's summary table (pandas)."""
    return az.summary(idata, var_names=var_names)


def to_netcdf(idata: InferenceData, path: str) -> None:
    """Write InferenceData to a netCDF file."""
    idata.to_netcdf(path)


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


def pareto_k(log_ratios: np.ndarray) -> float:
    """Pareto ``k`` of importance log ratios (PSIS); ``inf`` when no ratio is finite."""
    finite = np.asarray(log_ratios, dtype=float)
    if not np.isfinite(finite).any():
        return float("inf")
    finite = np.where(np.isfinite(finite), finite, np.min(finite[np.isfinite(finite)]) - 1e3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, k = az.psislw(finite - finite.max())
    return float(np.asarray(k))

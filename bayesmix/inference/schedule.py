"""Fit the phase law to multi-phase runs, and predict the final loss of any schedule.

::

    table = bm.PhaseTable.from_ledger(study.ledger)         # or PhaseTable.from_phases(...)
    fit = bm.fit_schedule(table)
    draws = bm.predict_schedule(fit, [[(0, {"web": 0.7, "code": 0.3}), (0.8, {"code": 1.0})]])
    bm.optimise_schedule(fit, target="mean")                 # mixtures per phase and the switch

A schedule is a list of ``(start, mixture)`` phases: the fraction of the run's tokens before the
phase (0 for the first) and its mixture. The fit's law is
:class:`~bayesmix.laws.schedule.PhaseMixingLaw`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from bayesmix.data.phases import PhaseTable, check_starts, phase_mixture_rows, phase_tails
from bayesmix.errors import InputError
from bayesmix.inference import _arviz, engine
from bayesmix.inference.diagnostics import finish_nuts_fit, fit_settings
from bayesmix.laws.schedule import MIN_TAIL, PhaseMixingLaw
from bayesmix.models.schedule import build_schedule_model

logger = logging.getLogger(__name__)

#: the posterior variables a phase-law fit keeps and checks
PUBLIC = ("c", "log_k", "t", "recency", "sigma")

Schedule = Sequence[tuple[float, Mapping[str, float]]]


def fit_schedule(
    table: PhaseTable,
    law: PhaseMixingLaw | None = None,
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
    """Fit the phase law by NUTS (nutpie, compiled once per structure).

    Parameters
    ----------
    table
        Multi-phase runs and their final losses (nats/token): :class:`~bayesmix.data.phases.PhaseTable`.
    law
        The law (default :class:`~bayesmix.laws.schedule.PhaseMixingLaw`).
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
        Posterior of ``c``, ``log_k``, ``t``, ``recency`` and ``sigma`` with named dims;
        ``constant_data`` (phase mixtures, tails, reference mixture), ``observed_data``;
        ``posterior.attrs["bayesmix_schedule"]`` (JSON: law options, domains, the fitted phase
        starts and share ranges, likelihood), ``bayesmix_health`` and ``bayesmix_versions``.

    Raises
    ------
    InputError, NotEnoughDataError
        Not a phase table; too few runs; bad settings.
    """
    law = PhaseMixingLaw() if law is None else law
    if not isinstance(law, PhaseMixingLaw):
        raise InputError("law", f"got {type(law).__name__}", "pass a PhaseMixingLaw or leave it out")
    engine.check_nuts_settings(draws, tune, chains, target_accept)
    model = build_schedule_model(law, table, likelihood=likelihood, nu=nu)
    runs = table.runs
    logger.info("fitting the phase law to %d runs with up to %d phases (NUTS)", runs.n_runs, table.n_phases)
    started = time.perf_counter()
    idata = engine.sample_nuts(
        model, draws=draws, tune=tune, chains=chains, target_accept=target_accept, seed=seed, progressbar=progressbar
    )
    keep = [name for name in PUBLIC if name in idata.posterior]
    idata.posterior = idata.posterior[keep]
    real = table.tails > MIN_TAIL
    starts = 1.0 - table.tails[:, 1:][real[:, 1:]] if table.n_phases > 1 else np.array([])
    shares = table.phase_mixtures[np.broadcast_to(real[:, :, None], table.phase_mixtures.shape)].reshape(-1, len(runs.train_domains))
    info = {
        "law": {"name": law.name, "options": law.options()},
        "domains": list(runs.domains),
        "train_domains": list(runs.train_domains),
        "n_phases": table.n_phases,
        "start_range": [float(starts.min()), float(starts.max())] if starts.size else [],
        "share_range": [shares.min(axis=0).tolist(), shares.max(axis=0).tolist()],
        "likelihood": likelihood,
        "nu": float(nu),
    }
    seconds = time.perf_counter() - started
    finish_nuts_fit(idata, key="bayesmix_schedule", info=info, variables=keep, seed=seed, seconds=seconds, strict=strict)
    return idata


def schedule_info(idata: _arviz.InferenceData) -> dict[str, Any]:
    """The settings a phase-law fit stores (``posterior.attrs["bayesmix_schedule"]``).

    Raises
    ------
    InputError
        ``idata`` is not a fit of :func:`fit_schedule`.
    """
    return fit_settings(idata, "bayesmix_schedule", "a phase-law fit", "pass the result of bayesmix.fit_schedule")


def schedule_arrays(schedules: Sequence[Schedule], train_domains: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Phase mixtures ``(schedule, phase, train_domain)`` and tails ``(schedule, phase)`` of schedules.

    Raises
    ------
    InputError
        A schedule with no phases, bad starts, or mixtures over unknown domains.
    """
    if isinstance(schedules, (str, Mapping)) or not isinstance(schedules, Sequence) or not schedules:
        raise InputError("schedules", f"got {schedules!r}", "give a list of schedules, each [(start, mixture), ...]")
    n_phases = max(len(s) for s in schedules)
    mixtures = np.zeros((len(schedules), n_phases, len(train_domains)))
    tails = np.full((len(schedules), n_phases), MIN_TAIL)
    for i, schedule in enumerate(schedules):
        if isinstance(schedule, (str, Mapping)) or not isinstance(schedule, Sequence) or not schedule:
            raise InputError(f"schedules[{i}]", f"got {schedule!r}", "give [(start, mixture), ...], the first start 0")
        starts = check_starts([phase[0] for phase in schedule], f"schedules[{i}]")
        rows = phase_mixture_rows([phase[1] for phase in schedule], train_domains, f"schedules[{i}]")
        mixtures[i, : len(schedule)] = rows
        mixtures[i, len(schedule) :] = rows[-1]
        tails[i, : len(schedule)] = phase_tails(starts)
    return mixtures, tails


def posterior_params(idata: _arviz.InferenceData, max_draws: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """The law's parameters on (at most ``max_draws``, chosen under ``seed``) draws, leading axis ``sample``."""
    schedule_info(idata)
    posterior = idata.posterior
    values = {name: posterior[name].to_numpy() for name in PUBLIC}
    values = {k: v.reshape((-1, *v.shape[2:])) for k, v in values.items()}
    n = next(iter(values.values())).shape[0]
    if max_draws is not None and max_draws < n:
        pick = np.sort(np.random.default_rng(seed).choice(n, size=int(max_draws), replace=False))
        values = {k: v[pick] for k, v in values.items()}
    values["reference_mixture"] = np.asarray(idata.constant_data["reference_mixture"], dtype=float)
    return values


def predict_schedule(
    idata: _arviz.InferenceData,
    schedules: Sequence[Schedule],
    *,
    kind: str = "mean",
    max_draws: int | None = None,
    seed: int = 0,
) -> xr.DataArray:
    """Posterior draws of the final loss of schedules.

    Parameters
    ----------
    idata
        A fit of :func:`fit_schedule`.
    schedules
        One ``[(start, mixture), ...]`` per schedule (see the module docstring); a
        single-phase run is ``[(0, mixture)]``.
    kind
        ``"mean"``: the law's loss (what the schedule's expected loss is); ``"predictive"``: a
        new run's loss, with the fitted run noise added (Student-t or normal, under ``seed``).
    max_draws, seed
        Thin to at most this many posterior draws (chosen under ``seed``).

    Returns
    -------
    xarray.DataArray
        ``(sample, schedule, domain)``, nats/token.

    Raises
    ------
    InputError
        Not a phase-law fit; bad schedules; unknown ``kind``.
    """
    info = schedule_info(idata)
    if kind not in ("mean", "predictive"):
        raise InputError("kind", f"got {kind!r}", "use 'mean' or 'predictive'")
    mixtures, tails = schedule_arrays(schedules, info["train_domains"])
    params = posterior_params(idata, max_draws, seed)
    values = PhaseMixingLaw.evaluate(params, mixtures, tails, np)
    if kind == "predictive":
        rng = np.random.default_rng(seed)
        noise = rng.standard_t(info["nu"], size=values.shape) if info["likelihood"] == "student_t" else rng.standard_normal(values.shape)
        values = values + noise * params["sigma"][:, None, :]
    return xr.DataArray(
        values,
        dims=("sample", "schedule", "domain"),
        coords={"schedule": np.arange(len(schedules)), "domain": info["domains"]},
        name="loss",
    )

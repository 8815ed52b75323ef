"""``fit``: a law on a run table, by NUTS (nutpie by default), MAP, or the paper's point protocol."""

from __future__ import annotations

import json
import time
import warnings
from typing import Any

import numpy as np

from bayesmix.data.runs import RunTable
from bayesmix.errors import BayesmixError, InputError
from bayesmix.inference import _arviz, approx, engine
from bayesmix.inference.diagnostics import SamplerHealth, check_health, laplace_health, report_health
from bayesmix.inference.discrepancy import attach_residuals, calibrate_discrepancy
from bayesmix.inference.paper import fit_paper
from bayesmix.inference.predict import add_log_likelihood, add_posterior_predictive, check_seed
from bayesmix.laws.base import Law
from bayesmix.laws.mixing import MixingLaw
from bayesmix.models.discrepancy import Discrepancy
from bayesmix.models.mixing_model import ModelSpec, build_model, check_model_settings, summarise_data
from bayesmix.versions import package_versions

#: the paper protocol refuses smaller losses (its initialisation grid is in nats; see fit's Notes)
PAPER_MIN_LOSS = 0.02

METHODS = ("nuts", "laplace", "map", "paper")
SAMPLERS = ("nutpie", "pymc")
#: ``fit`` attaches ``log_likelihood`` and ``posterior_predictive`` (float32) by default only up to
#: this many values each (draws x runs x domains: 20 MB per group). Measured on RegMix (512 runs x
#: 13 domains x 4000 draws, 26.6 million values): 106 MB per group in float32 (213 MB in
#: float64), 1.7-1.8 s to compute each, and a saved fit of 236 MB instead of 23 MB; such fits
#: get the groups on demand (:func:`~bayesmix.inference.predict.add_log_likelihood`,
#: :func:`~bayesmix.inference.predict.add_posterior_predictive`; ``loo``/``compare`` compute the
#: log likelihood themselves when it is absent)
GROUP_MAX_VALUES = 5_000_000


class DiscrepancySkippedWarning(UserWarning):
    """``fit(..., discrepancy="auto")`` fitted the law alone: region backtests were not possible."""


def fit(
    runs: RunTable,
    law: Law | None = None,
    *,
    method: str = "nuts",
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int | None = None,
    chains: int = 4,
    target_accept: float = 0.9,
    seed: int = 0,
    likelihood: str = "student_t",
    nu: float = 5.0,
    noise: str = "independent",
    discrepancy: Any = "auto",
    strict: bool = False,
    progressbar: bool = False,
    paper_inits: int = 200,
    arviz_groups: bool | None = None,
    warm_start: _arviz.InferenceData | None = None,
) -> _arviz.InferenceData:
    """Fit ``law`` to ``runs`` and return the posterior as ArviZ InferenceData.

    Parameters
    ----------
    runs
        Validated proxy runs (:class:`~bayesmix.data.runs.RunTable`).
    law
        The law; default :class:`~bayesmix.laws.MixingLaw` (the paper's M4, hierarchical).
    method
        ``"nuts"`` (full posterior, the default for final fits), ``"laplace"`` (a Gaussian at
        the posterior mode: a fast approximate posterior for inner loops, checked against NUTS
        in ``benchmarks/speed.py``), ``"map"`` (the posterior mode, a quick look with no
        uncertainty) or ``"paper"`` (the paper's Huber/L-BFGS protocol, per domain; mixing laws
        only). ``"nuts"``, ``"laplace"`` and ``"map"`` share one compiled model per model
        structure and process (:mod:`bayesmix.inference.engine`): a refit on other runs of the
        same structure does not compile again.
    sampler
        ``"nutpie"`` (default, fast) or ``"pymc"`` (PyMC's own NUTS, the fallback).
    draws, tune, chains, target_accept
        NUTS settings (``"laplace"`` uses ``draws`` and ``chains``: ``draws x chains``
        independent draws, shaped like a NUTS posterior). ``tune=None``: 500 tuning steps per
        chain for models of more than 100 parameters (nutpie's low-rank mass matrix settles
        within them; 300 with ``warm_start``), 1,000 below
        (:func:`bayesmix.inference.engine.default_tune`); PyMC's
        sampler (``sampler="pymc"``) tunes 1,000 unless told.
    seed
        Seed: the same seed gives the same numbers.
    likelihood, nu
        ``"student_t"`` with ``nu`` degrees of freedom (robust), or ``"normal"``.
    noise
        ``"independent"`` run noise per domain, or ``"shared"``: one factor correlates a run's
        noise across domains (use it when you predict totals over domains; see
        :class:`~bayesmix.models.ModelSpec`).
    discrepancy
        ``None``/``False`` (the law alone), ``True`` or a
        :class:`~bayesmix.models.discrepancy.Discrepancy`: the law's form error as a Gaussian
        process over mixture space, conditioned on the law's residuals at the runs, so that
        intervals widen away from the runs (:mod:`bayesmix.models.discrepancy`). Its length
        scale and amplitudes, unless given, come from region backtests on these runs
        (:func:`~bayesmix.inference.calibrate_discrepancy`: one Laplace fit per training
        domain, on one compiled model; their figures are stored in
        ``posterior.attrs["bayesmix_discrepancy_backtests"]``). ``"auto"`` (the default, as on
        the command line): the same, but a table too small for the backtests is fitted without
        it, with a :class:`DiscrepancySkippedWarning`, and a law that reads per-run inputs
        (:attr:`~bayesmix.laws.Law.run_inputs`, e.g. the repetition-aware law) or fitted by
        ``method="paper"`` (the published protocol) is fitted alone; the reason is stored in
        ``posterior.attrs["bayesmix_discrepancy_skipped"]``. The backtests cost one Laplace fit
        per training domain whatever the ``method`` (RegMix, 17 domains: a NUTS fit 62-66 s
        instead of 28-34 s; a MAP fit, otherwise well under a second, then takes seconds).
        Pass ``None`` to fit the law alone (intervals then hold only inside the runs: see
        benchmarks/RESULTS.md, "Extrapolation").
    strict
        Raise :class:`~bayesmix.errors.SamplerHealthError` instead of warning on divergences,
        ``r_hat > 1.01`` or low ESS.
    progressbar
        Show the sampler's progress bar.
    paper_inits
        Number of starts from the paper's initialisation grid (``method="paper"``).
    arviz_groups
        Attach the ``log_likelihood`` and ``posterior_predictive`` groups (float32, see
        :func:`~bayesmix.inference.predict.add_log_likelihood` and
        :func:`~bayesmix.inference.predict.add_posterior_predictive`). ``None`` (default): for
        ``"nuts"`` and ``"laplace"`` fits whose groups hold at most :data:`GROUP_MAX_VALUES`
        values each (draws x runs x domains), so that a RegMix-size fit stays small in memory
        and on disk; point fits (``"map"``, ``"paper"``: one draw, no LOO, no spread to check)
        never. ``True``: always; ``False``: never. Absent groups can be added later with
        ``add_log_likelihood``/``add_posterior_predictive``.
    warm_start
        An earlier NUTS fit of the same law, likelihood and noise model on the same domains
        (e.g. the fit before the last batch of runs): each chain starts at one of its draws
        instead of a jittered point near the prior's centre. The posterior is the same (the
        tuning steps are discarded either way); the refit is faster because the chains skip
        the transient of the early adaptation, and models of more than 100 parameters tune
        300 steps instead of 500 (RegMix 512 x 17 x 13 refitted on other runs, 3 seeds:
        18.4-24.5 s from the prior, 16.1-16.7 s warm-started, 13.3-14.0 s with the shorter
        tuning, with 25-40% fewer effective draws, still above 900; ``benchmarks/speed.py``).
        ``method="nuts"`` with nutpie only; a point fit (one draw) is refused. These figures
        are the law alone (``discrepancy=None``); with the default form error each refit also
        reruns the region backtests.

    Returns
    -------
    arviz.InferenceData
        Groups ``posterior`` (the law's parameters and the sampler's variables, every dim named:
        ``domain``, ``train_domain``, ``train_contrast``, ...; no transformed ``*__`` copies),
        ``constant_data`` (the mixtures and the law's constants), ``observed_data`` (``loss``,
        dims ``(run, domain)``), for NUTS ``sample_stats`` and, per ``arviz_groups``,
        ``log_likelihood`` and ``posterior_predictive`` (``loss``, named as in
        ``observed_data``). ``posterior.attrs`` hold the model spec, its hash, the package
        versions, the sampler health, the fit time and (NUTS, Laplace, MAP) the compile time
        and whether the compiled model came from the cache.

    Raises
    ------
    InputError, NotEnoughDataError
        Bad arguments or too few runs.
    SamplerHealthError
        With ``strict=True`` when the sampler reports problems.

    Notes
    -----
    *Loss scale.* ``"nuts"`` and ``"map"`` scale their priors from the data, so losses near
    zero (1e-6) or large (1e4) fit the same law, scaled (measured on 20 simulated runs: the
    rescaled predictions agree to 0.03% for MAP and 0.1% for NUTS). ``"paper"`` keeps the
    paper's fixed initialisation grid (``c >= e^-2``) and Huber ``delta = 0.05``, which assume
    losses in nats per token: on losses scaled to ~3e-3 its predictions were 16% off, to ~3e-6
    200x off, so it refuses losses below :data:`PAPER_MIN_LOSS` with an ``InputError`` (large
    losses are fine: 0.2% at 1e4x).

    *Runs vs parameters.* Every method, the paper protocol included, raises
    ``NotEnoughDataError`` unless there are at least ``law.n_parameters + RUNS_MARGIN`` runs (one
    more than the law has parameters per validation domain;
    :data:`bayesmix.data.runs.RUNS_MARGIN`): with as many runs as parameters the fit would
    interpolate the runs and report no noise.
    """
    law = MixingLaw() if law is None else law
    if method in ("laplace", "map"):
        # the non-centred form: its joint density has a proper mode (the centred one grows without
        # bound as the hierarchy's spreads shrink, so its "mode" flattens every slope to the
        # pooled centre: 0.07-0.09 nats off on 12 runs x 5 domains, against 0.006-0.008)
        law = law.laplace_form()
    if not isinstance(runs, RunTable):
        raise InputError("runs", f"got {type(runs).__name__}", "build a RunTable (RunTable.from_wide, ...)")
    if method not in METHODS:
        raise InputError("method", f"unknown method {method!r}", f"use one of {METHODS}")
    if sampler not in SAMPLERS:
        raise InputError("sampler", f"unknown sampler {sampler!r}", f"use one of {SAMPLERS}")
    engine.check_nuts_settings(draws, tune, chains, target_accept)
    if warm_start is not None and (method != "nuts" or sampler != "nutpie"):
        raise InputError(
            "warm_start",
            f"starts NUTS chains; this fit is method={method!r}, sampler={sampler!r}",
            "use method='nuts' with sampler='nutpie', or warm_start=None",
        )
    # bad settings are refused before the discrepancy's backtests (which would fail on them too)
    check_seed(seed)
    if method != "paper":  # the paper protocol runs no backtests and checks its runs in its own terms
        check_model_settings(law, runs, likelihood, nu, noise)
    model = start = None
    if warm_start is not None:  # checked (and the model built) before the discrepancy's backtests
        model = build_model(law, runs, likelihood=likelihood, nu=nu, noise=noise)
        start = engine.earlier_draws(model, warm_start, seed=seed)
    if arviz_groups is not None and not isinstance(arviz_groups, bool):
        raise InputError("arviz_groups", f"got {arviz_groups!r}", "give True, False or None (by size)")
    check_mixture_variation(runs)
    auto = isinstance(discrepancy, str) and discrepancy == "auto"
    settings = Discrepancy() if auto else Discrepancy.coerce(discrepancy)
    skipped = None  # why "auto" fitted the law alone (posterior.attrs["bayesmix_discrepancy_skipped"])
    if auto and method == "paper":  # the published protocol as published: the law alone
        settings, skipped = None, "the paper protocol fits the law alone"
    if settings is not None and law.run_inputs:
        # the discrepancy is a process over mixtures alone; these laws also read per-run inputs
        if not auto:
            raise InputError(
                "discrepancy",
                f"is not available for the {law.name} law, which reads per-run inputs {list(law.run_inputs)}",
                "fit without it (discrepancy=None)",
            )
        settings, skipped = None, f"the {law.name} law reads per-run inputs"
    extra: dict[str, Any] = {}
    calibration = None
    if settings is not None:
        if settings.sd is not None and len(settings.sd) != len(runs.domains):
            raise InputError(
                "discrepancy",
                f"has {len(settings.sd)} amplitudes for {len(runs.domains)} validation domains",
                "give one per domain, or Discrepancy() to estimate them",
            )
        if not settings.complete:
            try:
                calibration = calibrate_discrepancy(runs, law, seed=seed, likelihood=likelihood, nu=nu)
            except (BayesmixError, FloatingPointError, np.linalg.LinAlgError) as err:
                # too few runs for the backtests, or a fold whose fit failed numerically
                if not auto:
                    raise
                skipped = f"its region backtests are not possible here ({err})"
                warnings.warn(
                    f"fitted without the discrepancy term: {skipped}", DiscrepancySkippedWarning, stacklevel=2
                )
                settings = None
            else:
                settings = calibration.settings
    if settings is not None:
        extra["discrepancy"] = settings.to_dict()
    spec = ModelSpec(
        law=law.spec(),
        domains=tuple(runs.domains),
        train_domains=tuple(runs.train_domains),
        likelihood="normal" if method == "paper" else likelihood,
        nu=float(nu),
        noise="independent" if method == "paper" else noise,
        method=method,
        extra=extra,
    )
    started = time.perf_counter()
    if method == "paper":
        with engine.one_blas_thread():
            idata = _fit_paper(law, runs, seed=seed, n_inits=paper_inits)
    else:
        if model is None:
            model = build_model(law, runs, likelihood=likelihood, nu=nu, noise=noise)
        if method == "map":
            idata = _fit_map(model, seed=seed)
        elif method == "laplace":
            fixed = tuple(f"{name}_log__" for name in law.spread_parameters)
            idata, laplace_draws = _fit_laplace(model, draws=draws, chains=chains, seed=seed, fixed=fixed)
        else:
            idata = _fit_nuts(
                model, sampler, draws, tune, chains, target_accept, seed, progressbar, warm_start=start
            )
    seconds = time.perf_counter() - started
    names = (
        [p.name for p in law.parameters] + ["sigma"] + (["exponent"] if "exponent" in idata.posterior else [])
    )
    if method == "laplace":
        health = laplace_health(laplace_draws, chains=chains, draws=draws)
    else:
        health = check_health(idata, names, method=method)
    attrs = idata.posterior.attrs
    attrs["bayesmix_spec"] = spec.to_json()
    attrs["bayesmix_spec_hash"] = spec.hash
    attrs["bayesmix_versions"] = json.dumps(package_versions(), sort_keys=True)
    attrs["bayesmix_health"] = health.to_json()
    attrs["bayesmix_fit_seconds"] = float(seconds)
    attrs["bayesmix_seed"] = int(seed)
    if settings is not None:
        attach_residuals(idata, runs)
        if calibration is not None:
            attrs["bayesmix_discrepancy_backtests"] = calibration.to_json()
    elif skipped is not None:
        attrs["bayesmix_discrepancy_skipped"] = skipped
    report_health(health, strict=strict)
    if wants_groups(idata, method, arviz_groups):
        add_log_likelihood(idata)
        add_posterior_predictive(idata, seed=seed)
    return idata


def wants_groups(idata: _arviz.InferenceData, method: str, arviz_groups: bool | None) -> bool:
    """Whether ``fit`` attaches ``log_likelihood`` and ``posterior_predictive`` (see its ``arviz_groups``)."""
    if arviz_groups is not None:
        return arviz_groups
    if method not in ("nuts", "laplace"):
        return False
    posterior, observed = idata.posterior, idata.observed_data["loss"]
    return posterior.sizes["chain"] * posterior.sizes["draw"] * observed.size <= GROUP_MAX_VALUES


def check_mixture_variation(runs: RunTable) -> None:
    """Refuse run tables from which no law can learn how the mixture matters.

    Parameters
    ----------
    runs
        The run table to fit.

    Raises
    ------
    InputError
        When every run has the same mixture, or a training domain is 0 in every run (its effect
        would come from the prior alone, and predictions that use it would look fitted but are not).
    """
    mixtures = runs.mixtures.to_numpy()
    if runs.n_runs > 1 and np.allclose(mixtures, mixtures[:1], rtol=0.0, atol=1e-9):
        raise InputError(
            "mixtures",
            f"all {runs.n_runs} runs have the same mixture, so the effect of the mixture cannot be learned",
            "add runs with other mixtures",
        )
    unused = [d for d, col in zip(runs.train_domains, mixtures.T, strict=True) if not (col > 0).any()]
    if unused:
        raise InputError(
            "mixtures",
            f"training domain(s) {unused} are 0 in every run, so their effect cannot be learned",
            "drop those mixture columns (and do not predict mixtures that use them), or add runs that train on them",
        )


def _fit_nuts(
    model: Any,
    sampler: str,
    draws: int,
    tune: int | None,
    chains: int,
    target_accept: float,
    seed: int,
    progressbar: bool,
    low_rank: bool | None = None,
    warm_start: _arviz.InferenceData | dict[str, np.ndarray] | None = None,
    start_jitter: float | None = None,
) -> _arviz.InferenceData:
    if sampler != "nutpie" and (warm_start is not None or start_jitter is not None):
        raise InputError(
            "warm_start" if warm_start is not None else "start_jitter",
            f"sets where nutpie's chains start; the sampler is {sampler!r}",
            "use sampler='nutpie', or leave it None",
        )
    if sampler == "nutpie":
        return engine.sample_nuts(
            model,
            draws=draws,
            tune=tune,
            chains=chains,
            target_accept=target_accept,
            seed=seed,
            progressbar=progressbar,
            low_rank=low_rank,
            warm_start=warm_start,
            start_jitter=start_jitter,
        )
    import pymc as pm

    with model, engine.quiet(), engine.one_blas_thread():
        idata = pm.sample(
            draws=int(draws),
            tune=engine.DEFAULT_TUNE["diagonal"] if tune is None else int(tune),
            chains=int(chains),
            target_accept=target_accept,
            random_seed=int(seed),
            progressbar=progressbar,
            cores=1,
            compute_convergence_checks=False,
            idata_kwargs={"log_likelihood": False},
        )
    return idata


def _point_idata(values: dict[str, np.ndarray], model_dims: dict[str, Any], coords, constants, observed):
    posterior = {name: np.asarray(v)[None, None, ...] for name, v in values.items()}
    names = list(values) + list(constants or {}) + list(observed or {})
    dims = {name: list(model_dims.get(name, ())) for name in names}
    return _arviz.from_dict(
        posterior, coords=coords, dims=dims, constant_data=constants, observed_data=observed
    )


def _stored(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The named model variables of an expanded point (no transformed ``*__`` values)."""
    return {name: v for name, v in values.items() if not name.endswith("__")}


def _engine_idata(posterior: dict[str, np.ndarray], model, comp: engine.Compiled) -> _arviz.InferenceData:
    """InferenceData of ``(chain, draw, ...)`` arrays with ``model``'s data and the compile attrs."""
    coords, dims, constants, observed = engine.model_data(model)
    names = list(posterior) + list(constants) + list(observed)
    idata = _arviz.from_dict(
        posterior,
        coords=coords,
        dims={name: list(dims.get(name, ())) for name in names},
        constant_data=constants,
        observed_data=observed,
    )
    idata.posterior.attrs["bayesmix_compile_seconds"] = float(comp.compile_seconds)
    idata.posterior.attrs["bayesmix_compiled_from_cache"] = int(comp.cached)
    return idata


def _fit_map(model, seed: int) -> _arviz.InferenceData:
    with engine.one_blas_thread():
        comp = engine.compiled(model)
        mode = approx.find_mode(comp, seed=seed)
        point = _stored(comp.expand(mode.x))
    if not all(np.isfinite(v).all() for v in point.values()):
        raise FloatingPointError("the model's variables are not finite at the posterior mode")
    return _engine_idata({name: v[None, None, ...] for name, v in point.items()}, model, comp)


def _fit_laplace(
    model, draws: int, chains: int, seed: int, fixed: tuple[str, ...] = ()
) -> tuple[_arviz.InferenceData, approx.LaplaceDraws]:
    with engine.one_blas_thread():
        comp = engine.compiled(model)
        result = approx.laplace(comp, draws=draws, chains=chains, seed=seed, fixed=fixed)
    return _engine_idata(_stored(result.posterior), model, comp), result


def _fit_paper(law: Law, runs: RunTable, seed: int, n_inits: int) -> _arviz.InferenceData:
    if not isinstance(law, MixingLaw) or law.exponent == "learn":
        raise InputError(
            "method",
            f"the paper protocol fits the per-domain mixing law with a fixed exponent, not {law!r}",
            "use method='nuts' or 'map' for this law, or law=MixingLaw()",
        )
    runs.check_enough_runs(
        law.n_parameters(len(runs.domains), len(runs.train_domains)),
        what=f"the paper protocol with {len(runs.train_domains)} training domains",
    )
    smallest = float(runs.losses.to_numpy().min())
    if smallest < PAPER_MIN_LOSS:
        raise InputError(
            "runs",
            f"the smallest loss is {smallest:.3g}; the paper protocol's fixed initialisation grid and "
            f"Huber delta assume losses in nats per token (>= {PAPER_MIN_LOSS}) and fit wrongly below",
            "use method='nuts' or 'map' (their priors scale with the data), or give losses in nats",
        )
    data = summarise_data(runs)
    constants = law.constant_values(data)
    values = fit_paper(
        runs.mixtures.to_numpy(),
        runs.losses.to_numpy(),
        constants["reference_mixture"],
        exponent=float(law.exponent),
        n_inits=n_inits,
        seed=seed,
    )
    coords = {
        "run": [str(r) for r in runs.mixtures.index],
        "domain": runs.domains,
        "train_domain": runs.train_domains,
    }
    dims = {
        "c": ("domain",),
        "log_k": ("domain",),
        "t": ("domain", "train_domain"),
        "sigma": ("domain",),
        "reference_mixture": ("train_domain",),
        "mixtures": ("run", "train_domain"),
        "loss": ("run", "domain"),
    }
    constants["mixtures"] = runs.mixtures.to_numpy()
    idata = _point_idata(values, dims, coords, constants, {"loss": runs.losses.to_numpy()})
    return idata


def health(idata: _arviz.InferenceData) -> SamplerHealth:
    """The sampler health recorded in a fit (see :class:`~bayesmix.inference.diagnostics.SamplerHealth`)."""
    return SamplerHealth.from_json(idata.posterior.attrs["bayesmix_health"])

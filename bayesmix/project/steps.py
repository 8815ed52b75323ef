"""The steps of the workflow on a project folder: design, train, fit, choose, suggest.

Each step reads what the earlier ones wrote (the ledger, ``fits/``) and writes its own artefact,
so the CLI can run them one at a time (``bayesmix sweep|fit|optimise|suggest``) or all at once
(``bayesmix quickstart``), and a step can be rerun after more runs were trained.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from bayesmix.data.files import atomic_path
from bayesmix.design.initial import space_filling
from bayesmix.errors import InputError, NotEnoughDataError, SamplerHealthError, SamplerHealthWarning
from bayesmix.inference.diagnostics import SamplerHealth
from bayesmix.inference.nested import NestedFit, TargetExtrapolationWarning, fit_nested
from bayesmix.inference.nested_io import load_nested, save_nested
from bayesmix.inference.nested_target import target_fit
from bayesmix.optimise.constraints import build_box
from bayesmix.optimise.report import OptimisationResult
from bayesmix.project.project import Project
from bayesmix.proxy.plan import RunSpec, save_plan
from bayesmix.proxy.sweep import SweepReport
from bayesmix.versions import package_versions

logger = logging.getLogger(__name__)


def initial_plan(project: Project) -> list[RunSpec]:
    """The initial design: ``n_mixtures`` space-filling mixtures, each at every proxy size."""
    settings = project.settings
    domains = project.domains
    rng = np.random.default_rng([settings.seed, 0])
    mixtures = space_filling(settings.n_mixtures, build_box(domains), rng)
    return [
        RunSpec.make(dict(zip(domains, row, strict=True)), size, settings.steps, settings.seed)
        for size in settings.sizes
        for row in mixtures
    ]


def train(
    project: Project, runs: Sequence[RunSpec], workers: int = 2, console: Console | None = None
) -> SweepReport:
    """Train the runs that are not finished yet (a resumable sweep into the project's ledger)."""
    from bayesmix.proxy.executor import LocalProcessExecutor, SerialExecutor
    from bayesmix.proxy.sweep import sweep

    executor = SerialExecutor() if workers == 0 else LocalProcessExecutor(workers, 1)
    return sweep(project.study, runs, executor=executor, console=console)


def _fit_settings(project: Project) -> dict[str, Any]:
    return {"seed": project.settings.seed, **project.settings.fit}


def fit_project(project: Project, *, strict: bool = False, progressbar: bool = False) -> NestedFit:
    """Fit the nested scaling laws to the ledger's curves and save them (``fits/nested``).

    Also fits the mixing law on the largest proxy size's final losses (``fits/proxy.nc``): the
    check of the mixing law on observed runs that the report shows. The target-scale mixing
    stage is fitted by :func:`choose`.
    """
    from bayesmix.inference.fit import fit
    from bayesmix.inference.io import save

    table = project.curves()
    settings = _fit_settings(project)
    started = time.perf_counter()
    logger.info(
        "fitting the nested laws (steps, model size, mixture) to %d runs at %d model sizes",
        table.runs.shape[0], table.runs["model_size"].nunique(),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerHealthWarning)
        nested = fit_nested(table, strict=strict, progressbar=progressbar, **settings)
    save_nested(nested, project.nested_dir)  # saved before the proxy fit, which may refuse its data
    logger.info(
        "nested laws fitted in %.0f s; fitting the mixing law on the largest size's final losses",
        time.perf_counter() - started,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplerHealthWarning)
            # the law alone: the report's check of the law's form on the proxies' own runs (the
            # target-scale stage is the law alone too), and a project's few runs per size rarely
            # allow the form error's region backtests
            proxy = fit(
                project.final_runs(), strict=strict, progressbar=progressbar, discrepancy=None, **settings
            )
    except InputError as err:
        project.proxy_fit_path.unlink(missing_ok=True)  # never leave a stale check behind
        project.proxy_fit_path.with_suffix(".json").unlink(missing_ok=True)
        warnings.warn(f"the mixing-law check on the largest proxy size was not fitted: {err}", stacklevel=2)
    else:
        save(proxy, project.proxy_fit_path)
    return nested


def load_fits(project: Project) -> NestedFit:
    """The saved nested fit of the project."""
    return load_nested(project.nested_dir)


def choose(
    project: Project,
    nested: NestedFit | None = None,
    *,
    strict: bool = False,
    out: os.PathLike[str] | bool | None = True,
    target: Any = None,
    seed: int | None = None,
    **options: Any,
) -> OptimisationResult:
    """Optimise the mixture for the project's target scale (and write ``optimum.json``).

    Parameters
    ----------
    project, nested
        The project and its nested fit (default: the saved one).
    strict
        Raise :class:`SamplerHealthError` when a fitted stage is not healthy (after writing).
    out
        Where to write the result (:func:`optimum_record`): ``True`` for ``optimum.json``, a
        path, or ``False``/``None`` to write nothing (the report recomputes without writing).
    target, seed
        The optimiser's target (default the project's objective) and seed (default the project's).
    **options
        Further :func:`bayesmix.optimise` arguments (``risk``, ``level``, ``bounds``, ``exclude``...).

    Notes
    -----
    The target scale is first checked against the fitted runs (:meth:`Project.check_target`:
    a target below every run, or absurdly far beyond them, is refused with the setting to change).
    The target-scale mixing law (:func:`~bayesmix.inference.nested_target.target_fit`) is fitted
    on first use and saved with the nested fit, so a rerun reuses it.
    """
    from bayesmix.optimise.solver import optimise

    nested = load_fits(project) if nested is None else nested
    project.check_target(nested)
    model_size, tokens = project.target_scale()
    fitted_before = set(nested.mixing_stages)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerHealthWarning)
        # check_target above has warned already; target_fit's own check would say it again
        warnings.simplefilter("ignore", TargetExtrapolationWarning)
        mixing = target_fit(nested, model_size=model_size, tokens=tokens)
    if set(nested.mixing_stages) != fitted_before:
        save_nested(nested, project.nested_dir)
    objective = project.objective() if target is None else target
    logger.info("optimising the mixture for %s at %.3g parameters x %.3g tokens", objective, model_size, tokens)
    result = optimise(
        mixing,
        target=objective,
        reference=project.reference(),
        seed=project.settings.seed if seed is None else seed,
        **options,
    )
    result.extra.update(
        {"model_size": model_size, "tokens": tokens, "health": stage_health(nested), "target": objective}
    )
    if out:
        write_json(project.optimum_path if out is True else out, optimum_record(result, nested))
    if strict:
        check_strict(nested)
    return result


def stage_health(nested: NestedFit) -> dict[str, dict[str, Any]]:
    """Sampler health of every fitted stage, as JSON-able dicts."""
    return {stage: json.loads(h.to_json()) | {"ok": h.ok} for stage, h in nested.health.items()}


def check_strict(nested: NestedFit) -> None:
    """Raise :class:`SamplerHealthError` when any stage's sampler health is not ok."""
    bad = {stage: h for stage, h in nested.health.items() if not h.ok}
    if bad:
        raise SamplerHealthError(
            "; ".join(f"{stage}: {health}" for stage, health in bad.items())
            + " (rerun with more draws/tune or a higher target_accept in project.fit)"
        )


def optimum_record(result: OptimisationResult, nested: NestedFit) -> dict[str, Any]:
    """What ``optimum.json`` holds: the result's summary, per-domain intervals, scale and health."""
    record = result.to_dict()
    record["per_domain"] = {
        str(index): {k: round(float(v), 6) for k, v in row.items()}
        for index, row in result.summary.iterrows()
    }
    record["model_size"] = result.extra["model_size"]
    record["tokens"] = result.extra["tokens"]
    record["health"] = result.extra["health"]
    record["health_ok"] = all(h.ok for h in nested.health.values())
    record["versions"] = package_versions()
    return record


def write_json(path: os.PathLike[str], record: dict[str, Any]) -> None:
    """Write JSON atomically (temporary file, then rename: :func:`~bayesmix.data.files.atomic_path`)."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")


@dataclass
class Suggestions:
    """The designer's next batch: the planned runs, as a table, and the designer's recommendation."""

    runs: list[RunSpec]
    mixtures: pd.DataFrame
    recommendation: dict[str, float] | None


def project_designer(project: Project, *, allow_empty: bool = False) -> tuple[Any, bool]:
    """The designer of a project, rebuilt from its ledger (what :func:`suggest` asks).

    Finished runs are the designer's observations (their losses told), planned and running runs
    are pending (a batch never repeats them), failed runs are left out. With runs at several
    proxy sizes, all of them sizes of the project, the designer proposes cost-aware (mixture,
    size) pairs (:meth:`~bayesmix.design.Designer.from_ledger`); otherwise it learns from the
    largest size's final losses and each proposed mixture is meant for every configured size.

    Parameters
    ----------
    project
        The project.
    allow_empty
        Without finished runs, return a designer of the project's domains that proposes a
        space-filling batch (default: refuse).

    Returns
    -------
    designer, multi_scale
        The :class:`~bayesmix.design.Designer`, and whether its proposals carry a size.

    Raises
    ------
    NotEnoughDataError
        No finished run, unless ``allow_empty``.
    InputError
        A finished run without evaluations of the project's validation domains.
    """
    from bayesmix.design import Designer

    ledger = project.study.ledger
    records = ledger.runs()
    finished = [r for r in records if r.status == "finished"]
    options = {"acquisition": project.settings.acquisition, "seed": project.settings.seed}
    if not finished and not allow_empty:
        raise NotEnoughDataError(
            "ledger", "has no finished run", "train the initial design first (bayesmix sweep)"
        )
    models = {r.model_name for r in records}
    # (mixture, size) pairs only when every run is of a ladder size the project trains: a run
    # imported from elsewhere is no size `bayesmix sweep` could train a proposal at
    multi_scale = bool(finished) and len(models) > 1 and models <= set(project.settings.sizes)
    if multi_scale:
        designer = Designer.from_ledger(
            ledger,
            project.designer_target(),
            domains=project.domains,
            n_initial=len(finished),
            cost_aware=True,
            **options,
        )
        return designer, True
    if finished:
        runs = project.final_runs()
        designer = Designer.from_runs(runs, project.designer_target(), n_initial=runs.n_runs, **options)
    else:
        designer = Designer(project.domains, project.designer_target(), **options)
    known = [np.asarray(r["mixture"], dtype=float) for r in designer.runs.values()]
    for r in records:  # one pending run per planned mixture the designer has not seen, whatever its size
        if r.status not in ("planned", "running") or not set(r.mixture) <= set(designer.domains):
            continue
        row = np.array([r.mixture.get(d, 0.0) for d in designer.domains])
        if not any(np.allclose(row, k, atol=1e-9) for k in known):
            known.append(row)
            designer.add(r.id, r.mixture, status="pending")
    return designer, False


def proposed_runs(project: Project, proposals: Sequence[Any], multi_scale: bool) -> list[RunSpec]:
    """The planned runs of the designer's proposals: at the proposal's size, or at every size."""
    settings = project.settings
    return [
        RunSpec.make(p.mixture, size, settings.steps, settings.seed)
        for p in proposals
        for size in ([p.model] if multi_scale else settings.sizes)
    ]


def suggest(project: Project, n: int | None = None) -> Suggestions:
    """Ask the designer for the next ``n`` runs (mixture and proxy size); write the plan file.

    The designer (:class:`bayesmix.design.Designer`) is rebuilt from the project's ledger
    (:func:`project_designer`): finished runs are observations at their model's scale, planned
    and running runs are pending (the batch never repeats them). With runs at several proxy
    sizes the proposals are cost-aware (mixture, size) pairs: the value of a run for the largest
    proxy size's optimum per unit of compute ``6 N D``, so a cheap small run is proposed when it
    teaches enough. With one size, or with runs imported from elsewhere (no ladder size to train
    them at), the designer learns from the largest size's final losses and every proposed
    mixture is planned at every configured size.
    """
    n = project.settings.n_suggest if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError("n", f"is {n!r}", "ask for at least 1 run")
    designer, multi_scale = project_designer(project)
    planned = proposed_runs(project, designer.ask(n), multi_scale)
    save_plan(planned, project.suggestions_path)
    return Suggestions(planned, plan_frame(planned, project.domains), designer.recommendation())


def plan_frame(runs: Sequence[RunSpec], domains: Sequence[str]) -> pd.DataFrame:
    """Planned runs as a table: one row per run id, the mixture's shares and the model."""
    frame = pd.DataFrame(
        [[r.mixture.get(d, 0.0) for d in domains] for r in runs],
        columns=list(domains),
        index=pd.Index([r.id for r in runs], name="run"),
    )
    frame["model"] = [r.model for r in runs]
    return frame


def load_suggestions(project: Project) -> Suggestions | None:
    """The saved suggestions (``suggestions.yaml``), or None when there are none yet."""
    from bayesmix.proxy.plan import load_plan

    if not project.suggestions_path.exists():
        return None
    runs = load_plan(project.suggestions_path)
    return Suggestions(runs, plan_frame(runs, project.domains), None)


def health_lines(health: dict[str, SamplerHealth]) -> list[str]:
    """One line per stage: its name and sampler health."""
    return [f"{stage}: {h}" for stage, h in health.items()]


def report(
    project: Project,
    *,
    nested: NestedFit | None = None,
    optimum: OptimisationResult | None = None,
    suggestions: Suggestions | None = None,
    title: str | None = None,
):
    """Write the project's report (``report/report.html`` and ``report/report.md``).

    Parameters not given are read from the project (the saved fits; the optimum is recomputed
    from the saved target-scale mixing law, deterministically under the project's seed).
    """
    from bayesmix.inference.io import load
    from bayesmix.report import build_report

    nested = load_fits(project) if nested is None else nested
    optimum = choose(project, nested, out=False) if optimum is None else optimum
    model_size, tokens = project.target_scale()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerHealthWarning)
        # check_target above has warned already; target_fit's own check would say it again
        warnings.simplefilter("ignore", TargetExtrapolationWarning)
        mixing = target_fit(nested, model_size=model_size, tokens=tokens)
    proxy = load(project.proxy_fit_path) if project.proxy_fit_path.exists() else None
    return build_report(
        project.report_dir,
        fit=proxy,
        runs=project.final_runs() if proxy is not None else None,
        nested=nested,
        target_scale=(model_size, tokens),
        target_fit=mixing,
        optimum=optimum,
        optimum_target=project.objective() if isinstance(project.objective(), dict) else None,
        suggestions=None if suggestions is None else suggestions.mixtures,
        title=title or f"bayesmix report: {project.folder.name}",
        seed=project.settings.seed,
    )

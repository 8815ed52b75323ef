"""Commands of the project workflow: runs, optimise, suggest, report and quickstart.

Registered in :mod:`bayesmix.cli.main`. Each reads and writes a project folder
(:mod:`bayesmix.project`), so steps can be rerun and mixed with the Python API.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from bayesmix.cli import _output
from bayesmix.cli._output import EXIT_HEALTH, emit_json, health_dict, note
from bayesmix.errors import BayesmixError, InputError, SamplerHealthError

runs_app = typer.Typer(
    help="A project's runs: list them, import runs trained elsewhere (CSV/Parquet), export the ledger.",
    no_args_is_help=True,
)

ProjectArg = Annotated[
    Path, typer.Argument(help="Project folder (made by `bayesmix quickstart` or Project.create).")
]
StrictOpt = Annotated[
    bool,
    typer.Option(help="Fail (exit 3) when a fit behind the result has divergences, r_hat > 1.01 or low ESS."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")]


def _open(folder: Path):
    from bayesmix.project import Project

    return Project(folder)


@runs_app.command("list")
def runs_list(
    project: ProjectArg,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the project's runs: status, model, parameters, tokens, mixture and final mean loss."""
    try:
        proj = _open(project)
        records = proj.study.ledger.runs(status)
        evals = proj.study.ledger.evals()
    except BayesmixError as err:
        _output.fail(err)
        return
    final = {}
    if not evals.empty:
        last = evals[evals.groupby("run")["step"].transform("max") == evals["step"]]
        final = last.groupby("run")["loss"].mean().to_dict()
    counts = {s: sum(r.status == s for r in records) for s in ("finished", "planned", "running", "failed")}
    if as_json:
        emit_json(
            {
                "runs": [
                    {
                        "run": r.id,
                        "status": r.status,
                        "model": r.model_name,
                        "params_non_embedding": r.params_non_embedding,
                        "tokens": r.tokens,
                        "mixture": dict(r.mixture),
                        "final_mean_loss": final.get(r.id),
                    }
                    for r in records
                ],
                "counts": counts,
            }
        )
        return
    table = Table("run", "status", "model", "params", "tokens", "mixture", "final mean loss")
    for r in records:
        mix = ", ".join(f"{d}={v:.2f}" for d, v in sorted(r.mixture.items(), key=lambda kv: -kv[1]))
        loss = final.get(r.id)
        table.add_row(
            r.id,
            r.status,
            r.model_name,
            f"{r.params_non_embedding:,}",
            f"{r.tokens:,}",
            mix,
            "" if loss is None else f"{loss:.4f}",
        )
    _output.out.print(table)
    _output.out.print(", ".join(f"{n} {s}" for s, n in counts.items()))


@runs_app.command("import")
def runs_import(
    project: ProjectArg,
    table: Annotated[
        Path, typer.Argument(help="Long table: run, domain, loss, model_size, tokens|step, mix_*.")
    ],
    tokens_per_step: Annotated[
        float | None, typer.Option(help="Tokens per step, when the table has step but no tokens.")
    ] = None,
) -> None:
    """Import runs trained elsewhere into the project's ledger (validated; nothing is half-imported)."""
    from bayesmix.project.runs_io import import_runs

    try:
        added = import_runs(_open(project), table, tokens_per_step=tokens_per_step)
    except BayesmixError as err:
        _output.fail(err)
        return
    _output.out.print(f"imported {len(added)} runs from {table}")


@runs_app.command("export")
def runs_export(
    project: ProjectArg,
    out: Annotated[Path, typer.Option(help="Output file, .csv or .parquet.")] = Path("runs.csv"),
    include_unfinished: Annotated[
        bool, typer.Option(help="Also export evaluations of unfinished runs.")
    ] = False,
) -> None:
    """Export every checkpoint of every finished run as a tidy long table."""
    from bayesmix.project.runs_io import export_runs

    try:
        path = export_runs(_open(project), out, include_unfinished=include_unfinished)
    except BayesmixError as err:
        _output.fail(err)
        return
    _output.out.print(f"wrote {path}")


def init_cmd(
    project: Annotated[Path, typer.Argument(help="New project folder.")],
    table: Annotated[
        Path, typer.Argument(help="Long run table: run, domain, loss, model_size, tokens|step, mix_*.")
    ],
    tokens_per_step: Annotated[
        float | None, typer.Option(help="Tokens per step, when the table has step but no tokens.")
    ] = None,
    target_size: Annotated[
        float | None, typer.Option(help="Target model size N (non-embedding parameters); default 10x the largest run.")
    ] = None,
    target_tokens: Annotated[
        float | None, typer.Option(help="Target training tokens D; default 10x the largest run's.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a project from runs trained elsewhere: no corpus or text needed, any validation sets.

    The runs go into the project's ledger; then `bayesmix fit PROJECT`, `optimise`, `suggest`
    and `report` work on it as on a project of proxies trained here.
    """
    from bayesmix.project.runs_io import init_from_runs

    try:
        if (target_size is None) != (target_tokens is None):
            given, missing = ("--target-size", "--target-tokens")[:: 1 if target_size is not None else -1]
            raise InputError(missing, f"is missing while {given} is given", "give both, or neither (10x the largest run)")
        target = None if target_size is None else {"model_size": target_size, "tokens": target_tokens}
        created, added = init_from_runs(project, table, tokens_per_step=tokens_per_step, target=target)
        size, tokens = created.target_scale()
    except BayesmixError as err:
        _output.fail(err)
        return
    if as_json:
        emit_json(
            {
                "project": created.folder,
                "runs": added,
                "train_domains": created.domains,
                "validation": created.validation_domains,
                "target": {"model_size": size, "tokens": tokens},
            }
        )
        return
    _output.out.print(
        f"project {created.folder}: {len(added)} runs over {created.domains}, validation "
        f"{created.validation_domains}; target {size:,.0f} parameters x {tokens:,.0f} tokens"
    )
    _output.out.print(f"next: bayesmix fit {created.folder}")


def optimum_table(result: Any) -> Table:
    """The chosen mixture next to the reference, per training domain."""
    table = Table("domain", "optimum share", "reference share", title="Mixture")
    for domain, share in result.mixture.items():
        table.add_row(str(domain), f"{share:.3f}", f"{result.reference[domain]:.3f}")
    return table


def support_line(result: Any) -> str:
    """One line (rich markup) on how far the optimum lies from the runs."""
    from bayesmix.optimise.support import describe_support

    text = escape(describe_support(result.support))
    if result.support.get("trust_applied"):
        text += " (kept within the runs' range of shares; --no-trust-region lifts it)"
    return f"[bold red]{text}[/]" if result.extrapolation else text


def loss_table(result: Any, prob: float) -> Table:
    """Expected loss at the optimum and at the reference with intervals, per domain and target."""
    table = Table(
        "validation",
        "optimum",
        f"{prob:.0%} interval",
        "reference",
        f"{prob:.0%} interval",
        title="Expected loss",
    )
    for name, row in result.summary.iterrows():
        table.add_row(
            str(name),
            f"{row['mean']:.4f}",
            f"[{row['lower']:.4f}, {row['upper']:.4f}]",
            f"{row['ref_mean']:.4f}",
            f"[{row['ref_lower']:.4f}, {row['ref_upper']:.4f}]",
        )
    return table


def optimise_cmd(
    fitted: Annotated[
        Path, typer.Argument(help="A project folder, or a fit written by `bayesmix fit` (.nc).")
    ],
    target: Annotated[
        str | None, typer.Option(help="'mean', a validation domain, or d1=w1,d2=w2 (default: the project's).")
    ] = None,
    risk: Annotated[str, typer.Option(help="'mean', 'quantile' or 'cvar' (of the target loss).")] = "mean",
    level: Annotated[float, typer.Option(help="Quantile/CVaR level.")] = 0.9,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Domain to leave out (repeatable).")
    ] = None,
    bound: Annotated[
        list[str] | None,
        typer.Option("--bound", help="domain=lo:hi share bounds (repeatable), e.g. code=0.1:0.4."),
    ] = None,
    trust_margin: Annotated[
        float,
        typer.Option(
            help="Keep each share within the runs' range of shares, widened by this margin (shares)."
        ),
    ] = 0.0,
    no_trust_region: Annotated[
        bool, typer.Option("--no-trust-region", help="Let the optimum leave the runs' range of shares.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Write the result as JSON (default: <project>/optimum.json).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the posterior draws used (default: the project's, or 0).")
    ] = None,
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Choose the mixture that minimises the expected (or risk-adjusted) loss, with intervals.

    On a project folder it optimises for the project's target scale (the nested fit's mixing law
    at the target model size and tokens) against the project's reference mixture; on a .nc fit it
    optimises that fit's law.
    """
    import bayesmix as bm
    from bayesmix.cli.train import parse_mixture
    from bayesmix.project import steps

    try:
        bounds = {}
        for text in bound or []:
            name, _, span = text.partition("=")
            lo, sep, hi = span.partition(":")
            try:
                bounds[name.strip()] = (float(lo) if lo else None, float(hi) if hi else None)
            except ValueError:
                sep = ""
            if not sep:
                raise InputError("--bound", f"{text!r} is not domain=lo:hi", "write e.g. code=0.1:0.4")
        chosen_target: Any = target
        if target is not None and "=" in target:
            chosen_target = parse_mixture(target)
        limits = {
            "risk": risk,
            "level": level,
            "bounds": bounds or None,
            "exclude": exclude or (),
            "trust_region": None if no_trust_region else trust_margin,
        }
        if fitted.is_dir():
            project = _open(fitted)
            nested = steps.load_fits(project)
            note(f"Choosing the mixture for the target scale of {fitted}")
            result = steps.choose(project, nested, target=chosen_target, seed=seed, out=out or True, **limits)
            health = nested.health
            out = out or project.optimum_path
        else:
            idata = bm.load(fitted)
            result = bm.optimise(
                idata, target="mean" if chosen_target is None else chosen_target, seed=seed or 0, **limits
            )
            health = {"fit": bm.health(idata)}
            if out is not None:
                steps.write_json(out, result.to_dict())
    except BayesmixError as err:
        _output.fail(err)
        return
    out_print = _output.out.print
    if as_json:
        emit_json({**result.to_dict(), "health": {n: health_dict(h) for n, h in health.items()}, "written": out})
    else:
        out_print(optimum_table(result))
        out_print(loss_table(result, result.prob))
        out_print(f"P(optimum beats the reference) = {result.p_beats_reference:.3f}")
        if result.support is not None:
            out_print(support_line(result))
        if out is not None:
            out_print(f"wrote {out}")
    print_health(health, strict, show=not as_json)


def suggest_cmd(
    project: ProjectArg,
    n: Annotated[int | None, typer.Option(help="Mixtures to propose (default: project.n_suggest).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose the next proxy runs (the designer's batch) and write them as a plan file.

    Train them with `bayesmix sweep PROJECT --plan PROJECT/suggestions.yaml`, then refit.
    """
    from bayesmix.project import steps

    try:
        proj = _open(project)
        note(f"Proposing the next runs for {project}")
        suggestions = steps.suggest(proj, n)
    except BayesmixError as err:
        _output.fail(err)
        return
    if as_json:
        frame = suggestions.mixtures
        emit_json(
            {
                "suggestions": [{"run": str(name), **row.to_dict()} for name, row in frame.iterrows()],
                "plan": proj.suggestions_path,
            }
        )
        return
    _output.out.print(suggestions_table(suggestions))
    _output.out.print(f"wrote {proj.suggestions_path} ({len(suggestions.runs)} runs)")


def suggestions_table(suggestions: Any) -> Table:
    """The proposed mixtures."""
    frame = suggestions.mixtures
    table = Table("run", *frame.columns, title="Suggested next runs")
    for name, row in frame.iterrows():
        table.add_row(str(name), *(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    return table


def report_cmd(
    project: ProjectArg,
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write the project's report: report/report.html (self-contained) and report/report.md.

    Observed vs predicted losses with intervals, the scaling extrapolation fans, the t_ij
    interaction matrix, the optimum's mixture with intervals vs the reference, the posterior of
    its loss, sampler diagnostics, the suggested next runs and what the data cannot tell yet.
    """
    from bayesmix.project import steps

    try:
        proj = _open(project)
        nested = steps.load_fits(proj)
        suggestions = steps.load_suggestions(proj)
        note(f"Writing the report of {project}")
        files = steps.report(proj, nested=nested, suggestions=suggestions)
    except BayesmixError as err:
        _output.fail(err)
        return
    if as_json:
        emit_json(
            {
                "html": files.html,
                "markdown": files.markdown,
                "decision": None if files.decision is None else {"verdict": files.decision.verdict, "line": files.decision.line},
                "health": {n: health_dict(h) for n, h in nested.health.items()},
            }
        )
    else:
        if files.decision is not None:
            _output.out.print(f"[bold]{escape(files.decision.line)}[/]")
        _output.out.print(f"wrote {files.html} and {files.markdown}")
    print_health(nested.health, strict, show=not as_json)


def print_health(health: dict[str, Any], strict: bool, show: bool = True) -> None:
    """Print each fitted stage's sampler health (when ``show``); with ``strict``, exit 3 when any is not ok."""
    from bayesmix.project.steps import health_lines

    if show:
        for line in health_lines(health):
            _output.out.print(f"sampler {line}")
    if strict and not all(h.ok for h in health.values()):
        raise typer.Exit(code=EXIT_HEALTH)


QUICKSTART_SETTINGS: dict[str, Any] = {
    "corpus": {
        "kind": "embedded",
        "domains": ["code", "dialogue", "legal", "encyclopedic"],
        "train_bytes": 600_000,
        "validation_bytes": 60_000,
    },
    "max_eval_tokens": 4_096,
    "train": {"n_evals": 10, "schedule": "constant", "warmup_steps": 10, "checkpoint_every": 0},
    "project": {
        "sizes": ["cpu-xs", "cpu-s"],
        "steps": 200,
        "min_step": 10,
        "n_mixtures": 10,
        "target": {"model": "cpu-xl", "tokens_factor": 10.0},
        "objective": "mean",
        "reference": "natural",
        "n_suggest": 4,
        "fit": {"draws": 1000, "chains": 4},
        "seed": 0,
    },
}


REPLACED_KEYS = ("corpus", "target", "reference", "objective", "paths")  # replaced whole, never merged


def merge_quickstart(extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` (a user's settings file) over :data:`QUICKSTART_SETTINGS`."""
    from bayesmix.proxy.study import merge_settings

    return merge_settings(QUICKSTART_SETTINGS, extra, REPLACED_KEYS)


def reference_name(project: Any) -> str:
    """How the project's reference mixture is called in messages."""
    reference = project.settings.reference
    return reference if isinstance(reference, str) else "reference"


def quickstart_cmd(
    project: Annotated[Path, typer.Option(help="Project folder (resumed if it exists).")] = Path(
        "bayesmix-quickstart"
    ),
    settings: Annotated[
        Path | None, typer.Option(help="YAML merged over the quickstart settings (corpus, train, project).")
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Training processes (1 torch thread each; 0: in this process).")
    ] = 2,
    strict: StrictOpt = False,
) -> None:
    """The whole method end to end on the embedded corpus (about 10-15 minutes on 2 CPU cores).

    1. an initial space-filling design of mixtures over 4 domains, each trained at 2 proxy sizes;
    2. the proxy runs (real transformers models on real text, into the project's SQLite ledger);
    3. the nested Bayesian fit (steps and model size) and the mixing law;
    4. the optimised mixture for a larger target scale, with credible intervals and
       P(it beats the natural mixture);
    5. the designer's next suggested runs;
    6. a report (HTML + Markdown).

    Rerunning resumes: finished runs are kept, and every artefact is rewritten from the ledger.
    """
    from bayesmix.project import Project, steps

    started = time.perf_counter()
    try:
        chosen = QUICKSTART_SETTINGS
        if settings is not None:
            try:
                extra = yaml.safe_load(settings.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise InputError(
                    "--settings", f"cannot read {settings} ({exc})", "give a YAML file"
                ) from None
            if not isinstance(extra, dict):
                raise InputError("--settings", f"{settings} is not a mapping", "write key: value pairs")
            chosen = merge_quickstart(extra)
        if (project / "study.yaml").exists():
            proj = Project(project)
            _output.out.print(f"[bold]Resuming project[/] {project}")
            if settings is not None:
                _output.out.print(
                    f"(--settings {settings} is not applied: {project / 'study.yaml'} holds the settings)"
                )
        else:
            proj = Project.create(project, chosen)
            _output.out.print(f"[bold]New project[/] {project}")
        ps = proj.settings
        size, tokens = proj.target_scale()
        _output.out.print(
            f"domains {proj.domains}; proxies {list(ps.sizes)} x {ps.n_mixtures} mixtures x {ps.steps} steps "
            f"({proj.proxy_tokens():,} tokens each); target {size:,.0f} parameters x {tokens:,.0f} tokens"
        )
        _output.out.rule("1-2. initial design and proxy training")
        plan = steps.initial_plan(proj)
        report = steps.train(proj, plan, workers=workers, console=_output.err)
        if report.failed:
            raise InputError(
                "runs", f"{len(report.failed)} runs failed: {report.failed}", "see the errors above"
            )
        _output.out.print(f"{len(report.finished)} trained, {len(report.skipped)} already finished")
        _output.out.rule("3. nested Bayesian fit")
        nested = steps.fit_project(proj, progressbar=_output.show_progress())
        for line in steps.health_lines(nested.health):
            _output.out.print(f"sampler {line}")
        _output.out.rule("4. mixture for the target scale")
        result = steps.choose(proj, nested)
        _output.out.print(optimum_table(result))
        _output.out.print(loss_table(result, result.prob))
        _output.out.print(
            f"P(optimum beats the {reference_name(proj)} mixture) = [bold]{result.p_beats_reference:.3f}[/] "
            f"at {size:,.0f} parameters x {tokens:,.0f} tokens"
        )
        if result.support is not None:
            _output.out.print(support_line(result))
        _output.out.rule("5. next runs")
        suggestions = steps.suggest(proj)
        _output.out.print(suggestions_table(suggestions))
        _output.out.rule("6. report")
        files = steps.report(proj, nested=nested, optimum=result, suggestions=suggestions)
        if strict:
            steps.check_strict(nested)
    except SamplerHealthError as err:
        _output.fail(err, code=3)
        return
    except BayesmixError as err:
        _output.fail(err)
        return
    minutes = (time.perf_counter() - started) / 60
    if files.decision is not None:
        _output.out.print(f"[bold]{escape(files.decision.line)}[/]")
    _output.out.print(
        f"[bold green]quickstart done[/] in {minutes:.1f} min: optimum {result.expected_loss:.4f} "
        f"vs {reference_name(proj)} {float(result.summary.loc['target', 'ref_mean']):.4f} "
        f"(P beats = {result.p_beats_reference:.3f}); report {files.html}, {files.markdown}; "
        f"next runs {proj.suggestions_path}"
    )

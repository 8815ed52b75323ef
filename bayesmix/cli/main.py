"""The ``bayesmix`` command: fit, predict and the demo of the law engine; corpus, train and sweep.

Every command reads and writes files, so steps can be rerun and mixed with the Python API.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import typer
from rich.table import Table

import bayesmix as bm
from bayesmix.cli import _output
from bayesmix.cli._output import EXIT_HEALTH, emit_json, health_dict, note, out, show_progress
from bayesmix.cli.export import export_cmd
from bayesmix.cli.loop import loop_cmd
from bayesmix.cli.train import corpus_app, sweep_cmd, train_cmd
from bayesmix.cli.workflow import (
    init_cmd,
    optimise_cmd,
    print_health,
    quickstart_cmd,
    report_cmd,
    runs_app,
    suggest_cmd,
)
from bayesmix.errors import BayesmixError

app = typer.Typer(
    help=(
        "bayesmix: which pretraining data mixture to train on, and how sure we are.\n\n"
        "The workflow on a project folder: train proxies on real text (corpus, train, sweep), "
        "manage runs (runs), fit the nested Bayesian laws (fit), choose the mixture with credible "
        "intervals (optimise), propose the next runs (suggest; loop asks, trains and asks again as "
        "results arrive) and write a report (report). "
        "`bayesmix quickstart` runs all of it on the embedded corpus; `bayesmix demo` is a "
        "one-minute fit and predict on simulated runs. Run tables (CSV/Parquet) work too: "
        "`bayesmix fit runs.csv`, `bayesmix fit mixtures.csv losses.csv --key run`, "
        "`bayesmix predict fit.nc mixtures.csv`.\n\n"
        "Results go to stdout (`--json` on a command: one JSON object), errors, warnings and progress "
        "to stderr. Exit codes: 0 ok, 1 error in the input (the message names the field and a fix), "
        "2 usage, 3 sampler health under --strict."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"bayesmix {bm.__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print results and errors only."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also print debug lines and third-party warnings."
    ),
) -> None:
    """Which pretraining data mixture to train on, and how sure we are."""
    _output.configure(ctx, quiet, verbose)


START, PROXIES, METHOD = "1. Start here", "2. Proxy runs", "3. Fit, choose, report"
app.command("quickstart", rich_help_panel=START)(quickstart_cmd)
app.add_typer(corpus_app, name="corpus", rich_help_panel=PROXIES)
app.command("train", rich_help_panel=PROXIES)(train_cmd)
app.command("sweep", rich_help_panel=PROXIES)(sweep_cmd)
app.add_typer(runs_app, name="runs", rich_help_panel=PROXIES)
app.command("init", rich_help_panel=START)(init_cmd)
JsonOpt = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")

LAWS = {"mixing": "per-domain M4 law (the paper's)", "implicit": "implicit aggregation", "linear": "linear"}


def _law(name: str, exponent: str, components: int) -> bm.Law:
    try:
        value: float | str = exponent if exponent == "learn" else float(exponent)
    except ValueError:
        raise bm.InputError(
            "--exponent", f"got {exponent!r}", "give a number such as 1, or 'learn'"
        ) from None
    if name == "mixing":
        return bm.MixingLaw(exponent=value)
    if name == "implicit":
        return bm.ImplicitMixingLaw(components, exponent=value)
    if name == "linear":
        return bm.LinearLaw()
    raise bm.InputError("--law", f"unknown law {name!r}", f"use one of {list(LAWS)}")


#: advice in Python keywords -> the option of `bayesmix fit` / `bayesmix predict` that does it
CLI_OPTIONS = {
    "renormalise=True": "--renormalise",
    "method='nuts' or 'map'": "--method nuts or --method map",
    "method='nuts'": "--method nuts",
    "method='map'": "--method map",
    "law=MixingLaw()": "--law mixing",
    "mixture_columns=[...]": "--mixture-column <name> (repeatable)",
    "loss_columns=[...]": "--loss-column <name> (repeatable)",
    "step='last'": "--step last",
    "step=<a checkpoint's step>": "--step <a checkpoint's step>",
    "tokens=<a checkpoint's tokens>": "--tokens <a checkpoint's tokens>",
    "key='<column>'": "--key <column>",
}
#: Python keywords the commands have no option for -> what to do on the command line instead
PYTHON_ONLY = {
    "allow_other_version": "refit with this bayesmix (`bayesmix fit`)",
}
#: advice to pass a Python keyword ("pass step='last'", "with mixture_columns=[...]")
_KEYWORD = re.compile(r"\b(?:pass|use|with|set)\s+([a-z_]+)=(?:'[^']*'|\[[^\]]*\]|<[^>]*>|[\w.()]+)")


def cli_advice(text: str) -> str:
    """``text`` with Python keyword advice given as the commands' options, or marked Python-only."""
    for keyword, option in CLI_OPTIONS.items():
        text = text.replace(keyword, option)
    notes = [
        f"{name}= is a Python argument with no option here: {PYTHON_ONLY.get(name, 'use the Python API for it')}"
        for name in dict.fromkeys(match.group(1) for match in _KEYWORD.finditer(text))
    ]
    return "; ".join([text, *notes])


def _for_cli(err: BayesmixError) -> BayesmixError:
    """The same error with its advice in the command's options (:func:`cli_advice`)."""
    if isinstance(err, bm.InputError):
        fix = cli_advice(err.fix)
        return err if fix == err.fix else type(err)(err.field, err.problem, fix)
    text = cli_advice(str(err))
    if text == str(err):
        return err
    try:
        return type(err)(text)
    except TypeError:
        return BayesmixError(text)


def _fail(err: BayesmixError) -> None:
    _output.fail(_for_cli(err))


def _interval_table(summary, title: str, truth=None) -> Table:
    table = Table(title=title)
    for column in ["mixture", "domain", "mean", "lower", "upper", *(["true"] if truth is not None else [])]:
        table.add_column(column, justify="right" if column not in ("mixture", "domain") else "left")
    for index, row in summary.iterrows():
        cells = [
            str(index[0]),
            str(index[1]),
            f"{row['mean']:.4f}",
            f"{row['lower']:.4f}",
            f"{row['upper']:.4f}",
        ]
        if truth is not None:
            cells.append(f"{truth.loc[index]:.4f}")
        table.add_row(*cells)
    return table


def _checkpoint(step: str | None, tokens: float | None) -> dict:
    """``--step`` / ``--tokens`` as the long reader's keywords."""
    if step is None:
        return {} if tokens is None else {"tokens": tokens}
    if step == "last":
        return {"step": "last"}
    try:
        return {"step": int(step)}
    except ValueError:
        raise bm.InputError("--step", f"got {step!r}", "give a checkpoint's step, e.g. --step 30000, or --step last") from None


def read_runs(
    runs: Path,
    losses: Path | None,
    layout: str,
    key: str,
    mixture_column: list[str] | None,
    loss_column: list[str] | None,
    run_column: str,
    step: str | None,
    tokens: float | None,
    renormalise: bool,
) -> bm.RunTable:
    """The run table of ``bayesmix fit``: one wide or long file, or a mixture file and a loss file."""
    if losses is not None or layout == "joined":
        if losses is None:
            raise bm.InputError("LOSSES", "--layout joined needs two files", "give MIXTURES LOSSES, e.g. mix.csv loss.csv")
        if layout not in ("wide", "joined"):
            raise bm.InputError("--layout", f"is {layout!r} with two files", "leave --layout out for MIXTURES LOSSES")
        unused = {"--mixture-column": mixture_column, "--loss-column": loss_column, "--step": step, "--tokens": tokens}
        for option, value in unused.items():
            if value:
                raise bm.InputError(option, "is not used with two files", f"leave {option} out; select columns in the files")
        return bm.RunTable.from_joined(runs, losses, key=key, renormalise=renormalise)
    if layout == "wide":
        for option, value in {"--step": step, "--tokens": tokens}.items():
            if value is not None:
                raise bm.InputError(
                    option, "is for long tables (one row per run, domain and checkpoint)", "add --layout long"
                )
        return bm.RunTable.from_wide(
            runs,
            mixture_columns=mixture_column or None,
            loss_columns=loss_column or None,
            run_column=run_column,
            renormalise=renormalise,
            strip_affixes=bool(mixture_column),
        )
    if layout == "long":
        if loss_column:
            raise bm.InputError("--loss-column", "is for wide tables", "a long table has one 'loss' column; drop the option")
        return bm.RunTable.from_long(
            runs,
            run=run_column,
            mixture_columns=mixture_column or None,
            renormalise=renormalise,
            **_checkpoint(step, tokens),
        )
    raise bm.InputError("--layout", f"unknown layout {layout!r}", "use --layout wide, long or joined")


@app.command(rich_help_panel=METHOD)
def fit(
    runs: Path = typer.Argument(
        ...,
        help=(
            "Run table: CSV or Parquet, one row per run (wide) or per run and domain (long); "
            "or the mixture table of a two-file study (then give LOSSES too); "
            "or a project folder (fits the nested laws to its ledger into <project>/fits/)."
        ),
    ),
    losses: Path | None = typer.Argument(
        None,
        help="Loss table of a two-file study (the RegMix / Olmix layout), joined to RUNS on --key.",
        show_default=False,
    ),
    out: Path = typer.Option(Path("fit.nc"), help="Where to write the fit (a .nc file and a .json sidecar)."),
    layout: str = typer.Option(
        "wide",
        help="'wide' (mix_<domain> columns + loss columns), 'long' (run, domain, loss, mix_*) or 'joined' "
        "(two files; implied by LOSSES).",
    ),
    key: str = typer.Option("index", help="Column joining the two files of a two-file study."),
    mixture_column: list[str] | None = typer.Option(
        None, "--mixture-column", help="A mixture column (repeatable; default: the mix_<domain> columns)."
    ),
    loss_column: list[str] | None = typer.Option(
        None, "--loss-column", help="A loss column of a wide table (repeatable; default: the other numeric ones)."
    ),
    run_column: str = typer.Option("run", help="Column of run ids (wide: optional; long: required)."),
    step: str | None = typer.Option(
        None, help="Long tables with several checkpoints: read every run at this step, or 'last'."
    ),
    tokens: float | None = typer.Option(None, help="Long tables: read every run at this many tokens."),
    law: str = typer.Option("mixing", help=f"Law: {', '.join(f'{k} ({v})' for k, v in LAWS.items())}."),
    exponent: str = typer.Option(
        "1", help="Mixture feature exponent: 1 is the paper's law; a number, or 'learn'."
    ),
    components: int = typer.Option(3, help="Implicit domains K (law 'implicit')."),
    method: str = typer.Option(
        "nuts", help="'nuts' (posterior), 'laplace' (fast approximate posterior), 'map' (quick point) or 'paper' (the paper's protocol)."
    ),
    draws: int = typer.Option(1000, help="NUTS draws per chain."),
    tune: int | None = typer.Option(
        None, help="NUTS tuning steps per chain (default: 500 for models above 100 parameters, 1000 below)."
    ),
    chains: int = typer.Option(4, help="NUTS chains."),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same numbers."),
    renormalise: bool = typer.Option(
        False, help="Divide mixture rows by their sum instead of rejecting them."
    ),
    strict: bool = typer.Option(False, help="Fail (exit 3) on divergences, r_hat > 1.01 or low ESS."),
    discrepancy: bool = typer.Option(
        True,
        help="Add the law's form error (a Gaussian process over mixture space on the residuals, scaled by "
        "region backtests), so intervals widen away from the runs.",
    ),
    warm_start: Path | None = typer.Option(
        None,
        "--warm-start",
        help="An earlier NUTS fit (.nc) of the same law on the same domains, e.g. before the last runs: the "
        "chains start at its draws (the same posterior, a faster refit).",
        show_default=False,
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Fit a mixing law to a run table (or the nested laws to a project's runs) and save the posterior."""
    if runs.is_dir():
        given = {"--out": (out, Path("fit.nc")), "--layout": (layout, "wide"), "--law": (law, "mixing"),
                 "--exponent": (exponent, "1"), "--components": (components, 3), "--method": (method, "nuts"),
                 "--draws": (draws, 1000), "--tune": (tune, None), "--chains": (chains, 4), "--seed": (seed, 0),
                 "--renormalise": (renormalise, False), "--no-discrepancy": (discrepancy, True),
                 "LOSSES": (losses, None), "--key": (key, "index"), "--mixture-column": (mixture_column or None, None),
                 "--loss-column": (loss_column or None, None), "--run-column": (run_column, "run"),
                 "--step": (step, None), "--tokens": (tokens, None), "--warm-start": (warm_start, None)}  # fmt: skip
        for option, (value, default) in given.items():
            if value != default:
                _fail(
                    bm.InputError(
                        option, "is not used for a project folder", "set project.fit / seed in its study.yaml"
                    )
                )
        _fit_project(runs, strict, as_json)
        return
    try:
        chosen = _law(law, exponent, components)
        table = read_runs(
            runs, losses, layout, key, mixture_column, loss_column, run_column, step, tokens, renormalise
        )
        earlier = None if warm_start is None else bm.load(warm_start)
        note(f"Fitting {chosen!r} to {table.n_runs} runs, {len(table.domains)} validation domains ({method})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bm.SamplerHealthWarning)
            idata = bm.fit(
                table,
                chosen,
                method=method,
                draws=draws,
                tune=tune,
                chains=chains,
                seed=seed,
                discrepancy="auto" if discrepancy else None,
                progressbar=show_progress(),
                warm_start=earlier,
            )
        path = bm.save(idata, out)
    except BayesmixError as err:
        _fail(err)
        return
    health = bm.health(idata)
    settings = bm.fitted_spec(idata).extra.get("discrepancy")
    skipped = idata.posterior.attrs.get("bayesmix_discrepancy_skipped")
    if as_json:
        emit_json(
            {
                "fit": path,
                "sidecar": path.with_suffix(".json"),
                "runs": table.n_runs,
                "train_domains": list(table.train_domains),
                "domains": list(table.domains),
                "method": method,
                "health": health_dict(health),
                "discrepancy": None
                if settings is None
                else {"lengthscale": settings["lengthscale"], "sd": dict(zip(table.domains, settings["sd"], strict=True))},
                "discrepancy_skipped": skipped,
            }
        )
    else:
        out_print = _output.out.print
        out_print(f"Sampler: {health}")
        if settings is not None:
            out_print(
                f"Form error (region backtests): length scale {settings['lengthscale']:.3g} shares, amplitude "
                + ", ".join(f"{d} {v:.3g}" for d, v in zip(table.domains, settings["sd"], strict=True))
                + " nats"
            )
        elif skipped:
            out_print(f"Fitted without the form-error term: {skipped}")
        out_print(f"Saved {path} and {path.with_suffix('.json')}")
    if strict and not health.ok:
        raise typer.Exit(code=EXIT_HEALTH)


def _fit_project(folder: Path, strict: bool, as_json: bool) -> None:
    from bayesmix.project import Project, steps

    try:
        project = Project(folder)
        note(f"Fitting the nested laws to the finished runs of {folder}")
        nested = steps.fit_project(project, progressbar=show_progress())
    except BayesmixError as err:
        _fail(err)
        return
    if as_json:
        emit_json(
            {
                "nested": project.nested_dir,
                "proxy_fit": project.proxy_fit_path,
                "health": {name: health_dict(h) for name, h in nested.health.items()},
            }
        )
    else:
        _output.out.print(f"Saved {project.nested_dir} and {project.proxy_fit_path}")
    print_health(nested.health, strict, show=not as_json)


def mixture_frame(path: Path):
    """A mixtures file for ``predict``: one column per training domain, or ``mix_<domain>`` columns."""
    from bayesmix.data.runs import MIX_PREFIX, is_mixture_column, table_frame

    frame = table_frame(path, "mixtures")  # headers without padding, each once
    prefixed = [c for c in frame.columns if is_mixture_column(c)]  # mix_<domain>, any case
    if prefixed:
        frame = frame[prefixed].rename(columns=lambda c: str(c)[len(MIX_PREFIX) :].strip())
    return frame


@app.command(rich_help_panel=METHOD)
def predict(
    fitted: Path = typer.Argument(..., help="A fit written by `bayesmix fit` (.nc)."),
    mixtures: Path = typer.Argument(
        ...,
        help="CSV/Parquet with one column per training domain (missing = 0), or mix_<domain> columns "
        "as in a run table (its other columns are ignored).",
    ),
    out: Path | None = typer.Option(
        None, help="Write mean/median/lower/upper per mixture and domain to this CSV."
    ),
    prob: float = typer.Option(0.9, help="Probability inside the interval."),
    kind: str = typer.Option(
        "predictive", help="'predictive' (a new run's loss) or 'mean' (the law's expectation)."
    ),
    interval_kind: str = typer.Option("eti", help="'eti' (equal-tailed) or 'hdi' (highest density)."),
    renormalise: bool = typer.Option(
        False, help="Divide mixture rows by their sum instead of rejecting them."
    ),
    seed: int = typer.Option(0, help="Seed of the noise draws."),
    strict: bool = typer.Option(
        False, help="Fail (exit 3) when the fit had divergences, r_hat > 1.01 or low ESS."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Predict the loss of new mixtures with credible intervals."""
    try:
        idata = bm.load(fitted)
        frame = mixture_frame(mixtures)
        draws = bm.predict(idata, frame, kind=kind, renormalise=renormalise, seed=seed)
        summary = bm.interval(draws, prob=prob, kind=interval_kind).to_dataframe()
        if out is not None:
            from bayesmix.data.files import atomic_path

            with atomic_path(out) as tmp:
                summary.to_csv(tmp)
    except BayesmixError as err:
        _fail(err)
        return
    health = bm.health(idata)
    if as_json:
        emit_json(
            {
                "prob": prob,
                "kind": kind,
                "interval": interval_kind,
                "unit": "nats/token",
                "predictions": summary.reset_index().to_dict(orient="records"),
                "health": health_dict(health),
                "written": out,
            }
        )
    else:
        _output.out.print(
            _interval_table(summary, f"Predicted loss (nats/token), {prob:.0%} {interval_kind} intervals ({kind})")
        )
        _output.out.print(f"Sampler (of the fit): {health}")
        if out is not None:
            _output.out.print(f"Wrote {out}")
    if strict and not health.ok:
        raise typer.Exit(code=EXIT_HEALTH)


@app.command(rich_help_panel=START)
def demo(
    out: Path = typer.Option(
        Path("bayesmix-demo"), help="Folder for the example runs, the fit and the predictions."
    ),
    runs: int = typer.Option(24, help="Number of simulated proxy runs."),
    draws: int = typer.Option(1000, help="NUTS draws per chain."),
    chains: int = typer.Option(4, help="NUTS chains."),
    seed: int = typer.Option(0, help="Seed."),
    as_json: bool = JsonOpt,
) -> None:
    """Fit and predict with intervals on an embedded example study simulated from a known law.

    Writes runs.csv, fit.nc (+ .json) and predictions.csv, and prints predicted vs true losses
    of held-out mixtures and how many true values fall inside the 90% intervals.
    """
    import numpy as np
    import pandas as pd

    from bayesmix.data.simulate import example_runs, random_mixtures

    out.mkdir(parents=True, exist_ok=True)
    table, truth = example_runs(n_runs=runs, seed=7)
    table.to_wide().to_csv(out / "runs.csv", index=False)
    note(f"Example study: {table.n_runs} runs over {table.train_domains} -> {out / 'runs.csv'}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        idata = bm.fit(table, draws=draws, tune=draws, chains=chains, seed=seed, progressbar=show_progress())
    bm.save(idata, out / "fit.nc")
    health = bm.health(idata)
    new = pd.DataFrame(random_mixtures(5, len(table.train_domains), seed=99), columns=table.train_domains)
    new.index = pd.Index([f"new{i}" for i in range(len(new))], name="mixture")
    summary = bm.interval(bm.predict(idata, new, kind="mean"), prob=0.9).to_dataframe()
    true = pd.DataFrame(truth.mean_loss(new.to_numpy()), index=new.index, columns=table.domains).stack()
    true.index.names = ["mixture", "domain"]
    summary.to_csv(out / "predictions.csv")
    inside = ((summary["lower"] <= true) & (true <= summary["upper"])).to_numpy()
    error = float(np.abs(summary["mean"] - true).mean())
    if as_json:
        emit_json(
            {
                "runs": out / "runs.csv",
                "fit": out / "fit.nc",
                "predictions": out / "predictions.csv",
                "health": health_dict(health),
                "inside_90": int(inside.sum()),
                "n": int(inside.size),
                "mean_abs_error_nats": error,
            }
        )
        return
    _output.out.print(f"Sampler: {health}")
    _output.out.print(
        _interval_table(summary, "Held-out mixtures: predicted loss (nats/token, 90% interval) vs truth", true)
    )
    _output.out.print(
        f"{int(inside.sum())}/{inside.size} true losses inside their 90% intervals; "
        f"mean absolute error {error:.4f} nats"
    )
    _output.out.print(f"Wrote {out / 'fit.nc'}, {out / 'predictions.csv'}")


# after fit and predict, so --help lists the method's commands in the order they are used
app.command("optimise", rich_help_panel=METHOD)(optimise_cmd)
app.command("suggest", rich_help_panel=METHOD)(suggest_cmd)
app.command("loop", rich_help_panel=METHOD)(loop_cmd)
app.command("report", rich_help_panel=METHOD)(report_cmd)
app.command("export", rich_help_panel=METHOD)(export_cmd)


if __name__ == "__main__":
    app()

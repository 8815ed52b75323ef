"""The ``bayesmix`` command: fit, predict and the demo of the law engine; corpus, train and sweep.

Every command reads and writes files, so steps can be rerun and mixed with the Python API.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

import bayesmix as bm
from bayesmix.cli.train import corpus_app, sweep_cmd, train_cmd
from bayesmix.cli.workflow import _fail as fail
from bayesmix.cli.workflow import (
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
        "intervals (optimise), propose the next runs (suggest) and write a report (report). "
        "`bayesmix quickstart` runs all of it on the embedded corpus; `bayesmix demo` is a "
        "one-minute fit and predict on simulated runs. Run tables (CSV/Parquet) work too: "
        "`bayesmix fit runs.csv`, `bayesmix predict fit.nc mixtures.csv`."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
START, PROXIES, METHOD = "1. Start here", "2. Proxy runs", "3. Fit, choose, report"
app.command("quickstart", rich_help_panel=START)(quickstart_cmd)
app.add_typer(corpus_app, name="corpus", rich_help_panel=PROXIES)
app.command("train", rich_help_panel=PROXIES)(train_cmd)
app.command("sweep", rich_help_panel=PROXIES)(sweep_cmd)
app.add_typer(runs_app, name="runs", rich_help_panel=PROXIES)
console = Console()

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
}
#: Python keywords the commands have no option for -> what to do on the command line instead
PYTHON_ONLY = {
    "mixture_columns": "name the mixture columns mix_<domain> in the file",
    "loss_columns": "keep only the run, mix_<domain>, loss and model_size/tokens/step columns in the file",
    "step": "keep one checkpoint per run in the file, each run's last say",
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
    fail(_for_cli(err))


def _interval_table(summary: pd.DataFrame, title: str, truth: pd.Series | None = None) -> Table:
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


@app.command(rich_help_panel=METHOD)
def fit(
    runs: Path = typer.Argument(
        ...,
        help=(
            "Run table: CSV or Parquet, one row per run (wide) or per run and domain (long); "
            "or a project folder (fits the nested laws to its ledger into <project>/fits/)."
        ),
    ),
    out: Path = typer.Option(Path("fit.nc"), help="Where to write the fit (a .nc file and a .json sidecar)."),
    layout: str = typer.Option(
        "wide", help="'wide' (mix_<domain> columns + loss columns) or 'long' (run, domain, loss, mix_*)."
    ),
    law: str = typer.Option("mixing", help=f"Law: {', '.join(f'{k} ({v})' for k, v in LAWS.items())}."),
    exponent: str = typer.Option(
        "1", help="Mixture feature exponent: 1 is the paper's law; a number, or 'learn'."
    ),
    components: int = typer.Option(3, help="Implicit domains K (law 'implicit')."),
    method: str = typer.Option(
        "nuts", help="'nuts' (posterior), 'laplace' (fast approximate posterior), 'map' (quick point) or 'paper' (the paper's protocol)."
    ),
    draws: int = typer.Option(1000, help="NUTS draws per chain."),
    tune: int = typer.Option(1000, help="NUTS tuning steps per chain."),
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
) -> None:
    """Fit a mixing law to a run table (or the nested laws to a project's runs) and save the posterior."""
    if runs.is_dir():
        given = {"--out": (out, Path("fit.nc")), "--layout": (layout, "wide"), "--law": (law, "mixing"),
                 "--exponent": (exponent, "1"), "--components": (components, 3), "--method": (method, "nuts"),
                 "--draws": (draws, 1000), "--tune": (tune, 1000), "--chains": (chains, 4), "--seed": (seed, 0),
                 "--renormalise": (renormalise, False), "--no-discrepancy": (discrepancy, True)}  # fmt: skip
        for option, (value, default) in given.items():
            if value != default:
                _fail(
                    bm.InputError(
                        option, "is not used for a project folder", "set project.fit / seed in its study.yaml"
                    )
                )
                return
        _fit_project(runs, strict)
        return
    try:
        chosen = _law(law, exponent, components)
        table = bm.RunTable.read(runs, layout=layout, renormalise=renormalise)
        console.print(
            f"Fitting {chosen!r} to {table.n_runs} runs, {len(table.domains)} validation domains ({method})"
        )
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
                progressbar=True,
            )
        path = bm.save(idata, out)
    except BayesmixError as err:
        _fail(err)
        return
    health = bm.health(idata)
    console.print(f"Sampler: {health}")
    settings = bm.fitted_spec(idata).extra.get("discrepancy")
    if settings is not None:
        console.print(
            f"Form error (region backtests): length scale {settings['lengthscale']:.3g} shares, amplitude "
            + ", ".join(f"{d} {v:.3g}" for d, v in zip(table.domains, settings["sd"], strict=True))
            + " nats"
        )
    elif discrepancy:
        console.print("Fitted without the form-error term: too few runs for its region backtests")
    console.print(f"Saved {path} and {path.with_suffix('.json')}")
    if strict and not health.ok:
        raise typer.Exit(code=3)


def _fit_project(folder: Path, strict: bool) -> None:
    from bayesmix.project import Project, steps

    try:
        project = Project(folder)
        console.print(f"Fitting the nested laws to the finished runs of {folder}")
        nested = steps.fit_project(project, progressbar=True)
    except BayesmixError as err:
        _fail(err)
        return
    console.print(f"Saved {project.nested_dir} and {project.proxy_fit_path}")
    print_health(nested.health, strict)


@app.command(rich_help_panel=METHOD)
def predict(
    fitted: Path = typer.Argument(..., help="A fit written by `bayesmix fit` (.nc)."),
    mixtures: Path = typer.Argument(
        ..., help="CSV/Parquet with one column per training domain (missing = 0)."
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
) -> None:
    """Predict the loss of new mixtures with credible intervals."""
    try:
        idata = bm.load(fitted)
        frame = bm.data.runs.read_table(mixtures, "mixtures")
        draws = bm.predict(idata, frame, kind=kind, renormalise=renormalise, seed=seed)
        summary = bm.interval(draws, prob=prob, kind=interval_kind).to_dataframe()
    except BayesmixError as err:
        _fail(err)
        return
    console.print(_interval_table(summary, f"Predicted loss, {prob:.0%} {interval_kind} intervals ({kind})"))
    health = bm.health(idata)
    console.print(f"Sampler (of the fit): {health}")
    if out is not None:
        summary.to_csv(out)
        console.print(f"Wrote {out}")
    if strict and not health.ok:
        raise typer.Exit(code=3)


@app.command(rich_help_panel=START)
def demo(
    out: Path = typer.Option(
        Path("bayesmix-demo"), help="Folder for the example runs, the fit and the predictions."
    ),
    runs: int = typer.Option(24, help="Number of simulated proxy runs."),
    draws: int = typer.Option(1000, help="NUTS draws per chain."),
    chains: int = typer.Option(4, help="NUTS chains."),
    seed: int = typer.Option(0, help="Seed."),
) -> None:
    """Fit and predict with intervals on an embedded example study simulated from a known law.

    Writes runs.csv, fit.nc (+ .json) and predictions.csv, and prints predicted vs true losses
    of held-out mixtures and how many true values fall inside the 90% intervals.
    """
    from bayesmix.data.simulate import example_runs, random_mixtures

    out.mkdir(parents=True, exist_ok=True)
    table, truth = example_runs(n_runs=runs, seed=7)
    table.to_wide().to_csv(out / "runs.csv", index=False)
    console.print(f"Example study: {table.n_runs} runs over {table.train_domains} -> {out / 'runs.csv'}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        idata = bm.fit(table, draws=draws, tune=draws, chains=chains, seed=seed, progressbar=True)
    bm.save(idata, out / "fit.nc")
    console.print(f"Sampler: {bm.health(idata)}")
    new = pd.DataFrame(random_mixtures(5, len(table.train_domains), seed=99), columns=table.train_domains)
    new.index = pd.Index([f"new{i}" for i in range(len(new))], name="mixture")
    summary = bm.interval(bm.predict(idata, new, kind="mean"), prob=0.9).to_dataframe()
    true = pd.DataFrame(truth.mean_loss(new.to_numpy()), index=new.index, columns=table.domains).stack()
    true.index.names = ["mixture", "domain"]
    summary.to_csv(out / "predictions.csv")
    console.print(_interval_table(summary, "Held-out mixtures: predicted loss (90% interval) vs truth", true))
    inside = ((summary["lower"] <= true) & (true <= summary["upper"])).to_numpy()
    console.print(
        f"{int(inside.sum())}/{inside.size} true losses inside their 90% intervals; "
        f"mean absolute error {np.abs(summary['mean'] - true).mean():.4f} nats"
    )
    console.print(f"Wrote {out / 'fit.nc'}, {out / 'predictions.csv'}")


# after fit and predict, so --help lists the method's commands in the order they are used
app.command("optimise", rich_help_panel=METHOD)(optimise_cmd)
app.command("suggest", rich_help_panel=METHOD)(suggest_cmd)
app.command("report", rich_help_panel=METHOD)(report_cmd)


if __name__ == "__main__":
    app()

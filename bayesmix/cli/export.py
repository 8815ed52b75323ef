"""``bayesmix export``: the chosen mixture in the format a pretraining framework reads.

Reads the mixture written by ``bayesmix optimise`` (or given with ``--mixture``), splits a token
budget over its domains (tokens and epochs per domain) and renders it for Megatron-LM, NeMo,
olmo-core, LitGPT, torchtitan, nanotron or Hugging Face ``datasets``.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from bayesmix.cli import _output
from bayesmix.errors import BayesmixError, InputError

#: what is exported (``--json``, the file written, or the text) goes to stdout; notes, warnings
#: and, when the text itself is on stdout, the token table go to stderr
results = _output.out


class _Notes:
    """Notes on stderr, silent under ``bayesmix --quiet``."""

    def print(self, *args: Any, **kwargs: Any) -> None:
        if not _output.verbosity.quiet:
            _output.err.print(*args, **kwargs)


notes = _Notes()

#: the names of :data:`bayesmix.optimise.export.FORMATS`, here so that ``--help`` does not load
#: the optimiser
FORMAT_NAMES = (
    "json",
    "yaml",
    "megatron",
    "megatron-args",
    "megatron-split",
    "nemo",
    "olmo-core",
    "litgpt",
    "torchtitan",
    "nanotron",
    "hf",
)

#: the export API's argument names -> the option of this command and an example of its use
OPTIONS = {
    "mixture": ("--mixture", "--mixture web=0.6,code=0.4"),
    "format": ("--format", "--format megatron"),
    "budget": ("--budget", "--budget 300B"),
    "available": ("--available", "--available web=2T,code=300B"),
    "paths": ("--paths", "--paths '/data/{domain}'"),
    "global_batch_size": ("--global-batch-size", "--global-batch-size 4M"),
    "max_epochs": ("--max-epochs", "--max-epochs 8"),
    "out": ("--out", "--out blend.yaml"),
}


def _for_cli(err: InputError) -> InputError:
    """The same error naming this command's option, with the option in its advice."""
    if err.field not in OPTIONS:
        return err
    option, example = OPTIONS[err.field]
    fix = err.fix if option in err.fix else f"{err.fix} ({example})"
    return type(err)(option, err.problem, fix)


def _mixture(source: Path | None, mixture: str | None) -> tuple[dict[str, float], dict[str, Any]]:
    from bayesmix.cli.train import parse_mixture
    from bayesmix.optimise.export import read_mixture

    if source is not None and mixture is not None:
        raise InputError("--mixture", f"given together with {source}", "give the file or --mixture, not both")
    if mixture is not None:
        return parse_mixture(mixture), {}
    if source is None:
        raise InputError(
            "--mixture",
            "no mixture given",
            "give the optimum.json written by `bayesmix optimise` (or its project folder), "
            "or --mixture web=0.6,code=0.4",
        )
    return read_mixture(source)


def plan_table(export: Any) -> Table:
    """Share, tokens and (when known) available tokens and epochs per domain."""
    plan = export.plan
    assert plan is not None
    table = Table("domain", "share", "tokens", title=f"Budget {plan.budget:,} tokens")
    epochs = plan.epochs
    if epochs is not None:
        table.add_column("available")
        table.add_column("epochs")
    for domain, tokens in plan.tokens.items():
        cells = [escape(domain), f"{plan.shares[domain]:.4f}", f"{tokens:,}"]
        if epochs is not None and plan.available is not None:
            mark = "[bold red]" if epochs[domain] > 1 else ""
            cells += [f"{plan.available[domain]:,}", f"{mark}{epochs[domain]:.2f}"]
        table.add_row(*cells)
    return table


def export_cmd(
    source: Annotated[
        Path | None,
        typer.Argument(
            help="optimum.json written by `bayesmix optimise`, or its project folder (omit with --mixture)."
        ),
    ] = None,
    mixture: Annotated[
        str | None, typer.Option(help="The mixture instead of a file, e.g. web=0.6,code=0.4.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="One of: " + ", ".join(FORMAT_NAMES) + ".")] = "json",
    budget: Annotated[
        str | None,
        typer.Option(
            help="Training tokens, e.g. 300B, 2T or 1e12 (default: the target tokens in a project's optimum.json)."
        ),
    ] = None,
    available: Annotated[
        str | None,
        typer.Option(
            help="Tokens each domain has, for epochs: a CSV/JSON file of domain,tokens, or web=2T,code=300B."
        ),
    ] = None,
    paths: Annotated[
        str | None,
        typer.Option(
            help="Data path or prefix per domain: a template /data/{domain}, web=/data/web,code=/data/code, "
            "or a JSON/YAML file of them."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write to this file (atomically) instead of stdout.")
    ] = None,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON object: mixture, tokens, epochs, paths and the rendered text."
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Sampling seed written into the formats that take one.")] = 0,
    global_batch_size: Annotated[
        str | None, typer.Option(help="Tokens per optimizer step, for olmo-core (e.g. 4M).")
    ] = None,
    max_epochs: Annotated[
        float | None,
        typer.Option(help="Fail when a domain would be repeated for more epochs than this."),
    ] = None,
) -> None:
    """Write the chosen mixture in the format a pretraining framework reads.

    json, yaml: the mixture (with --budget: tokens and epochs per domain).
    megatron: Megatron-LM's --data-path argument; megatron-args: the --data-args-path file;
    megatron-split: the --per-split-data-args-path JSON. nemo: model.data.data_prefix.
    olmo-core: SourceMixtureDatasetConfig. litgpt: litdata CombinedStreamingDataset.
    torchtitan: a registered dataset. nanotron: data_stages. hf: interleave_datasets.

    --budget splits the training tokens over the domains; --available adds each domain's
    epochs and warns when data would be repeated.
    """
    from bayesmix.optimise.export import RepetitionWarning, export_mixture

    try:
        shares, record = _mixture(source, mixture)
        chosen_budget: Any = budget
        budget_note = None
        if budget is None and isinstance(record.get("tokens"), int | float) and record["tokens"] > 0:
            chosen_budget = record["tokens"]
            budget_note = f"budget: the {record['tokens']:,.0f} target tokens the optimum was chosen for"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RepetitionWarning)  # reported below, once
            export = export_mixture(
                shares,
                fmt,
                budget=chosen_budget,
                available=available,
                paths=paths,
                seed=seed,
                global_batch_size=global_batch_size,
                max_epochs=max_epochs,
            )
        if out is not None:
            export.write(out)
    except InputError as err:
        _output.fail(_for_cli(err))
        return
    except BayesmixError as err:
        _output.fail(err)
        return
    if budget_note is not None:
        notes.print(escape(budget_note), soft_wrap=True, highlight=False)
    if json_out:
        payload = {**export.to_dict(), "out": None if out is None else str(out)}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    elif out is None:
        sys.stdout.write(export.text)
        if export.plan is not None:
            notes.print(plan_table(export))
    else:
        if export.plan is not None:
            results.print(plan_table(export))
        results.print(f"wrote {escape(str(out))} ({fmt})", soft_wrap=True, highlight=False)
    if export.plan is not None and export.plan.repeated:
        notes.print(
            "[yellow]warning[/]: data repeated: "
            + escape(", ".join(f"{d} {e:.2f} epochs" for d, e in export.plan.repeated.items())),
            soft_wrap=True,
            highlight=False,
        )

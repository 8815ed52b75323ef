"""Run a list of planned runs into a study's ledger, skipping finished ones.

The parent process prepares the shared data once (corpus, tokenizer, tokenized sequences in the
study cache) and records every planned run in the ledger (:func:`job_arguments`); the executor
(:mod:`bayesmix.proxy.executor`: serial, a local process pool, Slurm through submitit, or Ray)
then trains the unfinished runs with :func:`run_job` (a run that was interrupted resumes from its
checkpoint). A per-run lock makes sure no two workers train one run at once, whichever executor
or process started them. Progress is shown with a rich progress bar.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bayesmix.proxy.data import TokenizedCorpus
from bayesmix.proxy.executor import Executor, LocalProcessExecutor
from bayesmix.proxy.plan import RunSpec
from bayesmix.proxy.study import Prepared, Study
from bayesmix.proxy.trainer import run_record, train_run

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What a sweep did.

    Parameters
    ----------
    finished
        Runs trained to completion in this sweep.
    skipped
        Runs already finished before the sweep.
    failed
        ``{run id: error}`` of runs that raised.
    wall_s
        Seconds the sweep took (preparation included).
    """

    finished: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0


def run_job(
    study_folder: str, run: dict[str, Any], data_path: str, corpus_id: str, tokenizer_id: str
) -> dict[str, Any]:
    """Train one run of a study (a top-level function, so process pools can pickle it).

    Two workers never train the same run at once: a worker that finds the run locked by another
    (or finished meanwhile) skips it.

    Returns
    -------
    dict
        ``run``, ``final`` (``{domain: [loss, bpb]}``), ``tokens``, ``wall_s``, ``resumed_from``,
        and ``skipped: True`` when another worker had the run.
    """
    study = Study(study_folder)
    spec = RunSpec(**run)
    with _run_lock(study.checkpoint_path(spec.id).with_suffix(".lock")) as mine:
        if not mine or spec.id in {r.id for r in study.ledger.runs("finished")}:
            # another worker is training it now, or finished it since this sweep was planned
            return {
                "run": spec.id,
                "skipped": True,
                "final": {},
                "tokens": 0,
                "wall_s": 0.0,
                "resumed_from": 0,
            }
        return _train_job(study, spec, data_path, corpus_id, tokenizer_id)


@contextmanager
def _run_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive, non-blocking lock on ``path`` while training a run.

    Yields ``False`` when another process holds it. The lock is an ``flock`` on an open file, so the
    kernel releases it when its process dies (even by SIGKILL): a killed worker never blocks a run.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): one sweep per study at a time
            yield True
            return
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def run_locked(study: Study, run_id: str) -> bool:
    """Whether another process holds the run's training lock now (it is training the run).

    Parameters
    ----------
    study
        The study.
    run_id
        The run.

    Returns
    -------
    bool
        True while a worker of any sweep or loop trains the run (the lock is released when that
        worker's process ends, however it ends).
    """
    with _run_lock(study.checkpoint_path(run_id).with_suffix(".lock")) as mine:
        return not mine


def _train_job(
    study: Study, spec: RunSpec, data_path: str, corpus_id: str, tokenizer_id: str
) -> dict[str, Any]:
    result = train_run(
        spec,
        study.model(spec.model),
        TokenizedCorpus.load(data_path),
        study.train_config,
        ledger=study.ledger,
        checkpoint_path=study.checkpoint_path(spec.id),
        corpus_id=corpus_id,
        tokenizer_id=tokenizer_id,
    )
    return {
        "run": spec.id,
        "final": {d: list(v) for d, v in result.final.items()},
        "tokens": result.tokens,
        "wall_s": result.wall_s,
        "resumed_from": result.resumed_from,
    }


def job_arguments(
    study: Study,
    runs: Sequence[RunSpec],
    console: Console | None = None,
    prepared: Prepared | None = None,
) -> dict[str, tuple[str, dict[str, Any], str, str, str]]:
    """Prepare what the runs share and record every run in the ledger (as planned, if new).

    The corpus is loaded, the tokenizer built and the data tokenized once per sequence length
    (cached in the study), so the jobs only read them.

    Parameters
    ----------
    study
        The study.
    runs
        Planned runs.
    console
        Where the corpus attributions are printed (default: nowhere).
    prepared
        What :meth:`Study.prepare` returned for every sequence length of ``runs`` (default:
        prepared here).

    Returns
    -------
    dict
        ``{run id: arguments of run_job}`` (``run_job(*arguments[run_id])`` trains the run).

    Raises
    ------
    InputError
        A run the study cannot train, or one that is in the ledger with other settings.
    """
    if prepared is None:
        prepared = study.prepare(sorted({study.model(r.model).seq_len for r in runs}))
    if console is not None:
        for line in prepared.attributions:
            console.print(f"[dim]{line}[/dim]")
    ledger = study.ledger
    data_cache: dict[int, TokenizedCorpus] = {}
    arguments = {}
    for r in runs:
        spec = study.model(r.model)
        if spec.seq_len not in data_cache:
            data_cache[spec.seq_len] = study.data(prepared, spec.seq_len)
        data = data_cache[spec.seq_len]
        ledger.add_run(
            run_record(r, spec, data, study.train_config, prepared.corpus_id, prepared.tokenizer_id)
        )
        arguments[r.id] = (
            str(study.folder),
            asdict(r),
            str(prepared.data_paths[spec.seq_len]),
            prepared.corpus_id,
            prepared.tokenizer_id,
        )
    return arguments


def sweep(
    study: Study,
    runs: Sequence[RunSpec],
    executor: Executor | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> SweepReport:
    """Train every planned run that is not finished yet.

    Parameters
    ----------
    study
        The study (its settings, ledger and cache).
    runs
        Planned runs (from :func:`~bayesmix.proxy.plan.load_plan`, :func:`~bayesmix.proxy.plan.grid`
        or the designer).
    executor
        Where jobs run (default: :class:`LocalProcessExecutor`).
    progress
        Show a progress bar.
    console
        Rich console for the bar and messages.

    Returns
    -------
    SweepReport
        Finished, skipped and failed runs.
    """
    t0 = time.perf_counter()
    console = console or Console(stderr=True)
    report = SweepReport()
    arguments = job_arguments(study, runs, console)
    done = {r.id for r in study.ledger.runs("finished")}
    todo = [r for r in runs if r.id not in done]
    report.skipped = [r.id for r in runs if r.id in done]
    jobs = [arguments[r.id] for r in todo]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not progress) as bar:
        task = bar.add_task(f"sweep ({len(report.skipped)} already finished)", total=len(jobs))
        for outcome in (executor or LocalProcessExecutor()).run(run_job, jobs):
            run_id = todo[outcome.index].id
            if outcome.error is None and outcome.result.get("skipped"):
                report.skipped.append(run_id)
                bar.update(task, description=f"{run_id}: trained by another worker")
            elif outcome.error is None:
                report.finished.append(run_id)
                mean = sum(v[0] for v in outcome.result["final"].values()) / len(outcome.result["final"])
                bar.update(task, description=f"{run_id}: mean val loss {mean:.3f}")
                if not console.is_terminal or not progress:  # a log without a live bar still shows progress
                    logger.info(
                        "%s finished (%d/%d): mean validation loss %.3f nats/token",
                        run_id, len(report.finished) + len(report.failed), len(jobs), mean,
                    )
            else:
                report.failed[run_id] = outcome.error
                console.print(f"[red]{run_id} failed:[/red] {outcome.error}")
            bar.advance(task)
    report.wall_s = time.perf_counter() - t0
    return report

"""The ``bayesmix loop`` command: the designer's ask/train/tell loop on a project, resumable.

Registered in :mod:`bayesmix.cli.main`; the loop itself is :func:`bayesmix.project.loop.run_loop`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bayesmix.cli import _output
from bayesmix.cli._output import emit_json, note
from bayesmix.cli.train import (
    ClusterOpt,
    ExecutorOpt,
    FolderOpt,
    GpusOpt,
    PartitionOpt,
    RayAddressOpt,
    ThreadsOpt,
    TimeoutOpt,
    WorkersOpt,
    check_executor_options,
    executor_from_options,
)
from bayesmix.errors import BayesmixError, InputError


def loop_cmd(
    project: Annotated[
        Path, typer.Argument(help="Project folder (made by `bayesmix quickstart` or Project.create).")
    ],
    batches: Annotated[int, typer.Option(help="Batches to ask in all (counting those of earlier loops).")] = 3,
    batch_size: Annotated[
        int | None, typer.Option(help="Proposals per batch (default: the project's n_suggest).")
    ] = None,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 1,
    threads: ThreadsOpt = None,
    cluster: ClusterOpt = "auto",
    partition: PartitionOpt = None,
    timeout_min: TimeoutOpt = 60,
    gpus_per_job: GpusOpt = 0,
    folder: FolderOpt = None,
    ray_address: RayAddressOpt = None,
    poll_s: Annotated[float, typer.Option(help="Seconds between polls of the jobs.")] = 5.0,
    max_attempts: Annotated[
        int, typer.Option(help="Submissions of a run whose job fails, before it is recorded as failed.")
    ] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")] = False,
) -> None:
    """Keep the designer asking as results arrive: submit a batch, tell finished runs, ask again.

    Each batch is what `bayesmix suggest` would propose from the ledger, with the runs still in flight as pending; the next batch is asked as soon as fewer than --batch-size runs are in flight.

    The loop's state (<project>/loop.json: batches, runs, job handles) is saved after every change, so after a kill the same command resumes: it re-attaches to jobs still running (submitit, Ray), resubmits runs whose job was lost, and never trains a finished run again. Then `bayesmix fit PROJECT` and `bayesmix optimise PROJECT` use the new runs.
    """
    from bayesmix.project import Project
    from bayesmix.project.loop import loop_summary, run_loop

    options = (executor, workers, threads, cluster, partition, timeout_min, gpus_per_job, folder, ray_address)
    try:
        check_executor_options(*options)
        if not 0 <= poll_s <= 3600:
            raise InputError("--poll-s", f"is {poll_s}", "give 0 to 3600 seconds between polls")
        for name, value in (("--batches", batches), ("--batch-size", batch_size), ("--max-attempts", max_attempts)):
            if value is not None and value < 1:
                raise InputError(name, f"is {value}", "give an integer >= 1")
        proj = Project(project)
        if not proj.study.settings.get("project"):
            raise InputError(
                "PROJECT",
                f"{project}/study.yaml has no project: section, so the loop would train runs at default "
                f"sizes {list(proj.settings.sizes)} and {proj.settings.steps} steps",
                "add a project: section to study.yaml (sizes, steps, n_suggest, ...; see the Project docs), "
                "or start one with bayesmix quickstart",
            )
        chosen = executor_from_options(project, *options)
        note(f"Running the design loop of {project} on the {chosen.backend} executor")
        with chosen:
            report = run_loop(
                proj, chosen, batches=batches, batch_size=batch_size, poll_s=poll_s, max_attempts=max_attempts
            )
        summary = loop_summary(proj)
    except BayesmixError as err:
        _output.fail(err)
        return
    if as_json:
        emit_json(
            {
                "batches": report.batches,
                "asked": report.asked,
                "finished": report.finished,
                "failed": report.failed,
                "reattached": report.reattached,
                "resubmitted": report.resubmitted,
                "runs": summary["runs"],
                "state": report.state,
                "wall_s": report.wall_s,
            }
        )
    else:
        _output.out.print(
            f"{report.batches} batches asked; this session asked {len(report.asked)} runs, finished "
            f"{len(report.finished)}, re-attached {len(report.reattached)}, resubmitted "
            f"{len(report.resubmitted)}, failed {len(report.failed)} in {report.wall_s:.1f} s"
        )
        _output.out.print(f"state {report.state}; next: bayesmix fit {project}")
    if report.failed:
        raise typer.Exit(1)

"""The active-learning loop on a project: ask a batch, train it, tell the results, ask again.

:func:`run_loop` keeps the designer asking while results arrive. Each batch is the designer's
proposal (:func:`bayesmix.project.steps.project_designer`, the designer of ``bayesmix suggest``)
rebuilt from the ledger, where the finished runs are told their losses and the runs submitted and
not finished yet are pending, so a batch never repeats a run in flight. The runs go into the
ledger as planned, then to an executor (:mod:`bayesmix.proxy.executor`: serial, local pool,
submitit/Slurm, Ray) as :func:`bayesmix.proxy.sweep.run_job` jobs. The next batch is asked as soon
as fewer than ``batch_size`` runs are in flight, until ``batches`` batches were asked and every
run has ended.

The loop's state, ``<project>/loop.json``, records every batch, each run's settings and the
handle of its job; it is written atomically after every change. A loop started again on the same
project (after a kill, a crash or a reboot) reads it and:

* re-attaches to the jobs still queued or running (their handles; e.g. Slurm or Ray jobs, or
  submitit's local subprocesses, which outlive the loop's process);
* resubmits the runs whose job was lost (the local pool's jobs end with the loop) and the runs
  recorded but never submitted; a resubmitted run resumes from its checkpoint;
* never trains a finished run again: a run finished in the ledger is told, not submitted, and
  :func:`~bayesmix.proxy.sweep.run_job` skips a run another worker is training (its lock) or has
  finished. A run whose lock is held by a job the loop does not know (an orphaned worker) waits
  until that job ends.

A run whose job fails is submitted again up to ``max_attempts`` times in all, then recorded as
failed (in the ledger too). Jobs that were lost, or a worker that found the run locked, do not
count as attempts.

The designer's randomness at batch ``k`` is seeded by the project's seed and ``k``, so a loop
resumed after a kill asks what the uninterrupted loop would have asked from the same ledger.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayesmix.data.files import atomic_path
from bayesmix.errors import IncompatibleFileError, InputError
from bayesmix.project.project import Project
from bayesmix.proxy.executor import JobError, JobExecutor
from bayesmix.proxy.plan import RunSpec

logger = logging.getLogger(__name__)

#: the ``kind`` field of a loop state file
LOOP_KIND = "bayesmix.loop"
#: version of the loop state file
LOOP_VERSION = 1
#: a run's status in the loop state: waiting to be submitted, submitted (its job has a handle),
#: held (another process trains it), finished, failed
RUN_STATUSES = ("queued", "submitted", "held", "done", "failed")
_IN_FLIGHT = ("queued", "submitted", "held")


@dataclass
class LoopReport:
    """What a call of :func:`run_loop` did.

    Parameters
    ----------
    batches
        Batches asked so far (this call and earlier ones on the project).
    asked
        Runs asked in this call.
    finished
        Runs that ended finished during this call (trained here or found finished in the ledger).
    failed
        ``{run id: error}`` of runs that failed ``max_attempts`` times.
    reattached
        Runs whose job, submitted by an earlier process, was found by its handle (queued,
        running, or ended while no loop was watching).
    resubmitted
        Runs submitted again: their job was lost or failed, or they were never submitted.
    state
        The loop's state file.
    wall_s
        Seconds the call took.
    """

    batches: int = 0
    asked: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    reattached: list[str] = field(default_factory=list)
    resubmitted: list[str] = field(default_factory=list)
    state: Path | None = None
    wall_s: float = 0.0


def loop_state_path(project: Project) -> Path:
    """The loop's state file of a project (``<project>/loop.json``)."""
    return project.folder / "loop.json"


def _corrupt(path: Path, problem: str) -> IncompatibleFileError:
    return IncompatibleFileError(
        f"{path}: {problem}. Fix: restore it from a backup, or delete it to start a new loop (the "
        "ledger keeps every finished run, and running jobs are not lost: their runs are skipped "
        "or resumed from checkpoints when the new loop proposes them)"
    )


def read_state(path: Path) -> dict[str, Any]:
    """Read and check a loop state file.

    Parameters
    ----------
    path
        The file (see :func:`loop_state_path`).

    Returns
    -------
    dict
        ``kind``, ``version``, ``batches`` (lists of run ids) and ``runs`` (``{run id: {spec,
        batch, status, handle, failures, error}}``).

    Raises
    ------
    IncompatibleFileError
        Not JSON, not a loop state, another version, or a field of the wrong shape.
    """
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(path, f"cannot be read as JSON ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("kind") != LOOP_KIND:
        raise _corrupt(path, f"is not a loop state (kind {LOOP_KIND!r})")
    if state.get("version") != LOOP_VERSION:
        raise _corrupt(path, f"has version {state.get('version')!r}; this bayesmix reads {LOOP_VERSION}")
    batches, runs = state.get("batches"), state.get("runs")
    if not isinstance(batches, list) or not isinstance(runs, dict):
        raise _corrupt(path, "lacks its batches or runs")
    for i, batch in enumerate(batches):
        if not isinstance(batch, list) or any(run_id not in runs for run_id in batch):
            raise _corrupt(path, f"batch {i} names runs the file does not hold")
    for run_id, entry in runs.items():
        if (
            not isinstance(entry, dict)
            or entry.get("status") not in RUN_STATUSES
            or not isinstance(entry.get("spec"), dict)
            or not isinstance(entry.get("failures"), int)
            or not (entry.get("handle") is None or isinstance(entry.get("handle"), str))
        ):
            raise _corrupt(path, f"run {run_id!r} has a malformed entry")
        try:
            _spec(entry)
        except (InputError, TypeError, KeyError) as exc:
            raise _corrupt(path, f"run {run_id!r} has invalid settings ({exc})") from None
    return state


def _write_state(path: Path, state: Mapping[str, Any]) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")


def _spec(entry: Mapping[str, Any]) -> RunSpec:
    """The run of a state entry: checked by :meth:`RunSpec.make`, its stored shares kept exactly."""
    raw = entry["spec"]
    checked = RunSpec.make(raw["mixture"], raw["model"], raw["steps"], raw["seed"], raw["id"])
    mixture = {str(d): float(v) for d, v in raw["mixture"].items()}
    return RunSpec(checked.id, mixture, checked.model, checked.steps, checked.seed)


def _spec_dict(spec: RunSpec) -> dict[str, Any]:
    return {"id": spec.id, "mixture": dict(spec.mixture), "model": spec.model, "steps": spec.steps,
            "seed": spec.seed}


def _check_count(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(name, f"is {value!r}", f"give an integer >= {low}")


class _Loop:
    """One call of :func:`run_loop` (the state, the executor and what happened)."""

    def __init__(self, project: Project, executor: JobExecutor, path: Path, report: LoopReport,
                 max_attempts: int):
        self.project = project
        self.study = project.study
        self.executor = executor
        self.path = path
        self.report = report
        self.max_attempts = max_attempts
        self.state: dict[str, Any] = (
            read_state(path) if path.exists() else {"kind": LOOP_KIND, "version": LOOP_VERSION, "batches": [],
                                                    "runs": {}}
        )
        self._seen: set[str] = set()  # runs whose job this call has polled
        self._prepared: Any = None
        self._arguments: dict[str, tuple[Any, ...]] = {}

    # ---- state -----------------------------------------------------------------------------
    def save(self) -> None:
        _write_state(self.path, self.state)

    def in_flight(self) -> list[str]:
        return [k for k, e in self.state["runs"].items() if e["status"] in _IN_FLIGHT]

    def finished_in_ledger(self) -> set[str]:
        return {r.id for r in self.study.ledger.runs("finished")}

    def arguments(self, specs: list[RunSpec]) -> dict[str, tuple[Any, ...]]:
        """Each run's :func:`run_job` arguments (the runs recorded in the ledger as planned)."""
        from bayesmix.proxy.sweep import job_arguments

        specs = [s for s in specs if s.id not in self._arguments]
        if not specs:
            return self._arguments
        if self._prepared is None:
            lens = sorted({self.study.model(s).seq_len for s in self.project.settings.sizes})
            self._prepared = self.study.prepare(lens)
        missing = sorted({self.study.model(s.model).seq_len for s in specs} - set(self._prepared.data_paths))
        if missing:
            self._prepared = self.study.prepare(sorted(set(self._prepared.data_paths) | set(missing)))
        self._arguments.update(job_arguments(self.study, specs, prepared=self._prepared))
        return self._arguments

    # ---- asking ----------------------------------------------------------------------------
    def ask(self, batch_size: int) -> None:
        from bayesmix.project.steps import project_designer, proposed_runs

        index = len(self.state["batches"])
        designer, multi_scale = project_designer(self.project, allow_empty=True)
        designer.n_asks = index  # the k-th batch's randomness: default_rng([seed, k])
        specs = proposed_runs(self.project, designer.ask(batch_size), multi_scale)
        fresh = [s for s in specs if s.id not in self.state["runs"]]
        self.state["batches"].append([s.id for s in fresh])
        for spec in fresh:
            self.state["runs"][spec.id] = {"spec": _spec_dict(spec), "batch": index, "status": "queued",
                                           "handle": None, "failures": 0, "error": None}
        self.save()  # before the ledger: a run in the ledger as planned is always in the state
        self.arguments(fresh)
        self.report.asked += [s.id for s in fresh]
        logger.info("batch %d: asked %d runs (%d in flight before it)", index + 1, len(fresh),
                    len(self.in_flight()) - len(fresh))

    # ---- submitting ------------------------------------------------------------------------
    def submit_queued(self) -> None:
        from bayesmix.proxy.sweep import run_job

        queued = [k for k, e in self.state["runs"].items() if e["status"] == "queued"]
        if not queued:
            return
        finished = self.finished_in_ledger()
        todo = []
        for run_id in queued:
            if run_id in finished:
                self.done(run_id, "found finished in the ledger")
            else:
                todo.append(run_id)
        arguments = self.arguments([_spec(self.state["runs"][k]) for k in todo]) if todo else {}
        for run_id in todo:
            entry = self.state["runs"][run_id]
            if entry["handle"] is not None or entry["failures"]:
                self.report.resubmitted.append(run_id)
            entry["handle"] = self.executor.submit(run_job, *arguments[run_id])
            entry["status"] = "submitted"
            self._seen.add(run_id)
            self.save()
            logger.info("%s submitted (%s)", run_id, entry["handle"])

    # ---- polling ---------------------------------------------------------------------------
    def done(self, run_id: str, how: str) -> None:
        entry = self.state["runs"][run_id]
        entry.update(status="done", error=None)
        self.report.finished.append(run_id)
        self.save()
        logger.info("%s %s; told the designer", run_id, how)

    def fail(self, run_id: str, error: str, lost: bool) -> None:
        from bayesmix.proxy.sweep import run_locked

        entry = self.state["runs"][run_id]
        if run_id in self.finished_in_ledger():
            self.done(run_id, "found finished in the ledger (its job could not report it)")
            return
        if lost:
            entry["status"] = "held" if run_locked(self.study, run_id) else "queued"
            logger.info("%s: its job was lost (%s); %s", run_id, error,
                        "another worker still trains it" if entry["status"] == "held" else "resubmitting")
        else:
            entry["failures"] += 1
            entry["error"] = error
            if entry["failures"] >= self.max_attempts:
                entry["status"] = "failed"
                self.report.failed[run_id] = error
                ledger = self.study.ledger
                if ledger.get_run(run_id).status != "failed":
                    ledger.set_status(run_id, "failed", error=error)
                logger.warning("%s failed %d times, last: %s", run_id, entry["failures"], error)
            else:
                entry["status"] = "queued"
                logger.info("%s failed (%s); resubmitting (attempt %d of %d)", run_id, error,
                            entry["failures"] + 1, self.max_attempts)
        self.save()

    def reattached(self, run_id: str, state: str) -> None:
        self.report.reattached.append(run_id)
        logger.info("%s: re-attached to its job %s (%s)", run_id, self.state["runs"][run_id]["handle"], state)

    def poll(self) -> None:
        from bayesmix.proxy.sweep import run_locked

        for run_id in self.in_flight():
            entry = self.state["runs"][run_id]
            if entry["status"] == "held":
                if run_id in self.finished_in_ledger():
                    self.done(run_id, "finished by another worker")
                elif not run_locked(self.study, run_id):
                    entry["status"] = "queued"
                    self.save()
                continue
            if entry["status"] != "submitted":
                continue
            try:
                state = self.executor.poll(entry["handle"])
            except InputError as err:  # a handle of another backend: its job is not reachable from here
                self.fail(run_id, f"{entry['handle']} is not reachable ({err.problem})", lost=True)
                continue
            first = run_id not in self._seen  # a job submitted by an earlier process
            self._seen.add(run_id)
            if state in ("pending", "running"):
                if first:
                    self.reattached(run_id, state)
                continue
            try:
                value = self.executor.result(entry["handle"])
            except JobError as err:
                if first and not err.lost:
                    self.reattached(run_id, state)
                self.fail(run_id, err.error, err.lost)
                continue
            if first:
                self.reattached(run_id, state)
            if isinstance(value, dict) and value.get("skipped"):
                # another worker held the run's lock, or finished it since it was submitted
                self.fail(run_id, "another worker trains it", lost=True)
            else:
                final = value.get("final", {}) if isinstance(value, dict) else {}
                mean = sum(v[0] for v in final.values()) / len(final) if final else float("nan")
                self.done(run_id, f"finished: mean validation loss {mean:.4f}")


def run_loop(
    project: Project,
    executor: JobExecutor,
    *,
    batches: int,
    batch_size: int | None = None,
    poll_s: float = 5.0,
    max_attempts: int = 2,
    on_poll: Callable[[LoopReport], None] | None = None,
) -> LoopReport:
    """Ask, train and tell until ``batches`` batches were asked and every run has ended.

    See the module docstring for the loop, its state file and how it resumes.

    Parameters
    ----------
    project
        The project (its ledger, designer settings and proxy sizes). Projects of runs trained
        elsewhere (``corpus: {kind: external}``) cannot train.
    executor
        Where the runs train (:func:`bayesmix.proxy.executor.make_executor`). To re-attach to
        the jobs of an earlier loop, give an executor of the same backend and settings (e.g. the
        same submitit folder and cluster); jobs it cannot reach are resubmitted.
    batches
        Batches to ask in all, counting those of earlier calls on the project (a loop that
        already asked them only waits for its runs).
    batch_size
        Proposals per batch (default: the project's ``n_suggest``). With one proxy size (or
        imported runs) each proposal is a mixture trained at every size of the project.
    poll_s
        Seconds between polls of the executor.
    max_attempts
        Submissions of a run whose job fails, before it is recorded as failed.
    on_poll
        Called with the report so far after every poll (progress display).

    Returns
    -------
    LoopReport
        What this call asked, finished, re-attached and resubmitted.

    Raises
    ------
    InputError
        A project that cannot train, a setting out of range.
    IncompatibleFileError
        A damaged ``loop.json``.
    """
    started = time.perf_counter()
    _check_count("batches", batches, 1)
    batch_size = project.settings.n_suggest if batch_size is None else batch_size
    _check_count("batch_size", batch_size, 1)
    _check_count("max_attempts", max_attempts, 1)
    if not isinstance(poll_s, int | float) or isinstance(poll_s, bool) or not 0 <= poll_s <= 3600:
        raise InputError("poll_s", f"is {poll_s!r}", "give 0 to 3600 seconds between polls")
    if project.external:
        raise InputError(
            "project",
            f"{project.folder} studies runs trained elsewhere (corpus: external) and has no text to train on",
            "run the loop on a project with an embedded or local corpus (bayesmix quickstart, bayesmix corpus import)",
        )
    path = loop_state_path(project)
    report = LoopReport(state=path)
    with _exclusive(project):
        loop = _Loop(project, executor, path, report, max_attempts)
        if path.exists():
            logger.info("resuming the loop of %s: %d batches asked, %d runs in flight", project.folder,
                        len(loop.state["batches"]), len(loop.in_flight()))
        while True:
            before = {k: e["status"] for k, e in loop.state["runs"].items()}
            loop.poll()
            while len(loop.state["batches"]) < batches and len(loop.in_flight()) < batch_size:
                asked_before = len(loop.state["runs"])
                loop.ask(batch_size)
                if len(loop.state["runs"]) == asked_before:  # every proposal was a run of an earlier batch
                    break
            loop.submit_queued()
            report.batches = len(loop.state["batches"])
            if on_poll is not None:
                on_poll(report)
            if not loop.in_flight() and len(loop.state["batches"]) >= batches:
                break
            if before == {k: e["status"] for k, e in loop.state["runs"].items()}:
                time.sleep(poll_s)  # nothing moved: wait before polling again
    report.wall_s = time.perf_counter() - started
    return report


@contextmanager
def _exclusive(project: Project) -> Iterator[None]:
    """Hold the project's loop lock (``<project>/loop.lock``): one loop per project at a time.

    The lock is an ``flock`` on an open file, released by the kernel when its process ends, so a
    killed loop never blocks the next one.

    Raises
    ------
    InputError
        Another loop runs on the project.
    """
    path = project.folder / "loop.lock"
    with open(path, "a+b") as fh:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): the user keeps to one loop per project
            yield
            return
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                "project",
                f"another loop runs on {project.folder} (it holds {path})",
                "wait for it to end or stop it (a stopped loop resumes where it was), then run the loop again",
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def loop_summary(project: Project) -> dict[str, Any]:
    """The loop state of a project in numbers: batches asked and runs per status.

    Raises
    ------
    IncompatibleFileError
        A damaged ``loop.json``.
    """
    path = loop_state_path(project)
    if not path.exists():
        return {"batches": 0, "runs": dict.fromkeys(RUN_STATUSES, 0)}
    state = read_state(path)
    counts = dict.fromkeys(RUN_STATUSES, 0)
    for entry in state["runs"].values():
        counts[entry["status"]] += 1
    return {"batches": len(state["batches"]), "runs": counts}


__all__ = ["LOOP_KIND", "LOOP_VERSION", "RUN_STATUSES", "LoopReport", "loop_state_path", "loop_summary",
           "read_state", "run_loop"]

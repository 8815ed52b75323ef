"""Executors run a sweep's jobs: in this process, in a local process pool, on Slurm or on Ray.

Two interfaces, one implementation per backend:

* :class:`Executor` (``run``): a picklable top-level function and a list of argument tuples in,
  each job's :class:`Outcome` out, in completion order. :func:`bayesmix.proxy.sweep.sweep` uses it.
* :class:`JobExecutor` (``submit`` / ``poll`` / ``result`` / ``cancel``): asynchronous jobs
  named by a **handle**, a plain string ``"<backend>:<job id>"`` that can be written to a file.
  A process started later with an executor of the same settings polls the same handle and finds
  the job again, where the backend keeps jobs beyond the process that submitted them (Slurm,
  submitit's local subprocesses, a Ray cluster's detached actors). The project loop
  (:mod:`bayesmix.project.loop`) uses it.

A job is in one of the states of :data:`JOB_STATES`: ``"pending"`` (queued), ``"running"``,
``"done"``, ``"failed"`` or ``"cancelled"``. A handle no process can find any more (a local-pool
job of a process that ended, a Slurm job unknown to Slurm's accounting for
:attr:`SubmititExecutor.unknown_grace_s`) is ``"failed"``, and its :class:`JobError` has
``lost=True``.

Backends:

* :class:`SerialExecutor`: in this process, one job at a time (``submit`` runs the job);
* :class:`LocalProcessExecutor`: a pool of fresh (``spawn``) processes; its jobs end with this
  process;
* :class:`SubmititExecutor`: Slurm through ``submitit`` (``pip install 'bayesmix[slurm]'``), or
  submitit's local subprocesses (``cluster="local"``); jobs outlive this process, their files and
  logs are kept in a folder;
* :class:`RayExecutor`: a Ray cluster (``pip install 'bayesmix[ray]'``), one detached named actor
  per job.

:func:`make_executor` builds one by name (the command line's ``--executor``).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from bayesmix.errors import BayesmixError, InputError

#: every state :meth:`JobExecutor.poll` returns
JOB_STATES = ("pending", "running", "done", "failed", "cancelled")
#: the states a job never leaves
FINAL_STATES = ("done", "failed", "cancelled")
#: the backends :func:`make_executor` builds
BACKENDS = ("serial", "local", "submitit", "ray")
#: the clusters :class:`SubmititExecutor` runs on
SUBMITIT_CLUSTERS = ("auto", "slurm", "local")


@dataclass
class Outcome:
    """The result of one job.

    Parameters
    ----------
    index
        Position of the job in the submitted list.
    result
        The function's return value (None on failure).
    error
        ``"<type>: <message>"`` when the job raised, else None.
    """

    index: int
    result: Any = None
    error: str | None = None


class JobError(BayesmixError):
    """A job failed, was cancelled, or cannot be found any more.

    Parameters
    ----------
    handle
        The job's handle.
    state
        ``"failed"`` or ``"cancelled"``.
    error
        ``"<type>: <message>"`` of the job's exception, or why the job cannot be found.
    lost
        True when no process can find the job any more (it did not fail on its own: resubmit it).
    details
        The job's traceback or log file, where the backend keeps one.
    """

    def __init__(self, handle: str, state: str, error: str, lost: bool = False, details: str = ""):
        self.handle = handle
        self.state = state
        self.error = error
        self.lost = lost
        self.details = details
        super().__init__(f"job {handle} {state}: {error}")


class Executor(Protocol):
    """Runs jobs and yields their outcomes as they complete."""

    def run(self, fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]]) -> Iterator[Outcome]:
        """Run ``fn(*job)`` for every job, yielding :class:`Outcome` objects in completion order."""
        ...


class JobExecutor(Protocol):
    """Asynchronous jobs named by persistable handles (see the module docstring)."""

    backend: str

    def submit(self, fn: Callable[..., Any], *args: Any) -> str:
        """Start ``fn(*args)``; return its handle."""
        ...

    def poll(self, handle: str) -> str:
        """The job's state, one of :data:`JOB_STATES`."""
        ...

    def result(self, handle: str, timeout: float | None = None) -> Any:
        """Wait for the job and return its value (raises :class:`JobError` when it did not finish)."""
        ...

    def cancel(self, handle: str) -> bool:
        """Cancel the job; True when it will not finish."""
        ...

    def close(self) -> None:
        """Release what the executor holds in this process."""
        ...

    def run(self, fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]]) -> Iterator[Outcome]:
        """Run ``fn(*job)`` for every job, yielding outcomes in completion order."""
        ...


#: the jobs this process runs now (a pool worker whose parent died exits once it is empty)
_RUNNING: list[Callable[..., Any]] = []


def call_with_threads(threads: int | None, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Call ``fn(*args)`` with ``threads`` torch threads (a top-level function, so it pickles).

    Parameters
    ----------
    threads
        Torch (and OpenMP) threads of the job; None leaves the defaults.
    fn, args
        The job.

    Returns
    -------
    Any
        What ``fn`` returns.
    """
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        if "torch" in sys.modules:  # unpickling ``fn`` imported it when the job needs it
            sys.modules["torch"].set_num_threads(threads)
    _RUNNING.append(fn)
    try:
        return fn(*args)
    finally:
        _RUNNING.pop()


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _check_count(field: str, value: Any, low: int, fix: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(field, f"is {value!r}", fix)


class BaseExecutor:
    """What every :class:`JobExecutor` shares: ``result`` and ``run`` built on ``submit``/``poll``.

    A backend implements :meth:`submit`, :meth:`poll`, :meth:`cancel` and :meth:`_collect`
    (the value or the error of a job in a final state).
    """

    backend: ClassVar[str] = "base"
    #: seconds between polls while waiting
    poll_interval: float = 0.2

    def submit(self, fn: Callable[..., Any], *args: Any) -> str:
        """Start ``fn(*args)`` and return its handle ``"<backend>:<job id>"``.

        Raises
        ------
        NotImplementedError
            On the base class.
        """
        raise NotImplementedError

    def poll(self, handle: str) -> str:
        """The job's state: one of :data:`JOB_STATES`.

        Raises
        ------
        NotImplementedError
            On the base class.
        """
        raise NotImplementedError

    def cancel(self, handle: str) -> bool:
        """Cancel the job.

        Raises
        ------
        NotImplementedError
            On the base class.
        """
        raise NotImplementedError

    def _collect(self, handle: str, state: str) -> tuple[Any, JobError | None]:
        """The value of a job in a final ``state``, or the error to raise."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the executor holds in this process (jobs on a cluster keep running)."""

    def __enter__(self) -> BaseExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _job_id(self, handle: str) -> str:
        """The part of ``handle`` after ``"<backend>:"``.

        Raises
        ------
        InputError
            The handle is not a string of this backend.
        """
        prefix = f"{self.backend}:"
        if not isinstance(handle, str) or not handle.startswith(prefix) or len(handle) == len(prefix):
            raise InputError(
                "handle",
                f"{handle!r} is not a handle of the {self.backend} executor",
                f"poll it with the executor that submitted it (handles of this one start with {prefix!r})",
            )
        return handle[len(prefix) :]

    def result(self, handle: str, timeout: float | None = None) -> Any:
        """Wait for the job to end and return its value.

        Parameters
        ----------
        handle
            From :meth:`submit` (in this process or an earlier one).
        timeout
            Seconds to wait at most (None: until the job ends).

        Returns
        -------
        Any
            What the job's function returned.

        Raises
        ------
        JobError
            The job failed, was cancelled, or cannot be found (``lost``).
        TimeoutError
            The job did not end within ``timeout`` seconds.
        InputError
            ``handle`` is not a handle of this backend.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        state = self.poll(handle)
        while state not in FINAL_STATES:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {handle} is still {state} after {timeout} s")
            time.sleep(self.poll_interval)
            state = self.poll(handle)
        value, error = self._collect(handle, state)
        if error is not None:
            raise error
        return value

    def run(self, fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]]) -> Iterator[Outcome]:
        """Submit ``fn(*job)`` for every job and yield outcomes as jobs end.

        Jobs not yet ended when the caller stops iterating are cancelled.
        """
        handles = {self.submit(fn, *job): i for i, job in enumerate(jobs)}
        try:
            while handles:
                ended = [(h, s) for h in list(handles) if (s := self.poll(h)) in FINAL_STATES]
                if not ended:
                    time.sleep(self.poll_interval)
                for handle, state in ended:
                    i = handles.pop(handle)
                    value, error = self._collect(handle, state)
                    yield Outcome(i, value) if error is None else Outcome(i, error=error.error)
        finally:
            for handle in handles:
                self.cancel(handle)


class SerialExecutor(BaseExecutor):
    """Run jobs one after another in this process (``submit`` runs the job before returning)."""

    backend: ClassVar[str] = "serial"

    def __init__(self) -> None:
        self._done: dict[str, tuple[Any, str | None]] = {}

    def run(self, fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]]) -> Iterator[Outcome]:
        """Run ``fn(*job)`` for every job in order, yielding each outcome as soon as it ends."""
        for i, job in enumerate(jobs):
            try:
                yield Outcome(i, fn(*job))
            except Exception as exc:
                yield Outcome(i, error=_error_text(exc))

    def submit(self, fn: Callable[..., Any], *args: Any) -> str:
        """Run ``fn(*args)`` now; return the handle of its (finished) job."""
        handle = f"{self.backend}:{uuid.uuid4().hex}"
        try:
            self._done[handle] = (fn(*args), None)
        except Exception as exc:
            self._done[handle] = (None, _error_text(exc))
        return handle

    def poll(self, handle: str) -> str:
        """``"done"`` or ``"failed"`` (also for a handle of another process: the job is lost).

        Raises
        ------
        InputError
            ``handle`` is not a handle of this backend.
        """
        self._job_id(handle)
        if handle not in self._done:
            return "failed"
        return "done" if self._done[handle][1] is None else "failed"

    def cancel(self, handle: str) -> bool:
        """Nothing to cancel: every job has ended when ``submit`` returns (False)."""
        self._job_id(handle)
        return False

    def _collect(self, handle: str, state: str) -> tuple[Any, JobError | None]:
        if handle not in self._done:
            return None, JobError(handle, "failed", "the process that ran it has ended", lost=True)
        value, error = self._done[handle]
        return value, None if error is None else JobError(handle, "failed", error)


def _init_worker(threads: int, parent: int) -> None:
    """Pool initializer: the thread count for torch and OpenMP, and a watch on the parent process.

    A worker whose parent process died (killed) finishes the job it runs, then exits instead of
    waiting for jobs forever.
    """
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent and not _RUNNING:
            os._exit(0)


class LocalProcessExecutor(BaseExecutor):
    """Run jobs in a pool of fresh (``spawn``) worker processes on this machine.

    The pool starts at the first :meth:`submit` and stops at :meth:`close` (``run`` closes a pool
    it started). Its jobs end with this process: a handle polled by a later process is
    ``"failed"`` with a lost :class:`JobError`. A job that is running cannot be cancelled.

    Parameters
    ----------
    workers
        Number of processes (default: 1 per 2 CPU cores).
    threads_per_worker
        Torch threads per process (default: cores // workers, at least 1).
    """

    backend: ClassVar[str] = "local"

    def __init__(self, workers: int | None = None, threads_per_worker: int | None = None):
        cores = os.cpu_count() or 1
        self.workers = max(1, workers or cores // 2)
        self.threads = max(1, threads_per_worker or cores // self.workers)
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[str, Future[Any]] = {}

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.threads, os.getpid()),
            )
        return self._pool

    def submit(self, fn: Callable[..., Any], *args: Any) -> str:
        """Queue ``fn(*args)`` in the pool (restarted if a worker died); return its handle."""
        try:
            future = self._ensure_pool().submit(call_with_threads, self.threads, fn, args)
        except BrokenProcessPool:  # a worker was killed: the old pool takes no more jobs
            self._pool = None
            future = self._ensure_pool().submit(call_with_threads, self.threads, fn, args)
        handle = f"{self.backend}:{uuid.uuid4().hex}"
        self._futures[handle] = future
        return handle

    def poll(self, handle: str) -> str:
        """The job's state (``"failed"`` for a job of a process that ended).

        Raises
        ------
        InputError
            ``handle`` is not a handle of this backend.
        """
        self._job_id(handle)
        future = self._futures.get(handle)
        if future is None:
            return "failed"
        if future.cancelled():
            return "cancelled"
        if future.done():
            return "failed" if future.exception() is not None else "done"
        return "running" if future.running() else "pending"

    def cancel(self, handle: str) -> bool:
        """Cancel a job that has not started (True); a running or ended job is left (False).

        Raises
        ------
        InputError
            ``handle`` is not a handle of this backend.
        """
        self._job_id(handle)
        future = self._futures.get(handle)
        return future is not None and future.cancel()

    def _collect(self, handle: str, state: str) -> tuple[Any, JobError | None]:
        future = self._futures.get(handle)
        if future is None:
            return None, JobError(
                handle, "failed", "the local pool that ran it ended with its process", lost=True
            )
        if state == "cancelled":
            return None, JobError(handle, "cancelled", "cancelled before it started")
        exc = future.exception()
        if exc is not None:
            return None, JobError(handle, "failed", _error_text(exc), lost=isinstance(exc, BrokenProcessPool))
        return future.result(), None

    def close(self) -> None:
        """Stop the pool: wait for running jobs, cancel queued ones."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run(self, fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]]) -> Iterator[Outcome]:
        """Run ``fn(*job)`` in the pool, yielding outcomes as jobs complete."""
        started_here = self._pool is None
        try:
            yield from super().run(fn, jobs)
        finally:
            if started_here:
                self.close()


def _missing(package: str, extra: str) -> InputError:
    return InputError(
        "executor",
        f"needs the {package} package, which is not installed",
        f"pip install 'bayesmix[{extra}]' (or pip install {package}), or use the local executor "
        "(--executor local)",
    )


#: submitit / Slurm job states -> :data:`JOB_STATES` (a state not listed is ``"pending"``)
_SUBMITIT_STATES = {
    "RUNNING": "running",
    "COMPLETING": "running",
    "CANCELLED": "cancelled",
    "FAILED": "failed",
    "TIMEOUT": "failed",
    "NODE_FAIL": "failed",
    "OUT_OF_MEMORY": "failed",
    "PREEMPTED": "failed",
    "BOOT_FAIL": "failed",
    "DEADLINE": "failed",
    "INTERRUPTED": "failed",
    "COMPLETED": "failed",  # completed without a result file
    "FINISHED": "failed",
}


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class SubmititExecutor(BaseExecutor):
    """Jobs on Slurm through ``submitit`` (or on this machine with submitit's local executor).

    Each job is one submitit job: the function and its arguments pickled into ``folder``, where
    its log files (``<job id>_0_log.out`` / ``.err``) and result land. Jobs outlive the process
    that submitted them; a later process with the same ``folder`` and ``cluster`` polls their
    handles ``"submitit:<cluster>:<job id>"``.

    Parameters
    ----------
    folder
        Folder of the job files; ``%j`` in it is replaced by the job id (one folder per job).
    cluster
        ``"slurm"``, ``"local"`` (subprocesses of this machine, e.g. for tests) or ``"auto"``
        (Slurm when ``sbatch`` is available, else local).
    partition
        Slurm partition (default: the cluster's).
    timeout_min
        Minutes a job may run before it is stopped (also on the local cluster).
    gpus_per_job
        GPUs of each job (on the local cluster: the first ``gpus_per_job`` visible GPUs).
    cpus_per_job
        CPU cores of each job; also its torch threads.
    mem_gb
        Memory of each job in GB (Slurm; default the partition's).
    job_name
        Slurm job name.
    slurm_parameters
        Further ``sbatch`` settings (submitit's ``slurm_additional_parameters``), e.g.
        ``{"account": "proj"}``.

    Raises
    ------
    InputError
        ``submitit`` is not installed, an unknown cluster, Slurm asked for where there is none,
        or a setting out of range.
    """

    backend: ClassVar[str] = "submitit"
    poll_interval: float = 0.5
    #: seconds a Slurm job may stay unknown to Slurm's accounting (just submitted, or purged from
    #: it) before it counts as lost
    unknown_grace_s: float = 600.0

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        cluster: str = "auto",
        partition: str | None = None,
        timeout_min: int = 60,
        gpus_per_job: int = 0,
        cpus_per_job: int = 1,
        mem_gb: float | None = None,
        job_name: str = "bayesmix",
        slurm_parameters: Mapping[str, Any] | None = None,
    ):
        if cluster not in SUBMITIT_CLUSTERS:
            raise InputError("cluster", f"is {cluster!r}", f"use one of {list(SUBMITIT_CLUSTERS)}")
        _check_count("timeout_min", timeout_min, 1, "give the minutes a job may run (an integer >= 1)")
        _check_count("gpus_per_job", gpus_per_job, 0, "give 0 or more GPUs per job")
        _check_count("cpus_per_job", cpus_per_job, 1, "give 1 or more CPU cores per job")
        if mem_gb is not None and not (isinstance(mem_gb, int | float) and mem_gb > 0):
            raise InputError("mem_gb", f"is {mem_gb!r}", "give a positive number of GB, or leave it unset")
        try:
            import submitit
        except ImportError:
            raise _missing("submitit", "slurm") from None
        if cluster == "auto":
            cluster = "slurm" if submitit.SlurmExecutor.affinity() > 0 else "local"
        if cluster == "slurm" and submitit.SlurmExecutor.affinity() <= 0:
            raise InputError(
                "cluster", "is slurm, but sbatch is not available on this machine",
                "run from a Slurm login node, or run the jobs on this machine with the local cluster "
                "(cluster='local'; on the command line --cluster local)",
            )
        self.folder = Path(folder)
        self.cluster = cluster
        self.threads = cpus_per_job
        self._executor = submitit.AutoExecutor(folder=self.folder, cluster=cluster)
        parameters: dict[str, Any] = {
            "name": job_name,
            "timeout_min": int(timeout_min),
            "gpus_per_node": int(gpus_per_job),
            "cpus_per_task": int(cpus_per_job),
            "tasks_per_node": 1,
            "nodes": 1,
        }
        if mem_gb is not None:
            parameters["mem_gb"] = float(mem_gb)
        if partition:
            parameters["slurm_partition"] = partition
        if slurm_parameters:
            parameters["slurm_additional_parameters"] = dict(slurm_parameters)
        self._executor.update_parameters(**parameters)
        self._jobs: dict[str, Any] = {}
        self._cancelled: set[str] = set()
        self._unknown_since: dict[str, float] = {}

    def submit(self, fn: Callable[..., Any], *args: Any) -> str:
        """Submit ``fn(*args)`` as a submitit job; return ``"submitit:<cluster>:<job id>"``."""
        try:
            job = self._executor.submit(call_with_threads, self.threads, fn, args)
        except Exception as exc:  # sbatch refused the job (partition, account, limits) or is unreachable
            raise InputError(
                "executor",
                f"submitit could not submit a job to the {self.cluster} cluster ({_error_text(exc)})",
                "check the partition, GPUs and time limit against the cluster's limits (partition, "
                "gpus_per_job, timeout_min; on the command line --partition, --gpus-per-job, --timeout-min)",
            ) from exc
        handle = f"{self.backend}:{self.cluster}:{job.job_id}"
        self._jobs[handle] = job
        return handle

    def _job(self, handle: str) -> Any:
        """The submitit job of ``handle``: the one submitted here, or rebuilt from its id.

        Raises
        ------
        InputError
            A handle of another backend or cluster.
        """
        cluster, _, job_id = self._job_id(handle).partition(":")
        if cluster != self.cluster or not job_id:
            raise InputError(
                "handle",
                f"{handle!r} is not a job of the submitit {self.cluster} cluster",
                f"poll it with a SubmititExecutor on the {cluster or 'same'} cluster and the same folder",
            )
        if handle not in self._jobs:
            from submitit.local.local import LocalJob
            from submitit.slurm.slurm import SlurmJob

            self._jobs[handle] = (SlurmJob if self.cluster == "slurm" else LocalJob)(self.folder, job_id)
        return self._jobs[handle]

    def _outcome(self, job: Any) -> tuple[str, Any] | None:
        """``("success", value)`` or ``("error", traceback)`` once the job wrote its result file."""
        path = job.paths.result_pickle
        if not path.exists():
            return None
        from submitit.core.utils import pickle_load

        return pickle_load(path)

    def poll(self, handle: str) -> str:
        """The job's state, from its result file, its process (local) or Slurm's accounting.

        Raises
        ------
        InputError
            ``handle`` is not a job of this executor's cluster.
        """
        job = self._job(handle)
        if handle in self._cancelled:
            return "cancelled"
        outcome = self._outcome(job)
        if outcome is not None:
            return "done" if outcome[0] == "success" else "failed"
        if self.cluster == "local":
            if job._process is not None:  # submitted by this process
                return "running" if job._process.poll() is None else self._after_result(job)
            return "running" if _process_alive(int(job.job_id)) else self._after_result(job)
        raw = str(job.state).split(" ")[0].upper()
        if raw == "UNKNOWN":  # not (yet, or any more) in Slurm's accounting
            since = self._unknown_since.setdefault(handle, time.monotonic())
            return "failed" if time.monotonic() - since > self.unknown_grace_s else "pending"
        self._unknown_since.pop(handle, None)
        state = _SUBMITIT_STATES.get(raw, "pending")
        return self._after_result(job) if state == "failed" else state

    def _after_result(self, job: Any) -> str:
        """A job whose process ended: its result file may land just after (a last look)."""
        outcome = self._outcome(job)
        if outcome is None:
            return "failed"
        return "done" if outcome[0] == "success" else "failed"

    def cancel(self, handle: str) -> bool:
        """Cancel the job (``scancel`` on Slurm, SIGINT to the local job); True unless it had ended.

        Raises
        ------
        InputError
            ``handle`` is not a job of this executor's cluster.
        """
        state = self.poll(handle)
        if state in FINAL_STATES:
            return False
        job = self._job(handle)
        if self.cluster == "local" and job._process is None:
            import signal

            try:
                os.kill(int(job.job_id), signal.SIGINT)
            except ProcessLookupError:
                return False
        else:
            job.cancel(check=False)
        self._cancelled.add(handle)
        return True

    def _collect(self, handle: str, state: str) -> tuple[Any, JobError | None]:
        job = self._job(handle)
        log = f"log: {job.paths.stderr}"
        if state == "cancelled":
            return None, JobError(handle, "cancelled", "cancelled", details=log)
        outcome = self._outcome(job)
        if outcome is None:
            if handle in self._unknown_since:
                reason = f"Slurm's accounting has not known it for {self.unknown_grace_s:.0f} s"
                return None, JobError(handle, "failed", reason, lost=True, details=log)
            known = job.paths.submitted_pickle.exists()
            reason = "it ended without a result (killed, timed out or out of memory)" if known else (
                f"its files are not in {job.paths.folder}"
            )
            return None, JobError(handle, "failed", reason, lost=not known, details=log)
        kind, value = outcome
        if kind == "success":
            return value, None
        lines = [line for line in str(value).strip().splitlines() if line.strip()]
        return None, JobError(handle, "failed", lines[-1] if lines else "failed", details=f"{value}\n{log}")


class _RayJob:
    """One job of :class:`RayExecutor`: a detached actor that runs the function and keeps its outcome."""

    def __init__(self) -> None:
        self.state = "pending"
        self.value: Any = None
        self.error: str | None = None

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...], threads: int | None) -> None:
        self.state = "running"
        try:
            self.value = call_with_threads(threads, fn, args)
            self.state = "done"
        except BaseException as exc:
            self.error = _error_text(exc)
            self.state = "failed"

    def status(self) -> str:
        return self.state

    def outcome(self) -> tuple[str, Any, str | None]:
        return self.state, self.value, self.error


class RayExecutor(BaseExecutor):
    """Jobs on a Ray cluster: each one a detached named actor that runs the function.

    Because the actor is detached and named (``bayesmix-<hex>`` in ``namespace``), it outlives
    the process that submitted it, and a later process connected to the same cluster polls the
    handle ``"ray:<actor name>"`` and takes the result. The actor holds ``cpus_per_job`` CPUs and
    ``gpus_per_job`` GPUs until :meth:`result` takes its outcome (the value, or the error) or
    :meth:`cancel` kills it; a job whose outcome another process took is lost to this one. A Ray
    instance started by this executor (no cluster to connect to) ends with this process, and
    its jobs with it.

    Parameters
    ----------
    address
        Cluster address (``"auto"``, ``"ray://host:10001"``); default: ``RAY_ADDRESS`` or a new
        local instance.
    namespace
        Ray namespace of the job actors.
    cpus_per_job, gpus_per_job
        Resources of each job; the CPUs are also its torch threads.
    init_options
        Further :func:`ray.init` keyword arguments (e.g. ``{"num_cpus": 2}`` for a local instance).

    Raises
    ------
    InputError
        ``ray`` is not installed, or a setting out of range.
    """

    backend: ClassVar[str] = "ray"
    poll_interval: float = 0.5

    def __init__(
        self,
        address: str | None = None,
        *,
        namespace: str = "bayesmix",
        cpus_per_job: int = 1,
        gpus_per_job: int = 0,
        init_options: Mapping[str, Any] | None = None,
    ):
        _check_count("cpus_per_job", cpus_per_job, 1, "give 1 or more CPUs per job")
        _check_count("gpus_per_job", gpus_per_job, 0, "give 0 or more GPUs per job")
        try:
            import ray
        except ImportError:
            raise _missing("ray", "ray") from None
        self._ray = ray
        self.address = address
        self.namespace = namespace
        self.cpus = cpus_per_job
        self.gpus = gpus_per_job
        self._init_options = dict(init_options or {})
        self._remote: Any = None
        self._cancelled: set[str] = set()
        self._taken: dict[str, tuple[Any, JobError | None]] = {}
        self._asked: dict[str, Any] = {}  # handle -> the status question in flight
        self._last: dict[str, str] = {}  # handle -> the last state its actor answered
        self._started_ray = False

    def _connect(self) -> Any:
        ray = self._ray
        if not ray.is_initialized():
            options = {"include_dashboard": False, "log_to_driver": False, **self._init_options}
            try:
                ray.init(address=self.address, namespace=self.namespace, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise InputError(
                    "ray_address",
                    f"Ray could not start or connect at {self.address or 'the default address'} "
                    f"({_error_text(exc)})",
                    "give the address of a running cluster (ray_address='auto' on a cluster node, "
                    "ray://host:10001 from outside; on the command line --ray-address), or leave it "
                    "unset to start a local instance",
                ) from exc
            self._started_ray = True
        if self._remote is None:
            self._remote = ray.remote(_RayJob)
        return ray

    def submit(self, fn: Callable[..., Any], *args: Any) -> str:
        """Start a detached actor running ``fn(*args)``; return ``"ray:<actor name>"``."""
        self._connect()
        name = f"bayesmix-{uuid.uuid4().hex}"
        actor = self._remote.options(
            name=name,
            namespace=self.namespace,
            lifetime="detached",
            num_cpus=self.cpus,
            num_gpus=self.gpus,
            max_concurrency=2,  # one thread runs the job, the other answers polls
        ).remote()
        actor.run.remote(fn, args, self.cpus)
        return f"{self.backend}:{name}"

    def _actor(self, handle: str) -> Any:
        name = self._job_id(handle)
        ray = self._connect()
        try:
            return ray.get_actor(name, namespace=self.namespace)
        except ValueError:
            return None

    def poll(self, handle: str) -> str:
        """The job's state, asked of its actor (``"failed"`` when the actor is gone).

        Raises
        ------
        InputError
            ``handle`` is not a handle of this backend.
        """
        self._job_id(handle)
        if handle in self._cancelled:
            return "cancelled"
        if handle in self._taken:
            return "done" if self._taken[handle][1] is None else "failed"
        ray = self._connect()
        ref = self._asked.get(handle)
        if ref is None:  # one question in flight per job: a poll never blocks on a busy cluster
            actor = self._actor(handle)
            if actor is None:
                return "failed"
            ref = self._asked[handle] = actor.status.remote()
        ready, _ = ray.wait([ref], timeout=0.2)
        if not ready:  # the actor waits for resources, or is starting
            return self._last.get(handle, "pending")
        del self._asked[handle]
        try:
            self._last[handle] = str(ray.get(ref))
        except ray.exceptions.RayActorError:
            self._last[handle] = "failed"
        return self._last[handle]

    def cancel(self, handle: str) -> bool:
        """Kill the job's actor; True unless the job had ended.

        Raises
        ------
        InputError
            ``handle`` is not a handle of this backend.
        """
        if self.poll(handle) in FINAL_STATES:
            return False
        actor = self._actor(handle)
        if actor is not None:
            self._ray.kill(actor, no_restart=True)
        self._cancelled.add(handle)
        return True

    def _collect(self, handle: str, state: str) -> tuple[Any, JobError | None]:
        if handle in self._taken:
            return self._taken[handle]
        if state == "cancelled":
            return None, JobError(handle, "cancelled", "cancelled")
        actor = self._actor(handle)
        if actor is None:
            return None, JobError(handle, "failed", f"no actor {self._job_id(handle)!r} on the cluster", lost=True)
        ray = self._ray
        try:
            status, value, error = ray.get(actor.outcome.remote())
        except ray.exceptions.RayActorError as exc:
            return None, JobError(handle, "failed", f"its actor died ({type(exc).__name__})", lost=True)
        outcome = (value, None) if status == "done" else (None, JobError(handle, "failed", error or status))
        self._taken[handle] = outcome
        ray.kill(actor, no_restart=True)  # the outcome is here now: free the actor's resources
        return outcome

    def close(self) -> None:
        """Disconnect from Ray; a local instance started here stops, with its jobs."""
        if self._started_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self._started_ray = False
        self._remote = None


def make_executor(
    backend: str,
    *,
    workers: int | None = None,
    threads: int | None = None,
    folder: str | os.PathLike[str] | None = None,
    cluster: str = "auto",
    partition: str | None = None,
    timeout_min: int = 60,
    gpus_per_job: int = 0,
    ray_address: str | None = None,
) -> BaseExecutor:
    """Build an executor by backend name (the command line's ``--executor``).

    Parameters
    ----------
    backend
        One of :data:`BACKENDS`.
    workers, threads
        Processes and torch threads per process of the local pool (``workers=0``: serial, in
        this process).
    folder
        Job files of submitit (required for it).
    cluster, partition, timeout_min, gpus_per_job
        :class:`SubmititExecutor` settings (``gpus_per_job`` also for Ray).
    ray_address
        :class:`RayExecutor` cluster address.

    Returns
    -------
    BaseExecutor
        The executor.

    Raises
    ------
    InputError
        An unknown backend, a missing package, or a setting out of range.
    """
    if backend == "serial" or (backend == "local" and workers == 0):
        return SerialExecutor()
    if backend == "local":
        return LocalProcessExecutor(workers, threads)
    if backend == "submitit":
        if folder is None:
            raise InputError("folder", "is not given", "give the folder of the submitit job files")
        return SubmititExecutor(
            folder,
            cluster=cluster,
            partition=partition,
            timeout_min=timeout_min,
            gpus_per_job=gpus_per_job,
            cpus_per_job=threads or 1,
        )
    if backend == "ray":
        return RayExecutor(ray_address, cpus_per_job=threads or 1, gpus_per_job=gpus_per_job)
    raise InputError("executor", f"is {backend!r}", f"use one of {list(BACKENDS)}")

"""Jobs on Slurm through ``submitit``, or on this machine with its local executor."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from bayesmix.errors import InputError
from bayesmix.proxy.executor.base import (
    FINAL_STATES,
    SUBMITIT_CLUSTERS,
    BaseExecutor,
    JobError,
    _check_count,
    _error_text,
    _missing,
    call_with_threads,
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

    def _state(self, handle: str) -> str:
        """The job's state, from its result file, its process (local) or Slurm's accounting.

        Raises
        ------
        InputError
            ``handle`` is a job of another cluster.
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

    def _cancel(self, handle: str) -> bool:
        """Cancel the job (``scancel`` on Slurm, SIGINT to the local job); True unless it had ended."""
        state = self._state(handle)
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

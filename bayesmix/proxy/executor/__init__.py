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

import os

from bayesmix.errors import InputError
from bayesmix.proxy.executor.base import (
    BACKENDS,
    FINAL_STATES,
    JOB_STATES,
    SUBMITIT_CLUSTERS,
    BaseExecutor,
    Executor,
    JobError,
    JobExecutor,
    Outcome,
    SerialExecutor,
    call_with_threads,
)
from bayesmix.proxy.executor.local import LocalProcessExecutor
from bayesmix.proxy.executor.ray import RayExecutor
from bayesmix.proxy.executor.submitit import SubmititExecutor

__all__ = [
    "BACKENDS",
    "FINAL_STATES",
    "JOB_STATES",
    "SUBMITIT_CLUSTERS",
    "BaseExecutor",
    "Executor",
    "JobError",
    "JobExecutor",
    "LocalProcessExecutor",
    "Outcome",
    "RayExecutor",
    "SerialExecutor",
    "SubmititExecutor",
    "call_with_threads",
    "make_executor",
]


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

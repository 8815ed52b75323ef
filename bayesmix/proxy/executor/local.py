"""The local process pool: fresh (``spawn``) worker processes on this machine."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar

from bayesmix.proxy.executor.base import (
    _RUNNING,
    BaseExecutor,
    JobError,
    Outcome,
    _error_text,
    call_with_threads,
)


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

    def _state(self, handle: str) -> str:
        """The job's state (``"failed"`` for a job of a process that ended)."""
        future = self._futures.get(handle)
        if future is None:
            return "failed"
        if future.cancelled():
            return "cancelled"
        if future.done():
            return "failed" if future.exception() is not None else "done"
        return "running" if future.running() else "pending"

    def _cancel(self, handle: str) -> bool:
        """Cancel a job that has not started (True); a running or ended job is left (False)."""
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

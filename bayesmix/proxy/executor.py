"""Executors run a sweep's jobs: serially, or in a local process pool.

:class:`Executor` is the interface a distributed engine can implement later: it receives a
picklable top-level function and a list of argument tuples and yields each job's outcome as it
completes, in any order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol


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


class Executor(Protocol):
    """Runs jobs and yields their outcomes as they complete."""

    def run(self, fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]]) -> Iterator[Outcome]:
        """Run ``fn(*job)`` for every job, yielding :class:`Outcome` objects in completion order."""
        ...


class SerialExecutor:
    """Run jobs one after another in this process."""

    def run(self, fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]]) -> Iterator[Outcome]:
        """Run ``fn(*job)`` for every job in order."""
        for i, job in enumerate(jobs):
            try:
                yield Outcome(i, fn(*job))
            except Exception as exc:
                yield Outcome(i, error=f"{type(exc).__name__}: {exc}")


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class LocalProcessExecutor:
    """Run jobs in a pool of fresh (``spawn``) worker processes on this machine.

    Parameters
    ----------
    workers
        Number of processes (default: 1 per 2 CPU cores).
    threads_per_worker
        Torch threads per process (default: cores // workers, at least 1).
    """

    def __init__(self, workers: int | None = None, threads_per_worker: int | None = None):
        cores = os.cpu_count() or 1
        self.workers = max(1, workers or cores // 2)
        self.threads = max(1, threads_per_worker or cores // self.workers)

    def run(self, fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]]) -> Iterator[Outcome]:
        """Run ``fn(*job)`` in the pool, yielding outcomes as jobs complete."""
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            self.workers, mp_context=ctx, initializer=_init_worker, initargs=(self.threads,)
        ) as pool:
            pending = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    exc = fut.exception()
                    if exc is None:
                        yield Outcome(i, fut.result())
                    else:
                        yield Outcome(i, error=f"{type(exc).__name__}: {exc}")

"""The executor interfaces, the job states and the shared base class; the serial executor."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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

    A backend implements :meth:`submit`, ``_state`` and ``_cancel`` (which :meth:`poll` and
    :meth:`cancel` call once the handle is known to be the backend's) and ``_collect`` (the
    value or the error of a job in a final state).
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
        """The job's state: one of :data:`JOB_STATES` (see the backend's ``_state``).

        Parameters
        ----------
        handle
            From :meth:`submit` (in this process or an earlier one).

        Raises
        ------
        InputError
            ``handle`` is not a handle of this backend.
        """
        self._job_id(handle)
        return self._state(handle)

    def cancel(self, handle: str) -> bool:
        """Cancel the job; True when it will not finish (see the backend's ``_cancel``).

        Raises
        ------
        InputError
            ``handle`` is not a handle of this backend.
        """
        self._job_id(handle)
        return self._cancel(handle)

    def _state(self, handle: str) -> str:
        """The state of a job whose handle is of this backend."""
        raise NotImplementedError

    def _cancel(self, handle: str) -> bool:
        """Cancel a job whose handle is of this backend."""
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

    def _state(self, handle: str) -> str:
        """``"done"`` or ``"failed"`` (also for a handle of another process: the job is lost)."""
        if handle not in self._done:
            return "failed"
        return "done" if self._done[handle][1] is None else "failed"

    def _cancel(self, handle: str) -> bool:
        """Nothing to cancel: every job has ended when ``submit`` returns (False)."""
        return False

    def _collect(self, handle: str, state: str) -> tuple[Any, JobError | None]:
        if handle not in self._done:
            return None, JobError(handle, "failed", "the process that ran it has ended", lost=True)
        value, error = self._done[handle]
        return value, None if error is None else JobError(handle, "failed", error)


def _missing(package: str, extra: str) -> InputError:
    return InputError(
        "executor",
        f"needs the {package} package, which is not installed",
        f"pip install 'bayesmix[{extra}]' (or pip install {package}), or use the local executor "
        "(--executor local)",
    )

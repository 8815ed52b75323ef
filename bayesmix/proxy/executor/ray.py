"""Jobs on a Ray cluster: one detached, named actor per job."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from bayesmix.errors import InputError
from bayesmix.proxy.executor.base import (
    FINAL_STATES,
    BaseExecutor,
    JobError,
    _check_count,
    _error_text,
    _missing,
    call_with_threads,
)


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

    def _state(self, handle: str) -> str:
        """The job's state, asked of its actor (``"failed"`` when the actor is gone)."""
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

    def _cancel(self, handle: str) -> bool:
        """Kill the job's actor; True unless the job had ended."""
        if self._state(handle) in FINAL_STATES:
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

"""Executors (serial, local pool, submitit, Ray) and the project loop killed and resumed."""

import json
import math
import operator
import os
import pickle
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

import bayesmix.proxy.sweep as sweep_module
from bayesmix.errors import IncompatibleFileError, InputError
from bayesmix.project import Project
from bayesmix.project.loop import loop_state_path, loop_summary, read_state, run_loop
from bayesmix.proxy.executor import (
    JOB_STATES,
    JobError,
    LocalProcessExecutor,
    SerialExecutor,
    SubmititExecutor,
    make_executor,
)

LADDER = {
    "defaults": {"seq_len": 32},
    "models": {"t1": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}},
}


def tiny_project(tmp_path, corpus_writer) -> Project:
    """One proxy size of the 't1' ladder, 10 steps, two evaluations: each run trains in about a second."""
    paths = corpus_writer(tmp_path / "corpus", n_docs=30)
    (tmp_path / "ladder.yaml").write_text(yaml.safe_dump(LADDER))
    settings = {
        "corpus": {"kind": "local", "paths": {k: str(v) for k, v in paths.items()}, "val_fraction": 0.15},
        "tokenizer": {"kind": "bpe", "vocab_size": 300},
        "ladder": str(tmp_path / "ladder.yaml"),
        "max_eval_tokens": 128,
        "train": {"batch_size": 4, "n_evals": 2, "device": "cpu", "warmup_steps": 1, "checkpoint_every": 0},
        "project": {
            "sizes": ["t1"],
            "steps": 10,
            "n_mixtures": 2,
            "n_suggest": 2,
            "target": {"model_size": 1e6, "tokens": 1e6},
        },
    }
    return Project.create(tmp_path / "project", settings)


def wait_final(executor, handle, timeout=60.0):
    deadline = time.monotonic() + timeout
    while (state := executor.poll(handle)) not in ("done", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"{handle} still {state}"
        time.sleep(0.1)
    return state


# ---------------------------------------------------------------------------------- executors
def test_serial_executor_jobs():
    ex = SerialExecutor()
    good, bad = ex.submit(operator.mul, 6, 7), ex.submit(math.sqrt, -1)
    assert good.startswith("serial:") and ex.poll(good) == "done" and ex.result(good) == 42
    assert ex.poll(bad) == "failed"
    with pytest.raises(JobError, match="math domain error") as info:
        ex.result(bad)
    assert not info.value.lost
    # a handle of an earlier process: the job is lost, and says so
    assert SerialExecutor().poll(good) == "failed"
    with pytest.raises(JobError) as info:
        SerialExecutor().result(good)
    assert info.value.lost
    with pytest.raises(InputError, match="not a handle of the serial executor"):
        ex.poll("local:123")
    # the old protocol still works, outcome by outcome
    outcomes = list(ex.run(operator.add, [(1, 2), (None, 1)]))
    assert outcomes[0].result == 3 and outcomes[1].error.startswith("TypeError")


def test_local_pool_jobs():
    with LocalProcessExecutor(workers=1, threads_per_worker=1) as ex:
        slow = ex.submit(time.sleep, 1.0)
        good, bad, queued = ex.submit(operator.mul, 6, 7), ex.submit(math.sqrt, -1), ex.submit(abs, -3)
        assert ex.poll(queued) in ("pending", "running")
        assert ex.cancel(queued) and ex.poll(queued) == "cancelled"
        assert ex.result(good, timeout=60) == 42 and ex.result(slow) is None
        assert wait_final(ex, bad) == "failed"
        with pytest.raises(JobError, match="ValueError: math domain error"):
            ex.result(bad)
        with pytest.raises(JobError, match="cancelled"):
            ex.result(queued)
        assert {ex.poll(h) for h in (good, bad, queued)} <= set(JOB_STATES)
        # the pool's jobs end with its process: a later process finds the handle lost
        later = LocalProcessExecutor(workers=1)
        assert later.poll(good) == "failed"
        with pytest.raises(JobError) as info:
            later.result(good)
        assert info.value.lost


def test_submitit_local_jobs_outlive_their_executor(tmp_path):
    pytest.importorskip("submitit")
    folder = tmp_path / "jobs" / "%j"
    ex = SubmititExecutor(folder, cluster="local", timeout_min=5)
    good, bad, slow = ex.submit(operator.mul, 6, 7), ex.submit(math.sqrt, -1), ex.submit(time.sleep, 60)
    assert good.startswith("submitit:local:")
    assert ex.result(good, timeout=60) == 42
    with pytest.raises(JobError, match="ValueError: math domain error") as info:
        ex.result(bad, timeout=60)
    assert not info.value.lost and "Traceback" in info.value.details
    assert ex.cancel(slow) and ex.poll(slow) == "cancelled"
    # a new executor (a restarted process) finds the jobs by their handles alone
    again = SubmititExecutor(folder, cluster="local", timeout_min=5)
    assert again.poll(good) == "done" and again.result(good) == 42
    assert again.poll(bad) == "failed"
    running = ex.submit(time.sleep, 1.5)
    third = SubmititExecutor(folder, cluster="local", timeout_min=5)
    assert third.poll(running) in ("pending", "running")
    assert third.result(running, timeout=60) is None
    job_id = good.rsplit(":", 1)[1]
    assert (tmp_path / "jobs" / job_id / f"{job_id}_0_log.out").exists()
    with pytest.raises(InputError, match="submitit local cluster"):
        again.poll("submitit:slurm:1")
    with pytest.raises(InputError, match="sbatch"):
        SubmititExecutor(folder, cluster="slurm")


class FakeSlurmJob:
    """What SubmititExecutor reads of a submitit SlurmJob: its state, its files, cancel()."""

    def __init__(self, folder, state):
        from submitit.core.utils import JobPaths

        self.job_id, self.state, self.cancelled = "77", state, False
        self.paths = JobPaths(folder, "77")

    def cancel(self, check=True):
        self.cancelled = True


def test_submitit_slurm_states_without_slurm(tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit")
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # as on a login node
    ex = SubmititExecutor(tmp_path / "%j", cluster="slurm", partition="gpu", gpus_per_job=1, mem_gb=8)
    assert ex._executor._executor.parameters["partition"] == "gpu"
    handle, job = "submitit:slurm:77", FakeSlurmJob(tmp_path / "%j", "PENDING")
    ex._jobs[handle] = job
    for slurm, ours in [("PENDING", "pending"), ("REQUEUED", "pending"), ("RUNNING", "running"),
                        ("CANCELLED by 1234", "cancelled"), ("TIMEOUT", "failed"), ("OUT_OF_MEMORY", "failed")]:
        job.state = slurm
        assert ex.poll(handle) == ours, slurm
    job.state = "TIMEOUT"
    with pytest.raises(JobError, match=r"its files are not in .*77") as info:
        ex.result(handle)
    assert info.value.lost  # not this folder's job
    job.paths.folder.mkdir(parents=True)
    job.paths.submitted_pickle.write_bytes(b"")
    with pytest.raises(JobError, match="ended without a result") as info:
        ex.result(handle)
    assert not info.value.lost  # its files are there: it ran and failed
    job.state = "RUNNING"
    assert ex.cancel(handle) and job.cancelled and ex.poll(handle) == "cancelled"
    # a job Slurm's accounting does not know: pending for a while (just submitted), then lost
    unknown, other = "submitit:slurm:78", FakeSlurmJob(tmp_path / "%j", "UNKNOWN")
    ex._jobs[unknown] = other
    assert ex.poll(unknown) == "pending"
    monkeypatch.setattr(ex, "unknown_grace_s", 0.0)
    time.sleep(0.01)
    with pytest.raises(JobError) as info:
        ex.result(unknown)
    assert info.value.lost
    # a result file decides, whatever the accounting says
    from submitit.core.utils import cloudpickle_dump

    cloudpickle_dump(("success", 5), job.paths.result_pickle)
    ex._cancelled.clear()
    assert ex.poll(handle) == "done" and ex.result(handle) == 5

    def refused(*args, **kwargs):
        raise RuntimeError("sbatch: error: invalid partition specified: gpu")

    monkeypatch.setattr(ex._executor, "submit", refused)
    with pytest.raises(InputError, match=r"invalid partition.*--partition"):
        ex.submit(operator.add, 1, 2)


@pytest.mark.slow  # starting a local Ray instance takes 5-15 s, beyond the default suite's budget
def test_ray_jobs():
    pytest.importorskip("ray")
    from bayesmix.proxy.executor import RayExecutor

    ex = RayExecutor(init_options={"num_cpus": 2})
    try:
        good, bad = ex.submit(operator.mul, 6, 7), ex.submit(math.sqrt, -1)
        assert good.startswith("ray:bayesmix-")
        assert ex.result(good, timeout=120) == 42
        with pytest.raises(JobError, match="ValueError: math domain error"):
            ex.result(bad, timeout=120)
        slow = ex.submit(time.sleep, 60)
        assert ex.cancel(slow) and ex.poll(slow) == "cancelled"
        # another executor connected to the cluster (a restarted process) finds a job by its handle
        later = ex.submit(operator.add, 1, 2)
        assert RayExecutor().result(later, timeout=120) == 3
        assert ex.poll(later) == "failed"  # its outcome was taken by the other process
    finally:
        ex.close()


def test_make_executor_and_missing_packages(monkeypatch, tmp_path):
    assert isinstance(make_executor("local", workers=0), SerialExecutor)
    assert isinstance(make_executor("local", workers=2), LocalProcessExecutor)
    with pytest.raises(InputError, match="folder"):
        make_executor("submitit")
    with pytest.raises(InputError, match="executor: is 'dask'"):
        make_executor("dask")
    monkeypatch.setitem(sys.modules, "submitit", None)
    with pytest.raises(InputError, match=r"pip install 'bayesmix\[slurm\]'"):
        make_executor("submitit", folder=tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match=r"pip install 'bayesmix\[ray\]'"):
        make_executor("ray")


# ---------------------------------------------------------------------------------- the loop
class Killed(Exception):
    """Stands for the loop's process being killed."""


class DyingExecutor(SerialExecutor):
    """A serial executor whose process dies: after running ``runs`` jobs, or at a poll.

    ``die_after_submit``: the job runs, then the process dies before the loop records its handle.
    ``never_runs``: the job is accepted but its process dies before running it, and the loop dies
    at its next poll (the handle is recorded; no later process can find the job).
    """

    def __init__(self, ok: int, mode: str):
        super().__init__()
        self.ok, self.mode, self.n = ok, mode, 0

    def submit(self, fn, *args):
        self.n += 1
        if self.n <= self.ok:
            return super().submit(fn, *args)
        if self.mode == "die_after_submit":
            super().submit(fn, *args)
            raise Killed
        return f"serial:never-ran-{self.n}"

    def poll(self, handle):
        if "never-ran" in handle:
            raise Killed
        return super().poll(handle)


def test_loop_killed_mid_batch_resumes_without_training_twice(tmp_path, corpus_writer, monkeypatch):
    project = tiny_project(tmp_path, corpus_writer)
    trained = Counter()
    train = sweep_module._train_job

    def counting(study, spec, *args):
        trained[spec.id] += 1
        return train(study, spec, *args)

    monkeypatch.setattr(sweep_module, "_train_job", counting)
    # 1. batch 1 trains; the first job of batch 2 runs, then the process dies before recording it
    with pytest.raises(Killed):
        run_loop(project, DyingExecutor(2, "die_after_submit"), batches=3, batch_size=2, poll_s=0)
    state = read_state(loop_state_path(project))
    batch2 = state["batches"][1]
    assert len(state["batches"]) == 2 and [state["runs"][k]["handle"] for k in batch2] == [None, None]
    assert trained[batch2[0]] == 1 and trained[batch2[1]] == 0
    # 2. resumed: the finished run is told, not trained; the other is submitted, but its job
    #    never runs (its process dies) and the loop dies at the next poll
    with pytest.raises(Killed):
        run_loop(project, DyingExecutor(0, "never_runs"), batches=3, batch_size=2, poll_s=0)
    state = read_state(loop_state_path(project))
    assert state["runs"][batch2[0]]["status"] == "done" and trained[batch2[0]] == 1
    assert state["runs"][batch2[1]]["handle"].startswith("serial:never-ran")
    # 3. resumed again while an orphaned worker still holds that run's lock: the loop waits for
    #    the lock, then resubmits the run, and finishes its 3 batches
    lock = sweep_module._run_lock(project.study.checkpoint_path(batch2[1]).with_suffix(".lock"))
    assert lock.__enter__()
    held = []

    def release(report):
        if not held:
            held.append(read_state(loop_state_path(project))["runs"][batch2[1]]["status"])
            lock.__exit__(None, None, None)

    report = run_loop(project, SerialExecutor(), batches=3, batch_size=2, poll_s=0, on_poll=release)
    assert held == ["held"]
    assert report.resubmitted == [batch2[1]] and report.batches == 3
    state = read_state(loop_state_path(project))
    runs = [k for batch in state["batches"] for k in batch]
    assert len(runs) == len(set(runs)) == 6
    finished = {r.id for r in project.study.ledger.runs("finished")}
    assert finished == set(runs) and len(project.study.ledger.runs()) == 6
    assert all(trained[k] == 1 for k in runs) and sum(trained.values()) == 6  # nothing trained twice
    assert loop_summary(project) == {"batches": 3, "runs": {"queued": 0, "submitted": 0, "held": 0,
                                                            "done": 6, "failed": 0}}
    # a finished loop asked again for as many batches does nothing
    again = run_loop(project, SerialExecutor(), batches=3, batch_size=2, poll_s=0)
    assert again.asked == again.finished == [] and sum(trained.values()) == 6


def test_loop_state_errors(tmp_path, corpus_writer):
    project = tiny_project(tmp_path, corpus_writer)
    with pytest.raises(InputError, match="batches"):
        run_loop(project, SerialExecutor(), batches=0)
    with open(project.folder / "loop.lock", "a+b") as fh:  # another loop runs on the project
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        with pytest.raises(InputError, match="another loop runs on"):
            run_loop(project, SerialExecutor(), batches=1)
    loop_state_path(project).write_text('{"kind": "bayesmix.loop", "version": 1, "batches": [["x"]], "runs": {}}')
    with pytest.raises(IncompatibleFileError, match="batch 0 names runs"):
        run_loop(project, SerialExecutor(), batches=1)
    loop_state_path(project).write_text("{not json")
    with pytest.raises(IncompatibleFileError, match="delete it to start a new loop"):
        loop_summary(project)


def _bayesmix() -> str:
    return str(Path(sys.executable).parent / "bayesmix")


def _results(folder: Path) -> list[dict]:
    """The return values of every submitit job that finished (run_job's dicts)."""
    values = []
    for path in folder.glob("*/*_result.pkl"):
        with open(path, "rb") as fh:
            kind, value = pickle.load(fh)
        assert kind == "success", value
        values.append(value)
    return values


@pytest.mark.slow
def test_loop_sigkilled_then_resumed_on_submitit(tmp_path, corpus_writer):
    """A real SIGKILL of `bayesmix loop` while its submitit jobs run; the same command resumes."""
    pytest.importorskip("submitit")
    project = tiny_project(tmp_path, corpus_writer)
    command = [_bayesmix(), "loop", str(project.folder), "--batches", "2", "--batch-size", "2",
               "--executor", "submitit", "--cluster", "local", "--poll-s", "0.5", "--timeout-min", "10"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(tmp_path / "first.log", "wb") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        path, deadline = loop_state_path(project), time.time() + 240
        while time.time() < deadline:
            state = read_state(path) if path.exists() else {"runs": {}}
            if any(e["handle"] for e in state["runs"].values()):
                break
            assert child.poll() is None, (tmp_path / "first.log").read_text()
            time.sleep(0.2)
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    with open(tmp_path / "second.log", "wb") as log:
        done = subprocess.run([*command, "--json"], stdout=subprocess.PIPE, stderr=log, env=env, timeout=600,
                              check=False)
    assert done.returncode == 0, (tmp_path / "second.log").read_text()
    report = json.loads(done.stdout)
    assert report["batches"] == 2 and report["runs"]["done"] == 4
    assert report["reattached"]  # the jobs outlived the killed loop and were found by their handles
    state = read_state(loop_state_path(project))
    runs = [k for batch in state["batches"] for k in batch]
    assert len(set(runs)) == 4
    assert {r.id for r in project.study.ledger.runs("finished")} == set(runs)
    trained = Counter(v["run"] for v in _results(project.folder / "jobs" / "submitit") if not v.get("skipped"))
    assert trained == Counter(runs)  # every run trained to the end exactly once

"""Ledger reliability: concurrent sweep workers, SIGKILL mid-sweep, corrupt checkpoints.

Real subprocesses share one study ledger. Checks: no run lost, none trained twice, no partial
rows (every finished run has every domain at every evaluation step, nothing left ``running``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bayesmix.errors import IncompatibleFileError
from bayesmix.proxy.checkpoint import load_checkpoint, save_checkpoint
from bayesmix.proxy.plan import grid, save_plan
from bayesmix.proxy.study import Study

LADDER = {
    "ladder": "test",
    "defaults": {"seq_len": 32, "tie_word_embeddings": True},
    "models": {"t1": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}},
}

WORKER = """
import json, sys, torch
torch.set_num_threads(1)
from bayesmix.proxy.executor import SerialExecutor
from bayesmix.proxy.plan import load_plan
from bayesmix.proxy.study import Study
from bayesmix.proxy.sweep import sweep
report = sweep(Study(sys.argv[1]), load_plan(sys.argv[2]), executor=SerialExecutor(), progress=False)
print(json.dumps({"finished": report.finished, "skipped": report.skipped, "failed": report.failed}))
"""


def make_study(tmp_path: Path, corpus_writer, checkpoint_every: int = 0) -> Study:
    """A tiny study on the fixture corpus, its data prepared once (so workers only train)."""
    paths = corpus_writer(tmp_path / "corpus", n_docs=30)
    (tmp_path / "ladder.yaml").write_text(yaml.safe_dump(LADDER))
    settings = {
        "corpus": {"kind": "local", "paths": {k: str(v) for k, v in paths.items()}, "val_fraction": 0.15},
        "tokenizer": {"kind": "bpe", "vocab_size": 300},
        "ladder": str(tmp_path / "ladder.yaml"),
        "max_eval_tokens": 128,
        "train": {
            "batch_size": 4,
            "lr": 0.01,
            "warmup_steps": 1,
            "n_evals": 2,
            "device": "cpu",
            "checkpoint_every": checkpoint_every,
        },
    }
    study = Study.create(tmp_path / "study", settings)
    study.prepare([32])
    return study


def check_ledger(study: Study, run_ids: set[str]) -> None:
    """Every planned run finished exactly once, with complete evaluation rows."""
    runs = study.ledger.runs()
    assert sorted(r.id for r in runs) == sorted(run_ids)  # none lost, none duplicated
    assert {r.status for r in runs} == {"finished"}  # nothing left half-done
    evals = study.ledger.evals()
    assert not evals.duplicated(["run", "step", "domain"]).any()
    per_step = evals.groupby(["run", "step"])["domain"].nunique()
    assert (per_step == 3).all()  # every evaluation row set is complete (3 domains)
    assert evals.groupby("run")["step"].nunique().eq(2).all()  # n_evals = 2 per run


def start_worker(study: Study, plan: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(study.folder), str(plan)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_two_sweep_workers_on_one_ledger_do_not_collide(tmp_path, corpus_writer):
    study = make_study(tmp_path, corpus_writer)
    runs = grid(
        [{"legal": 1.0}, {"code": 1.0}, {"dialogue": 1.0}, {"legal": 0.5, "code": 0.5}], ["t1"], steps=30
    )
    plan = save_plan(runs, tmp_path / "plan.yaml")
    workers = [start_worker(study, plan) for _ in range(2)]
    reports = []
    for w in workers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err[-2000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    trained = [r for rep in reports for r in rep["finished"]]
    assert sorted(trained) == sorted(r.id for r in runs)  # each run trained by exactly one worker
    assert not any(rep["failed"] for rep in reports)
    check_ledger(study, {r.id for r in runs})


@pytest.mark.slow
def test_sigkill_mid_sweep_then_rerun_loses_and_duplicates_nothing(tmp_path, corpus_writer):
    study = make_study(tmp_path, corpus_writer, checkpoint_every=5)
    runs = grid([{"legal": 1.0}, {"code": 0.3, "dialogue": 0.7}, {"dialogue": 1.0}], ["t1"], steps=400)
    plan = save_plan(runs, tmp_path / "plan.yaml")
    worker = start_worker(study, plan)
    deadline = time.time() + 240
    checkpoints = study.folder / "checkpoints"
    while time.time() < deadline and not list(checkpoints.glob("*.pt")):
        time.sleep(0.05)
    assert list(checkpoints.glob("*.pt")), "the sweep never wrote a checkpoint"
    worker.send_signal(signal.SIGKILL)
    worker.communicate()
    assert worker.returncode == -signal.SIGKILL
    assert any(r.status == "running" for r in study.ledger.runs())  # killed mid-run
    again = start_worker(study, plan)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-2000:]
    check_ledger(study, {r.id for r in runs})


def test_corrupt_truncated_and_foreign_checkpoints_fail_clearly(tmp_path):
    import torch

    good = save_checkpoint(tmp_path / "good.pt", {"step": 3, "w": torch.ones(4)})
    assert load_checkpoint(good)["step"] == 3
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage" * 50)
    torch.save({"format": 99, "step": 1}, tmp_path / "other.pt")

    class Payload:  # a pickled object: weights_only=True must refuse to build it
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"format": 1, "x": Payload()}, tmp_path / "pickled.pt")
    for name, match in (
        ("truncated.pt", "cannot be read"),
        ("junk.pt", "cannot be read"),
        ("other.pt", "another format"),
        ("pickled.pt", "cannot be read"),
    ):
        with pytest.raises(IncompatibleFileError, match=match):
            load_checkpoint(tmp_path / name)

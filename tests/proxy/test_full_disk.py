"""Writes that fail (full disk, file-size limit) end in the documented error and leave nothing half-written."""

from __future__ import annotations

import errno
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
import yaml

from bayesmix.data.ledger import Ledger, RunRecord
from bayesmix.errors import InputError
from bayesmix.proxy.checkpoint import load_checkpoint, save_checkpoint
from bayesmix.proxy.data import TokenizedCorpus


def test_checkpoint_write_failure_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import torch

    path = save_checkpoint(tmp_path / "run.pt", {"step": 1})
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("unexpected pos 10 vs 4")))
    with pytest.raises(InputError, match="could not write the training checkpoint") as err:
        save_checkpoint(path, {"step": 2})
    assert "free disk space" in str(err.value)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]


def test_tokenized_corpus_write_failure(tmp_path, monkeypatch):
    data = TokenizedCorpus(
        domains=["a"], train={"a": np.zeros((2, 4), np.uint16)}, validation={"a": np.zeros((1, 4), np.uint16)},
        seq_len=4, vocab_size=10, eos_id=0, bytes_per_token={"a": 4.0}, key="k",
    )  # fmt: skip
    monkeypatch.setattr(np, "savez", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(InputError, match="No space left on device"):
        data.save(tmp_path / "tokens.npz")
    assert list(tmp_path.iterdir()) == []


def test_ledger_on_a_full_disk_is_a_documented_error_and_keeps_its_rows(tmp_path, monkeypatch):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    record = RunRecord("r1", {"a": 1.0}, "m", {}, {"steps": 1}, 1, 1, 6.0, 0, 0, "c", "t")
    ledger.add_run(record)
    real = sqlite3.connect

    class Full:
        def __init__(self, con):
            self.con = con

        def __getattr__(self, name):
            return getattr(self.con, name)

        def __enter__(self):
            return self.con.__enter__()

        def __exit__(self, *exc):
            return self.con.__exit__(*exc)

        def execute(self, sql, *args):
            if sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
                raise sqlite3.OperationalError("database or disk is full")
            return self.con.execute(sql, *args)

    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: Full(real(*a, **k)))
    with pytest.raises(InputError, match="could not write the ledger"):
        ledger.set_status("r1", "running")
    monkeypatch.setattr(sqlite3, "connect", real)
    assert [r.id for r in ledger.runs()] == ["r1"] and ledger.get_run("r1").status == "planned"


def test_train_under_a_file_size_limit_exits_with_the_documented_error(tmp_path, corpus_writer):
    paths = corpus_writer(tmp_path / "corpus", n_docs=30)
    settings = {
        "corpus": {"kind": "local", "paths": {k: str(v) for k, v in paths.items()}, "val_fraction": 0.15},
        "tokenizer": {"kind": "bpe", "vocab_size": 300},
        "max_eval_tokens": 128,
        "train": {"batch_size": 4, "n_evals": 1, "device": "cpu", "warmup_steps": 1},
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(settings))
    child = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (2048, resource.RLIM_INFINITY))\n"
        "from bayesmix.cli.main import app\n"
        "sys.argv = ['bayesmix', 'train', sys.argv[1], '--mixture', 'legal=1', '--steps', '2', '--settings', sys.argv[2]]\n"
        "app()\n"
    )
    out = subprocess.run([sys.executable, "-c", child, str(tmp_path / "st"), str(tmp_path / "study.yaml")], capture_output=True, text=True)
    assert out.returncode == 1, out.stderr[-800:]
    assert "could not write the tokenizer" in out.stderr and "Traceback" not in out.stderr
    assert not [p for p in (tmp_path / "st").rglob("*.tmp")]


def test_rewriting_study_settings_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    import pathlib

    from bayesmix.proxy.study import Study

    Study.create(tmp_path / "st", {"corpus": {"kind": "embedded", "domains": ["legal"]}})
    before = (tmp_path / "st" / "study.yaml").read_text()
    real = pathlib.Path.write_text

    def full(self, *args, **kwargs):
        if self.name.endswith(".tmp"):
            real(self, "corpus: {kind: emb", encoding="utf-8")  # part of it reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    with pytest.raises(InputError, match="could not write the study settings"):
        Study.create(tmp_path / "st", {"corpus": {"kind": "embedded", "domains": ["code"]}}, overwrite=True)
    monkeypatch.undo()
    assert (tmp_path / "st" / "study.yaml").read_text() == before
    assert [p.name for p in (tmp_path / "st").iterdir()] == ["study.yaml"]

import sqlite3

import numpy as np
import pytest

from bayesmix.data.ledger import Ledger, RunRecord
from bayesmix.errors import IncompatibleFileError, InputError


def _run(run_id: str, mix: dict[str, float], size: int = 1000) -> RunRecord:
    return RunRecord(
        id=run_id,
        mixture=mix,
        model_name="cpu-xs",
        model_config={"hidden_size": 32, "num_hidden_layers": 2},
        train_config={"steps": 10, "lr": 1e-3},
        params_non_embedding=size,
        params_total=size + 500,
        flops_per_token=6.0 * size,
        tokens=10_000,
        seed=7,
        corpus="abc",
        tokenizer="bpe-4096",
    )


def test_round_trip_and_long_table(tmp_path):
    ledger = Ledger(tmp_path / "study.sqlite")
    assert ledger.add_run(_run("a", {"legal": 0.25, "code": 0.75}))
    assert not ledger.add_run(_run("a", {"legal": 0.25, "code": 0.75}))  # idempotent
    assert ledger.add_run(_run("b", {"code": 1.0}, size=4000))
    ledger.set_status("a", "running")
    for step in (1, 4, 10):
        ledger.record_eval("a", step, step * 1000, {"legal": (3.0 / step, 1.1), "code": (2.0 / step, 0.9)})
    ledger.set_status("a", "finished", tokens=10_000)
    ledger.record_eval("b", 1, 1000, {"legal": (5.0, 2.0), "code": (4.0, 1.5)})

    again = Ledger(tmp_path / "study.sqlite")
    rec = again.get_run("a")
    assert rec.mixture == {"code": 0.75, "legal": 0.25}
    assert rec.status == "finished" and rec.model_config["hidden_size"] == 32
    assert rec.versions["python"]
    assert [r.id for r in again.runs(status="planned")] == ["b"]

    table = again.to_long_table()
    assert list(table.columns) == [
        "run",
        "domain",
        "loss",
        "step",
        "tokens",
        "model_size",
        "model_size_total",
        "bits_per_byte",
        "mix_code",
        "mix_legal",
    ]
    assert len(table) == 6 and set(table["run"]) == {"a"}
    row = table[(table.step == 4) & (table.domain == "legal")].iloc[0]
    assert row.loss == pytest.approx(0.75) and row.tokens == 4000 and row.model_size == 1000
    np.testing.assert_allclose(table[["mix_code", "mix_legal"]].sum(axis=1), 1.0)
    full = again.to_long_table(include_unfinished=True)
    assert len(full) == 8
    assert full[full.run == "b"]["mix_legal"].eq(0.0).all()


def test_ledger_errors(tmp_path):
    ledger = Ledger(tmp_path / "s.sqlite")
    ledger.add_run(_run("a", {"legal": 1.0}))
    with pytest.raises(InputError, match="other settings"):
        ledger.add_run(_run("a", {"code": 1.0}))
    with pytest.raises(InputError, match="sum to 1"):
        ledger.add_run(_run("c", {"code": 0.5}))
    with pytest.raises(InputError, match="not in the ledger"):
        ledger.set_status("zzz", "finished")
    with pytest.raises(InputError, match="status"):
        ledger.set_status("a", "done")
    with sqlite3.connect(tmp_path / "s.sqlite") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(IncompatibleFileError):
        Ledger(junk)


def test_long_table_feeds_the_law_engine(tmp_path):
    runs_mod = pytest.importorskip("bayesmix.data.runs")
    ledger = Ledger(tmp_path / "study.sqlite")
    for i, share in enumerate((0.2, 0.5, 0.8)):
        run = _run(f"r{i}", {"legal": share, "code": 1 - share})
        ledger.add_run(run)
        for step in (5, 10):
            ledger.record_eval(
                run.id, step, step * 100, {"legal": (3 - share, 1.0), "code": (2 + share, 1.0)}
            )
        ledger.set_status(run.id, "finished")
    table = runs_mod.RunTable.from_long(ledger.to_long_table(), step="last")
    assert table is not None


def test_evaluations_of_an_unknown_run_are_refused(tmp_path):
    ledger = Ledger(tmp_path / "study.sqlite")
    with pytest.raises(InputError, match="not in the ledger"):
        ledger.record_eval("nope", 5, 500, {"legal": (3.0, 1.0)})


CREATE_TOGETHER = """
import sys, time
from pathlib import Path
from bayesmix.data.ledger import Ledger
folder, start = Path(sys.argv[1]), float(sys.argv[2])
for i in range(15):
    time.sleep(max(0.0, start + 0.2 * i - time.time()))
    Ledger(folder / f"ledger{i}.sqlite")
"""


def test_processes_creating_one_ledger_together_all_succeed(tmp_path):
    import subprocess
    import sys
    import time

    # four processes open each of 15 new ledgers at the same instant: switching a new file to
    # write-ahead logging and writing its schema version must wait for the others, never fail
    start = str(time.time() + 4.0)
    script = tmp_path / "create.py"
    script.write_text(CREATE_TOGETHER)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path), start], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
    for i in range(15):
        path = tmp_path / f"ledger{i}.sqlite"
        with sqlite3.connect(path) as con:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert con.execute("SELECT count(*) FROM meta").fetchone()[0] == 1
        assert Ledger(path).runs() == []

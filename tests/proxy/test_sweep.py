import pytest
import yaml

from bayesmix.errors import InputError
from bayesmix.proxy.executor import LocalProcessExecutor, SerialExecutor
from bayesmix.proxy.plan import grid, load_plan, save_plan
from bayesmix.proxy.study import Study

LADDER = {
    "ladder": "test",
    "defaults": {"seq_len": 32, "tie_word_embeddings": True},
    "models": {
        "t1": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32},
        "t2": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64},
    },
}


def _study(tmp_path, write_fixture_corpus):
    paths = write_fixture_corpus(tmp_path / "corpus", n_docs=40)
    (tmp_path / "ladder.yaml").write_text(yaml.safe_dump(LADDER))
    settings = {
        "corpus": {"kind": "local", "paths": {k: str(v) for k, v in paths.items()}, "val_fraction": 0.15},
        "tokenizer": {"kind": "bpe", "vocab_size": 300},
        "ladder": str(tmp_path / "ladder.yaml"),
        "max_eval_tokens": 256,
        "train": {"batch_size": 4, "lr": 0.01, "warmup_steps": 1, "n_evals": 3, "device": "cpu"},
    }
    return Study.create(tmp_path / "study", settings)


def test_sweep_trains_records_and_skips_finished(tmp_path, corpus_writer):
    study = _study(tmp_path, corpus_writer)
    runs = grid([{"legal": 1.0}, {"legal": 0.5, "code": 0.5}], ["t1", "t2"], steps=6)
    report = study_sweep(study, runs)
    assert sorted(report.finished) == sorted(r.id for r in runs) and not report.failed
    table = study.ledger.to_long_table()
    assert set(table.run) == {r.id for r in runs}
    assert table.model_size.nunique() == 2
    assert set(table.domain) == {"legal", "code", "dialogue"}
    again = study_sweep(study, runs)
    assert again.finished == [] and sorted(again.skipped) == sorted(r.id for r in runs)


def study_sweep(study, runs, executor=None):
    from bayesmix.proxy.sweep import sweep

    return sweep(study, runs, executor=executor or SerialExecutor(), progress=False)


def test_sweep_in_a_process_pool(tmp_path, corpus_writer):
    study = _study(tmp_path, corpus_writer)
    runs = grid([{"code": 1.0}, {"dialogue": 1.0}], ["t1"], steps=3)
    report = study_sweep(study, runs, LocalProcessExecutor(workers=1, threads_per_worker=1))
    assert sorted(report.finished) == sorted(r.id for r in runs), report.failed
    assert {r.status for r in study.ledger.runs()} == {"finished"}


def test_plan_files_round_trip(tmp_path):
    runs = grid([{"legal": 0.25, "code": 0.75}, {"code": 1.0}], ["t1"], steps=5, seeds=[0, 1])
    assert load_plan(save_plan(runs, tmp_path / "plan.yaml")) == runs
    csv = tmp_path / "plan.csv"
    csv.write_text("model,steps,mix_legal,mix_code\nt1,5,0.25,0.75\nt1,5,0.0,1.0\n")
    from_csv = load_plan(csv)
    assert [r.mixture for r in from_csv] == [{"code": 0.75, "legal": 0.25}, {"code": 1.0}]
    bad = tmp_path / "bad.yaml"
    bad.write_text("runs:\n  - {mixture: {code: 0.5}, model: t1, steps: 3}\n")
    with pytest.raises(InputError, match="distribution"):
        load_plan(bad)

"""`bayesmix sweep --executor ...` and `bayesmix loop` from the command line (tiny models)."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from bayesmix.cli.main import app
from bayesmix.data.ledger import Ledger
from bayesmix.project import Project

LADDER = {
    "defaults": {"seq_len": 32},
    "models": {"t1": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}},
}


def _settings(tmp_path, corpus_writer, project=None):
    paths = corpus_writer(tmp_path / "corpus", n_docs=30)
    (tmp_path / "ladder.yaml").write_text(yaml.safe_dump(LADDER))
    settings = {
        "corpus": {"kind": "local", "paths": {k: str(v) for k, v in paths.items()}, "val_fraction": 0.15},
        "tokenizer": {"kind": "bpe", "vocab_size": 300},
        "ladder": str(tmp_path / "ladder.yaml"),
        "max_eval_tokens": 128,
        "train": {"batch_size": 4, "n_evals": 2, "device": "cpu", "warmup_steps": 1, "checkpoint_every": 0},
    }
    if project is not None:
        settings["project"] = project
    return settings


def test_sweep_through_submitit_local_executor(tmp_path, corpus_writer):
    pytest.importorskip("submitit")
    settings = tmp_path / "study.yaml"
    settings.write_text(yaml.safe_dump(_settings(tmp_path, corpus_writer)))
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"defaults": {"model": "t1", "steps": 3}, "runs": [{"mixture": {"code": 1.0}}]}))
    study = tmp_path / "study"
    args = ["sweep", str(study), "--plan", str(plan), "--settings", str(settings), "--executor", "submitit",
            "--cluster", "local", "--timeout-min", "10", "--threads", "1", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["finished"]) == 1 and not report["failed"]
    assert len(Ledger(study / "ledger.sqlite").runs("finished")) == 1
    logs = list((study / "jobs" / "submitit").glob("*/*_0_log.out"))
    assert len(logs) == 1  # one folder of job files per job, inside the study
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and sorted(json.loads(again.stdout)["skipped"]) == sorted(report["finished"])


def test_loop_command_runs_and_resumes(tmp_path, corpus_writer):
    project = {"sizes": ["t1"], "steps": 10, "n_mixtures": 2, "n_suggest": 2,
               "target": {"model_size": 1e6, "tokens": 1e6}}
    folder = Project.create(tmp_path / "project", _settings(tmp_path, corpus_writer, project)).folder
    args = ["loop", str(folder), "--batches", "2", "--workers", "0", "--poll-s", "0", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["batches"] == 2 and len(report["asked"]) == 4 and sorted(report["finished"]) == sorted(report["asked"])
    assert report["runs"]["done"] == 4 and report["state"] == str(folder / "loop.json")
    assert len(Ledger(folder / "ledger.sqlite").runs("finished")) == 4
    # run again: nothing to ask or train
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["asked"] == [] and json.loads(again.stdout)["finished"] == []
    plain = CliRunner().invoke(app, args[:-1])
    assert plain.exit_code == 0 and "2 batches asked" in plain.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "dask"], "--executor: is 'dask'"),
        (["--partition", "gpu"], "--partition: is an option of --executor submitit"),
        (["--executor", "ray", "--cluster", "slurm"], "--cluster: is an option of --executor submitit"),
        (["--executor", "submitit", "--timeout-min", "0"], "--timeout-min: is 0"),
        (["--executor", "submitit", "--cluster", "slurm"], "sbatch is not available"),
    ],
)
def test_executor_option_errors(tmp_path, args, message):
    (tmp_path / "plan.yaml").write_text("runs: [{mixture: {code: 1.0}, model: cpu-xs, steps: 3}]\n")
    result = CliRunner().invoke(app, ["sweep", str(tmp_path / "study"), "--plan", str(tmp_path / "plan.yaml"), *args])
    assert result.exit_code == 1, result.output
    assert message in result.output and "Fix:" in result.output
    loop = CliRunner().invoke(app, ["loop", str(tmp_path / "nothing"), *args])
    assert loop.exit_code == 1 and (message in loop.output or "study.yaml" in loop.output)

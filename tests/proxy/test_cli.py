import typer
import yaml
from typer.testing import CliRunner

from bayesmix.cli.train import corpus_app, parse_mixture, sweep_cmd, train_cmd
from bayesmix.data.ledger import Ledger

app = typer.Typer()
app.add_typer(corpus_app, name="corpus")
app.command("train")(train_cmd)
app.command("sweep")(sweep_cmd)

LADDER = {
    "defaults": {"seq_len": 32},
    "models": {"t1": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}},
}


def test_parse_mixture():
    assert parse_mixture("legal=0.25, code=0.75") == {"legal": 0.25, "code": 0.75}


def test_corpus_list():
    result = CliRunner().invoke(app, ["corpus", "list"])
    assert result.exit_code == 0, result.output
    assert "sotu" in result.output and "kjv" in result.output


def test_train_and_sweep_commands(tmp_path, corpus_writer):
    paths = corpus_writer(tmp_path / "corpus", n_docs=40)
    (tmp_path / "ladder.yaml").write_text(yaml.safe_dump(LADDER))
    settings = tmp_path / "study.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "corpus": {
                    "kind": "local",
                    "paths": {k: str(v) for k, v in paths.items()},
                    "val_fraction": 0.15,
                },
                "tokenizer": {"kind": "bpe", "vocab_size": 300},
                "ladder": str(tmp_path / "ladder.yaml"),
                "max_eval_tokens": 128,
                "train": {"batch_size": 4, "n_evals": 2, "device": "cpu", "warmup_steps": 1},
            }
        )
    )
    study = tmp_path / "study"
    runner = CliRunner()
    out = runner.invoke(
        app,
        [
            "train",
            str(study),
            "--mixture",
            "legal=0.5,code=0.5",
            "--model",
            "t1",
            "--steps",
            "4",
            "--settings",
            str(settings),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "bits/byte" in out.output
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        yaml.safe_dump({"defaults": {"model": "t1", "steps": 3}, "runs": [{"mixture": {"code": 1.0}}]})
    )
    out = runner.invoke(app, ["sweep", str(study), "--plan", str(plan), "--workers", "0"])
    assert out.exit_code == 0, out.output
    assert len(Ledger(study / "ledger.sqlite").runs("finished")) == 2
    bad = runner.invoke(app, ["train", str(study), "--mixture", "legal", "--model", "t1"])
    assert bad.exit_code == 1 and "domain=proportion" in bad.output
    # a two-phase run: the switch as a fraction of the steps, recorded in the ledger
    args = ["train", str(study), "--mixture", "legal=1", "--model", "t1", "--steps", "4", "--run-id", "two"]
    out = runner.invoke(app, [*args, "--phase", "0.75:code=1"])
    assert out.exit_code == 0, out.output
    assert Ledger(study / "ledger.sqlite").get_run("two").phases == [(0, {"legal": 1.0}), (3, {"code": 1.0})]
    bad = runner.invoke(app, [*args, "--phase", "code=1"])
    assert bad.exit_code == 1 and "--phase 0.8:code=1.0" in bad.output

"""A project from runs trained elsewhere (`bayesmix init`): no corpus, free validation sets, a
target scale beyond every run."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayesmix.cli.main import app
from bayesmix.data.simulate_curves import random_nested_truth, simulate_curves
from bayesmix.errors import InputError
from bayesmix.project import Project
from bayesmix.project.runs_io import TARGET_FACTOR

runner = CliRunner()


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    truth = random_nested_truth(2, seed=3)
    frame, _ = simulate_curves(
        truth, n_mixtures=5, model_sizes=(1e7, 3e7), tokens=np.geomspace(1e9, 1e10, 4), seed=3
    )
    first = frame["domain"].unique()[0]
    downstream = frame[frame["domain"] == first].assign(domain="downstream_qa", loss=lambda f: 0.5 * f["loss"] + 1)
    path = tmp_path_factory.mktemp("runs") / "runs.csv"
    pd.concat([frame, downstream]).to_csv(path, index=False)
    return path, frame


def test_init_imports_runs_with_free_validation_sets_and_a_target_beyond_them(table, tmp_path):
    path, frame = table
    result = runner.invoke(app, ["init", str(tmp_path / "p"), str(path), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert len(record["runs"]) == frame["run"].nunique()
    train = sorted(c.removeprefix("mix_") for c in frame.columns if c.startswith("mix_"))
    assert sorted(record["train_domains"]) == train
    assert "downstream_qa" in record["validation"] and "downstream_qa" not in record["train_domains"]
    assert record["target"]["model_size"] == pytest.approx(TARGET_FACTOR * frame["model_size"].max())
    assert record["target"]["tokens"] == pytest.approx(TARGET_FACTOR * frame["tokens"].max(), rel=1e-2)
    project = Project(tmp_path / "p")
    assert project.external and project.reference() == {d: 0.5 for d in train}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # beyond every run: neither refused nor warned
        info = project.check_target()
    assert info["extrapolation_efolds_model_size"] == pytest.approx(np.log(TARGET_FACTOR))
    assert sorted(project.final_runs().domains) == sorted(project.validation_domains)
    # a project with no text trains nothing, and says what to do instead
    with pytest.raises(InputError, match="runs trained elsewhere") as refused:
        project.study.load_corpus()
    assert "bayesmix runs import" in refused.value.fix
    again = runner.invoke(app, ["init", str(tmp_path / "p"), str(path)])
    assert again.exit_code == 1 and "runs import" in again.stderr


def test_init_with_a_target_and_a_bad_table(table, tmp_path):
    path, _ = table
    given = runner.invoke(
        app, ["init", str(tmp_path / "q"), str(path), "--target-size", "1e9", "--target-tokens", "2e11", "--json"]
    )
    assert given.exit_code == 0, given.output
    assert json.loads(given.stdout)["target"] == {"model_size": 1e9, "tokens": 2e11}
    half = runner.invoke(app, ["init", str(tmp_path / "r"), str(path), "--target-size", "1e9"])
    assert half.exit_code == 1 and "--target-tokens" in half.stderr
    bad = tmp_path / "bad.csv"
    pd.read_csv(path).drop(columns=["model_size"]).to_csv(bad, index=False)
    refused = runner.invoke(app, ["init", str(tmp_path / "s"), str(bad)])
    assert refused.exit_code == 1 and "model_size" in refused.stderr
    assert not (tmp_path / "s").exists()  # nothing created for a refused table

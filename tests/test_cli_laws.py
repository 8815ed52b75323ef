"""The law-engine commands on tiny data: demo, fit, predict (files and numbers they produce)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayesmix.cli.main import app
from bayesmix.data.simulate import random_law, simulate_runs

runner = CliRunner()


def test_fit_then_predict_from_files(tmp_path):
    law = random_law(3, seed=2, noise_sd=0.01)
    simulate_runs(law, 25, seed=2).to_wide().to_csv(tmp_path / "runs.csv", index=False)
    result = runner.invoke(
        app, ["fit", str(tmp_path / "runs.csv"), "--out", str(tmp_path / "fit.nc"), "--method", "map"]
    )
    assert result.exit_code == 0, result.output
    sidecar = json.loads((tmp_path / "fit.json").read_text())
    assert sidecar["spec"]["domains"] == ["web", "code", "papers"]
    pd.DataFrame({"web": [0.5, 0.2], "code": [0.5, 0.3], "papers": [0.0, 0.5]}).to_csv(
        tmp_path / "mix.csv", index=False
    )
    result = runner.invoke(
        app,
        [
            "predict",
            str(tmp_path / "fit.nc"),
            str(tmp_path / "mix.csv"),
            "--kind",
            "mean",
            "--out",
            str(tmp_path / "pred.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    pred = pd.read_csv(tmp_path / "pred.csv").set_index(["mixture", "domain"])
    truth = law.mean_loss(pd.read_csv(tmp_path / "mix.csv").to_numpy())
    assert abs(pred.loc[(1, "papers"), "mean"] - truth[1, 2]) < 0.03


def test_bad_input_gives_a_clear_error_on_stderr_and_exit_code_1(tmp_path):
    (tmp_path / "runs.csv").write_text("run,mix_a,mix_b,a\nr1,0.5,0.9,3.0\n")
    result = runner.invoke(app, ["fit", str(tmp_path / "runs.csv"), "--method", "map"])
    assert result.exit_code == 1
    assert "do not sum to 1" in result.stderr and "--renormalise" in result.stderr and result.stdout == ""
    result = runner.invoke(app, ["fit", str(tmp_path / "missing.csv")])
    assert result.exit_code == 1 and "does not exist" in result.stderr


def test_demo_writes_fit_and_predictions(tmp_path):
    result = runner.invoke(
        app, ["demo", "--out", str(tmp_path), "--draws", "200", "--chains", "2", "--runs", "20"]
    )
    assert result.exit_code == 0, result.output
    for name in ("runs.csv", "fit.nc", "fit.json", "predictions.csv"):
        assert (tmp_path / name).exists()
    assert "true losses inside their 90% intervals" in result.output
    assert len(pd.read_csv(tmp_path / "predictions.csv")) == 25


@pytest.mark.slow
def test_sampler_health_travels_with_predictions_and_strict_fails(tmp_path):
    import bayesmix as bm

    law = random_law(2, seed=4, noise_sd=0.01)
    runs = simulate_runs(law, 12, seed=4)
    runs.to_wide().to_csv(tmp_path / "runs.csv", index=False)
    # 30 draws per chain: far too few for the ESS rule, so the fit is flagged unhealthy
    result = runner.invoke(
        app,
        [
            "fit",
            str(tmp_path / "runs.csv"),
            "--out",
            str(tmp_path / "fit.nc"),
            "--draws",
            "30",
            "--tune",
            "60",
            "--chains",
            "2",
            "--strict",
        ],
    )
    assert result.exit_code == 3, result.output
    idata = bm.load(tmp_path / "fit.nc")  # saved before the strict check: nothing is lost
    assert not bm.health(idata).ok
    draws = bm.predict(idata, {"web": 0.5, "code": 0.5})
    assert draws.attrs["health_ok"] == 0 and "divergences" in draws.attrs["health"]
    best = bm.optimise(idata, n_starts=2, max_draws=50)
    assert best.health is not None and not best.health.ok and best.to_dict()["health_ok"] is False
    pd.DataFrame({"web": [0.5], "code": [0.5]}).to_csv(tmp_path / "mix.csv", index=False)
    args = ["predict", str(tmp_path / "fit.nc"), str(tmp_path / "mix.csv")]
    assert runner.invoke(app, args).exit_code == 0
    strict = runner.invoke(app, [*args, "--strict"])
    assert strict.exit_code == 3 and "Sampler" in strict.output


def test_laplace_fit_saves_loads_and_predicts_from_the_shell(tmp_path):
    law = random_law(3, seed=2, noise_sd=0.01)
    simulate_runs(law, 25, seed=2).to_wide().to_csv(tmp_path / "runs.csv", index=False)
    args = ["fit", str(tmp_path / "runs.csv"), "--out", str(tmp_path / "fit.nc"), "--method", "laplace"]
    result = runner.invoke(app, [*args, "--draws", "200", "--chains", "2"])
    assert result.exit_code == 0, result.output
    sidecar = json.loads((tmp_path / "fit.json").read_text())
    assert sidecar["spec"]["method"] == "laplace"
    assert sidecar["spec"]["law"]["options"]["centred"] is False
    pd.DataFrame({"web": [0.2], "code": [0.3], "papers": [0.5]}).to_csv(tmp_path / "mix.csv", index=False)
    out = tmp_path / "pred.csv"
    result = runner.invoke(app, ["predict", str(tmp_path / "fit.nc"), str(tmp_path / "mix.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    pred = pd.read_csv(out).set_index(["mixture", "domain"])
    truth = law.mean_loss(pd.read_csv(tmp_path / "mix.csv").to_numpy())
    row = pred.loc[(0, "papers")]
    assert row["lower"] < row["upper"] and abs(row["mean"] - truth[0, 2]) < 0.03

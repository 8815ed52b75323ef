"""Decisions know their support: the trust region of the runs and the distance report."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import bayesmix as bm
from bayesmix.cli.main import app
from bayesmix.data.simulate import random_law, simulate_runs
from bayesmix.errors import InputError
from bayesmix.optimise.support import Support, describe_support, total_variation


def test_support_numbers_against_hand_computation():
    runs = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.1, 0.8, 0.1]])
    support = Support.from_mixtures(runs, ["a", "b", "c"])
    np.testing.assert_allclose(support.lowest, [0.1, 0.3, 0.0])
    np.testing.assert_allclose(support.highest, [0.5, 0.8, 0.5])
    np.testing.assert_allclose(total_variation(runs[:1], runs[1:]), [[0.5, 0.4]])
    # nearest-run distances of the runs: 0.4, 0.5, 0.4
    assert support.nearest_scale == pytest.approx(np.quantile([0.4, 0.5, 0.4], 0.95))
    info = support.describe(np.array([0.9, 0.1, 0.0]))
    assert info["nearest_run_distance"] == pytest.approx(0.4)
    assert [o["domain"] for o in info["outside"]] == ["a", "b"] and info["extrapolation"]
    assert "EXTRAPOLATION" in describe_support(info) and "a 0.900" in describe_support(info)
    inside = support.describe(runs[1])
    assert not inside["extrapolation"] and inside["nearest_run_distance"] == 0.0
    assert describe_support(inside).startswith("Inside the runs")


@pytest.fixture(scope="module")
def corner_fit():
    """A 3-domain study whose runs keep web below 0.4, while the law rewards web everywhere."""
    law = random_law(3, seed=3, noise_sd=0.01)
    t = law.t.copy()
    t[:, 0] -= 1.5  # web lowers every domain's loss
    law = dataclasses.replace(law, t=t)
    rng = np.random.default_rng(0)
    mixtures = rng.dirichlet(np.ones(3), size=400)
    mixtures = mixtures[mixtures[:, 0] < 0.4][:40]
    runs = simulate_runs(law, len(mixtures), seed=0, mixtures=mixtures)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bm.fit(runs, method="laplace", draws=250, chains=2, seed=0, discrepancy=None), mixtures


def test_optimum_stays_in_the_trust_region_by_default(corner_fit):
    idata, mixtures = corner_fit
    highest = mixtures[:, 0].max()
    kept = bm.optimise(idata, target="mean")
    assert kept.mixture["web"] <= highest + 1e-6 and kept.mixture["web"] > highest - 0.02
    assert kept.support["trust_applied"] and not kept.extrapolation
    free = bm.optimise(idata, target="mean", trust_region=None)
    assert free.mixture["web"] > highest + 0.1
    assert free.extrapolation and free.support["outside"][0]["domain"] == "web"
    assert "EXTRAPOLATION" in repr(free) and free.to_dict()["extrapolation"] is True
    margin = bm.optimise(idata, target="mean", trust_region=0.1)
    assert highest + 0.05 < margin.mixture["web"] <= highest + 0.1 + 1e-6


def test_user_limits_win_over_the_trust_region(corner_fit):
    idata, _mixtures = corner_fit
    result = bm.optimise(idata, target="mean", bounds={"web": (0.6, None)})
    assert result.mixture["web"] >= 0.6 - 1e-9 and result.extrapolation
    with pytest.raises(InputError, match="trust_region"):
        bm.optimise(idata, trust_region=-0.1)


def test_cli_optimise_reports_support_and_lifts_the_trust_region(corner_fit, tmp_path):
    idata, _mixtures = corner_fit
    bm.save(idata, tmp_path / "fit.nc")
    runner = CliRunner()
    kept = runner.invoke(app, ["optimise", str(tmp_path / "fit.nc"), "--out", str(tmp_path / "a.json")])
    assert kept.exit_code == 0, kept.output
    assert "Inside the runs" in kept.output and "--no-trust-region" in kept.output
    free = runner.invoke(
        app, ["optimise", str(tmp_path / "fit.nc"), "--no-trust-region", "--out", str(tmp_path / "b.json")]
    )
    assert free.exit_code == 0 and "EXTRAPOLATION" in free.output
    record = json.loads((tmp_path / "b.json").read_text())
    assert record["extrapolation"] is True and record["support"]["outside"][0]["domain"] == "web"


def test_regmix_64_runs_pile_cc_corner(regmix_dir):
    """64 real RegMix runs (largest Pile-CC share 0.86): the optimum is kept at the runs' edge or flagged."""
    runs = bm.RunTable.from_joined(
        regmix_dir / "train_mixture_1m.csv", regmix_dir / "train_pile_loss_1m.csv", renormalise=True
    )
    runs = runs.subset(slice(0, 64)).select_domains(["pile_cc"])
    highest = runs.mixtures["pile_cc"].max()
    assert highest == pytest.approx(0.859, abs=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = bm.fit(runs, method="laplace", draws=250, chains=2, seed=0, discrepancy=None)
    kept = bm.optimise(idata, target="pile_cc")
    assert kept.mixture["pile_cc"] <= highest + 1e-6 and not kept.extrapolation
    row = kept.summary.loc["target"]
    assert row["upper"] - row["lower"] > 1e-3  # not a degenerate interval
    free = bm.optimise(idata, target="pile_cc", trust_region=None)
    assert free.mixture["pile_cc"] > highest + 0.05 and free.extrapolation
    assert describe_support(free.support).startswith("EXTRAPOLATION: shares beyond every run: pile_cc")


def test_report_first_screen_names_the_extrapolation(corner_fit, tmp_path):
    idata, _mixtures = corner_fit
    free = bm.optimise(idata, target="mean", trust_region=None)
    from bayesmix.report import build_report

    files = build_report(
        tmp_path / "report",
        fit=idata,
        optimum=free,
        optimum_limits={"trust_region": None},
        n_location=4,
    )
    text = pd.Series(open(files.markdown).read().splitlines())
    first = text[text.str.contains("EXTRAPOLATION")]
    assert len(first) and first.index[0] < text[text.str.startswith("## ")].index[1]

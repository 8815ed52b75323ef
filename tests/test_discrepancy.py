"""The law's form error as a Gaussian process over mixture space: maths, coverage, round trips."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayesmix as bm
from bayesmix.data.simulate import random_law, random_mixtures, simulate_runs
from bayesmix.errors import InputError
from bayesmix.inference.discrepancy import calibrate_discrepancy, region_folds
from bayesmix.models.discrepancy import Discrepancy, DiscrepancyDraws, ResidualGP, kernel
from bayesmix.optimise.draws import LawDraws


def _gp(seed: int = 0, n: int = 30, m: int = 3, d: int = 2) -> ResidualGP:
    rng = np.random.default_rng(seed)
    runs = rng.dirichlet(np.ones(m), size=n)
    residual = rng.normal(0.0, 0.05, size=(n, d))
    return ResidualGP.build(runs, residual, np.array([0.01, 0.02]), 0.4, np.array([0.05, 0.1]))


def test_closed_form_matches_numpy_gp_regression():
    gp = _gp()
    new = np.random.default_rng(1).dirichlet(np.ones(3), size=7)
    mean, var = gp.mean_and_variance(new)
    for i in range(2):
        eta, sigma = gp.eta[i], gp.sigma[i]
        c = eta**2 * kernel(gp.runs, gp.runs, 0.4) + sigma**2 * np.eye(len(gp.runs))
        k = eta**2 * kernel(new, gp.runs, 0.4)
        residual = gp.vectors @ (gp.alpha[:, i] / gp.inverse[:, i])  # U (U^T r)
        np.testing.assert_allclose(mean[:, i], k @ np.linalg.solve(c, residual), atol=1e-10)
        np.testing.assert_allclose(var[:, i], eta**2 - np.einsum("ij,ji->i", k, np.linalg.solve(c, k.T)), atol=1e-10)


def test_leave_one_out_equals_refitting_the_gp_without_each_run():
    gp = _gp(seed=2, n=12)
    mean, var = gp.leave_one_out()
    residual = gp.vectors @ gp.projected
    for i in range(len(gp.runs)):
        keep = np.arange(len(gp.runs)) != i
        others = ResidualGP.build(gp.runs[keep], residual[keep], gp.sigma, gp.lengthscale, gp.eta)
        m, v = others.mean_and_variance(gp.runs[i : i + 1])
        np.testing.assert_allclose(mean[i], m[0], atol=1e-9)
        np.testing.assert_allclose(var[i], v[0], atol=1e-9)


def test_sample_paths_have_the_posterior_mean_and_variance():
    gp = _gp()
    near = gp.runs[:3] + 0.01 * np.array([1.0, -0.5, -0.5])
    far = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    new = np.vstack([near, far])
    paths = DiscrepancyDraws.build(gp, 4000, seed=3).values(new)  # (S, q, D)
    mean, var = gp.mean_and_variance(new)
    sd = np.sqrt(var)
    np.testing.assert_allclose(paths.mean(axis=0), mean, atol=4 * sd.max() / np.sqrt(4000) + 2e-3)
    np.testing.assert_allclose(paths.std(axis=0), sd, rtol=0.12, atol=2e-3)
    assert (sd[-2:] > 2 * sd[:3].max(axis=0)).all()  # wider far from the runs than next to them


def test_path_gradient_matches_finite_differences():
    draws = DiscrepancyDraws.build(_gp(), 5, seed=0)
    r = np.array([0.2, 0.5, 0.3])
    value, jac = draws.value_and_jacobian(r)
    np.testing.assert_allclose(value, draws.values(r[None])[:, 0, :], atol=1e-12)
    step = 1e-6
    for j in range(3):
        e = np.zeros(3)
        e[j] = step
        fd = (draws.values((r + e)[None]) - draws.values((r - e)[None]))[:, 0, :] / (2 * step)
        np.testing.assert_allclose(jac[:, :, j], fd, rtol=1e-5, atol=1e-7)


def test_same_seed_same_paths_and_subset():
    gp = _gp()
    a, b = DiscrepancyDraws.build(gp, 20, seed=4), DiscrepancyDraws.build(gp, 20, seed=4)
    x = np.array([[0.3, 0.3, 0.4]])
    np.testing.assert_array_equal(a.values(x), b.values(x))
    np.testing.assert_array_equal(a.subset(np.array([2, 5])).values(x), a.values(x)[[2, 5]])


def test_settings_are_checked():
    with pytest.raises(InputError, match="discrepancy"):
        Discrepancy(lengthscale=-1.0, sd=(0.1,))
    with pytest.raises(InputError, match="both"):
        Discrepancy(lengthscale=0.5)
    with pytest.raises(InputError, match="discrepancy"):
        Discrepancy.coerce("yes")
    assert Discrepancy.coerce(True) == Discrepancy() and Discrepancy.coerce(None) is None


def _study(seed: int):
    """A 3-domain law wrong by a smooth random function (amplitude 0.03 nats, scale 0.5 shares)."""
    law = random_law(3, seed=seed, noise_sd=0.01)
    rng = np.random.default_rng(100 + seed)
    omega, phase, weight = rng.normal(size=(200, 3)) / 0.5, rng.uniform(0, 2 * np.pi, 200), rng.normal(size=(200, 3))

    def truth(m: np.ndarray) -> np.ndarray:
        return law.mean_loss(m) + 0.03 * np.sqrt(2 / 200) * np.cos(m @ omega.T + phase) @ weight

    mixtures = random_mixtures(2000, 3, seed=seed)
    inside = mixtures[mixtures[:, 0] < 0.5]
    runs = simulate_runs(law, 50, seed=seed, mixtures=inside[:50])
    runs.losses.loc[:, :] = truth(inside[:50]) + (runs.losses.to_numpy() - law.mean_loss(inside[:50]))
    return runs, truth, inside[50:250], mixtures[mixtures[:, 0] > 0.65][:200]


def test_form_error_is_covered_near_and_beyond_the_runs():
    """Law alone: 90% intervals of the expected loss cover ~55% near the runs and ~35% beyond.

    With the form error: 0.94 near and 0.94 beyond on these 4 studies (0.95 / 0.85 on 16, where
    a study's ~200 far targets are covered or missed together: benchmarks/RESULTS.md).
    """
    covered = {(disc, where): [] for disc in (False, True) for where in ("near", "far")}
    for seed in range(4):
        runs, truth, near, far = _study(seed)
        for disc in (False, True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                idata = bm.fit(runs, discrepancy=disc, draws=300, tune=500, chains=2, seed=0)
            for where, m in (("near", near), ("far", far)):
                draws = bm.predict(idata, m, kind="mean").values
                lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
                covered[disc, where].append(((truth(m) >= lo) & (truth(m) <= hi)).mean())
    rate = {key: float(np.mean(v)) for key, v in covered.items()}
    print(rate)
    assert rate[False, "near"] < 0.75 and rate[False, "far"] < 0.6  # the law alone is overconfident
    assert 0.85 <= rate[True, "near"] <= 0.99
    assert rate[True, "far"] >= rate[False, "far"] + 0.25 and rate[True, "far"] >= 0.8


def test_fit_predict_save_load_and_optimise_carry_the_discrepancy(tmp_path):
    runs, _truth, near, far = _study(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = bm.fit(runs, method="laplace", draws=200, chains=2, seed=0)  # the default: "auto"
    spec = bm.fitted_spec(idata)
    settings = spec.extra["discrepancy"]
    assert settings["lengthscale"] > 0 and len(settings["sd"]) == 3
    assert "bayesmix_discrepancy_backtests" in idata.posterior.attrs
    bm.save(idata, tmp_path / "fit.nc")
    loaded = bm.load(tmp_path / "fit.nc")
    a = bm.predict(idata, far[:5], kind="mean").values
    np.testing.assert_allclose(bm.predict(loaded, far[:5], kind="mean").values, a, rtol=1e-10)
    # wider beyond the runs than inside them
    inside = bm.predict(idata, near[:20], kind="mean").values.std(axis=0).mean()
    assert a.std(axis=0).mean() > 2 * inside
    # the optimiser sees the same functions as predict (same draws, same seed)
    draws = LawDraws.from_idata(idata, max_draws=None, seed=0)
    np.testing.assert_allclose(draws.losses(far[:5]), a, rtol=1e-10)
    result = bm.optimise(idata, target="mean")
    assert result.summary.loc["target", "upper"] > result.summary.loc["target", "lower"]


def test_point_fit_with_discrepancy_has_spread():
    runs, _truth, _near, far = _study(1)
    settings = calibrate_discrepancy(runs).settings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = bm.fit(runs, method="map", discrepancy=settings)
    draws = bm.predict(idata, far[:3], kind="mean").values
    assert draws.shape[0] > 1 and draws.std(axis=0).min() > 0


def test_region_folds_hold_out_the_largest_shares():
    runs, *_ = _study(2)
    folds = region_folds(runs, 0.25)
    assert [name for name, _ in folds] == list(runs.train_domains)
    for j, (_name, held) in enumerate(folds):
        shares = runs.mixtures.to_numpy()[:, j]
        assert len(held) == round(0.25 * runs.n_runs)
        assert shares[held].min() >= np.delete(shares, held).max()
    with pytest.raises(InputError, match="holdout"):
        calibrate_discrepancy(runs, holdout=0.9)


def test_a_region_that_would_leave_a_domain_unseen_is_skipped():
    import pandas as pd

    # a rare domain trained on by 3 of 20 runs: holding out its 5 largest shares removes all of them
    rng = np.random.default_rng(0)
    mix = rng.dirichlet(np.ones(3), size=20)
    mix = np.c_[mix, np.zeros(20)]
    mix[:3, 3] = [0.3, 0.2, 0.1]
    mix /= mix.sum(axis=1, keepdims=True)
    index = pd.Index([f"r{i}" for i in range(20)], name="run")
    runs = bm.RunTable(
        pd.DataFrame(mix, index=index, columns=["a", "b", "c", "rare"]),
        pd.DataFrame({"loss": 3.0 - mix[:, 0]}, index=index),
    )
    names = [name for name, _ in region_folds(runs, 0.25)]
    assert "rare" not in names and names  # the other regions are still backtested
    for _name, held in region_folds(runs, 0.25):
        assert np.delete(mix, held, axis=0)[:, 3].max() > 0  # every fold keeps a run of each domain


def test_cli_fit_carries_the_form_error_by_default(tmp_path):
    import json

    from typer.testing import CliRunner

    from bayesmix.cli.main import app

    runs, *_ = _study(3)
    runs.to_wide().to_csv(tmp_path / "runs.csv", index=False)
    runner = CliRunner()
    args = ["fit", str(tmp_path / "runs.csv"), "--method", "map"]
    on = runner.invoke(app, [*args, "--out", str(tmp_path / "on.nc")])
    assert on.exit_code == 0, on.output
    assert "Form error (region backtests)" in on.output
    assert json.loads((tmp_path / "on.json").read_text())["spec"]["extra"]["discrepancy"]["sd"]
    off = runner.invoke(app, [*args, "--no-discrepancy", "--out", str(tmp_path / "off.nc")])
    assert off.exit_code == 0 and "Form error" not in off.output
    assert "discrepancy" not in json.loads((tmp_path / "off.json").read_text())["spec"]["extra"]
    paper = runner.invoke(app, ["fit", str(tmp_path / "runs.csv"), "--method", "paper", "--out", str(tmp_path / "p.nc")])
    assert paper.exit_code == 0, paper.output
    assert "Fitted without the form-error term: the paper protocol fits the law alone" in paper.output


def test_auto_skips_with_a_warning_when_backtests_are_impossible():
    law = random_law(2, seed=0, noise_sd=0.01)
    runs = simulate_runs(law, 6, seed=0)
    with pytest.warns(bm.DiscrepancySkippedWarning, match="region backtests"):
        idata = bm.fit(runs, method="map", discrepancy="auto")
    assert "discrepancy" not in bm.fitted_spec(idata).extra
    assert "region backtests" in idata.posterior.attrs["bayesmix_discrepancy_skipped"]
    with pytest.raises(bm.BayesmixError):
        bm.fit(runs, method="map", discrepancy=True)


def test_the_default_fits_the_law_alone_where_the_term_does_not_apply():
    """The paper protocol fits the law alone without a warning; a law with per-run inputs refuses the term.

    (A law with per-run inputs fits alone by default: the repetition tests' fixture checks it.)
    """
    import pandas as pd

    runs, _truth, _near, _far = _study(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", bm.DiscrepancySkippedWarning)
        paper = bm.fit(runs, method="paper", paper_inits=4, seed=0)
    assert "discrepancy" not in bm.fitted_spec(paper).extra
    assert paper.posterior.attrs["bayesmix_discrepancy_skipped"] == "the paper protocol fits the law alone"
    tokens = pd.DataFrame({"tokens": np.linspace(1e9, 4e10, runs.n_runs)}, index=runs.mixtures.index)
    repeated = bm.RunTable(runs.mixtures, runs.losses, tokens)
    law = bm.RepetitionMixingLaw(available_tokens={runs.train_domains[0]: 2e9})
    with pytest.raises(InputError, match="per-run inputs"):
        bm.fit(repeated, law, method="map", discrepancy=True)


def test_a_backtest_that_fails_numerically_leaves_the_default_fit_to_the_law_alone(monkeypatch):
    import importlib

    fit_module = importlib.import_module("bayesmix.inference.fit")

    def failing(*_args, **_kwargs):
        raise FloatingPointError("no start reached a finite log density")

    monkeypatch.setattr(fit_module, "calibrate_discrepancy", failing)
    runs, *_ = _study(1)
    with pytest.warns(bm.DiscrepancySkippedWarning, match="finite log density"):
        idata = bm.fit(runs, method="map", seed=0)
    assert "discrepancy" not in bm.fitted_spec(idata).extra
    with pytest.raises(FloatingPointError):
        bm.fit(runs, method="map", seed=0, discrepancy=True)


def test_coverage_floor_raises_an_amplitude_only_as_far_as_needed():
    from bayesmix.inference.discrepancy import _coverage_floor

    coverage = np.array(  # (amplitude, domain): backtest coverage of the 90% intervals
        [[0.80, 0.95, 0.50, 0.70], [0.85, 0.96, 0.92, 0.88], [0.86, 0.97, 0.93, 0.91], [0.70, 0.97, 0.95, 0.95]]
    )
    best = np.array([0, 0, 1, 0])  # the best log density's amplitudes
    # none reaches 0.9: the highest coverage at or above the best; already there: kept; else the first that does
    np.testing.assert_array_equal(_coverage_floor(best, coverage), [2, 0, 1, 2])

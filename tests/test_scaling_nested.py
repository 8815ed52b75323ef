"""Nested scaling laws: recovery of known exponents, target predictions, calibration."""

import numpy as np
import pytest

from bayesmix.data.curves import CurveTable
from bayesmix.data.simulate_curves import random_nested_truth, simulate_curves
from bayesmix.errors import InputError, NotEnoughDataError
from bayesmix.inference.nested import fit_nested, predict_target
from bayesmix.inference.predict import interval
from bayesmix.models.nested import build_mixing_stage_model

SIZES = (1e7, 3e7, 1e8, 3e8)
TARGET = {"model_size": 1e9, "tokens": 1e11}


def _study(seed: int, n_mixtures: int = 6):
    truth = random_nested_truth(3, seed=seed)
    frame, mixtures = simulate_curves(truth, n_mixtures=n_mixtures, model_sizes=SIZES, seed=seed)
    return truth, CurveTable.from_long(frame), mixtures


@pytest.fixture(scope="module")
def fitted_study():
    truth, table, mixtures = _study(seed=11)
    fitted = fit_nested(table, draws=400, tune=400, chains=2, seed=1)
    return truth, table, mixtures, fitted


def test_recovers_exponents(fitted_study):
    truth, _table, _, fitted = fitted_study
    posterior = fitted.scaling.posterior
    keys = fitted.curves.keys
    for name, true in (("alpha", truth.alpha), ("beta", truth.beta)):
        draws = posterior[name].stack(sample=("chain", "draw")).to_numpy()  # (curve, sample)
        for g, domain in enumerate(keys["domain"]):
            expected = true[list(truth.domains).index(domain)]
            lo, hi = np.quantile(draws[g], [0.005, 0.995])
            assert lo <= expected <= hi, (name, keys.iloc[g].to_dict(), lo, expected, hi)
        # pooled over mixtures, each domain's exponent is pinned down closely
        per_domain = [draws[(keys["domain"] == d).to_numpy()].mean() for d in truth.domains]
        np.testing.assert_allclose(per_domain, true, atol=0.06)
    assert fitted.health["joint"].divergences <= 5


def test_predict_target_observed_mixtures(fitted_study):
    truth, _table, mixtures, fitted = fitted_study
    draws = predict_target(fitted, **TARGET, kind="mean", seed=0)
    assert draws.dims == ("sample", "mixture", "domain")
    assert list(draws["domain"].values) == [*truth.domains, "total"]
    assert draws.attrs["via"] == "observed"
    np.testing.assert_allclose(
        draws.sel(domain="total").values, draws.isel(domain=slice(0, 3)).mean("domain").values
    )
    summary = interval(draws.isel(domain=slice(0, 3)), prob=0.9)
    true = truth.mean_loss(mixtures, **TARGET)
    inside = (summary["lower"].values <= true) & (true <= summary["upper"].values)
    assert inside.mean() >= 0.6
    # the same seed gives the same numbers; predictive draws are wider than the law's
    again = predict_target(fitted, **TARGET, kind="mean", seed=0)
    np.testing.assert_array_equal(draws.values, again.values)
    wide = predict_target(fitted, **TARGET, seed=0)
    assert float(wide.std("sample").mean()) > float(draws.std("sample").mean())


@pytest.mark.slow
def test_predict_target_new_mixture_via_mixing_law(fitted_study):
    truth, _table, _mixtures, fitted = fitted_study
    new = {"web": 0.5, "code": 0.3, "papers": 0.2}
    draws = predict_target(fitted, **TARGET, mixtures=[new], kind="mean", composition={"web": 1.0})
    assert draws.attrs["via"] == "mixing_law"
    assert draws.sizes["mixture"] == 1
    np.testing.assert_allclose(draws.sel(domain="total").values, draws.sel(domain="web").values)
    summary = interval(draws, prob=0.98)
    true = truth.mean_loss(np.array([[0.5, 0.3, 0.2]]), **TARGET)[0]
    assert np.all(np.abs(summary["median"].values[0, :3] - true) < 0.15)
    assert (TARGET["model_size"], TARGET["tokens"]) in fitted.mixing_stages
    with pytest.raises(InputError, match="not observed"):
        predict_target(fitted, **TARGET, mixtures=[new], via="observed")
    with pytest.raises(InputError, match="unknown training domains"):
        predict_target(fitted, **TARGET, mixtures=[{"math": 1.0}])
    with pytest.raises(InputError, match="model_size"):
        predict_target(fitted, model_size=-1.0, tokens=1e11)


def test_mixing_stage_needs_enough_mixtures():
    _, table, _ = _study(seed=2, n_mixtures=2)
    target = np.full((10, 2, 3), 2.5) + np.random.default_rng(0).normal(0, 0.01, (10, 2, 3))
    with pytest.raises(NotEnoughDataError, match="observed mixtures"):
        build_mixing_stage_model(table.mixtures, table.domains, target)


def test_bad_arguments():
    _, table, _ = _study(seed=2, n_mixtures=2)
    with pytest.raises(InputError, match="method"):
        fit_nested(table, method="chinchilla")
    with pytest.raises(InputError, match="CurveTable"):
        fit_nested(table.frame)


@pytest.mark.slow
def test_staged_pipeline_recovers_target():
    truth, table, mixtures = _study(seed=4, n_mixtures=3)
    fitted = fit_nested(table, method="staged", draws=400, tune=400, chains=2, seed=0)
    draws = predict_target(fitted, **TARGET, kind="mean")
    summary = interval(draws.isel(domain=slice(0, 3)), prob=0.9)
    true = truth.mean_loss(mixtures, **TARGET)
    inside = (summary["lower"].values <= true) & (true <= summary["upper"].values)
    assert inside.mean() >= 0.6
    assert np.abs(summary["median"].values - true).max() < 0.15


@pytest.mark.slow
def test_interval_coverage_on_simulated_ground_truth():
    """90% intervals of the extrapolated target-scale law cover the truth 85-95% of the time.

    The ~18 targets of one study share its fitted exponents, so they are covered or missed
    together: the independent units are the studies. With 8 studies the pooled coverage was
    0.964 (a few studies decide it); 20 studies (348 targets) measured 0.940 (about 11 minutes
    on 2 cores).
    """
    hits = []
    for seed in range(20):
        truth, table, _ = _study(seed=100 + seed)
        fitted = fit_nested(table, draws=500, tune=500, chains=2, seed=seed)
        draws = predict_target(fitted, **TARGET, kind="mean", seed=seed)
        summary = interval(draws.isel(domain=slice(0, 3)), prob=0.9)
        # the table merges mixtures the simulator drew twice: compare on its distinct mixtures
        true = truth.mean_loss(table.mixtures.loc[draws["mixture"].values].to_numpy(), **TARGET)
        hits.append(((summary["lower"].values <= true) & (true <= summary["upper"].values)).ravel())
    coverage = float(np.concatenate(hits).mean())
    assert 0.85 <= coverage <= 0.95, coverage


@pytest.mark.slow
def test_a_table_of_final_losses_is_fitted_with_the_minimums_it_was_accepted_with(tmp_path):
    """One loss per run (runs varying in N and D): a Chinchilla-style L(N, D), not a refusal."""
    import warnings

    import bayesmix as bm

    truth = random_nested_truth(2, seed=0)
    frame, mixtures = simulate_curves(truth, n_mixtures=4, model_sizes=(2e7, 5e7, 1.2e8), seed=0)
    frame["run"] = frame["run"] + "-D" + frame["tokens"].map(lambda d: f"{d:.3g}")
    with pytest.raises(NotEnoughDataError, match="min_checkpoints=1"):
        CurveTable.from_long(frame)
    table = CurveTable.from_long(frame, min_checkpoints=1)
    assert table.final_losses_only and table.min_checkpoints == 1
    with pytest.raises(InputError, match="method='joint'"):
        fit_nested(table, method="staged", draws=50, tune=50, chains=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = fit_nested(table, draws=200, tune=300, chains=2, seed=0)
        draws = predict_target(fitted, model_size=3e8, tokens=4e10, kind="mean", mixtures=mixtures[:1])
    predicted = draws.sel(domain=list(truth.domains)).mean("sample").values[0]
    np.testing.assert_allclose(predicted, truth.mean_loss(mixtures[0], 3e8, 4e10)[0], rtol=0.03)
    bm.save_nested(fitted, tmp_path / "nested")
    assert bm.load_nested(tmp_path / "nested").table.min_checkpoints == 1


def test_one_model_size_is_fitted_by_step_laws_for_longer_training(tmp_path):
    """Curves of one size (accepted with min_sizes=1): the staged step laws predict more tokens at that size."""
    import warnings
    from dataclasses import replace

    import bayesmix as bm

    # no run-to-run effect: at one size a run's own offset is part of its curve (the step laws
    # predict that run, not a new one), so the law is checked on checkpoint noise alone
    truth = replace(random_nested_truth(2, seed=3), run_sd=0.0)
    frame, _ = simulate_curves(truth, n_mixtures=4, model_sizes=(5e7,), seed=3)
    with pytest.raises(NotEnoughDataError, match="model size"):
        CurveTable.from_long(frame)
    table = CurveTable.from_long(frame, min_sizes=1)
    with pytest.raises(NotEnoughDataError, match="method='staged'"):
        fit_nested(table, method="joint", draws=50, tune=50, chains=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = fit_nested(table, method="staged", draws=300, tune=300, chains=2, seed=0)
        target = {"model_size": 5e7, "tokens": 6e10}  # 3x the last checkpoint
        draws = predict_target(fitted, **target, kind="mean")
        with pytest.raises(InputError, match="one model size"):
            predict_target(fitted, model_size=2e8, tokens=6e10)
    summary = interval(draws.isel(domain=slice(0, 2)), prob=0.9)
    true = truth.mean_loss(table.mixtures.loc[draws["mixture"].values].to_numpy(), **target)
    assert np.abs(summary["median"].values - true).max() < 0.03
    inside = (summary["lower"].values <= true) & (true <= summary["upper"].values)
    assert inside.mean() >= 0.75
    bm.save_nested(fitted, tmp_path / "nested")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = predict_target(bm.load_nested(tmp_path / "nested"), **target, kind="mean")
    np.testing.assert_allclose(again.values, draws.values)

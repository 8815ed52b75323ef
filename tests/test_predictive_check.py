"""The report's predictive check: leave-one-out intervals for a fit's own runs, direct ones for others."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayesmix as bm
from bayesmix.data.simulate import random_law, simulate_runs
from bayesmix.errors import InputError
from bayesmix.report import predictive_check
from bayesmix.report.summaries import _weighted_quantile


def test_weighted_quantile_matches_numpy_on_equal_and_on_repeated_weights():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 101))
    equal = np.full_like(values, 1 / 101)
    for q in (0.05, 0.5, 0.95):
        np.testing.assert_allclose(
            _weighted_quantile(values, equal, q), np.quantile(values, q, axis=-1, method="inverted_cdf")
        )
    # integer weights are repeated draws
    small = rng.normal(size=40)
    counts = rng.integers(1, 5, size=40)
    repeated = np.repeat(small, counts)
    weights = counts / counts.sum()
    for q in (0.05, 0.3, 0.95):
        assert _weighted_quantile(small, weights, q) == np.quantile(repeated, q, method="inverted_cdf")


@pytest.fixture(scope="module")
def overfit():
    """12 runs x 3 domains of a law with 5 parameters per domain and visible noise (0.05 nats)."""
    truth = random_law(3, seed=5, noise_sd=0.05)
    runs = simulate_runs(truth, 12, seed=6)
    held = simulate_runs(truth, 200, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = bm.fit(runs, draws=500, tune=500, chains=2, seed=0, discrepancy=None)
    return runs, held, idata


def test_own_runs_are_checked_leave_one_out_and_honestly(overfit):
    _, held, idata = overfit
    loo = predictive_check(idata)
    inside = predictive_check(idata, loo=False)
    out = predictive_check(idata, held)
    assert set(loo["method"]) == {"loo"} and set(inside["method"]) == {"in-sample"}
    assert set(out["method"]) == {"held-out"} and out["pareto_k"].isna().all()
    assert loo["pareto_k"].notna().all()
    # same observations; leaving each out moves its prediction away from it, never towards it on average
    np.testing.assert_array_equal(loo["observed"], inside["observed"])
    loo_error = (loo["observed"] - loo["mean"]).abs().mean()
    in_error = (inside["observed"] - inside["mean"]).abs().mean()
    assert loo_error > in_error
    # a left-out loss behaves like a new run's: its error is on the scale of the held-out error
    # (here 0.89 of it), where the in-sample error is not (0.58)
    held_error = (out["observed"] - out["mean"]).abs().mean()
    assert 0.8 * held_error < loo_error < 1.6 * held_error
    assert in_error < 0.8 * held_error
    # and the 36 leave-one-out intervals cover about as often as new runs' (90%)
    assert 0.75 <= loo["inside"].mean() <= 1.0


def test_leave_one_out_is_refused_where_it_cannot_hold(overfit):
    runs, held, idata = overfit
    with pytest.raises(InputError, match="loo"):
        predictive_check(idata, held, loo=True)
    with pytest.raises(InputError, match="loo"):
        predictive_check(idata, loo="yes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        point = bm.fit(runs, method="map", seed=0, discrepancy=None)
    assert set(predictive_check(point)["method"]) == {"in-sample"}
    with pytest.raises(InputError, match="point fit"):
        predictive_check(point, loo=True)


def test_the_fits_own_runs_passed_again_are_checked_leave_one_out_run_by_run(overfit):
    runs, _, idata = overfit
    again = predictive_check(idata, runs)
    assert set(again["method"]) == {"loo"}
    np.testing.assert_allclose(again["upper"], predictive_check(idata)["upper"])
    # a subset of them, and a run whose loss changed: only the changed one is another run
    losses = runs.losses.copy()
    losses.iloc[0, 0] += 1e-6
    some = bm.RunTable(runs.mixtures, losses).subset(slice(0, 5))
    methods = predictive_check(idata, some).groupby("run")["method"].agg(set)
    assert methods.iloc[0] == {"held-out"} and all(m == {"loo"} for m in methods.iloc[1:])


def test_leave_one_out_intervals_reweight_the_same_draws_the_prediction_uses(overfit):
    """An independent computation: scipy's Student-t log density, ArviZ's PSIS, 300 of 1,000 draws."""
    import arviz as az
    from scipy import stats

    from bayesmix.inference.predict import posterior_draws

    runs, _, idata = overfit
    check = predictive_check(idata, max_draws=300, seed=4)
    assert set(check["method"]) == {"loo"}
    observed = runs.losses.to_numpy()
    mean = bm.predict(idata, runs.mixtures, kind="mean", max_draws=300, seed=4).to_numpy()
    draws = bm.predict(idata, runs.mixtures, kind="predictive", max_draws=300, seed=4).to_numpy()
    sigma = posterior_draws(idata, ["sigma"], max_draws=300, seed=4)["sigma"]
    log_lik = stats.t.logpdf(observed, df=5.0, loc=mean, scale=sigma[:, None, :])
    log_w, k = az.psislw(np.moveaxis(-log_lik, 0, -1))
    weights = np.exp(log_w)
    weights /= weights.sum(axis=-1, keepdims=True)
    expected = (weights * np.moveaxis(draws, 0, -1)).sum(axis=-1)
    np.testing.assert_allclose(check["mean"].to_numpy(), expected.reshape(-1), rtol=1e-9)
    np.testing.assert_allclose(check["pareto_k"].to_numpy(), k.reshape(-1), rtol=1e-9)
    # with one draw there is nothing to reweight: in-sample, and no crash
    assert set(predictive_check(idata, max_draws=1)["method"]) == {"in-sample"}


def test_a_fit_with_the_form_error_is_checked_leave_one_out_like_new_runs():
    """The discrepancy's paths replay a fit's own residuals; left out, each run is predicted by the others."""
    truth = random_law(3, seed=8, noise_sd=0.02)
    bump = np.random.default_rng(9).normal(size=(3,))

    def with_form_error(table: bm.RunTable) -> bm.RunTable:  # the law is wrong by a smooth function
        mixtures = table.mixtures.to_numpy()
        table.losses.loc[:, :] = table.losses.to_numpy() + 0.05 * np.sin(3.0 * mixtures @ bump)[:, None]
        return table

    runs, held = with_form_error(simulate_runs(truth, 40, seed=10)), with_form_error(simulate_runs(truth, 200, seed=11))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = bm.fit(runs, method="laplace", draws=500, chains=2, seed=0)  # the default: with the form error
    assert "discrepancy" in bm.fitted_spec(idata).extra
    loo, inside, out = predictive_check(idata), predictive_check(idata, loo=False), predictive_check(idata, held)
    assert set(loo["method"]) == {"loo"} and set(inside["method"]) == {"in-sample"}
    loo_error = (loo["observed"] - loo["mean"]).abs().mean()
    in_error = (inside["observed"] - inside["mean"]).abs().mean()
    held_error = (out["observed"] - out["mean"]).abs().mean()
    # seed 0: errors 0.0136 in-sample, 0.0196 left out, 0.0183 on new runs; 90% coverage 1.000 in-sample
    # (flattered: the paths replay the runs), 0.967 left out, 0.953 on 200 new runs
    assert in_error < loo_error and 0.7 * held_error < loo_error < 1.6 * held_error
    coverage = {name: frame["inside"].mean() for name, frame in (("in", inside), ("loo", loo), ("new", out))}
    assert abs(coverage["loo"] - coverage["new"]) < abs(coverage["in"] - coverage["new"])
    assert 0.75 <= coverage["loo"] <= 1.0

"""ArviZ-complete fits: log likelihood and posterior predictive groups, named dims, summaries, LOO."""

from __future__ import annotations

import importlib
import warnings

import arviz as az
import numpy as np
import pytest
import xarray as xr
from scipy import stats

import bayesmix as bm
from bayesmix.data.curves import CurveTable
from bayesmix.data.simulate import example_runs
from bayesmix.data.simulate_curves import random_nested_truth, simulate_curves
from bayesmix.errors import InputError
from bayesmix.inference import (
    add_log_likelihood,
    add_posterior_predictive,
    compare,
    fit,
    loo,
    predict,
    summary,
    to_chain_draw,
)
from bayesmix.inference.diagnostics import public_variables
from bayesmix.inference.predict import log_likelihood_values
from bayesmix.models.mixing_model import build_model
from bayesmix.models.nested import build_joint_model, build_mixing_stage_model

DRAWS, CHAINS = 200, 2
fit_module = importlib.import_module("bayesmix.inference.fit")  # the module, not bm.fit


def _fit(runs, law=None, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        # the law alone: these tests read the law's own groups (a form-error term shifts its mean)
        return fit(runs, law, draws=DRAWS, tune=200, chains=CHAINS, seed=1, **{"discrepancy": None, **options})


@pytest.fixture(scope="module")
def study():
    """24 runs of a known mixing law over 5 domains; NUTS fits of the true law and a wrong one."""
    runs, _ = example_runs(24, seed=7)
    return runs, _fit(runs), _fit(runs, bm.LinearLaw())


def _stacked(array: xr.DataArray) -> np.ndarray:
    return array.stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fits_carry_groups_named_like_the_observed_data(study):
    runs, mixing, _ = study
    observed = mixing.observed_data["loss"]
    assert observed.dims == ("run", "domain")
    for group in ("log_likelihood", "posterior_predictive"):
        loss = getattr(mixing, group)["loss"]
        assert loss.dims == ("chain", "draw", "run", "domain")
        assert loss.dtype == np.float32
        assert loss.sizes == {"chain": CHAINS, "draw": DRAWS, "run": runs.n_runs, "domain": len(runs.domains)}
        for dim in ("run", "domain"):
            assert list(loss[dim].values) == list(observed[dim].values)
    # the replicates scatter around the observations as the noise model says: per domain, the
    # observed losses sit inside the replicates' range, and their spread is of the noise's size
    replicates = _stacked(mixing.posterior_predictive["loss"]).astype(float)
    inside = (observed.values > replicates.min(axis=0)) & (observed.values < replicates.max(axis=0))
    assert inside.mean() > 0.95
    sigma = mixing.posterior["sigma"].mean(("chain", "draw")).values
    spread = replicates.std(axis=0).mean(axis=0)
    assert np.all(spread > 0.7 * sigma) and np.all(spread < 2.5 * sigma)
    # ArviZ's posterior predictive check reads the groups as they are
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    axes = az.plot_ppc(mixing, flatten=["run"], num_pp_samples=20, random_seed=0)  # one per domain
    labels = [ax.get_xlabel() for ax in np.ravel(axes) if ax.get_xlabel()]
    assert labels == [f"loss\n{domain}" for domain in runs.domains]
    matplotlib.pyplot.close("all")


def test_log_likelihood_is_the_student_t_density_at_the_draws(study):
    runs, mixing, _ = study
    posterior = mixing.posterior
    reference = mixing.constant_data["reference_mixture"].values
    centred = runs.mixtures.to_numpy() - reference  # (run, train_domain)
    c, log_k, t = (_stacked(posterior[name]) for name in ("c", "log_k", "t"))
    mean = c[:, None, :] + np.exp(log_k[:, None, :] + np.einsum("rj,sdj->srd", centred, t))
    sigma = _stacked(posterior["sigma"])[:, None, :]
    expected = stats.t.logpdf(runs.losses.to_numpy()[None], df=5.0, loc=mean, scale=sigma)
    stored = _stacked(mixing.log_likelihood["loss"])
    np.testing.assert_allclose(stored, expected, rtol=2e-6, atol=2e-5)


def test_log_likelihood_values_match_scipy_for_every_noise_model():
    rng = np.random.default_rng(0)
    n_sample, n_run, n_dom = 3, 4, 3
    observed = rng.normal(3.0, 0.1, (n_run, n_dom))
    mean = rng.normal(3.0, 0.1, (n_sample, n_run, n_dom))
    sigma = rng.uniform(0.02, 0.1, (n_sample, n_dom))
    tau = rng.uniform(0.01, 0.1, (n_sample, n_dom))
    normal = log_likelihood_values(observed, mean, sigma, likelihood="normal", nu=5.0)
    np.testing.assert_allclose(normal, stats.norm.logpdf(observed, mean, sigma[:, None, :]))
    for likelihood in ("normal", "student_t"):
        joint = log_likelihood_values(observed, mean, sigma, likelihood=likelihood, nu=4.0, sigma_shared=tau)
        assert joint.shape == (n_sample, n_run)
        for s in range(n_sample):
            scale = np.diag(sigma[s] ** 2) + np.outer(tau[s], tau[s])
            for r in range(n_run):
                if likelihood == "normal":
                    want = stats.multivariate_normal.logpdf(observed[r], mean[s, r], scale)
                else:
                    want = stats.multivariate_t.logpdf(observed[r], mean[s, r], shape=scale, df=4.0)
                np.testing.assert_allclose(joint[s, r], want, rtol=1e-10)


def test_loo_is_finite_and_compare_ranks_the_true_law_first(study):
    _, mixing, linear = study
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ArviZ's Pareto-k warning on 200 draws
        direct = az.loo(mixing)  # ArviZ itself, on the stored group: one loss per observation
        by_run = loo(mixing)
        table = compare({"linear": linear, "mixing": mixing})
        by_observation = compare({"linear": linear, "mixing": mixing}, unit="observation")
    assert np.isfinite(direct.elpd_loo) and direct.n_data_points == 24 * 5
    assert np.isfinite(by_run.elpd_loo) and by_run.n_data_points == 24
    for ranked in (table, by_observation):
        assert list(ranked.index) == ["mixing", "linear"]
        assert ranked.loc["linear", "elpd_diff"] > 3 * ranked.loc["linear", "dse"]


def test_compare_refuses_what_it_cannot_compare(study):
    _, mixing, linear = study
    other = mixing.copy()
    other.observed_data["loss"] = other.observed_data["loss"] + 0.01
    with pytest.raises(InputError, match="other losses"):
        compare({"mixing": other, "linear": linear})
    fewer = mixing.isel(run=slice(0, 20))
    with pytest.raises(InputError, match="other runs"):
        compare({"mixing": fewer, "linear": linear})
    point = mixing.isel(chain=[0], draw=[0])
    with pytest.raises(InputError, match="point fit"):
        compare({"point": point, "linear": linear})
    with pytest.raises(InputError, match="at least two"):
        compare({"mixing": mixing})
    with pytest.raises(InputError, match="dict"):
        compare([mixing, linear])
    with pytest.raises(InputError, match=r"fits\['table'\]"):
        compare({"table": xr.Dataset(), "linear": linear})
    with pytest.raises(InputError, match="unit"):
        loo(mixing, unit="domain")


@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")
def test_old_fits_get_the_groups_on_demand_and_round_trip(study, tmp_path):
    _, mixing, _ = study
    path = bm.save(mixing, tmp_path / "fit.nc")
    loaded = bm.load(path)
    for group in ("log_likelihood", "posterior_predictive"):
        assert group in loaded.groups()
        xr.testing.assert_identical(getattr(loaded, group)["loss"], getattr(mixing, group)["loss"])
    # a file written before fits carried the groups (made here by dropping them) still loads
    old = mixing.copy()
    del old.log_likelihood, old.posterior_predictive
    loaded_old = bm.load(bm.save(old, tmp_path / "old.nc"))
    assert "log_likelihood" not in loaded_old.groups()
    assert loo(loaded_old).elpd_loo == pytest.approx(loo(mixing).elpd_loo, abs=1e-3)
    add_log_likelihood(loaded_old)
    add_posterior_predictive(loaded_old)
    for group in ("log_likelihood", "posterior_predictive"):
        np.testing.assert_array_equal(getattr(loaded_old, group)["loss"], getattr(mixing, group)["loss"])
    with pytest.raises(InputError, match="dtype"):
        add_log_likelihood(loaded_old, dtype="float16")


def test_group_policy(study, monkeypatch):
    runs, mixing, _ = study
    assert fit_module.wants_groups(mixing, "nuts", None)
    assert not fit_module.wants_groups(mixing, "map", None)
    assert fit_module.wants_groups(mixing, "map", True)
    monkeypatch.setattr(fit_module, "GROUP_MAX_VALUES", 1000)
    assert not fit_module.wants_groups(mixing, "nuts", None)
    with pytest.raises(InputError, match="arviz_groups"):
        fit(runs, arviz_groups="yes")


def test_posterior_dims_are_named_and_summary_shows_public_variables(study):
    _, mixing, linear = study
    for idata in (mixing, linear):
        assert not [d for d in idata.posterior.dims if "_dim_" in str(d)]
        assert not [v for v in idata.posterior.data_vars if str(v).endswith("__")]
        rows = list(az.summary(idata).index)
        assert not [r for r in rows if "_log__" in r or "__" in r]
    assert mixing.posterior["slope_coef"].dims == ("chain", "draw", "domain", "train_contrast")
    table = summary(mixing)
    names = {row.split("[")[0] for row in table.index}
    assert {"c", "log_k", "t", "sigma", "slope_deviation_sd"} <= names
    assert not names & {"level_z", "slope_column_z", "slope_coef"}
    assert len(table) < len(az.summary(mixing))
    assert set(public_variables(linear)) == {"a", "beta", "beta_sd", "sigma"}
    assert summary(mixing, var_names=["sigma"], kind="stats").index[0] == "sigma[web]"
    with pytest.raises(InputError, match="var_names"):
        summary(mixing, var_names=["nope"])


def test_every_model_variable_has_named_dims():
    """No variable of any law's model or of the nested models is left with default dims."""
    runs, _ = example_runs(24, seed=7)
    laws = (bm.MixingLaw(), bm.MixingLaw(centred=False), bm.ImplicitMixingLaw(2))
    models = [build_model(law, runs) for law in laws]
    truth = random_nested_truth(3, seed=2)
    frame, _ = simulate_curves(truth, n_mixtures=6, model_sizes=(1e7, 1e8), seed=2)
    table = CurveTable.from_long(frame)
    models.append(build_joint_model(table)[0])
    target = 2.5 + np.random.default_rng(0).normal(0, 0.01, (20, 6, 3))
    models.append(build_mixing_stage_model(table.mixtures, table.domains, target))
    for model in models:
        for var in [*model.free_RVs, *model.deterministics, *model.observed_RVs]:
            if var.type.ndim:
                assert model.named_vars_to_dims.get(var.name), f"{var.name} has no dims"


def test_predict_draws_are_accepted_by_arviz(study):
    _, mixing, _ = study
    new = np.array([[0.5, 0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.3, 0.3, 0.4]])
    draws = predict(mixing, new)
    assert draws.dims == ("sample", "mixture", "domain")  # what every bayesmix caller reads
    assert draws.attrs["chains"] == CHAINS
    arranged = predict(mixing, new, draw_dims="chain_draw")
    assert arranged.dims == ("chain", "draw", "mixture", "domain")
    xr.testing.assert_equal(arranged, to_chain_draw(draws))
    ours = bm.interval(draws, prob=0.8, kind="hdi")
    theirs = az.hdi(arranged, hdi_prob=0.8)["loss"]
    np.testing.assert_allclose(ours["lower"], theirs.sel(hdi="lower"))
    np.testing.assert_allclose(ours["upper"], theirs.sel(hdi="higher"))
    xr.testing.assert_allclose(bm.interval(arranged, prob=0.8, kind="hdi"), ours)
    assert np.isfinite(az.ess(arranged)["loss"]).all()
    # chain and draw are the posterior's: at the reference mixture the mean loss is ``level``
    reference = mixing.constant_data["reference_mixture"].values[None, :]
    level = predict(mixing, reference, kind="mean", draw_dims="chain_draw").isel(mixture=0, drop=True)
    np.testing.assert_allclose(
        level.transpose("chain", "draw", "domain"), mixing.posterior["level"], rtol=1e-9
    )
    # thinned draws are one chain (their order across chains is gone)
    assert to_chain_draw(predict(mixing, new, max_draws=50)).sizes["chain"] == 1
    with pytest.raises(InputError, match="draw_dims"):
        predict(mixing, new, draw_dims="chains")
    with pytest.raises(InputError, match="chain/draw"):
        to_chain_draw(arranged.rename(mixture="sample"))

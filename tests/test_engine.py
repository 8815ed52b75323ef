"""The compiled-model cache, the posterior mode and the Laplace approximation."""

from __future__ import annotations

import importlib
import json
import warnings

import numpy as np
import pytest

import bayesmix as bm
from bayesmix.data.simulate import random_law, simulate_runs
from bayesmix.inference import engine
from bayesmix.models.mixing_model import build_model

SHORT = {"draws": 200, "tune": 200, "chains": 2, "discrepancy": None}  # the law alone: these test the engine


@pytest.fixture(scope="module")
def law():
    return random_law(3, seed=11, noise_sd=0.01)


def _fit(runs, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bm.fit(runs, **{**SHORT, **kwargs})


def test_same_structure_other_runs_reuses_the_compiled_model_with_identical_numbers(law):
    first, second = simulate_runs(law, 24, seed=1), simulate_runs(law, 31, seed=2)
    engine.clear_cache()
    _fit(first, seed=3)
    warm = _fit(second, seed=3)
    assert engine.cache_info()["hits"] == 1 and engine.cache_info()["misses"] == 1
    assert warm.posterior.attrs["bayesmix_compiled_from_cache"] == 1
    assert warm.posterior.attrs["bayesmix_compile_seconds"] == 0.0
    # the warm fit saw the second table's data: its constants and observations, not the first's
    assert warm.observed_data["loss"].shape == (31, 3)
    np.testing.assert_array_equal(warm.observed_data["loss"].to_numpy(), second.losses.to_numpy())
    engine.clear_cache()
    cold = _fit(second, seed=3)
    assert cold.posterior.attrs["bayesmix_compiled_from_cache"] == 0
    for name in ("c", "log_k", "t", "sigma"):
        np.testing.assert_array_equal(warm.posterior[name].to_numpy(), cold.posterior[name].to_numpy())


def test_fingerprint_separates_structures_and_ignores_data(law):
    a, b = simulate_runs(law, 24, seed=1), simulate_runs(law, 30, seed=2)
    key = engine.structure_key(build_model(bm.MixingLaw(), a))
    assert key == engine.structure_key(build_model(bm.MixingLaw(), b))
    assert key != engine.structure_key(build_model(bm.MixingLaw(exponent=0.5), a))
    assert key != engine.structure_key(build_model(bm.MixingLaw(), a, likelihood="normal"))
    assert key != engine.structure_key(build_model(bm.MixingLaw(), a.select_domains(a.domains[:2])))


def test_a_law_that_bakes_data_into_constants_is_never_served_another_studys_model(law):
    """Without ``symbolic_data`` the priors' scales are constants: other data, other key."""

    class Baked(bm.MixingLaw):
        symbolic_data = False

    a, b = simulate_runs(law, 24, seed=1), simulate_runs(law, 24, seed=2)
    assert engine.structure_key(build_model(Baked(), a)) != engine.structure_key(build_model(Baked(), b))


def test_map_finds_the_mode_and_predicts_close_to_truth(law):
    runs = simulate_runs(law, 40, seed=5)
    point = _fit(runs, method="map", seed=0)
    again = _fit(runs, method="map", seed=0)
    np.testing.assert_array_equal(point.posterior["c"].to_numpy(), again.posterior["c"].to_numpy())
    mixtures = np.array([[0.2, 0.5, 0.3], [0.6, 0.2, 0.2]])
    predicted = bm.predict(point, mixtures).mean("sample").to_numpy()
    truth = law.mean_loss(mixtures)
    # the simulated noise is 0.01 nats per run: 40 runs pin the law's mean to a few hundredths
    assert np.max(np.abs(predicted - truth)) < 0.05


def test_laplace_intervals_agree_with_nuts_on_a_small_study(law):
    runs = simulate_runs(law, 30, seed=7)
    nuts = _fit(runs, draws=500, tune=500, chains=2, seed=0)
    lap = _fit(runs, method="laplace", draws=500, chains=2, seed=0)
    health = bm.health(lap)
    assert health.method == "laplace" and np.isfinite(health.pareto_k) and health.ok, str(health)
    for name in ("c", "log_k", "t", "sigma"):
        assert lap.posterior[name].sizes == nuts.posterior[name].sizes
    grid = np.random.default_rng(0).dirichlet(np.ones(3), size=50)
    a = bm.interval(bm.predict(nuts, grid), prob=0.9)
    b = bm.interval(bm.predict(lap, grid), prob=0.9)
    width_a = (a["upper"] - a["lower"]).to_numpy()
    width_b = (b["upper"] - b["lower"]).to_numpy()
    # centres within a fifth of the NUTS width, widths within a factor of 1.5 (the documented
    # tolerance of the conditional Laplace approximation, which holds the hierarchy's spreads at
    # the mode; the 500-draw NUTS width has ~5% Monte Carlo error)
    assert np.median(np.abs(a["median"] - b["median"]).to_numpy() / width_a) < 0.2
    ratio = np.median(width_b / width_a)
    assert 1 / 1.5 < ratio < 1.5, ratio


def test_laplace_reports_a_flat_direction_as_a_problem():
    class Flat:
        n_dim = 2

        def initial_point(self, seed):
            return np.zeros(2)

        def logp_dlogp(self, x):
            # a Gaussian in x[0], flat in x[1]
            return -0.5 * x[0] ** 2, np.array([-x[0], 0.0])

        def expand(self, x):
            return {"a": np.array(x[0]), "b": np.array(x[1])}

    from bayesmix.inference.approx import laplace
    from bayesmix.inference.diagnostics import laplace_health

    result = laplace(Flat(), draws=50, chains=2, seed=0, n_starts=1)
    assert result.hessian_clipped == 1
    health = laplace_health(result, chains=2, draws=50)
    assert not health.ok and "curvature" in health.problems[0]
    assert result.posterior["a"].shape == (2, 50)


@pytest.mark.slow
def test_exponent_chosen_by_cross_validated_bayesian_refits(law):
    from bayesmix.inference.select import select_exponent

    runs = simulate_runs(law, 32, seed=8)
    engine.clear_cache()
    choice = select_exponent(runs, candidates=(0.5, 1.0), folds=4, method="map")
    assert list(choice.table["exponent"]) == [0.5, 1.0]
    assert choice.exponent == float(choice.table.loc[choice.table["cv_mae"].idxmin(), "exponent"])
    # 8 refits, two structures (exponent 1 and any other): compiled twice, reused six times
    assert engine.cache_info()["misses"] == 2 and engine.cache_info()["hits"] == 6
    # the truth is the paper's form (exponent 1) with 0.01-nat noise: its held-out error is near
    # the noise's mean absolute value (0.008)
    assert float(choice.table.set_index("exponent").loc[1.0, "cv_mae"]) < 0.02


def test_the_cache_never_writes_into_a_callers_model_and_serves_each_its_own_data(law):
    a, b = simulate_runs(law, 24, seed=1), simulate_runs(law, 24, seed=2)
    model_a, model_b = build_model(bm.MixingLaw(), a), build_model(bm.MixingLaw(), b)
    engine.clear_cache()
    engine.compiled(model_a)
    comp_b = engine.compiled(model_b)
    comp_a = engine.compiled(model_a)
    assert comp_b.cached and comp_a.cached
    # the caller's models keep their own data
    np.testing.assert_array_equal(engine.shared_values(model_a)["loss_observed"], a.losses.to_numpy())
    np.testing.assert_array_equal(engine.shared_values(model_b)["loss_observed"], b.losses.to_numpy())
    # each compiled handle carries the data of the model it was asked for
    np.testing.assert_array_equal(comp_a.nutpie.shared_data["loss_observed"], a.losses.to_numpy())
    np.testing.assert_array_equal(comp_b.nutpie.shared_data["loss_observed"], b.losses.to_numpy())
    x = comp_a.initial_point(0)
    assert comp_a.logp_dlogp(x)[0] != comp_b.logp_dlogp(x)[0]
    with pytest.raises(ValueError, match="shape"):
        comp_a.logp_dlogp(x[:-1])


def test_laws_whose_shapes_come_from_dims_get_a_key_per_shape(law):
    runs = simulate_runs(law, 24, seed=1)
    three = engine.structure_key(build_model(bm.LinearLaw(), runs))
    two = engine.structure_key(build_model(bm.LinearLaw(), runs.select_domains(runs.domains[:2])))
    assert three != two


def test_derived_features_equal_the_laws_own_and_are_not_stored_with_the_fit(law):
    runs = simulate_runs(law, 24, seed=1)
    mixing = bm.MixingLaw(exponent=0.5)
    rng = np.random.default_rng(0)
    params = {
        "c": rng.normal(2, 0.1, 3),
        "log_k": rng.normal(0, 0.1, 3),
        "t": rng.normal(0, 1, (3, 3)),
        "reference_mixture": runs.mixtures.mean().to_numpy(),
        "exponent": np.asarray(0.5),
    }
    derived = mixing.derived_inputs(runs.mixtures.to_numpy(), params)
    np.testing.assert_allclose(
        mixing.evaluate({**params, **derived}, runs.mixtures.to_numpy()),
        mixing.evaluate(params, runs.mixtures.to_numpy()),
        rtol=1e-12,
    )
    assert bm.MixingLaw().derived_inputs(runs.mixtures.to_numpy(), params) == {}
    point = _fit(runs, law=mixing, method="map")
    assert not [n for n in point.constant_data.data_vars if str(n).startswith(("derived_", "prior_"))]


def test_a_chain_stuck_in_a_minor_mode_is_dropped_and_reported():
    from bayesmix.inference import _arviz
    from bayesmix.inference.diagnostics import check_health
    from bayesmix.inference.engine import STUCK_LOGP_GAP, drop_stuck_chains

    rng = np.random.default_rng(0)

    def idata(offsets):
        chains = len(offsets)
        x = rng.normal(0, 1, (chains, 200))
        x[0] += 5.0 if offsets[0] else 0.0  # the stuck chain sits elsewhere
        logp = rng.normal(0, 1, (chains, 200)) - np.asarray(offsets)[:, None]
        return _arviz.from_dict(
            {"x": x}, coords={}, dims={}, sample_stats={"logp": logp, "diverging": np.zeros((chains, 200), bool)}
        )

    stuck = idata([3 * STUCK_LOGP_GAP, 0, 0, 0])
    assert check_health(stuck, ["x"]).max_rhat > 1.5  # all four: the chains disagree
    dropped = drop_stuck_chains(stuck)
    assert [d["chain"] for d in dropped] == [0] and dropped[0]["logp_gap"] > 2 * STUCK_LOGP_GAP
    assert stuck.posterior.sizes["chain"] == 3 and stuck.sample_stats.sizes["chain"] == 3
    stuck.posterior.attrs["bayesmix_dropped_chains"] = json.dumps(dropped)
    health = check_health(stuck, ["x"])
    assert health.ok and health.dropped_chains == 1 and "1 stuck chain dropped" in str(health)
    # within the gap, with too few chains, or when most chains disagree: nothing is dropped
    assert drop_stuck_chains(idata([0.5 * STUCK_LOGP_GAP, 0, 0, 0])) == []
    assert drop_stuck_chains(idata([3 * STUCK_LOGP_GAP, 0])) == []
    assert drop_stuck_chains(idata([3 * STUCK_LOGP_GAP, 3 * STUCK_LOGP_GAP, 3 * STUCK_LOGP_GAP, 0])) == []


def test_tune_none_takes_the_default_for_the_models_size(law, monkeypatch):
    runs = simulate_runs(law, 24, seed=1)
    monkeypatch.setattr(engine, "DEFAULT_TUNE", {"diagonal": 40, "low_rank": 20, "low_rank_warm": 10})

    def draws(tune):
        return _fit(runs, tune=tune, seed=3).posterior["t"].to_numpy()

    np.testing.assert_array_equal(draws(None), draws(40))  # a small model: the diagonal mass matrix
    monkeypatch.setattr(engine, "LOW_RANK_MIN_DIM", 0)  # every model counts as large
    np.testing.assert_array_equal(draws(None), draws(20))
    assert not np.array_equal(draws(None), draws(40))
    with pytest.raises(bm.InputError, match="tune"):
        _fit(runs, tune=-1)


def test_warm_start_points_are_earlier_draws_in_the_samplers_coordinates(law):
    """Each point, expanded by the compiled model, gives back one earlier draw of every free variable."""
    earlier = _fit(simulate_runs(law, 24, seed=1), seed=3)
    comp = engine.compiled(build_model(bm.MixingLaw(), simulate_runs(law, 31, seed=2)))
    points = engine.warm_start_points(comp, earlier, seed=0, n=6)
    assert points.shape == (6, comp.n_dim)
    np.testing.assert_array_equal(points, engine.warm_start_points(comp, earlier, seed=0, n=6))
    stacked = earlier.posterior.stack(sample=("chain", "draw"))
    free = [rv.name for rv in comp.model.free_RVs]
    assert "sigma" in free  # a positive variable: its coordinate is log(sigma)
    for point in points:
        values = comp.expand(point)
        # the draw whose sigma matches, and every other free variable of that same draw
        i = int(np.argmin(np.abs(stacked["sigma"].to_numpy() - values["sigma"][:, None]).sum(axis=0)))
        for name in free:
            np.testing.assert_allclose(values[name], stacked[name].to_numpy()[..., i], rtol=1e-9, atol=1e-12)
    # the nutpie start function picks one of the points by its seed, the same one every time
    start = engine._StartAt(points)
    assert any(np.array_equal(start(12345), p) for p in points)
    np.testing.assert_array_equal(start(12345), start(12345))


def test_a_warm_start_keeps_the_posterior_and_is_reproducible(law, monkeypatch):
    earlier = _fit(simulate_runs(law, 24, seed=1), seed=3)
    runs = simulate_runs(law, 31, seed=2)
    cold = _fit(runs, seed=4, draws=500)
    warm = _fit(runs, seed=4, draws=500, warm_start=earlier)
    assert warm.posterior.attrs["bayesmix_warm_start"] == 1 and cold.posterior.attrs["bayesmix_warm_start"] == 0
    for name in ("c", "log_k", "t"):
        a, b = cold.posterior[name], warm.posterior[name]
        # the two posterior means differ by Monte Carlo error only: within 4 standard errors
        se = np.hypot(*(x.std(("chain", "draw")) / np.sqrt(bm.inference._arviz.ess_bulk(x.to_dataset())[name]) for x in (a, b)))
        assert (np.abs(a.mean(("chain", "draw")) - b.mean(("chain", "draw"))) < 4 * se).all(), name
    starts = []  # the sampler asks the warm start for each chain's first point
    start_at = engine._StartAt.__call__
    monkeypatch.setattr(engine._StartAt, "__call__", lambda self, seed: starts.append(seed) or start_at(self, seed))
    again = _fit(runs, seed=4, draws=500, warm_start=earlier)
    np.testing.assert_array_equal(warm.posterior["t"].to_numpy(), again.posterior["t"].to_numpy())
    assert len(set(starts)) == SHORT["chains"]
    # a large model tunes less when warm-started (tune=None)
    monkeypatch.setattr(engine, "LOW_RANK_MIN_DIM", 0)
    tuned = bm.fit(runs, draws=20, chains=2, seed=1, warm_start=earlier, discrepancy=None)
    assert tuned.posterior.attrs["bayesmix_tune"] == engine.DEFAULT_TUNE["low_rank_warm"]


def test_a_warm_start_from_another_model_or_for_another_method_is_refused(law, monkeypatch):
    runs = simulate_runs(law, 24, seed=1)
    earlier = _fit(runs, seed=3)
    renamed = earlier.posterior.assign_coords(domain=["a", "b", "c"])  # a fit on other domains
    with pytest.raises(bm.InputError, match=r"warm_start.*'domain' is \['a', 'b', 'c'\]"):
        _fit(runs, warm_start=renamed)
    # refused before the discrepancy's region backtests would run
    fit_module = importlib.import_module("bayesmix.inference.fit")  # the module, not the function
    monkeypatch.setattr(fit_module, "calibrate_discrepancy", lambda *a, **k: pytest.fail("backtests ran"))
    with pytest.raises(bm.InputError, match=r"warm_start.*'domain'"):
        _fit(runs, discrepancy=True, warm_start=renamed)
    fewer = earlier.posterior.isel(domain=slice(0, 2))
    with pytest.raises(bm.InputError, match=r"warm_start.*'domain'"):
        _fit(runs, warm_start=fewer)
    with pytest.raises(bm.InputError, match=r"warm_start.*point fit"):  # one draw, as a MAP fit has
        _fit(runs, warm_start=earlier.posterior.isel(chain=[0], draw=[0]))
    with pytest.raises(bm.InputError, match=r"warm_start.*sampler='pymc'"):
        _fit(runs, sampler="pymc", warm_start=earlier)
    # the same domains in another order are reordered to the model's, draw for draw
    model = build_model(bm.MixingLaw(), runs)
    flipped = earlier.posterior.isel(domain=[2, 0, 1])
    a = engine.earlier_draws(model, earlier, seed=0)
    b = engine.earlier_draws(model, flipped, seed=0)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    with pytest.raises(bm.InputError, match=r"warm_start.*no 'slope_offset"):
        _fit(runs, law=bm.MixingLaw(exponent=0.5), warm_start=earlier)
    with pytest.raises(bm.InputError, match=r"warm_start.*method='laplace'"):
        bm.fit(runs, method="laplace", warm_start=earlier)
    with pytest.raises(bm.InputError, match=r"warm_start.*not a posterior"):
        _fit(runs, warm_start=runs)


def test_jittered_starts_lie_within_the_jitter_of_the_priors_centre(law, monkeypatch):
    runs = simulate_runs(law, 24, seed=1)
    model = build_model(bm.MixingLaw(), runs)
    comp = engine.compiled(model)
    centre = comp.model.initial_point()
    x0 = np.concatenate([np.ravel(centre[comp.model.rvs_to_values[rv].name]) for rv in comp.model.free_RVs])
    points = engine.jittered_starts(comp, 0.3, seed=2, n=16)
    assert points.shape == (16, comp.n_dim)
    assert np.abs(points - x0).max() <= 0.3 and np.abs(points - x0).max() > 0.2
    np.testing.assert_array_equal(points, engine.jittered_starts(comp, 0.3, seed=2, n=16))
    # the centre is the prior's (level_z's Normal(0, 1) at 0), and expanding it and mapping the free
    # variables back gives the same sampler coordinates
    values = comp.expand(x0)
    assert np.allclose(values["level_z"], 0.0)
    np.testing.assert_allclose(comp.unconstrained({rv.name: values[rv.name] for rv in comp.model.free_RVs}), x0)
    starts = []
    start_at = engine._StartAt.__call__
    monkeypatch.setattr(engine._StartAt, "__call__", lambda self, seed: starts.append(seed) or start_at(self, seed))
    idata = engine.sample_nuts(model, draws=20, tune=20, chains=2, target_accept=0.9, seed=0, start_jitter=0.3)
    assert idata.posterior.attrs["bayesmix_start_jitter"] == 0.3 and len(set(starts)) == 2
    for bad in (-0.1, float("nan"), "0.3"):
        with pytest.raises(bm.InputError, match="start_jitter"):
            engine.jittered_starts(comp, bad, seed=0)

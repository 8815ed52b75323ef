"""Saving and loading nested fits; the target-scale mixing law as an optimisable fit."""

import json

import numpy as np
import pytest

import bayesmix as bm
from bayesmix.data.curves import CurveTable
from bayesmix.data.simulate_curves import random_nested_truth, simulate_curves
from bayesmix.errors import IncompatibleFileError
from bayesmix.inference.nested import fit_nested, predict_target
from bayesmix.inference.nested_io import load_nested, save_nested
from bayesmix.inference.nested_target import target_fit

TARGET = {"model_size": 1e9, "tokens": 1e11}


@pytest.fixture(scope="module")
def fitted():
    truth = random_nested_truth(2, seed=3)
    frame, _ = simulate_curves(truth, n_mixtures=5, model_sizes=(1e7, 3e7, 1e8), seed=3)
    return fit_nested(CurveTable.from_long(frame), draws=150, tune=200, chains=2, seed=2)


def test_round_trip_predicts_the_same(fitted, tmp_path):
    mixing = target_fit(fitted, **TARGET)  # caches the mixing stage, which must be saved too
    manifest = save_nested(fitted, tmp_path / "nested")
    assert json.loads(manifest.read_text())["mixing_stages"]
    loaded = load_nested(tmp_path / "nested")
    assert loaded.method == fitted.method and loaded.domains == fitted.domains
    assert loaded.health.keys() == fitted.health.keys()
    for via in ("observed", "mixing_law"):
        mixtures = None if via == "observed" else [{"web": 0.3, "code": 0.7}]
        a = predict_target(fitted, **TARGET, mixtures=mixtures, via=via, seed=5)
        b = predict_target(loaded, **TARGET, mixtures=mixtures, via=via, seed=5)
        np.testing.assert_array_equal(a.values, b.values)
    assert (TARGET["model_size"], TARGET["tokens"]) in loaded.mixing_stages
    # the optimisable view of the loaded fit is the same law
    again = target_fit(loaded, **TARGET)
    r = np.array([[0.2, 0.8]])
    np.testing.assert_allclose(
        bm.predict(mixing, r, kind="mean").values, bm.predict(again, r, kind="mean").values
    )


def test_target_fit_optimises_like_the_nested_prediction(fitted):
    mixing = target_fit(fitted, **TARGET)
    spec = bm.fitted_spec(mixing)
    assert spec.method == "nested" and spec.extra["model_size"] == TARGET["model_size"]
    best = bm.optimise(mixing, target="mean", n_starts=3, max_draws=200)
    assert abs(best.mixture.sum() - 1) < 1e-6
    # the optimum's expected loss equals predict_target's mean through the same mixing stage
    draws = predict_target(fitted, **TARGET, mixtures=[best.mixture.to_dict()], kind="mean", max_draws=None)
    total = float(draws.sel(domain="total").mean())
    assert abs(total - best.expected_loss) < 0.02
    # and it is no worse than the observed mixtures under the same law and the same 200 draws
    # (with all draws the comparison would carry their Monte Carlo error: ~0.001 nats)
    observed = bm.predict(mixing, fitted.mixtures, kind="mean", max_draws=200, seed=0).mean(("sample", "domain"))
    assert best.expected_loss <= float(observed.min()) + 1e-6


@pytest.mark.parametrize("damage", ["truncate", "edit_manifest", "drop_file", "other_version", "no_manifest"])
def test_damaged_folders_are_refused(fitted, tmp_path, damage):
    folder = tmp_path / "nested"
    save_nested(fitted, folder)
    manifest = json.loads((folder / "nested.json").read_text())
    if damage == "truncate":
        data = (folder / "scaling.nc").read_bytes()
        (folder / "scaling.nc").write_bytes(data[: len(data) // 2])
    elif damage == "edit_manifest":
        (folder / "nested.json").write_text("{not json")
    elif damage == "drop_file":
        (folder / "runs.csv").unlink()
    elif damage == "other_version":
        manifest["saved_with"]["bayesmix"] = "0.0.1"
        (folder / "nested.json").write_text(json.dumps(manifest))
    else:
        (folder / "nested.json").unlink()
    with pytest.raises(IncompatibleFileError):
        load_nested(folder)
    if damage == "other_version":
        assert load_nested(folder, allow_other_version=True).method == fitted.method


def test_bad_arguments(fitted, tmp_path):
    with pytest.raises(bm.InputError, match="fitted"):
        save_nested("not a fit", tmp_path)
    with pytest.raises(bm.InputError, match="tokens"):
        target_fit(fitted, model_size=1e9, tokens=float("nan"))


def test_nested_stages_carry_arviz_groups_through_save_and_load(fitted, tmp_path):
    import arviz as az

    scaling = fitted.scaling
    assert {"log_likelihood", "posterior_predictive"} <= set(scaling.groups())
    observed = scaling.observed_data["loss"]
    assert scaling.log_likelihood["loss"].shape[2:] == observed.shape
    assert scaling.posterior_predictive["loss"].dims[2:] == observed.dims
    # the log likelihood is the Student-t / normal density of the observed losses (finite everywhere)
    assert np.isfinite(scaling.log_likelihood["loss"].values).all()
    assert np.isfinite(az.loo(scaling).elpd_loo)
    loaded = load_nested(save_nested(fitted, tmp_path / "nested").parent)
    assert "log_likelihood" in loaded.scaling.groups()
    np.testing.assert_array_equal(loaded.scaling.log_likelihood["loss"].values, scaling.log_likelihood["loss"].values)

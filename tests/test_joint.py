"""The joint mixture x model-size law: maths against the M4 law, recovery and coverage at a size
seen in a few runs, the fit turned into an ordinary mixing-law fit, and refusals."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmix as bm
from bayesmix.errors import InputError, NotEnoughDataError
from bayesmix.inference.joint import fit_joint, joint_at
from bayesmix.laws.joint import JointMixingLaw
from bayesmix.laws.mixing import MixingLaw

NAMES = ["web", "code", "books"]
SMALL, LARGE = 1e6, 6e7


def true_params(rng):
    t = rng.normal(0, 1.5, (3, 3))
    u = rng.normal(0, 0.3, (3, 3))
    return {
        "c": np.array([2.0, 1.5, 2.2]),
        "log_k": np.log([0.8, 0.6, 0.7]),
        "t": t - t.mean(1, keepdims=True),
        "level_per_efold": np.array([-0.10, -0.12, -0.08]),
        "log_k_per_efold": np.array([-0.05, -0.02, -0.04]),
        "t_per_efold": u - u.mean(1, keepdims=True),
    }


def test_law_is_m4_at_every_size():
    rng = np.random.default_rng(0)
    params = true_params(rng)
    params["reference_mixture"] = np.full(3, 1 / 3)
    mixtures = rng.dirichlet(np.ones(3), 7)
    for z in (-2.0, 0.0, 1.3):
        joint = JointMixingLaw.evaluate(params, mixtures, np.full(7, z))
        m4 = MixingLaw().evaluate({**JointMixingLaw.at(params, z), "reference_mixture": params["reference_mixture"]}, mixtures)
        np.testing.assert_allclose(joint, m4, rtol=1e-12)
    # by hand, one run and domain
    r, z, i = mixtures[2], 0.7, 1
    by_hand = (params["c"][i] + params["level_per_efold"][i] * z) + np.exp(
        params["log_k"][i] + params["log_k_per_efold"][i] * z
        + (params["t"][i] + z * params["t_per_efold"][i]) @ (r - params["reference_mixture"])
    )
    assert JointMixingLaw.evaluate(params, mixtures, np.full(7, z))[2, i] == pytest.approx(by_hand)


def simulate(n_small=48, n_large=12, n_new=60, seed=1, noise=0.01):
    rng = np.random.default_rng(seed)
    params = true_params(rng)
    sizes = np.concatenate([np.full(n_small, SMALL), np.full(n_large + n_new, LARGE)])
    mixtures = rng.dirichlet(np.ones(3), len(sizes))
    params["reference_mixture"] = mixtures[: n_small + n_large].mean(0)
    z = np.log(sizes / np.sqrt(SMALL * LARGE))
    mean = JointMixingLaw.evaluate(params, mixtures, z)
    frame = pd.DataFrame(mixtures, columns=[f"mix_{n}" for n in NAMES])
    frame[NAMES] = mean + rng.normal(0, noise, mean.shape)
    frame["model_size"] = sizes
    frame["run"] = [f"r{i}" for i in range(len(sizes))]
    fitted = bm.RunTable.from_wide(frame.iloc[: n_small + n_large])
    new = frame.iloc[n_small + n_large :]
    return fitted, new[[f"mix_{n}" for n in NAMES]].set_axis(NAMES, axis=1).reset_index(drop=True), mean[n_small + n_large :]


@pytest.fixture(scope="module")
def joint():
    runs, new, truth = simulate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        return runs, new, truth, fit_joint(runs, draws=200, tune=300, chains=2, seed=0)


def test_a_size_seen_in_few_runs_is_predicted_with_honest_intervals(joint):
    _, new, truth, idata = joint
    at = joint_at(idata, LARGE)
    summary = bm.interval(bm.predict(at, new, kind="mean"), prob=0.9)
    mean = summary["mean"].transpose("mixture", "domain").to_numpy()
    lower = summary["lower"].transpose("mixture", "domain").to_numpy()
    upper = summary["upper"].transpose("mixture", "domain").to_numpy()
    covered = ((truth >= lower) & (truth <= upper)).mean()
    assert 0.8 <= covered <= 1.0, covered  # 180 law values at 90%: Monte Carlo band ~0.86-0.94
    assert np.abs(mean - truth).mean() < 0.01  # the noise sd; the law's own error is far below it
    # the same seed gives the same numbers
    again = bm.interval(bm.predict(joint_at(idata, LARGE), new, kind="mean"), prob=0.9)
    np.testing.assert_array_equal(again["mean"].to_numpy(), summary["mean"].to_numpy())


def test_joint_at_is_an_ordinary_fit_for_the_optimiser(joint):
    runs, _, _, idata = joint
    at = joint_at(idata, LARGE)
    spec = bm.fitted_spec(at)
    assert spec.method == "joint" and spec.extra["joint"]["model_size"] == LARGE
    assert spec.extra["joint"]["extrapolation_efolds"] == 0.0
    assert at.constant_data["mixtures"].sizes["run"] == runs.n_runs  # the support of every size
    best = bm.optimise(at, target="code")
    assert best.support is not None and abs(best.mixture.sum() - 1) < 1e-9
    assert 0.0 <= best.p_beats_reference <= 1.0


def test_far_sizes_warn_and_bad_input_is_refused(joint):
    runs, _, _, idata = joint
    with pytest.warns(UserWarning, match="e-folds outside the fitted sizes"):
        joint_at(idata, LARGE * np.exp(4))
    with pytest.raises(InputError, match="model_size"):
        joint_at(idata, -1.0)
    with pytest.raises(InputError, match="not a joint"):
        joint_at(bm.fit(runs.subset(np.arange(48)), method="map", discrepancy=None), LARGE)
    one_size = runs.subset(np.arange(48))
    with pytest.raises(NotEnoughDataError, match="one model size"):
        fit_joint(one_size)
    no_size = bm.RunTable(runs.mixtures, runs.losses)
    with pytest.raises(InputError, match="model_size"):
        fit_joint(no_size)


def test_without_available_tokens_the_model_is_unchanged():
    """The law on the shares themselves: the same variables and the same log density at a fixed
    point as before the joint law could read repeated data (a change of the M4 priors changes
    this number on purpose)."""
    from bayesmix.models.joint import build_joint_model

    runs, _, _ = simulate(n_small=24, n_large=12, n_new=1, seed=3)
    law = JointMixingLaw()
    assert law.options() == {"self_effect": True, "scale_sd": 0.5, "exponent": 1.0} and law.run_inputs == ()
    model = build_joint_model(law, runs)
    assert "tokens" not in model.named_vars and "r_star" not in model.named_vars
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in model.initial_point().items()}
    assert model.compile_logp()(point) == pytest.approx(-361.95863716332155, rel=1e-10)


def test_a_joint_fit_saves_and_loads(joint, tmp_path):
    fit = joint[-1]
    loaded = bm.load(bm.save(fit, tmp_path / "joint.nc"))
    assert loaded.posterior.attrs["bayesmix_joint"] == fit.posterior.attrs["bayesmix_joint"]
    np.testing.assert_array_equal(loaded.posterior["t"].to_numpy(), fit.posterior["t"].to_numpy())

"""Repetition inside the joint mixture x size law: its form against the repetition-aware law,
the run input it needs, and recovery of R* and of the optimum at the larger of two sizes."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.optimize import minimize

import bayesmix as bm
from bayesmix.errors import InputError
from bayesmix.inference.joint import fit_joint, joint_at
from bayesmix.laws.joint import JointMixingLaw

DOMAINS = ["web", "code", "papers"]
UNIQUE = {"code": 2e10, "papers": 2e9}
INVERSE = np.array([0.0, 1 / 2e10, 1 / 2e9])
SMALL, LARGE = 1e8, 1e9
TARGET_TOKENS = 5e10
T = np.array([[-2.4, 0.6, 1.8], [0.9, -2.7, 1.8], [0.9, 0.6, -1.5]])
TRUTH = {
    "c": np.array([2.5, 1.5, 2.0]),
    "log_k": np.log([0.9, 1.0, 1.0]),
    "t": T - T.mean(axis=1, keepdims=True),
    "level_per_efold": np.array([-0.10, -0.12, -0.08]),
    "log_k_per_efold": np.array([-0.05, -0.02, -0.04]),
    "t_per_efold": np.array([[0.3, -0.1, -0.2], [-0.2, 0.4, -0.2], [0.1, 0.1, -0.2]]),
    "r_star": np.array([15.0, 15.0, 6.0]),
    "waste_cost": np.array([0.5, 0.4, 0.6]),
    "inverse_unique_tokens": INVERSE,
}


def random_params(rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    t = rng.normal(0, 1, (*shape, 3, 3))
    u = rng.normal(0, 0.3, (*shape, 3, 3))
    return {
        "c": rng.uniform(2, 3, (*shape, 3)),
        "log_k": rng.normal(-0.5, 0.2, (*shape, 3)),
        "t": t - t.mean(-1, keepdims=True),
        "level_per_efold": rng.normal(-0.1, 0.05, (*shape, 3)),
        "log_k_per_efold": rng.normal(-0.03, 0.02, (*shape, 3)),
        "t_per_efold": u - u.mean(-1, keepdims=True),
        "r_star": rng.uniform(3, 30, (*shape, 3)),
        "waste_cost": rng.uniform(0.1, 1.0, (*shape, 3)),
        "reference_mixture": np.full(3, 1 / 3),
        "inverse_unique_tokens": INVERSE,
    }


def test_numpy_and_pytensor_agree_and_each_size_is_the_repetition_law() -> None:
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(0)
    params = random_params(rng, (2, 3))  # two leading sample axes
    mixtures = rng.dirichlet(np.ones(3), 6)
    tokens = np.array([1e9, 5e9, 2e10, 4e10, 8e10, 1e11])
    z = np.array([-1.2, -1.2, 0.0, 0.4, 1.2, 1.2])
    expected = JointMixingLaw.evaluate({**params, "tokens": tokens}, mixtures, z)
    assert expected.shape == (2, 3, 6, 3)
    shared = ("reference_mixture", "inverse_unique_tokens")  # no sample axes
    core = {
        name: pt.tensor(name, shape=value.shape if name in shared else value.shape[2:], dtype="float64")
        for name, value in params.items()
    }
    symbolic = {**core, "tokens": pt.as_tensor_variable(tokens)}
    graph = JointMixingLaw.evaluate(symbolic, pt.as_tensor_variable(mixtures), pt.as_tensor_variable(z), xp=pt)
    function = pytensor.function(list(core.values()), graph, mode="FAST_COMPILE")
    for a in range(2):
        for b in range(3):
            values = [value if name in shared else value[a, b] for name, value in params.items()]
            np.testing.assert_allclose(function(*values), expected[a, b], rtol=1e-12)
    # at any one size the joint law is the repetition-aware law with the coefficients at that size
    law = bm.RepetitionMixingLaw(available_tokens=UNIQUE)
    for size in (-1.2, 1.2):
        rows = z == size
        at = {**params, **JointMixingLaw.at(params, size), "tokens": tokens[rows]}
        np.testing.assert_allclose(law.evaluate(at, mixtures[rows]), expected[..., rows, :], rtol=1e-12)


def test_without_limits_the_repetition_terms_only_add_their_priors() -> None:
    """``available_tokens={}``: nothing is repeated, so the logp is the plain joint law's plus
    the priors of ``R*`` and ``beta`` (the likelihood and every other prior are unchanged)."""
    from bayesmix.models.joint import build_joint_model

    runs, _ = study(n_small=20, n_large=10)
    plain = build_joint_model(JointMixingLaw(), runs)
    aware = build_joint_model(JointMixingLaw(available_tokens={}), runs)
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in plain.initial_point().items()}
    extra = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in aware.initial_point().items() if k not in point}
    assert sorted(extra) == [
        "log_r_star_mu",
        "log_r_star_sd_log__",
        "log_r_star_z",
        "log_waste_cost_mu",
        "log_waste_cost_sd_log__",
        "log_waste_cost_z",
    ]

    def half_normal(log_value: float, scale: float) -> float:  # on the log scale, with its Jacobian
        return float(stats.halfnorm.logpdf(np.exp(log_value), scale=scale) + log_value)

    priors = (
        stats.norm.logpdf(extra["log_r_star_mu"], np.log(15.0), 0.75)
        + half_normal(extra["log_r_star_sd_log__"], 0.5)
        + stats.norm.logpdf(extra["log_r_star_z"]).sum()
        + stats.norm.logpdf(extra["log_waste_cost_mu"], np.log(0.5), 1.0)
        + half_normal(extra["log_waste_cost_sd_log__"], 0.5)
        + stats.norm.logpdf(extra["log_waste_cost_z"]).sum()
    )
    logp_plain = plain.compile_logp()(point)
    logp_aware = aware.compile_logp()({**point, **extra})
    assert logp_aware == pytest.approx(logp_plain + priors, rel=1e-10)


def test_options_round_trip_and_bad_input_is_refused() -> None:
    law = JointMixingLaw(available_tokens=UNIQUE, r_star=10.0)
    assert JointMixingLaw(**law.options()).options() == law.options()
    assert law.run_inputs == ("tokens",) and JointMixingLaw().run_inputs == ()
    assert "available_tokens" not in JointMixingLaw().options()  # the plain law's options as before
    with pytest.raises(InputError, match="r_star"):
        JointMixingLaw(r_star=10.0)  # a repetition prior without available tokens
    with pytest.raises(InputError, match="exponent"):
        JointMixingLaw(exponent=0.5, available_tokens=UNIQUE)
    with pytest.raises(InputError, match="available_tokens"):
        JointMixingLaw(available_tokens={"papers": -1.0})
    runs, _ = study(n_small=20, n_large=10)
    with pytest.raises(InputError, match="available_tokens"):
        fit_joint(runs, JointMixingLaw(available_tokens={"books": 1e9}))
    no_tokens = bm.RunTable(runs.mixtures, runs.losses, runs.meta[["model_size"]])
    with pytest.raises(InputError) as info:
        fit_joint(no_tokens, JointMixingLaw(available_tokens=UNIQUE))
    assert info.value.field == "tokens"
    assert "tokens" in info.value.problem and "column" in info.value.problem


def true_losses(mixtures: np.ndarray, tokens: np.ndarray, sizes: np.ndarray, reference: np.ndarray) -> np.ndarray:
    z = np.log(sizes / np.sqrt(SMALL * LARGE))
    return JointMixingLaw.evaluate({**TRUTH, "reference_mixture": reference, "tokens": tokens}, mixtures, z)


def study(n_small: int = 24, n_large: int = 12, seed: int = 1) -> tuple[bm.RunTable, np.ndarray]:
    """Runs at two sizes, a third of each at 2e9, 1e10 and 4e10 tokens: the larger two repeat
    the small ``papers`` domain (2e9 unique tokens) at most shares, up to ~20 epochs."""
    rng = np.random.default_rng(seed)
    sizes = np.repeat([SMALL, LARGE], [n_small, n_large])
    tokens = np.concatenate([np.resize([2e9, 1e10, 4e10], n) for n in (n_small, n_large)])
    mixtures = rng.dirichlet(np.ones(3), len(sizes))
    reference = mixtures.mean(axis=0)
    losses = true_losses(mixtures, tokens, sizes, reference) + rng.normal(0, 0.01, (len(sizes), 3))
    index = pd.Index([f"r{i:02d}" for i in range(len(sizes))])
    runs = bm.RunTable(
        pd.DataFrame(mixtures, index=index, columns=DOMAINS),
        pd.DataFrame(losses, index=index, columns=DOMAINS),
        pd.DataFrame({"tokens": tokens, "model_size": sizes}, index=index),
    )
    return runs, reference


@pytest.fixture(scope="module")
def fitted():
    runs, reference = study()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        fit = fit_joint(runs, JointMixingLaw(available_tokens=UNIQUE), draws=300, tune=300, chains=2, seed=0)
    return runs, reference, fit


def true_optimum(size: float, reference: np.ndarray) -> tuple[np.ndarray, float]:
    def target(x: np.ndarray) -> float:
        r = np.abs(x) / np.abs(x).sum()
        return float(true_losses(r[None, :], np.array([TARGET_TOKENS]), np.array([size]), reference).mean())

    starts = np.random.default_rng(0).dirichlet(np.ones(3), 4)
    best = min(
        (minimize(target, s, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10}) for s in starts),
        key=lambda o: o.fun,
    )
    return np.abs(best.x) / np.abs(best.x).sum(), float(best.fun)


@pytest.mark.slow  # one 2 x 300-draw joint fit, about 30 s; the laws' agreement above stays in the default suite
def test_recovers_r_star_and_the_optimum_at_the_larger_size(fitted) -> None:
    _, reference, fit = fitted
    r_star = fit.posterior["r_star"].sel(train_domain="papers").to_numpy().ravel()
    low, high = np.quantile(r_star, [0.05, 0.95])
    assert low <= TRUTH["r_star"][2] <= high
    assert high - low < 3.0  # learned from the repeating runs (the prior's 90% interval: ~3.5 to 65)
    at = joint_at(fit, LARGE)
    result = bm.optimise(at, target="mean", target_tokens=TARGET_TOKENS, seed=0, n_starts=4)
    chosen = result.mixture.reindex(DOMAINS).to_numpy()
    _, best = true_optimum(LARGE, reference)
    regret = float(true_losses(chosen[None, :], np.array([TARGET_TOKENS]), np.array([LARGE]), reference).mean()) - best
    assert regret < 2e-3  # nats
    # the optimum moves with size: the smaller size's true optimum would cost far more at the larger
    small_best, _ = true_optimum(SMALL, reference)
    small_loss = true_losses(small_best[None, :], np.array([TARGET_TOKENS]), np.array([LARGE]), reference).mean()
    assert small_loss - best > 10 * max(regret, 1e-3)
    assert 1.0 < chosen[2] * TARGET_TOKENS / UNIQUE["papers"] < 20.0  # papers repeated, not shunned


@pytest.mark.slow
def test_joint_at_is_a_repetition_fit_that_saves_and_loads(fitted, tmp_path) -> None:
    runs, _, fit = fitted
    at = joint_at(fit, LARGE)
    spec = bm.fitted_spec(at)
    assert spec.build_law() == bm.RepetitionMixingLaw(available_tokens=UNIQUE)
    assert spec.method == "joint" and spec.extra["joint"]["model_size"] == LARGE
    np.testing.assert_array_equal(at.posterior["r_star"].to_numpy(), fit.posterior["r_star"].to_numpy())
    np.testing.assert_array_equal(at.posterior["waste_cost"].to_numpy(), fit.posterior["waste_cost"].to_numpy())
    np.testing.assert_allclose(at.constant_data["inverse_unique_tokens"], INVERSE)
    np.testing.assert_array_equal(at.constant_data["tokens"], runs.meta["tokens"].to_numpy())
    mixtures = [{"web": 0.5, "code": 0.3, "papers": 0.2}, {"web": 0.2, "code": 0.2, "papers": 0.6}]
    with pytest.raises(InputError) as info:
        bm.predict(at, mixtures)
    assert info.value.field == "tokens"
    few = bm.predict(at, mixtures[1], tokens=2e9, kind="mean").mean("sample").isel(mixture=0)
    many = bm.predict(at, mixtures[1], tokens=1e11, kind="mean").mean("sample").isel(mixture=0)
    assert float(many.sel(domain="papers")) > float(few.sel(domain="papers")) + 0.05  # 30 epochs hurt
    path = bm.save(at, tmp_path / "joint_at.nc")
    loaded = bm.load(path, expected=bm.RepetitionMixingLaw(available_tokens=UNIQUE))
    before = bm.predict(at, mixtures, tokens=[1e10, 5e10], seed=1)
    after = bm.predict(loaded, mixtures, tokens=[1e10, 5e10], seed=1)
    np.testing.assert_allclose(after.to_numpy(), before.to_numpy(), rtol=1e-12)
    settings = {"target": "mean", "target_tokens": TARGET_TOKENS, "seed": 0, "n_starts": 2}
    np.testing.assert_allclose(
        bm.optimise(loaded, **settings).mixture.to_numpy(), bm.optimise(at, **settings).mixture.to_numpy()
    )

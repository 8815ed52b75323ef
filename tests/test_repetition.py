"""The repetition-aware mixing law: its form, its fit, and the optimiser and files around it."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmix as bm
from bayesmix.errors import InputError
from bayesmix.laws.repetition import effective_shares

DOMAINS = ("web", "code", "papers")
UNIQUE = {"code": 2e10, "papers": 2e9}
INVERSE = np.array([0.0, 1 / 2e10, 1 / 2e9])
R_STAR = np.array([15.0, 15.0, 6.0])
WASTE = np.array([0.5, 0.4, 0.6])
T = np.array([[-2.4, 0.6, 1.8], [0.9, -2.7, 1.8], [0.9, 0.6, -1.5]])
T = T - T.mean(axis=1, keepdims=True)
C = np.array([2.5, 1.5, 2.0])
LOG_K = np.log([0.9, 1.0, 1.0])
TARGET_TOKENS = 5e10


def muennighoff_share(r: float, tokens: float, unique: float, r_star: float) -> float:
    """``D' / D`` written from the paper's Eq. 5: ``U + U R* (1 - exp(-R / R*))``, ``R`` repetitions."""
    total = r * tokens
    if total <= unique:
        return r
    repetitions = total / unique - 1.0
    return (unique + unique * r_star * (1.0 - math.exp(-repetitions / r_star))) / tokens


def true_losses(mixtures: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """The study's true losses ``(run, domain)``, computed without bayesmix."""
    out = np.empty((len(mixtures), 3))
    for n, (r, d) in enumerate(zip(mixtures, tokens, strict=True)):
        shares = np.array(
            [
                r[j] if INVERSE[j] == 0 else muennighoff_share(r[j], d, 1 / INVERSE[j], R_STAR[j])
                for j in range(3)
            ]
        )
        out[n] = C + np.exp(LOG_K + T @ (shares - 1 / 3) + WASTE * (1 - shares.sum()))
    return out


def study(n_per_level: int = 9, seed: int = 1) -> bm.RunTable:
    rng = np.random.default_rng(seed)
    tokens = np.repeat([2e9, 1e10, 4e10], n_per_level)
    mixtures = rng.dirichlet(np.ones(3), len(tokens))
    losses = true_losses(mixtures, tokens) + rng.normal(0, 0.01, (len(tokens), 3))
    index = pd.Index([f"r{i:02d}" for i in range(len(tokens))])
    return bm.RunTable(
        pd.DataFrame(mixtures, index=index, columns=list(DOMAINS)),
        pd.DataFrame(losses, index=index, columns=list(DOMAINS)),
        pd.DataFrame({"tokens": tokens}, index=index),
    )


@pytest.fixture(scope="module")
def fitted():
    runs = study()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        # the default discrepancy="auto" fits a law with per-run inputs alone, without a warning
        warnings.simplefilter("error", bm.DiscrepancySkippedWarning)
        fit = bm.fit(
            runs, bm.RepetitionMixingLaw(available_tokens=UNIQUE), draws=300, tune=300, chains=2, seed=0
        )
    assert "discrepancy" not in bm.fitted_spec(fit).extra
    return runs, fit


def random_params(rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    return {
        "c": rng.uniform(2, 3, (*shape, 3)),
        "log_k": rng.normal(-0.5, 0.2, (*shape, 3)),
        "t": rng.normal(0, 1, (*shape, 3, 3)),
        "r_star": rng.uniform(3, 30, (*shape, 3)),
        "waste_cost": rng.uniform(0.1, 1.0, (*shape, 3)),
        "reference_mixture": np.full(3, 1 / 3),
        "inverse_unique_tokens": INVERSE,
    }


def test_numpy_and_pytensor_agree_with_leading_sample_axes() -> None:
    import pytensor
    import pytensor.tensor as pt

    law = bm.RepetitionMixingLaw(available_tokens=UNIQUE)
    rng = np.random.default_rng(0)
    params = random_params(rng, (2, 3))  # two leading sample axes
    mixtures = rng.dirichlet(np.ones(3), 6)
    tokens = np.array([1e9, 5e9, 2e10, 4e10, 8e10, 1e11])
    expected = law.evaluate({**params, "tokens": tokens}, mixtures, xp=np)
    assert expected.shape == (2, 3, 6, 3)
    shared = ("reference_mixture", "inverse_unique_tokens")  # no sample axes
    core = {
        name: pt.tensor(name, shape=value.shape if name in shared else value.shape[2:], dtype="float64")
        for name, value in params.items()
    }
    symbolic = {**core, "tokens": pt.as_tensor_variable(tokens)}
    graph = law.evaluate(symbolic, pt.as_tensor_variable(mixtures), xp=pt)
    function = pytensor.function(list(core.values()), graph, mode="FAST_COMPILE")
    for a in range(2):
        for b in range(3):
            values = [value if name in shared else value[a, b] for name, value in params.items()]
            np.testing.assert_allclose(function(*values), expected[a, b], rtol=1e-12)


def test_effective_share_is_r_up_to_one_epoch_and_muennighoff_beyond() -> None:
    r_star = np.array([15.0, 10.0, 6.0])
    mixtures = np.array([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.9, 0.05, 0.05]])
    for tokens in (1e8, 2e9, 1e10, 1e11):
        got = effective_shares(mixtures, np.full(3, tokens), INVERSE, r_star)
        for n, r in enumerate(mixtures):
            for j in range(3):
                if INVERSE[j] == 0:
                    want = r[j]
                else:
                    want = muennighoff_share(r[j], tokens, 1 / INVERSE[j], r_star[j])
                assert got[n, j] == pytest.approx(want, rel=1e-12, abs=1e-15)
                if INVERSE[j] and r[j] * tokens <= 1 / INVERSE[j]:
                    assert got[n, j] == r[j]
                assert got[n, j] <= r[j] + 1e-15


def test_effective_share_is_smooth_at_one_epoch() -> None:
    unique, tokens, r_star = 2e9, 1e10, 6.0
    at_one = unique / tokens  # the share of exactly one epoch
    h = 1e-7

    def share(r: float) -> float:
        return effective_shares(np.array([[0.0, 0.0, r]]), np.array([tokens]), INVERSE, np.full(3, r_star))[
            0, 2
        ]

    left = (share(at_one) - share(at_one - h)) / h
    right = (share(at_one + h) - share(at_one)) / h
    assert left == pytest.approx(1.0, abs=1e-6)
    assert right == pytest.approx(1.0, abs=1e-5)  # C1: the slope exp(-(e - 1) / R*) is 1 at e = 1


def test_analytic_gradient_matches_finite_differences() -> None:
    from bayesmix.optimise.gradients import finite_difference_jacobian

    law = bm.RepetitionMixingLaw(available_tokens=UNIQUE)
    params = {**random_params(np.random.default_rng(3), (4,)), "tokens": np.array([4e10])}
    for r in (np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.1, 0.7]), np.array([0.9, 0.05, 0.05])):
        value, jacobian = law.value_and_jacobian(params, r)
        fd_value, fd_jacobian = finite_difference_jacobian(law, params, r)
        np.testing.assert_allclose(value, fd_value, rtol=1e-12)
        np.testing.assert_allclose(jacobian, fd_jacobian, rtol=1e-4, atol=1e-5)


def test_missing_tokens_column_is_named() -> None:
    runs = study()
    plain = bm.RunTable(runs.mixtures, runs.losses)
    with pytest.raises(InputError) as info:
        bm.fit(plain, bm.RepetitionMixingLaw(available_tokens=UNIQUE), method="map")
    assert info.value.field == "tokens"
    assert "tokens" in info.value.problem and "column" in info.value.problem
    with pytest.raises(InputError, match="available_tokens"):
        bm.fit(runs, bm.RepetitionMixingLaw(available_tokens={"books": 1e9}), method="map")


def test_recovers_r_star_and_the_optimum(fitted) -> None:
    _, fit = fitted
    r_star = fit.posterior["r_star"].sel(train_domain="papers").to_numpy().ravel()
    low, high = np.quantile(r_star, [0.02, 0.98])
    assert low <= R_STAR[2] <= high
    assert high - low < 6.0  # the runs repeat papers up to ~20 epochs: R* is learned, not the prior
    result = bm.optimise(fit, target="mean", target_tokens=TARGET_TOKENS, seed=0, n_starts=4)

    def true_target(r: np.ndarray) -> float:
        return float(true_losses(r[None, :], np.array([TARGET_TOKENS])).mean())

    from scipy.optimize import minimize

    truth = min(
        (
            minimize(
                lambda x: true_target(np.abs(x) / np.abs(x).sum()),
                start,
                method="Nelder-Mead",
                options={"xatol": 1e-6, "fatol": 1e-10},
            )
            for start in np.random.default_rng(0).dirichlet(np.ones(3), 4)
        ),
        key=lambda o: o.fun,
    )
    chosen = result.mixture.reindex(list(DOMAINS)).to_numpy()
    assert true_target(chosen) - truth.fun < 2e-3  # regret in nats
    epochs = chosen[2] * TARGET_TOKENS / UNIQUE["papers"]
    assert 1.0 < epochs < 20.0


def test_predict_needs_tokens_and_uses_them(fitted) -> None:
    _, fit = fitted
    mixture = {"web": 0.3, "code": 0.3, "papers": 0.4}
    with pytest.raises(InputError) as info:
        bm.predict(fit, mixture)
    assert info.value.field == "tokens"
    few = bm.predict(fit, mixture, tokens=1e9, kind="mean").mean("sample").isel(mixture=0)
    many = bm.predict(fit, mixture, tokens=1e11, kind="mean").mean("sample").isel(mixture=0)
    assert float(many.sel(domain="papers")) > float(few.sel(domain="papers")) + 0.05  # 20 epochs hurt


def test_optimise_prices_repetition_and_caps_still_work(fitted) -> None:
    _, fit = fitted
    settings = {"target": "mean", "target_tokens": TARGET_TOKENS, "seed": 0, "n_starts": 3}
    free = bm.optimise(fit, **settings)
    capped = bm.optimise(fit, tokens=UNIQUE, max_epochs=2.0, **settings)
    more = bm.optimise(fit, tokens={"papers": 2e10}, **settings)
    assert free.mixture["papers"] * TARGET_TOKENS / UNIQUE["papers"] > 2.0  # no hard cap by default
    assert capped.mixture["papers"] <= 2.0 * UNIQUE["papers"] / TARGET_TOKENS + 1e-9
    assert more.mixture["papers"] > free.mixture["papers"] + 0.01  # ten times the unique tokens
    with pytest.raises(InputError) as info:
        bm.optimise(fit, target="mean")
    assert info.value.field == "target_tokens"


def test_save_load_round_trip(fitted, tmp_path) -> None:
    _, fit = fitted
    path = bm.save(fit, tmp_path / "repetition.nc")
    loaded = bm.load(path, expected=bm.RepetitionMixingLaw(available_tokens=UNIQUE))
    assert bm.fitted_spec(loaded).build_law() == bm.fitted_spec(fit).build_law()
    np.testing.assert_array_equal(loaded.constant_data["tokens"], fit.constant_data["tokens"])
    mixtures = [{"web": 0.5, "code": 0.3, "papers": 0.2}, {"web": 0.2, "code": 0.2, "papers": 0.6}]
    before = bm.predict(fit, mixtures, tokens=[1e10, 5e10], seed=1)
    after = bm.predict(loaded, mixtures, tokens=[1e10, 5e10], seed=1)
    np.testing.assert_allclose(after.to_numpy(), before.to_numpy(), rtol=1e-12)
    bm.add_log_likelihood(loaded)  # the fitted runs' tokens come back from constant_data
    np.testing.assert_allclose(
        loaded.log_likelihood["loss"].to_numpy(), fit.log_likelihood["loss"].to_numpy(), rtol=1e-5
    )


def test_laws_without_run_inputs_refuse_tokens() -> None:
    from bayesmix.inference.predict import new_run_inputs

    assert new_run_inputs(bm.MixingLaw(), 2) == {}
    with pytest.raises(InputError) as info:
        new_run_inputs(bm.MixingLaw(), 2, tokens=1e10)
    assert info.value.field == "tokens"
    law = bm.RepetitionMixingLaw(available_tokens=UNIQUE)
    np.testing.assert_array_equal(new_run_inputs(law, 2, tokens=1e10)["tokens"], [1e10, 1e10])
    with pytest.raises(InputError):
        new_run_inputs(law, 2, tokens=[1e10, 2e10, 3e10])
    with pytest.raises(InputError):
        new_run_inputs(law, 2, tokens=-1.0)


def test_refit_with_other_token_counts_reuses_the_compiled_model(fitted) -> None:
    del fitted  # compiled the model of this structure
    other = study(seed=2)
    law = bm.RepetitionMixingLaw(available_tokens={"code": 3e10, "papers": 1e9})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        fit = bm.fit(other, law, draws=30, tune=30, chains=1, seed=0, arviz_groups=False)
    assert fit.posterior.attrs["bayesmix_compiled_from_cache"] == 1
    np.testing.assert_allclose(fit.constant_data["inverse_unique_tokens"], [0.0, 1 / 3e10, 1e-9])
    np.testing.assert_array_equal(fit.constant_data["tokens"], other.meta["tokens"].to_numpy())


def test_proxies_at_the_target_repetition_rate(tmp_path):
    from bayesmix.data.corpus import load_embedded
    from bayesmix.proxy.study import check_settings

    budgets = bm.repetition_matched_budgets({"papers": 2e9, "web": 1e12}, target_tokens=1e12, proxy_tokens=4e8)
    assert budgets == {"papers": 800_000, "web": 400_000_000}
    # any share repeats each domain as often in a proxy as in the target run
    for share in (0.05, 0.3):
        assert share * 4e8 / budgets["papers"] == pytest.approx(share * 1e12 / 2e9)
    in_bytes = bm.repetition_matched_budgets({"legal": 1e6, "code": 3e6}, 1e9, 1e8, bytes_per_token={"legal": 4.0, "code": 3.0})
    assert in_bytes == {"legal": 400_000, "code": 900_000}
    corpus = load_embedded(["legal", "code"], train_bytes=in_bytes, validation_bytes=50_000, cache_dir=False)
    sizes = {d: sum(len(doc.text.encode()) for doc in corpus.domains[d].train) for d in ("legal", "code")}
    assert sizes["legal"] == pytest.approx(400_000, rel=0.02) and sizes["code"] == pytest.approx(900_000, rel=0.02)
    check_settings({"corpus": {"kind": "embedded", "train_bytes": in_bytes}}, "study.yaml")
    with pytest.raises(InputError, match="no budget for domain 'code'"):
        load_embedded(["legal", "code"], train_bytes={"legal": 1000}, cache_dir=False)
    with pytest.raises(InputError, match="proxy_tokens"):
        bm.repetition_matched_budgets({"a": 1e9}, 1e12, 0)

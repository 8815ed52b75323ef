"""Law maths: PyTensor graphs equal the numpy reference; invariances; aggregation; registry."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import bayesmix as bm
from bayesmix.laws.features import power_features
from bayesmix.laws.mixing import zero_sum_basis


def simplex_rows(n: int, m: int, seed: int, sparse: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.dirichlet(np.ones(m), size=n)
    if sparse:
        rows[rng.random((n, m)) < 0.2] = 0.0
        rows[rows.sum(1) == 0, 0] = 1.0
        rows /= rows.sum(1, keepdims=True)
    return rows


_COMPILED: dict = {}


def pytensor_eval(law: bm.Law, params: dict, mixtures: np.ndarray) -> np.ndarray:
    """Evaluate the law's PyTensor graph (compiled once per law and parameter ranks)."""
    key = (repr(law), tuple((name, np.ndim(v)) for name, v in params.items()))
    if key not in _COMPILED:
        symbols = {name: pt.tensor(name, shape=(None,) * np.ndim(v)) for name, v in params.items()}
        x = pt.matrix("x")
        out = law.evaluate(symbols, x, xp=pt)
        _COMPILED[key] = pytensor.function([x, *symbols.values()], out, on_unused_input="ignore")
    return _COMPILED[key](mixtures, *[np.asarray(v, dtype=float) for v in params.values()])


def numpy_m4(params, mixtures, exponent=1.0):
    """Direct transcription of c_i + k_i exp(sum_j t_ij (r_j^g - rref_j^g)) with loops."""
    n, m = mixtures.shape
    d = len(params["c"])
    out = np.empty((n, d))
    for a in range(n):
        for i in range(d):
            z = sum(
                params["t"][i, j] * (mixtures[a, j] ** exponent - params["reference_mixture"][j] ** exponent)
                for j in range(m)
            )
            out[a, i] = params["c"][i] + np.exp(params["log_k"][i]) * np.exp(z)
    return out


seeds = st.integers(0, 10_000)


@given(seed=seeds, d=st.integers(1, 4), m=st.integers(2, 6), exponent=st.sampled_from([1.0, 0.5, 0.8, 1.3]))
def test_mixing_law_pytensor_equals_numpy_reference(seed, d, m, exponent):
    rng = np.random.default_rng(seed)
    law = bm.MixingLaw(exponent=exponent)
    params = {
        "c": rng.uniform(1, 3, d),
        "log_k": rng.normal(-1, 0.5, d),
        "t": rng.normal(0, 1.5, (d, m)),
        "reference_mixture": rng.dirichlet(np.ones(m)),
        "exponent": np.asarray(exponent),
    }
    mixtures = simplex_rows(7, m, seed)
    reference = numpy_m4(params, mixtures, exponent)
    np.testing.assert_allclose(law.evaluate(params, mixtures, xp=np), reference, rtol=1e-10)
    np.testing.assert_allclose(pytensor_eval(law, params, mixtures), reference, rtol=1e-8)


@given(seed=seeds, d=st.integers(1, 3), m=st.integers(2, 5), k=st.integers(1, 4))
def test_implicit_law_pytensor_equals_numpy_reference(seed, d, m, k):
    rng = np.random.default_rng(seed)
    law = bm.ImplicitMixingLaw(n_components=k)
    params = {
        "b": rng.uniform(1, 3, d),
        "log_w": np.sort(rng.normal(-1, 0.5, (d, k)), axis=-1),
        "t": rng.normal(0, 1.5, (d, k, m)),
        "reference_mixture": rng.dirichlet(np.ones(m)),
    }
    mixtures = simplex_rows(6, m, seed)
    dr = mixtures - params["reference_mixture"]
    reference = params["b"][None, :] + np.einsum(
        "dk,ndk->nd", np.exp(params["log_w"]), np.exp(np.einsum("dkm,nm->ndk", params["t"], dr))
    )
    np.testing.assert_allclose(law.evaluate(params, mixtures, xp=np), reference, rtol=1e-10)
    np.testing.assert_allclose(pytensor_eval(law, params, mixtures), reference, rtol=1e-8)


@given(seed=seeds, d=st.integers(1, 3), m=st.integers(2, 5))
def test_linear_law_pytensor_equals_numpy_reference(seed, d, m):
    rng = np.random.default_rng(seed)
    law = bm.LinearLaw()
    params = {
        "a": rng.normal(3, 1, d),
        "beta": rng.normal(0, 1, (d, m)),
        "reference_mixture": rng.dirichlet(np.ones(m)),
    }
    mixtures = simplex_rows(5, m, seed)
    reference = params["a"] + (mixtures - params["reference_mixture"]) @ params["beta"].T
    np.testing.assert_allclose(law.evaluate(params, mixtures, xp=np), reference, rtol=1e-10)
    np.testing.assert_allclose(pytensor_eval(law, params, mixtures), reference, rtol=1e-8)


@given(seed=seeds, shift=st.floats(-5, 5))
def test_m4_rows_have_a_redundant_direction_that_zero_sum_removes(seed, shift):
    """With exponent 1, adding a constant to a row of t changes nothing (sum r = 1)."""
    rng = np.random.default_rng(seed)
    law = bm.MixingLaw()
    params = {
        "c": rng.uniform(1, 3, 2),
        "log_k": rng.normal(size=2),
        "t": rng.normal(size=(2, 4)),
        "reference_mixture": rng.dirichlet(np.ones(4)),
    }
    mixtures = simplex_rows(5, 4, seed)
    shifted = dict(params, t=params["t"] + shift)
    np.testing.assert_allclose(law.evaluate(params, mixtures), law.evaluate(shifted, mixtures), rtol=1e-9)
    # ... which is why the model keeps rows zero-sum: the basis spans exactly that subspace
    basis = zero_sum_basis(4)
    np.testing.assert_allclose(basis.sum(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)


def test_numpy_evaluation_broadcasts_over_posterior_draws():
    rng = np.random.default_rng(0)
    law = bm.MixingLaw(exponent="learn")
    s, d, m = 5, 3, 4
    params = {
        "c": rng.uniform(1, 3, (s, d)),
        "log_k": rng.normal(size=(s, d)),
        "t": rng.normal(size=(s, d, m)),
        "reference_mixture": rng.dirichlet(np.ones(m)),
        "exponent": rng.uniform(0.5, 1.2, s),
    }
    mixtures = simplex_rows(6, m, 1)
    batched = law.evaluate(params, mixtures)
    assert batched.shape == (s, 6, d)
    for i in range(s):
        one = {k: (v[i] if k != "reference_mixture" else v) for k, v in params.items()}
        np.testing.assert_allclose(batched[i], numpy_m4(one, mixtures, one["exponent"]), rtol=1e-10)


def test_power_features_are_finite_with_zero_proportions_and_have_finite_gradients():
    r = pt.matrix("r")
    g = pt.scalar("g")
    total = power_features(r, g, pt).sum()
    grad = pytensor.function([r, g], pytensor.grad(total, g))
    value = grad(np.array([[0.0, 1.0], [0.5, 0.5]]), 0.7)
    assert np.isfinite(value)
    np.testing.assert_allclose(power_features(np.array([[0.0, 0.25]]), 0.5, np), [[0.0, 0.5]])


def test_explicit_aggregation_weights_domains():
    agg = bm.ExplicitAggregation({"a": 1.0, "b": 3.0}, ["a", "b", "c"])
    np.testing.assert_allclose(agg.weights, [0.25, 0.75, 0.0])
    np.testing.assert_allclose(agg(np.array([[2.0, 4.0, 100.0]])), [3.5])
    with pytest.raises(bm.InputError, match="composition"):
        bm.ExplicitAggregation({"zzz": 1.0}, ["a"])
    with pytest.raises(bm.InputError, match="composition"):
        bm.ExplicitAggregation([1.0, -1.0], ["a", "b"])


def test_law_specs_round_trip_and_unknown_names_fail():
    from bayesmix.laws import available_laws, get_law, law_from_spec

    for law in (
        bm.MixingLaw(exponent=0.7, self_effect=False),
        bm.ImplicitMixingLaw(4, exponent="learn"),
        bm.LinearLaw(),
    ):
        assert law_from_spec(law.spec()) == law
    assert {"mixing", "implicit", "linear"} <= set(available_laws())
    with pytest.raises(bm.InputError, match="unknown law"):
        get_law("nope")
    with pytest.raises(bm.InputError, match="exponent"):
        bm.MixingLaw(exponent=-1)
    with pytest.raises(bm.InputError, match="n_components"):
        bm.ImplicitMixingLaw(0)


@given(values=arrays(np.float64, (3, 4), elements=st.floats(0, 1)))
def test_power_features_match_numpy_power(values):
    np.testing.assert_allclose(
        power_features(values, 0.6, np), np.where(values > 0, values**0.6, 0.0), rtol=1e-12
    )

"""The knowledge gradient against a brute-force Monte Carlo of the same Gaussian model."""

import numpy as np
import pytest

from bayesmix.design.knowledge_gradient import knowledge_gradient
from bayesmix.errors import InputError


def _draws(seed=0, n=4000):
    rng = np.random.default_rng(seed)
    mean = np.array([1.00, 1.02, 1.30, 1.05])
    sd = np.array([0.05, 0.08, 0.02, 0.10])
    corr = np.array([[1, 0.6, 0, 0.3], [0.6, 1, 0, 0.2], [0, 0, 1, 0], [0.3, 0.2, 0, 1]])
    cov = corr * np.outer(sd, sd)
    return rng.multivariate_normal(mean, cov, size=n)


def test_matches_a_monte_carlo_of_the_observation():
    draws = _draws()
    noise = 0.03**2
    kg = knowledge_gradient(draws, noise)
    mean, cov = draws.mean(axis=0), np.cov(draws.T)
    rng = np.random.default_rng(1)
    for c in range(draws.shape[1]):
        b = cov[:, c] / np.sqrt(cov[c, c] + noise)
        z = rng.standard_normal(200_000)
        brute = mean.min() - (mean[:, None] + b[:, None] * z[None, :]).min(axis=0).mean()
        assert kg[c] == pytest.approx(brute, abs=5e-4)  # 3 Monte Carlo sd


def test_values_what_can_change_the_decision():
    draws = _draws()
    kg = knowledge_gradient(draws, 0.03**2)
    assert np.all(kg >= 0)
    assert kg[2] < 1e-3 < kg[3]  # far worse and uncorrelated: nothing to learn for the decision
    noisier = knowledge_gradient(draws, 0.3**2)
    assert np.all(noisier <= kg + 1e-12)  # a noisier run teaches less
    np.testing.assert_allclose(knowledge_gradient(draws, 0.03**2, candidates=[3, 0]), kg[[3, 0]])


def test_bad_input_names_the_field():
    with pytest.raises(InputError) as err:
        knowledge_gradient(np.ones((1, 3)), 0.1)
    assert err.value.field == "draws"
    with pytest.raises(InputError) as err:
        knowledge_gradient(np.ones((5, 3)), -1.0)
    assert err.value.field == "noise_var"

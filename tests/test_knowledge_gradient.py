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


def test_a_run_at_another_scale_is_valued_by_its_correlation_with_the_decision():
    draws = _draws()
    rng = np.random.default_rng(3)
    informative = draws[:, 3] + rng.normal(0, 0.01, len(draws))  # tracks candidate 3
    useless = rng.normal(1.0, 0.1, len(draws))  # independent of every target loss
    kg = knowledge_gradient(draws, 0.03**2, observed=np.column_stack([informative, useless]))
    assert kg[0] > 0.5 * knowledge_gradient(draws, 0.03**2)[3] and kg[1] < 1e-3
    with pytest.raises(InputError) as err:
        knowledge_gradient(draws, 0.1, observed=np.ones((3, 2)))
    assert err.value.field == "observed"


def test_the_designer_asks_with_the_knowledge_gradient():
    from bayesmix.data.simulate import random_law
    from bayesmix.design import Designer
    from bayesmix.design.surrogate import BootstrapLaw

    law = random_law(3, seed=2, noise_sd=0.01)
    designer = Designer(law.domains, law.domains[0], acquisition="kg", seed=0, n_initial=8, n_candidates=200,
                        surrogate=BootstrapLaw(n_boot=8, n_inits=2))  # fmt: skip
    for proposal in designer.ask(8):
        mix = np.array([[proposal.mixture[d] for d in law.domains]])
        designer.tell(proposal.run_id, float(law.mean_loss(mix)[0, 0]))
    batch = designer.ask(3)
    assert len(batch) == 3 and len({tuple(p.mixture.values()) for p in batch}) == 3
    assert designer.report().value_next_batch >= 0

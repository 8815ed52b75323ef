"""The designer's Bayesian surrogate: the NUTS posterior of the mixing law, refitted warm."""

from __future__ import annotations

import numpy as np
import pytest

from bayesmix.data.simulate import random_law
from bayesmix.design import BootstrapLaw, Designer, LawFit
from bayesmix.design.surrogate import surrogate_from_dict

DOMAINS = ["a", "b", "c"]
SMALL = LawFit(exponent=1.0, draws=150, tune=150)  # the simulated law's own form


@pytest.fixture(scope="module")
def law():
    return random_law(len(DOMAINS), seed=4, domains=DOMAINS, noise_sd=0.01)


def runs(law, n: int, seed: int):
    rng = np.random.default_rng(seed)
    mixtures = rng.dirichlet(np.ones(len(DOMAINS)), size=n)
    losses = law.mean_loss(mixtures)[:, 0] + rng.normal(0.0, 0.01, size=n)
    return mixtures, losses


def test_below_the_laws_minimum_the_bootstrap_ensemble_stands_in(law):
    assert SMALL.min_runs(3) == 6  # c, k, 2 free entries of t (zero-sum rows), noise; one run more
    mixtures, losses = runs(law, 5, seed=0)
    post = SMALL.fit(mixtures, losses, seed=2)
    assert post.idata is None
    alone = BootstrapLaw(exponent=1.0).fit(mixtures, losses, seed=2)
    np.testing.assert_array_equal(post.predict(mixtures), alone.predict(mixtures))
    # a domain no run has trained on: the law cannot learn its effect, so the ensemble stands in too
    unseen = np.c_[mixtures[:, :2] / mixtures[:, :2].sum(1, keepdims=True), np.zeros(5)]
    more = np.vstack([unseen, unseen[::-1] * 0.5 + unseen * 0.5])
    assert SMALL.fit(more, np.r_[losses, losses], seed=2).idata is None


def test_posterior_recovers_the_law_and_repeats_with_the_seed(law):
    mixtures, losses = runs(law, 30, seed=1)
    post = SMALL.fit(mixtures, losses, seed=3)
    assert post.idata is not None
    new = np.random.default_rng(9).dirichlet(np.ones(3), size=50)
    draws = post.predict(new)
    assert draws.shape == (200, 50)
    truth = law.mean_loss(new)[:, 0]
    assert np.abs(draws.mean(axis=0) - truth).max() < 0.03  # 3 noise sds
    lo, hi = np.quantile(draws, [0.02, 0.98], axis=0)
    assert np.mean((lo <= truth) & (truth <= hi)) >= 0.8
    assert 0.005 < np.sqrt(post.noise_var) < 0.02  # the simulated run noise, 0.01
    np.testing.assert_array_equal(SMALL.fit(mixtures, losses, seed=3).predict(new), draws)


def test_designer_with_the_bayesian_surrogate_asks_resumes_and_finds_a_good_mixture(law, tmp_path):
    designer = Designer(DOMAINS, law.domains[0], acquisition="thompson", seed=1, n_initial=8,
                        n_candidates=300, surrogate=SMALL)
    for _ in range(3):
        for p in designer.ask(4):
            row = np.array([[p.mixture[d] for d in DOMAINS]])
            designer.tell(p.run_id, float(law.mean_loss(row)[0, 0]))
    path = tmp_path / "design.json"
    designer.save(path)
    resumed = Designer.load(path)
    assert resumed.surrogate == SMALL
    assert [p.mixture for p in designer.ask(2)] == [p.mixture for p in resumed.ask(2)]
    rec = np.array([designer.recommendation()[d] for d in DOMAINS])
    grid = np.random.default_rng(5).dirichlet(np.ones(3), size=4000)
    assert law.mean_loss(rec[None])[0, 0] <= np.quantile(law.mean_loss(grid)[:, 0], 0.1)


def test_round_trip_of_the_settings():
    spec = LawFit(discrepancy=True, draws=100).to_dict()
    assert spec["kind"] == "lawfit" and spec["discrepancy"] is True
    assert surrogate_from_dict(spec) == LawFit(discrepancy=True, draws=100)


def test_joint_surrogate_reads_one_posterior_at_every_size(law):
    from bayesmix.design import JointLawFit

    joint = JointLawFit(draws=150, tune=150)
    sizes = [1e7, 8e7]
    rng = np.random.default_rng(6)
    mixtures = rng.dirichlet(np.ones(3), size=24)
    scales = np.repeat([0, 1], 12)
    # the small size is the large one plus 0.3 nats: the same mixture effect at both sizes
    losses = law.mean_loss(mixtures)[:, 0] + 0.3 * (scales == 0) + rng.normal(0.0, 0.01, size=24)
    assert joint.min_runs(3) == 10  # 2 x 5 - 1 parameters (a scale term for each, one noise); one run more
    alone = joint.fit(mixtures[:12], losses[:12], seed=1, scales=scales[:12], n_scales=2, target_scale=1,
                      model_sizes=sizes)
    assert alone.idata is None and alone.scale_terms is not None  # one size only: the bootstrap stands in
    post = joint.fit(mixtures, losses, seed=1, scales=scales, n_scales=2, target_scale=1, model_sizes=sizes)
    new = rng.dirichlet(np.ones(3), size=20)
    large, small = post.predict(new), post.predict(new, scale=np.zeros(20, dtype=int))
    np.testing.assert_array_equal(post.predict(new, scale=1), large)
    truth = law.mean_loss(new)[:, 0]
    assert np.abs(large.mean(axis=0) - truth).max() < 0.05
    assert np.abs((small - large).mean(axis=0) - 0.3).max() < 0.05
    # each size is read from the same joint draws: per draw, the level moves by level_per_efold * ln 8
    gap = (post.scale_idata[1].posterior["c"] - post.scale_idata[0].posterior["c"]).to_numpy()
    np.testing.assert_allclose(gap, post.idata.posterior["level_per_efold"].to_numpy() * np.log(8.0), rtol=1e-9)
    np.testing.assert_array_equal(
        joint.fit(mixtures, losses, seed=1, scales=scales, n_scales=2, target_scale=1, model_sizes=sizes).predict(new),
        large,
    )


def test_designer_refuses_surrogates_that_do_not_fit_its_scales():
    from bayesmix.design import JointLawFit
    from bayesmix.errors import InputError

    two = [{"model": "s", "model_size": 1e7, "tokens": 1e9}, {"model": "l", "model_size": 8e7, "tokens": 1e9}]
    assert isinstance(Designer(DOMAINS, "a").surrogate, LawFit)
    assert isinstance(Designer(DOMAINS, "a", scales=two).surrogate, BootstrapLaw)
    Designer(DOMAINS, "a", scales=two, surrogate=JointLawFit())
    with pytest.raises(InputError, match="LawFit models one scale"):
        Designer(DOMAINS, "a", scales=two, surrogate=LawFit())
    with pytest.raises(InputError, match="several model sizes"):
        Designer(DOMAINS, "a", surrogate=JointLawFit())
    same_size = [{"model": "s", "model_size": 1e7, "tokens": 1e9}, {"model": "t", "model_size": 1e7, "tokens": 4e9}]
    with pytest.raises(InputError, match="distinct model sizes"):
        Designer(DOMAINS, "a", scales=same_size, surrogate=JointLawFit())


def test_an_excluded_domain_is_left_out_of_the_bayesian_fit(law, monkeypatch):
    # "c" may not be trained on: its share is 0 in every run, which no law can learn from; the
    # Bayesian fit must run on the other domains instead of falling back to the bootstrap
    designer = Designer(DOMAINS, law.domains[0], acquisition="thompson", seed=2, n_initial=8,
                        n_candidates=200, surrogate=SMALL, constraints={"exclude": ["c"]})
    fits = []
    original = LawFit.fit

    def spy(self, mixtures, losses, seed):
        post = original(self, mixtures, losses, seed)
        fits.append((mixtures.shape[1], post.idata is not None))
        return post

    monkeypatch.setattr(LawFit, "fit", spy)
    for _ in range(2):
        for p in designer.ask(4):
            assert p.mixture["c"] == 0.0
            row = np.array([[p.mixture[d] for d in DOMAINS]])
            designer.tell(p.run_id, float(law.mean_loss(row)[0, 0]))
    designer.ask(2)
    assert fits and fits[-1] == (2, True)

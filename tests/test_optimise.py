"""Mixture optimiser: optimum found, constraints exact, clear errors, seeds, P(beats ref)."""

from __future__ import annotations

import ast
import json
import warnings

import numpy as np
import pytest
import yaml

import bayesmix as bm
from bayesmix.data.simulate import random_law, simulate_runs
from bayesmix.errors import InputError
from bayesmix.laws import ImplicitMixingLaw, LinearLaw, MixingLaw
from bayesmix.optimise import (
    LossConstraint,
    Problem,
    critical_proportion,
    dirichlet_search,
    grid_search,
    interleave_snippet,
    optimise,
    simplex_grid,
    to_json,
    to_yaml,
)
from bayesmix.optimise.gradients import finite_difference_jacobian, law_jacobian


@pytest.fixture(scope="module")
def fit3():
    """A small NUTS fit of a known 3-domain law (about 6 s)."""
    law = random_law(3, seed=11, noise_sd=0.01)
    runs = simulate_runs(law, 30, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bm.fit(runs, draws=200, tune=200, chains=2, seed=0, discrepancy=None)


def _known_optimum_idata(fit3):
    """The fit with its draws replaced by ``L_i = c_i + K_i exp(-a_i r_i)`` (closed-form optimum)."""
    idata = fit3.copy()
    post = idata.posterior
    a = np.array([2.0, 3.0, 4.0])
    c = np.array([2.0, 2.5, 1.5])
    log_k = np.log([0.8, 0.6, 1.0])
    m = 3
    t = -np.diag(a) + a[:, None] / m  # zero-sum rows: t_i . (r - ref) = -a_i (r_i - ref_i)
    shape = (post.sizes["chain"], post.sizes["draw"])
    post["c"] = (("chain", "draw", "domain"), np.broadcast_to(c, (*shape, m)).copy())
    post["log_k"] = (("chain", "draw", "domain"), np.broadcast_to(log_k, (*shape, m)).copy())
    post["t"] = (("chain", "draw", "domain", "train_domain"), np.broadcast_to(t, (*shape, m, m)).copy())
    ref = np.asarray(idata.constant_data["reference_mixture"])
    big_k = np.exp(log_k + a * ref)
    weights = np.array([0.5, 0.3, 0.2])
    # KKT: s_i K_i a_i exp(-a_i r_i) = lambda, sum r_i = 1
    log_lambda = ((np.log(weights * big_k * a) / a).sum() - 1) / (1 / a).sum()
    optimum = (np.log(weights * big_k * a) - log_lambda) / a
    return idata, weights, optimum


def test_known_optimum_found(fit3):
    idata, weights, optimum = _known_optimum_idata(fit3)
    assert np.all(optimum > 0.05)
    domains = bm.fitted_spec(idata).domains
    result = optimise(idata, dict(zip(domains, weights, strict=True)))
    np.testing.assert_allclose(result.mixture.to_numpy(), optimum, atol=1e-5)


def test_matches_exhaustive_grid(fit3):
    for target, risk in (("mean", "mean"), ("web", "quantile"), ({"code": 1, "papers": 1}, "cvar")):
        problem = Problem.from_idata(fit3, target, risk=risk, level=0.9, max_draws=400)
        result = optimise(fit3, target, risk=risk, level=0.9, max_draws=400)
        grid = grid_search(problem, 100)
        # the solver is at least as good as the 1/100 grid, and close to its point
        assert result.objective <= grid.objective + 1e-6
        assert np.abs(result.mixture.to_numpy() - grid.mixture.to_numpy()).max() < 0.02


def test_constraints_respected_exactly(fit3):
    result = optimise(
        fit3,
        "mean",
        bounds={"web": (0.1, 0.5)},
        fixed={"papers": 0.25},
        tokens={"code": 1e9},
        max_epochs=2.0,
        target_tokens=5e9,
    )
    r = result.mixture
    assert 0.1 - 1e-12 <= r["web"] <= 0.5 + 1e-12
    assert r["papers"] == pytest.approx(0.25, abs=1e-12)
    assert r["code"] <= 2.0 * 1e9 / 5e9 + 1e-12
    assert r.sum() == pytest.approx(1.0, abs=1e-12)
    excluded = optimise(fit3, "mean", exclude=["web"])
    assert excluded.mixture["web"] == 0.0
    # the grid over the same box agrees (and is never better)
    problem = Problem.from_idata(fit3, "mean", exclude=["web"])
    assert excluded.objective <= grid_search(problem, 200).objective + 1e-9


def test_uncertain_token_counts_give_a_chance_constrained_cap(fit3):
    from scipy.stats import norm

    from bayesmix.optimise.constraints import build_box

    box = build_box(["web", "code"], tokens={"code": 1e9}, max_epochs=2.0, target_tokens=5e9, tokens_sd=0.2, epochs_prob=0.9)
    cap = float(box.upper[1])
    assert cap == pytest.approx(2.0 * 1e9 * np.exp(-0.2 * norm.ppf(0.9)) / 5e9)
    # Monte Carlo: with U ~ LogNormal(ln 1e9, 0.2), r = cap keeps epochs <= 2 in 90% of cases
    available = np.exp(np.log(1e9) + 0.2 * np.random.default_rng(0).standard_normal(200_000))
    assert np.mean(cap * 5e9 / available <= 2.0) == pytest.approx(0.9, abs=0.005)
    # the optimiser respects the tighter cap
    result = optimise(fit3, "mean", tokens={"code": 1e9}, max_epochs=2.0, target_tokens=5e9, tokens_sd={"code": 0.2})
    assert result.mixture["code"] <= cap + 1e-12
    with pytest.raises(InputError, match="tokens_sd"):
        optimise(fit3, "mean", tokens={"code": 1e9}, target_tokens=5e9, tokens_sd={"code": -1.0})
    with pytest.raises(InputError, match="epochs_prob"):
        optimise(fit3, "mean", tokens={"code": 1e9}, target_tokens=5e9, tokens_sd=0.1, epochs_prob=1.0)


def test_infeasible_box_names_binding_constraints(fit3):
    with pytest.raises(InputError, match=r"upper limits sum to 0.5.*web.*exclude.*code.*papers"):
        optimise(fit3, "mean", exclude=["web", "code"], bounds={"papers": (None, 0.5)})
    with pytest.raises(InputError, match=r"lower limits.*web.*code"):
        optimise(fit3, "mean", bounds={"web": (0.6, None)}, fixed={"code": 0.5})
    with pytest.raises(InputError, match=r"tokens\['web'\]"):
        optimise(fit3, "mean", tokens={"web": 1, "code": 1, "papers": 1}, target_tokens=10)
    with pytest.raises(InputError, match="target_tokens"):
        optimise(fit3, "mean", tokens={"web": 1})
    with pytest.raises(InputError, match="unknown training domain"):
        optimise(fit3, "mean", exclude=["nope"])


def test_loss_constraint_met_on_draws_and_checked_by_predict(fit3):
    free = optimise(fit3, "web", max_draws=500)
    web_free = free.summary.loc["code", "mean"]
    # force the code loss below its value at the web-optimal mixture
    constraint = LossConstraint("code", float(web_free) - 0.05, 0.9)
    result = optimise(fit3, "web", loss_constraints=[constraint], max_draws=500)
    assert result.loss_constraints["achieved"].iloc[0] >= 0.9
    draws = bm.predict(fit3, result.mixture.to_dict(), kind="mean", max_draws=500, seed=0)
    assert float((draws.sel(domain="code") <= constraint.threshold).mean()) >= 0.9
    # it costs web loss, and the constrained grid cannot do better
    assert result.summary.loc["web", "mean"] > free.summary.loc["web", "mean"]
    problem = Problem.from_idata(fit3, "web", loss_constraints=[constraint], max_draws=500)
    assert result.objective <= grid_search(problem, 100).objective + 1e-6


def test_unreachable_loss_constraint_is_a_clear_error(fit3):
    with pytest.raises(InputError, match=r"P\(code <= 1\) >= 0.9.*unreachable even alone"):
        optimise(fit3, "mean", loss_constraints=[LossConstraint("code", 1.0, 0.9)], max_draws=200)
    with pytest.raises(InputError, match="unknown domain"):
        optimise(fit3, "mean", loss_constraints=[LossConstraint("nope", 1.0, 0.9)])


def test_p_beats_reference_matches_monte_carlo(fit3):
    result = optimise(fit3, "web", reference={"web": 0.6, "code": 0.2, "papers": 0.2}, max_draws=None)
    draws = bm.predict(fit3, [result.mixture.to_dict(), {"web": 0.6, "code": 0.2, "papers": 0.2}], kind="mean")
    web = draws.sel(domain="web").to_numpy()
    assert result.p_beats_reference == pytest.approx(float(np.mean(web[:, 0] < web[:, 1])), abs=1e-12)
    assert 0.5 < result.p_beats_reference <= 1.0
    # the default reference is the fit's mean mixture of the runs
    default = optimise(fit3, "web", max_draws=100)
    np.testing.assert_allclose(default.reference.to_numpy(), fit3.constant_data["reference_mixture"].to_numpy())


def test_deterministic_under_seed(fit3):
    a = optimise(fit3, "mean", risk="cvar", max_draws=150, seed=3)
    b = optimise(fit3, "mean", risk="cvar", max_draws=150, seed=3)
    np.testing.assert_array_equal(a.mixture.to_numpy(), b.mixture.to_numpy())
    assert a.p_beats_reference == b.p_beats_reference


def test_user_function_target_matches_weighted_sum(fit3):
    weighted = optimise(fit3, {"web": 2.0, "code": 1.0}, max_draws=200)
    function = optimise(fit3, lambda losses: (2 * losses[..., 0] + losses[..., 1]) / 3, max_draws=200)
    np.testing.assert_allclose(weighted.mixture.to_numpy(), function.mixture.to_numpy(), atol=1e-4)
    with pytest.raises(InputError, match="target"):
        optimise(fit3, lambda losses: losses)


def test_pull_toward_prior(fit3):
    prior = {"web": 0.2, "code": 0.2, "papers": 0.6}
    strong = optimise(fit3, "mean", prior_mixture=prior, pull=1e4, max_draws=100)
    np.testing.assert_allclose(strong.mixture.to_numpy(), [0.2, 0.2, 0.6], atol=1e-3)
    with pytest.raises(InputError, match="prior_mixture"):
        optimise(fit3, "mean", pull=1.0)


@pytest.mark.parametrize(
    ("law", "params"),
    [
        (MixingLaw(), {"c": (5, 4), "log_k": (5, 4), "t": (5, 4, 4)}),
        (MixingLaw(exponent=0.5), {"c": (5, 4), "log_k": (5, 4), "t": (5, 4, 4)}),
        (ImplicitMixingLaw(3, exponent=0.7), {"b": (5, 2), "log_w": (5, 2, 3), "t": (5, 2, 3, 4)}),
        (LinearLaw(), {"a": (5, 4), "beta": (5, 4, 4)}),
    ],
)
def test_analytic_gradients_match_finite_differences(law, params):
    rng = np.random.default_rng(0)
    values = {k: rng.normal(0, 0.5, size=s) for k, s in params.items()}
    values["reference_mixture"] = np.full(4, 0.25)
    values["exponent"] = float(law.options().get("exponent", 1.0))
    r = np.array([0.1, 0.2, 0.3, 0.4])
    value, jac = law_jacobian(law, values, r)
    fd_value, fd_jac = finite_difference_jacobian(law, values, r)
    np.testing.assert_allclose(value, fd_value, rtol=1e-10)
    np.testing.assert_allclose(jac, fd_jac, rtol=1e-4, atol=1e-5)


def test_export_formats(fit3):
    result = optimise(fit3, "mean", max_draws=100)
    shares = json.loads(to_json(result.mixture))
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-12)
    assert yaml.safe_load(to_yaml(result.mixture))["mixture"] == shares
    snippet = interleave_snippet(result.mixture, seed=7)
    ast.parse(snippet)
    assert "probabilities=probabilities" in snippet and "seed=7" in snippet
    assert json.loads(json.dumps(result.to_dict()))["p_beats_reference"] == pytest.approx(result.p_beats_reference)


def test_search_baselines(fit3):
    assert simplex_grid(3, 4).shape == (15, 3)
    np.testing.assert_allclose(simplex_grid(17, 2).sum(axis=1), 1.0)
    problem = Problem.from_idata(fit3, "mean", max_draws=100)
    found = dirichlet_search(problem, n=5000, top=16, seed=1)
    assert found.mixture.sum() == pytest.approx(1.0)
    assert found.objective >= optimise(fit3, "mean", max_draws=100).objective - 1e-9


def test_critical_proportion(fit3):
    losses = bm.predict(fit3, {"web": 1.0}, kind="mean").sel(domain="web")
    threshold = float(np.quantile(losses, 0.95)) + 0.05
    found = critical_proportion(fit3, "web", "code", threshold, prob=0.9, max_draws=None)
    assert found.feasible and 0 < found.share < 1
    assert found.probability >= 0.9
    beyond = bm.predict(fit3, {"web": 1 - found.share - 1e-3, "code": found.share + 1e-3}, kind="mean")
    assert float((beyond.sel(domain="web") <= threshold).mean()) < 0.9
    tight = critical_proportion(fit3, "web", "code", 0.0, prob=0.9)
    assert not tight.feasible and tight.share == 0.0


def test_critical_proportion_posterior_interval_holds_the_truth(fit3):
    law = random_law(3, seed=11, noise_sd=0.01)  # the law fit3 was fitted to
    shares = np.linspace(0, 1, 2001)
    segment = np.outer(1 - shares, [1.0, 0.0, 0.0]) + np.outer(shares, [0.0, 1.0, 0.0])  # web -> code
    truth_loss = law.mean_loss(segment)[:, law.domains.index("web")]
    threshold = float(truth_loss[0] + 0.3 * (truth_loss[-1] - truth_loss[0]))
    true_share = float(shares[np.argmax(truth_loss > threshold)])
    found = critical_proportion(fit3, "web", "code", threshold, prob=0.9, max_draws=None, level=0.8)
    assert found.interval[0] <= true_share <= found.interval[1]
    assert found.interval[0] <= found.posterior_share <= found.interval[1]
    # the chance-constrained share is the share 90% of the draws keep safe: the 10% quantile
    assert found.share == pytest.approx(found.interval[0], abs=0.01)
    with pytest.raises(InputError, match="level"):
        critical_proportion(fit3, "web", "code", threshold, level=1.5)


def test_implicit_total_target_matches_grid(fit3):
    """An implicit-aggregation fit (hand-built draws): its modelled column is a valid target."""
    idata = fit3.copy()
    spec = json.loads(idata.posterior.attrs["bayesmix_spec"])
    spec["law"] = ImplicitMixingLaw(2, exponent=1.0).spec()
    spec["domains"] = ["total"]
    post = idata.posterior.drop_vars(list(idata.posterior.data_vars))
    post = post.drop_dims([d for d in post.dims if d not in ("chain", "draw")])
    rng = np.random.default_rng(5)
    shape = (post.sizes["chain"], post.sizes["draw"])
    t = np.array([[2.0, -1.0, -1.0], [-1.5, 0.5, 1.0]])  # two implicit domains pulling apart
    post["b"] = (("chain", "draw", "domain"), np.full((*shape, 1), 2.0))
    post["log_w"] = (("chain", "draw", "domain", "component"), np.log(np.full((*shape, 1, 2), 0.4)))
    post["t"] = (
        ("chain", "draw", "domain", "component", "train_domain"),
        (t + rng.normal(0, 0.1, size=(*shape, 1, 2, 3))),
    )
    post = post.assign_coords(domain=["total"], component=[0, 1], train_domain=["web", "code", "papers"])
    post.attrs["bayesmix_spec"] = json.dumps(spec)
    idata.posterior = post
    result = optimise(idata, "total", max_draws=200)
    grid = grid_search(Problem.from_idata(idata, "total", max_draws=200), 100)
    assert result.objective <= grid.objective + 1e-6
    assert np.abs(result.mixture.to_numpy() - grid.mixture.to_numpy()).max() < 0.02
    assert result.mixture["web"] > 0.05 and result.mixture["code"] > 0.05  # an edge, not a vertex


def test_review_fixes_token_uncertainty_needs_a_cap_and_critical_domains(fit3):
    from bayesmix.optimise.constraints import build_box

    with pytest.raises(InputError, match="max_epochs=4"):
        build_box(["web", "code"], tokens={"code": 1e9}, max_epochs=None, target_tokens=5e9, tokens_sd=0.2)
    with pytest.raises(InputError) as err:
        critical_proportion(fit3, "web", "web", 3.0)
    assert err.value.field == "new"
    with pytest.raises(InputError) as err:
        critical_proportion(fit3, "wb", "code", 3.0)
    assert err.value.field == "original"

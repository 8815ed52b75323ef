"""Active learning: acquisitions, initial design, the ask/tell designer and its state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bayesmix.data.simulate import random_law
from bayesmix.design import (
    BootstrapLaw,
    Designer,
    batch_value,
    compute_cost,
    condition_on,
    cost_aware,
    expected_improvement,
    integrated_variance_reduction,
    optimum_probability,
    space_filling,
    stopping_report,
    thompson,
)
from bayesmix.errors import IncompatibleFileError, InputError
from bayesmix.optimise import build_box

DOMAINS = ["a", "b", "c", "d"]
FAST = BootstrapLaw(n_boot=8, n_inits=2)


def law_loss(law, mixture: dict[str, float]) -> dict[str, float]:
    row = np.array([[mixture[d] for d in DOMAINS]])
    return dict(zip(law.domains, law.mean_loss(row)[0].tolist(), strict=True))


@pytest.fixture(scope="module")
def law():
    return random_law(len(DOMAINS), seed=3, domains=DOMAINS, noise_sd=0.01)


def run_loop(designer: Designer, law, rounds: int, batch: int) -> None:
    for _ in range(rounds):
        for p in designer.ask(batch):
            designer.tell(p.run_id, law_loss(law, p.mixture))


# ---------------------------------------------------------------- acquisitions on hand-made draws
def test_ei_zero_where_no_draw_improves():
    draws = np.array([[1.0, 2.0, 0.5], [1.2, 2.5, 0.7], [0.8, 3.0, 1.1]])
    ei = expected_improvement(draws, best=0.9)
    assert ei[1] == 0.0  # candidate 1 never beats 0.9
    assert ei[0] == pytest.approx(0.1 / 3)
    assert ei[2] == pytest.approx((0.4 + 0.2) / 3)
    assert np.argmax(ei) == 2


def test_thompson_picks_the_optimum_of_one_draw():
    draws = np.array([[3.0, 1.0, 2.0], [1.0, 3.0, 2.0]])
    picks = {int(np.argmax(thompson(draws, np.random.default_rng(s)))) for s in range(20)}
    assert picks == {0, 1}  # each draw's optimum, never candidate 2
    assert optimum_probability(draws).tolist() == [0.5, 0.5, 0.0]


def test_ivr_prefers_points_correlated_with_the_optimum():
    rng = np.random.default_rng(0)
    z = rng.normal(size=200)
    # candidate 0 is (nearly) always best; 1 moves with it; 2 is independent noise of the same size
    draws = np.c_[z * 0.1, 1.0 + z * 0.1, 1.0 + rng.normal(size=200) * 0.1]
    ivr = integrated_variance_reduction(draws, noise_var=1e-4)
    assert ivr[2] < 0.1 * ivr[1]
    assert ivr[0] > 0
    assert np.all(integrated_variance_reduction(np.ones((5, 3)), noise_var=0.01) == 0)


def test_cost_aware_divides_by_6nd():
    cost = compute_cost(np.array([1e6, 1e7]), np.array([1e9, 1e9]))
    assert cost.tolist() == [6e15, 6e16]
    assert cost_aware(np.array([1.0, 1.0]), cost)[0] == pytest.approx(10 * cost_aware([1.0, 1.0], cost)[1])
    with pytest.raises(InputError):
        cost_aware([1.0], [0.0])


def test_fantasy_shrinks_variance_at_the_pending_point():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(400, 1))
    draws = np.c_[z, z + 0.01 * rng.normal(size=(400, 1)), rng.normal(size=(400, 1))]
    after = condition_on(draws, 0, noise_var=1e-4, rng=rng)
    assert after[:, 0].std() < 0.05 * draws[:, 0].std()
    assert after[:, 1].std() < 0.1 * draws[:, 1].std()  # a correlated point learns too
    assert after[:, 2].std() > 0.8 * draws[:, 2].std()  # an independent one does not
    assert after[:, 0].mean() == pytest.approx(draws[:, 0].mean(), abs=0.02)


def test_batch_value_and_stopping_report():
    draws = np.array([[1.0, 0.5], [1.0, 1.5]])
    assert batch_value(draws, 0, [1]) == pytest.approx(0.25)
    assert batch_value(draws, 0, []) == 0.0
    assert stopping_report([]) is None


def test_stopping_report_weighs_the_next_batch_against_its_compute():
    from bayesmix.design.stopping import Snapshot

    before = Snapshot(10, [0.5, 0.5], 3.0, 0.05, 0.4, 0.02, batch_cost=4.0)
    now = Snapshot(14, [0.45, 0.55], 2.99, 0.04, 0.5, 0.004, batch_cost=4.0)
    report = stopping_report([before, now], min_value_per_compute=2e-3)
    assert report.value_per_compute == pytest.approx(0.001)
    assert report.worth_next_batch is False and report.stop  # not settled, but not worth it
    cheap = stopping_report([before, now], min_value_per_compute=5e-4)
    assert cheap.worth_next_batch is True and not cheap.stop
    unjudged = stopping_report([before, now])
    assert unjudged.worth_next_batch is None and not unjudged.stop
    old = Snapshot(10, [0.5, 0.5], 3.0, 0.05, 0.4, 0.02)  # a state saved before costs were recorded
    assert stopping_report([old], min_value_per_compute=1.0).worth_next_batch is None


# ---------------------------------------------------------------- initial design
def test_space_filling_respects_constraints_and_spreads():
    box = build_box(DOMAINS, bounds={"a": (0.1, 0.5)}, exclude=["d"])
    design = space_filling(12, box, np.random.default_rng(0))
    assert box.contains(design).all()
    assert np.all(design[:, 3] == 0)
    dist = np.sqrt(((design[:, None] - design[None]) ** 2).sum(-1))
    assert dist[np.triu_indices(12, 1)].min() > 0.05
    no_zero = space_filling(12, box, np.random.default_rng(0), zero_weight=0.0)
    assert np.all(no_zero[:, :3] > 0)  # down-weighting 0 never zeroes an allowed domain
    again = space_filling(12, box, np.random.default_rng(0))
    assert np.array_equal(design, again)


# ---------------------------------------------------------------- designer
@pytest.mark.parametrize("acquisition", ["thompson", "ei", "ivr"])
def test_ask_is_feasible_and_never_duplicates_pending(law, acquisition):
    constraints = {"bounds": {"a": (0.05, 0.6)}, "exclude": ["c"]}
    designer = Designer(
        DOMAINS, law.domains[0], acquisition=acquisition, seed=1, constraints=constraints,
        n_initial=8, n_candidates=300, surrogate=FAST,
    )
    run_loop(designer, law, rounds=1, batch=8)
    first = designer.ask(4)
    second = designer.ask(4)  # the first batch is still pending
    box = build_box(DOMAINS, **constraints)
    mix = np.array([[p.mixture[d] for d in DOMAINS] for p in first + second])
    assert box.contains(mix).all()
    dist = np.sqrt(((mix[:, None] - mix[None]) ** 2).sum(-1))
    assert dist[np.triu_indices(len(mix), 1)].min() >= designer.min_distance
    done = np.array([r["mixture"] for r in designer.runs.values() if r["status"] == "done"])
    assert np.sqrt(((mix[:, None] - done[None]) ** 2).sum(-1)).min() >= designer.min_distance
    assert len(designer.pending) == 8
    report = designer.report()
    assert report is not None and report.loss_sd >= 0 and 0 <= report.prob_best <= 1
    assert designer.history[-1].batch_cost == 4.0  # one unit per run without scales
    assert report.value_per_compute == pytest.approx(report.value_next_batch / 4.0)


def test_pool_designer_proposes_unused_pool_points(law):
    pool = np.random.default_rng(0).dirichlet(np.ones(4), size=60)
    designer = Designer(DOMAINS, law.domains[0], acquisition="ei", pool=pool, n_initial=6, surrogate=FAST)
    run_loop(designer, law, rounds=3, batch=6)
    mix = np.array([r["mixture"] for r in designer.runs.values()])
    assert len({tuple(np.round(m, 12)) for m in mix}) == 18
    assert all(np.abs(pool - m).sum(1).min() < 1e-12 for m in mix)


def test_tell_with_bad_ids_or_losses_fails_clearly(law):
    designer = Designer(DOMAINS, {"x": 0.5, "y": 0.5}, n_initial=4, surrogate=FAST)
    (p,) = designer.ask(1)
    with pytest.raises(InputError, match="unknown run 'nope'"):
        designer.tell("nope", {"x": 1.0, "y": 1.0})
    with pytest.raises(InputError, match="lacks target domains"):
        designer.tell(p.run_id, {"x": 1.0})
    with pytest.raises(InputError, match="non-finite or non-positive"):
        designer.tell(p.run_id, {"x": float("nan"), "y": 1.0})
    with pytest.raises(InputError, match="non-finite or non-positive"):
        designer.tell(p.run_id, {"x": -1.0, "y": 1.0})
    with pytest.raises(InputError, match="give numbers"):
        designer.tell(p.run_id, {"x": "high", "y": 1.0})
    with pytest.raises(InputError, match="bare number"):
        designer.tell(p.run_id, 2.0)
    assert designer.pending == [p.run_id]  # nothing recorded by the failed calls
    designer.tell(p.run_id, {"x": 2.0, "y": 3.0})
    assert designer.runs[p.run_id]["target"] == pytest.approx(2.5)
    with pytest.raises(InputError, match="already done"):
        designer.tell(p.run_id, {"x": 2.0, "y": 3.0})
    (q,) = designer.ask(1)
    designer.failed(q.run_id)
    with pytest.raises(InputError, match="already failed"):
        designer.tell(q.run_id, {"x": 2.0, "y": 3.0})
    with pytest.raises(InputError, match="unknown run"):
        designer.failed("run-99999")
    with pytest.raises(InputError):
        Designer(DOMAINS, "x", acquisition="greedy")


def test_saved_designer_resumes_to_the_same_proposal(law, tmp_path):
    designer = Designer(DOMAINS, law.domains[0], acquisition="thompson", seed=7, n_initial=8,
                        n_candidates=300, surrogate=FAST, constraints={"exclude": ["b"]})
    run_loop(designer, law, rounds=2, batch=5)
    designer.ask(2)  # leave two pending
    designer.failed(designer.pending[0])
    path = tmp_path / "design.json"
    designer.save(path)
    json.loads(path.read_text())  # plain JSON
    resumed = Designer.load(path)
    a, b = designer.ask(3), resumed.ask(3)
    assert [p.run_id for p in a] == [p.run_id for p in b]
    assert [p.mixture for p in a] == [p.mixture for p in b]
    assert resumed.report() == designer.report()
    path.write_text("{not json")
    with pytest.raises(IncompatibleFileError):
        Designer.load(path)


def test_rebuilt_from_runtable_and_finds_a_good_mixture(law):
    designer = Designer(DOMAINS, law.domains[0], acquisition="ei", seed=0, n_initial=8,
                        n_candidates=400, surrogate=FAST)
    run_loop(designer, law, rounds=4, batch=4)
    table = designer.finished_table()
    rebuilt = Designer.from_runs(table, law.domains[0], acquisition="ei", seed=0, n_initial=8,
                                 n_candidates=400, surrogate=FAST)
    assert len(rebuilt.runs) == 16 and not rebuilt.pending
    rebuilt.ask(2)
    rec = np.array([rebuilt.recommendation()[d] for d in DOMAINS])
    grid = np.random.default_rng(5).dirichlet(np.ones(4), size=4000)
    losses = law.mean_loss(grid)[:, 0]
    achieved = law.mean_loss(rec[None])[0, 0]
    assert achieved <= np.quantile(losses, 0.1)  # in the best 10% of random mixtures

"""Active learning with model size and tokens, cost-aware asks, the ledger, and damaged state files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bayesmix.data.ledger import Ledger, RunRecord
from bayesmix.data.simulate import random_law
from bayesmix.design import BootstrapLaw, Designer, LawFit, Proposal, score_pairs, transfer_correlation
from bayesmix.design.designer import STATE_VERSION, parse_scales
from bayesmix.errors import IncompatibleFileError, InputError
from bayesmix.optimise import build_box

DOMAINS = ["a", "b", "c", "d"]
FAST = BootstrapLaw(n_boot=8, n_inits=2)
# the small scale costs 10x less (6 N D) than the target scale
SCALES = [
    {"model": "small", "model_size": 1e5, "tokens": 1e6},
    {"model": "big", "model_size": 1e6, "tokens": 1e6},
]
OFFSET = 0.5  # the small scale's loss is the target's plus this (an informative proxy)


@pytest.fixture(scope="module")
def law():
    return random_law(len(DOMAINS), seed=3, domains=DOMAINS, noise_sd=0.0)


def true_loss(law, mixture, scale: str | None) -> float:
    row = np.array([[mixture[d] for d in DOMAINS]]) if isinstance(mixture, dict) else np.atleast_2d(mixture)
    return float(law.mean_loss(row)[0, 0]) + (OFFSET if scale == "small" else 0.0)


def seeded(designer: Designer, law, n_small: int, n_big: int, seed: int = 5) -> Designer:
    mixtures = np.random.default_rng(seed).dirichlet(np.ones(len(DOMAINS)), size=n_small + n_big)
    for i, row in enumerate(mixtures):
        scale = "small" if i < n_small else "big"
        designer.add(f"x{i}", row, {"a": true_loss(law, row, scale)}, scale=scale)
    return designer


def mixture_rows(proposals: list[Proposal]) -> np.ndarray:
    return np.array([[p.mixture[d] for d in DOMAINS] for p in proposals])


# ---------------------------------------------------------------- acquisitions of (mixture, scale) pairs
def test_pair_scores_value_what_a_run_teaches_about_the_target():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 2))
    target = np.c_[1.0 + 0.1 * z[:, 0], 1.2 + 0.1 * z[:, 1]]  # mixture 0 is the better one
    proxy = np.c_[target[:, 0] + 0.5, 1.7 - 0.1 * z[:, 1]]  # informs mixture 0; mixture 1 backwards
    rho = transfer_correlation(np.c_[target, proxy], np.c_[target, target])
    assert rho[:2].tolist() == [1.0, 1.0] and rho[2] > 0.99 and rho[3] == 0.0
    draws, mixture_of = np.c_[target, proxy], np.array([0, 1, 0, 1])
    for name in ("ei", "thompson"):
        plain = score_pairs(name, draws, target, mixture_of, rng=np.random.default_rng(1), best=1.1, noise_var=1e-4)
        assert plain[0] >= plain[2] and plain[3] == 0.0  # a proxy run never beats its mixture at the target
        cheap = score_pairs(name, draws, target, mixture_of, rng=np.random.default_rng(1), best=1.1,
                            noise_var=1e-4, cost=np.array([10.0, 10.0, 1.0, 1.0]))
        assert int(np.argmax(cheap)) == 2  # ... until it is 10x cheaper
    ivr = score_pairs("ivr", draws, target, mixture_of, rng=rng, best=1.1, noise_var=1e-4)
    assert ivr[2] > 0.5 * ivr[0] and ivr[2] > 10 * ivr[1]


# ---------------------------------------------------------------- scales and proposals
def test_scales_are_parsed_and_checked():
    scales = parse_scales([(1e5, 1e6), {"model": "s", "model_size": 2e5, "tokens": 1e6}])
    assert scales[0].name == "N1e+05-D1e+06" and scales[1].name == "s"
    assert scales[1].cost == pytest.approx(6 * 2e5 * 1e6)
    for bad in ([(1e5, -1.0)], [{"model": "s", "model_size": 1e5}], [(1, 2), (1, 2)], "big", [], [(1e5,)]):
        with pytest.raises(InputError):
            parse_scales(bad)
    with pytest.raises(InputError, match="cost_aware"):
        Designer(DOMAINS, "a", cost_aware=True)
    with pytest.raises(InputError, match="unknown scale 'huge'"):
        Designer(DOMAINS, "a", scales=SCALES, target_scale="huge")
    with pytest.raises(InputError, match="BootstrapLaw"):
        Designer(DOMAINS, "a", scales=SCALES, surrogate=LawFit())
    with pytest.raises(InputError, match="target_tokens"):
        Designer(DOMAINS, "a", scales=SCALES, constraints={"tokens": {"a": 1e6}, "target_tokens": 1e6})
    designer = Designer(DOMAINS, "a", scales=SCALES, acquisition="ei_per_cost")
    assert designer.acquisition == "ei" and designer.cost_aware
    assert designer.scales[designer.target_scale].name == "big"  # default: the largest 6ND
    assert designer.scales[designer.initial_scale].name == "small"  # cost-aware starts cheap


def test_scaled_proposals_carry_model_and_respect_each_scales_token_caps(law):
    # 'a' has 3e5 tokens: the 3e6-token big runs may use at most 10% of it, the small runs 30%
    scales = [{"model": "small", "model_size": 1e5, "tokens": 1e6}, {"model": "big", "model_size": 1e5, "tokens": 3e6}]
    constraints = {"tokens": {"a": 3e5}, "exclude": ["c"]}
    designer = Designer(DOMAINS, "a", acquisition="ivr", seed=4, scales=scales, cost_aware=True,
                        constraints=constraints, n_initial=6, n_candidates=300, surrogate=FAST)
    first = designer.ask(6)
    assert {p.model for p in first} == {"small"}  # the space-filling phase runs at the cheap scale
    for p in first:
        designer.tell(p.run_id, {"a": true_loss(law, p.mixture, p.model)})
    batch = designer.ask(5) + designer.ask(5)  # the second ask sees the first as pending
    boxes = {s["model"]: build_box(DOMAINS, tokens={"a": 3e5}, exclude=["c"], target_tokens=s["tokens"])
             for s in scales}
    for p in first + batch:
        assert p.model in boxes and p.tokens == {"small": 1e6, "big": 3e6}[p.model] and p.model_size == 1e5
        row = mixture_rows([p])
        assert boxes[p.model].contains(row).all() and boxes["big"].contains(row).all()
    every = first + batch
    rows = mixture_rows(every)
    for i in range(len(every)):
        for j in range(i):
            if every[i].model == every[j].model:  # never a duplicate (mixture, scale) pair
                assert np.linalg.norm(rows[i] - rows[j]) >= designer.min_distance
    assert len(designer.pending) == 10
    assert designer.compute_spent() == pytest.approx(6 * 6 * 1e5 * 1e6)
    plain = Designer(DOMAINS, "a", n_initial=2, surrogate=FAST).ask(1)[0]
    assert plain.model is None and plain.model_size is None and plain.tokens is None


@pytest.mark.parametrize("acquisition", ["ei", "ivr", "thompson"])
def test_cost_aware_ask_buys_the_cheap_informative_scale(law, acquisition):
    counts = {}
    for cost_aware in (False, True):
        designer = Designer(DOMAINS, "a", acquisition=acquisition, seed=2, scales=SCALES, cost_aware=cost_aware,
                            n_initial=8, n_candidates=300, surrogate=FAST)
        seeded(designer, law, n_small=8, n_big=4)
        proposals = designer.ask(6) + designer.ask(4)
        counts[cost_aware] = sum(p.model == "small" for p in proposals)
        done = [r for r in designer.runs.values() if r["status"] == "done"]
        for p in proposals:  # no pair duplicates a finished run at the same scale
            row = mixture_rows([p])[0]
            assert all(np.linalg.norm(row - r["mixture"]) >= designer.min_distance
                       for r in done if r["scale"] == p.model)
    assert counts[True] >= 7  # of 10
    assert counts[True] > counts[False]


def test_multiscale_surrogate_learns_the_offset_and_keeps_doubt_without_target_runs(law):
    rng = np.random.default_rng(0)
    mixtures = rng.dirichlet(np.ones(4), size=20)
    target = law.mean_loss(mixtures)[:, 0]
    scales = np.r_[np.zeros(14, int), np.ones(6, int)]  # 14 at the proxy scale 0, 6 at the target 1
    y = target + OFFSET * (scales == 0)
    surrogate = BootstrapLaw(n_boot=16, n_inits=2, exponent=1.0)  # the truth's features: a well-specified law
    post = surrogate.fit(mixtures, y, seed=1, scales=scales, n_scales=2, target_scale=1)
    grid = rng.dirichlet(np.ones(4), size=300)
    proxy, tgt = post.predict(grid, scale=0), post.predict(grid)
    assert np.allclose(tgt, post.predict(grid, scale=1), rtol=0, atol=1e-12)
    assert np.mean(proxy - tgt) == pytest.approx(OFFSET, abs=0.05)
    truth = law.mean_loss(grid)[:, 0]
    assert np.corrcoef(tgt.mean(axis=0), truth)[0, 1] > 0.8
    # no target-scale run: the fit still works, and the target carries the prior's doubt
    only_proxy = surrogate.fit(mixtures[:14], y[:14], seed=1, scales=scales[:14], n_scales=2, target_scale=1)
    assert np.isfinite(only_proxy.predict(grid)).all()
    assert only_proxy.predict(grid).std(axis=0).mean() > post.predict(grid).std(axis=0).mean()
    with pytest.raises(InputError):
        surrogate.fit(mixtures, y, seed=1, scales=scales[:5], n_scales=2)


def test_scaled_designer_resumes_to_the_same_proposal(law, tmp_path):
    designer = Designer(DOMAINS, "a", acquisition="thompson_per_cost", seed=3, scales=SCALES, n_initial=6,
                        n_candidates=200, surrogate=FAST)
    for _ in range(2):
        for p in designer.ask(4):
            designer.tell(p.run_id, {"a": true_loss(law, p.mixture, p.model)})
    designer.ask(2)
    designer.save(tmp_path / "d.json")
    resumed = Designer.load(tmp_path / "d.json")
    assert resumed.scales == designer.scales and resumed.cost_aware
    assert resumed.ask(3) == designer.ask(3)
    assert resumed.report() == designer.report()


def test_explore_share_fills_the_space_after_the_initial_phase(law):
    nearest = {}
    for explore in (0.0, 1.0):
        designer = Designer(DOMAINS, "a", acquisition="ei", seed=0, n_initial=8, n_candidates=300, surrogate=FAST,
                            explore=explore)
        mixtures = np.random.default_rng(1).dirichlet(np.ones(4), size=8)
        for i, row in enumerate(mixtures):
            designer.add(f"x{i}", row, {"a": true_loss(law, row, None)})
        rows = mixture_rows(designer.ask(4))
        taken = np.vstack([mixtures, rows])
        dist = np.sqrt(((rows[:, None] - taken[None]) ** 2).sum(-1))
        dist[np.arange(4), 8 + np.arange(4)] = np.inf  # not to itself
        nearest[explore] = dist.min(axis=1).mean()
    assert nearest[1.0] > 1.5 * nearest[0.0]  # EI buys near the optimum, exploring picks fill the gaps
    for bad in (1.5, -0.1, "some"):
        with pytest.raises(InputError, match="explore"):
            Designer(DOMAINS, "a", explore=bad)


# ---------------------------------------------------------------- rebuild from the ledger
def add_run(ledger: Ledger, run_id: str, mixture: dict, model: str, size: int, status: str, tokens: int = 10**6):
    ledger.add_run(RunRecord(run_id, mixture, model, {}, {}, size, size + 1000, 6.0 * size, tokens, 0, "c", "t"))
    if status != "planned":
        ledger.set_status(run_id, status)


def test_rebuilt_from_the_ledger(law, tmp_path):
    path = tmp_path / "study.sqlite"
    ledger = Ledger(path)
    rng = np.random.default_rng(1)
    finished = {}
    for i in range(8):
        mixture = dict(zip(DOMAINS, rng.dirichlet(np.ones(4)).tolist(), strict=True))
        model, size = ("small", 10**5) if i < 6 else ("big", 10**6)
        add_run(ledger, f"r{i}", mixture, model, size, "finished")
        loss = true_loss(law, mixture, model)
        ledger.record_eval(f"r{i}", 10, 5 * 10**5, {"a": (loss + 1.0, 1.0), "b": (9.0, 1.0)})  # an early checkpoint
        ledger.record_eval(f"r{i}", 20, 10**6, {"a": (loss, 1.0), "b": (8.0, 1.0)})  # the final one
        finished[f"r{i}"] = loss
    add_run(ledger, "p-planned", {"a": 0.5, "b": 0.5}, "small", 10**5, "planned")
    add_run(ledger, "p-running", {"c": 1.0}, "big", 10**6, "running")
    add_run(ledger, "p-failed", {"d": 1.0}, "small", 10**5, "failed")

    designer = Designer.from_ledger(path, "a", acquisition="ei", cost_aware=True, n_initial=4,
                                    n_candidates=200, surrogate=FAST, seed=0)
    assert [s.name for s in designer.scales] == ["big", "small"]
    assert designer.scales[designer.target_scale].name == "big"
    assert designer.scales[0].model_size == 10**6 and designer.scales[0].tokens == 10**6
    for run_id, loss in finished.items():
        assert designer.runs[run_id]["status"] == "done"
        assert designer.runs[run_id]["target"] == pytest.approx(loss)  # the last checkpoint's loss
    assert designer.runs["r7"]["scale"] == "big" and designer.runs["r0"]["scale"] == "small"
    assert sorted(designer.pending) == ["p-planned", "p-running"]
    assert designer.runs["p-failed"]["status"] == "failed"
    assert designer.runs["p-running"]["mixture"] == [0.0, 0.0, 1.0, 0.0]
    proposals = designer.ask(6)
    pending = {"small": np.array([0.5, 0.5, 0, 0]), "big": np.array([0, 0, 1.0, 0])}
    for p in proposals:
        assert np.linalg.norm(mixture_rows([p])[0] - pending[p.model]) >= designer.min_distance
    designer.tell("p-running", {"a": 3.0})  # ledger ids are the designer's ids
    with pytest.raises(InputError, match="already failed"):
        designer.tell("p-failed", {"a": 3.0})

    single = Designer.from_ledger(Ledger(path), "a", scales=[{"model": "small", "model_size": 1e5, "tokens": 1e6},
                                                             {"model": "big", "model_size": 1e6, "tokens": 1e6}],
                                  target_scale="big")
    assert single.runs["r3"]["scale"] == "small"
    with pytest.raises(InputError, match="not among"):
        Designer.from_ledger(path, "a", scales=[{"model": "big", "model_size": 1e6, "tokens": 1e6}])
    add_run(ledger, "no-evals", {"a": 1.0}, "small", 10**5, "finished")
    with pytest.raises(InputError, match=r"no-evals.*no evaluation"):
        Designer.from_ledger(path, "a")
    with pytest.raises(InputError, match="not a file"):
        Designer.from_ledger(tmp_path / "missing.sqlite", "a")
    assert not (tmp_path / "missing.sqlite").exists()


# ---------------------------------------------------------------- damaged, foreign and edited state files
@pytest.fixture()
def saved(law, tmp_path):
    designer = Designer(DOMAINS, "a", acquisition="ei", seed=1, scales=SCALES, n_initial=4, n_candidates=200,
                        surrogate=FAST, constraints={"exclude": ["d"]})
    for p in designer.ask(4):
        designer.tell(p.run_id, {"a": true_loss(law, p.mixture, p.model)})
    designer.ask(1)
    path = tmp_path / "design.json"
    designer.save(path)
    return path


def edit(path, change) -> None:
    state = json.loads(path.read_text())
    change(state)
    path.write_text(json.dumps(state))


def test_damaged_or_foreign_state_files_are_refused(saved):
    text = saved.read_text()
    saved.write_text(text[: len(text) // 2])
    with pytest.raises(IncompatibleFileError, match=r"not valid JSON, it may be truncated.*Fix: restore"):
        Designer.load(saved)
    saved.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(IncompatibleFileError, match="binary"):
        Designer.load(saved)
    saved.write_text("[1, 2, 3]")
    with pytest.raises(IncompatibleFileError, match="JSON list, not a designer state"):
        Designer.load(saved)
    saved.write_text(json.dumps({"kind": "bayesmix.fit", "version": 2}))
    with pytest.raises(IncompatibleFileError, match="not a designer state file"):
        Designer.load(saved)
    saved.write_text(text)
    edit(saved, lambda s: s.update(version=STATE_VERSION + 1))
    with pytest.raises(IncompatibleFileError, match=f"version: is {STATE_VERSION + 1}.*Fix: open it with"):
        Designer.load(saved, verify=False)
    with pytest.raises(InputError, match="does not exist"):
        Designer.load(saved.parent / "nope.json")


def test_edited_state_files_are_refused_with_the_field_named(saved):
    text = saved.read_text()
    run_id = next(iter(json.loads(text)["runs"]))

    def set_mixture(state):
        state["runs"][run_id]["mixture"] = [0.9, 0.9, 0.0, 0.0]

    edit(saved, set_mixture)
    with pytest.raises(IncompatibleFileError, match=r"sha256: does not match.*verify=False"):
        Designer.load(saved)
    with pytest.raises(IncompatibleFileError, match=rf"runs\['{run_id}'\].mixture.*not a mixture on the simplex"):
        Designer.load(saved, verify=False)

    cases = {
        "unknown training domain 'zzz'": lambda s: s["constraints"].update(exclude=["zzz"]),
        r"\.scale: unknown scale 'huge'": lambda s: s["runs"][run_id].update(scale="huge"),
        "lacks target domains": lambda s: s["runs"][run_id].update(losses={"b": 3.0}),
        "but its losses give": lambda s: s["runs"][run_id].update(target=1.0),
        r"\.status: is 'lost'": lambda s: s["runs"][run_id].update(status="lost"),
        "n_candidates: has type str": lambda s: s.update(n_candidates="many"),
        "seed: is missing": lambda s: s.pop("seed"),
        r"unknown fields \['extra'\]": lambda s: s.update(extra=1),
        "acquisition: unknown .greedy.": lambda s: s.update(acquisition="greedy"),
    }
    for message, change in cases.items():
        saved.write_text(text)
        edit(saved, change)
        with pytest.raises(IncompatibleFileError, match=message):
            Designer.load(saved, verify=False)
    saved.write_text(text)
    edit(saved, lambda s: s.pop("sha256"))
    with pytest.raises(IncompatibleFileError, match="sha256: is missing"):
        Designer.load(saved)
    assert Designer.load(saved, verify=False).runs == json.loads(text)["runs"]  # a hand-written file loads


def test_version_one_state_files_still_load(law, tmp_path):
    designer = Designer(DOMAINS, "a", acquisition="ei", seed=2, n_initial=4, n_candidates=200, surrogate=FAST)
    for p in designer.ask(4):
        designer.tell(p.run_id, {"a": true_loss(law, p.mixture, None)})
    state = designer.to_dict()
    for key in ("kind", "cost_aware", "scales", "target_scale", "initial_scale", "explore"):
        state.pop(key)
    for record in state["runs"].values():
        record.pop("scale")
    state["version"] = 1
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(state))
    assert Designer.load(path).ask(2) == designer.ask(2)

"""Active-learning benchmark: pool-based simulation on the RegMix 1M runs.

The pool is the 512 train + 256 test RegMix 1M-parameter runs (../shared/data/regmix); buying a run
reveals its real Pile-CC validation loss. For each strategy and seed, after ``n`` runs are bought,
the surrogate is refitted on them and the mixture of the pool with the lowest posterior-mean loss
is recommended. Reported against ``n``:

* regret: the recommended mixture's real loss minus the best real loss in the pool;
* Spearman correlation of the posterior mean with the real losses on the runs not bought.

Strategies: random (uniformly random pool runs, i.e. random Dirichlet sampling, since the pool
was drawn that way), the one-shot RegMix design (its first ``n`` train runs; ``n = 512`` is the
whole RegMix design, the reference regret), and the designer (:class:`bayesmix.design.Designer`,
16 space-filling pool runs, then batches of 8) with each acquisition.

The law fit inside the loop is ``--surrogate``: ``bootstrap`` (:class:`bayesmix.design.BootstrapLaw`,
the paper's mixing law with ``r^0.5`` features, Huber / L-BFGS fits on Bayesian-bootstrap
reweightings; ~0.3 s per refit), ``bayes`` (:class:`bayesmix.design.LawFit`, the designer's default:
the NUTS posterior of the same law, refitted warm) or ``bayes-discrepancy`` (``LawFit`` with the
law's form error). Every strategy, the one-shot reference included, is scored with the same
surrogate. ``regmix_*`` keys: the first of ``--pool-acquisitions`` and random, at 32 runs.

Nested simulation with two model sizes and costs
------------------------------------------------
Ground truth from :func:`bayesmix.data.simulate_curves.random_nested_truth` (4 training domains;
the target is the mean loss over the 4 validation domains, whose optimum is inside the simplex):
``L(r, N, D) = E(r) + A/N^alpha + B/D^beta``, observed with the simulator's run and checkpoint
noise (sd 0.011 nats). Two scales: ``small`` (N = 2e7) and ``large`` (N = 1.6e8, the target),
both D = 3.2e9 tokens, so a large run costs 8 small ones (6 N D); compute is counted in units
of one large run. Two variants of the truth:

* ``same``: the simulator's law as it is; the mixture's effect is the same at both sizes (the
  small loss is the large one plus a constant), so small runs are perfect proxies;
* ``shifted``: the small size's mixture effect is moved by ``SHIFT`` x another random mixing
  law, so the small-scale optimum is not the large-scale one (printed: its regret at the large
  scale) and small runs mislead a method that trusts them blindly.

Strategies, each refitted with the same surrogates (``--surrogate`` for runs of one size;
``--multi-surrogate`` when both sizes were bought: the multi-scale ``BootstrapLaw`` or ``joint``,
:class:`bayesmix.design.JointLawFit`) and recommending the lowest target-scale posterior
mean among a fixed set of 3000 candidate mixtures and the mixtures bought: ``random_large``
(random mixtures at the target size), ``random_small`` (all compute on random small runs, the
RegMix recipe), ``designer_large`` (the designer at the target size only) and ``designer_cost_aware`` (the
designer over both sizes, acquisition per unit compute, space-filling start at the small size);
both designers: 8 initial runs, then batches of 4, acquisition ``--nested-acquisition``. Regret: the true large-scale loss of the
recommendation minus the true optimum. ``nested_compute_to_match``: the smallest compute (of the
budgets measured) at which a strategy's mean regret is at most ``random_large``'s at the largest
budget.

ScaleBench mixture-law task (part ``scalebench``)
------------------------------------------------
The 5-domain task of ScaleBench (../shared/data/scalebench_mixture, its README has the protocol):
4 model sizes (70M, 160M, 305M, 410M), 20 candidate runs per size (split ``train``), cost 1 per
run, budgets 20% / 35% / 50% = 4 / 7 / 10 runs per size. Score: R^2 of the predicted losses of the
target region (split ``test``: 6 mixtures x 5 domain losses x 4 sizes = 120 values pooled),
clipped to [-1, 1]; a failed fit counts as -1.

The law that scores every strategy is the same: the joint mixture x size law
(:func:`bayesmix.fit_joint`, short NUTS chains: ``SB_FIT``) on the runs bought at all 4 sizes, read
at each size (:func:`bayesmix.joint_at`), posterior-mean prediction at the target mixtures.
Strategies, per seed:

* ``random``: a uniformly random order of the candidates of each size; the first 4 / 7 / 10;
* ``oneshot``: greedy maximin over the candidate mixtures of each size (from a random first
  candidate), chosen before any loss is seen; the first 4 / 7 / 10;
* ``designer``: sequential. Its first ``SB_INITIAL`` runs per size are the one-shot design's;
  then one run per size per step, chosen by :func:`bayesmix.design.region_variance_batch` (the
  expected reduction of the posterior variance of the 120 target-region predictions, each run
  revealing its 5 domain losses) on the draws of a cheap surrogate, :class:`BootstrapLaw` fitted
  per domain over the 4 sizes (its multi-scale fit), until the joint law can be fitted (14 runs);
  from 4 runs per size on, batches of 3 runs per size chosen on the draws of the joint NUTS
  posterior itself (the fit that scores the checkpoint). The target mixtures are known to the
  designer (as in the task's protocol); their losses are not.

``all data``: the same law on all 20 runs per size (the published "All Data" reference).

Usage: ``python benchmarks/active_learning.py [--quick] [--seeds K] [--nested-seeds K]
[--sb-seeds K] [--parts pool,nested,scalebench] [--explore share]``; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from _common import SHARED_DATA, machine, print_json, print_table, timed
from scipy.stats import spearmanr

import bayesmix as bm
from bayesmix.data.simulate import random_law
from bayesmix.data.simulate_curves import random_nested_truth
from bayesmix.design import (
    ACQUISITIONS,
    BootstrapLaw,
    Designer,
    JointLawFit,
    LawFit,
    feasible_candidates,
    maximin_select,
    region_variance_batch,
)
from bayesmix.optimise import build_box

TARGET = "pile_cc"
REGMIX = SHARED_DATA / "regmix"
BATCH = 8
N_INITIAL = 16
# nested simulation: the two sizes (compute 6ND: large = 8 x small) and the shift of the small size's mixture effect
SMALL = {"model": "small", "model_size": 2e7, "tokens": 3.2e9}
LARGE = {"model": "large", "model_size": 1.6e8, "tokens": 3.2e9}
UNIT = 6 * LARGE["model_size"] * LARGE["tokens"]
SHIFT = 2.0
NESTED_BATCH = 4
N_NESTED_DOMAINS = 4
# ScaleBench mixture-law task: sizes, domains (the README's order), budgets (runs per size) and the scoring fit
SCALEBENCH = SHARED_DATA / "scalebench_mixture"
SB_SIZES = {"70M": 7e7, "160M": 1.6e8, "305M": 3.05e8, "410M": 4.1e8}
SB_DOMAINS = ["academic", "prose", "dialogue", "symbolic", "internet"]
SB_BUDGETS = {0.2: 4, 0.35: 7, 0.5: 10}
SB_INITIAL = 2
SB_FIT = {"draws": 100, "tune": 150, "chains": 2}
SB_JOINT_BATCH = 3
# the pool part's surrogates (--surrogate): the Bayesian law (NUTS, warm refits), with or without its form error
SURROGATES = {
    "bootstrap": BootstrapLaw(),
    "bayes": LawFit(),
    "bayes-discrepancy": LawFit(discrepancy=True),
}


class Surrogates(NamedTuple):
    """The nested part's surrogates: for runs of one scale, and for runs of both (multi-scale)."""

    single: BootstrapLaw | LawFit
    multi: BootstrapLaw | JointLawFit


# run-noise variance floor of the BootstrapLaw surrogate (sd 0.01 nats), whose fits on few runs interpolate
SB_NOISE_FLOOR = 1e-4


def load(split: str) -> bm.RunTable:
    """A RegMix split as a RunTable (as in benchmarks/regmix.py)."""
    return bm.RunTable.from_joined(
        REGMIX / f"{split.replace('X', 'mixture')}.csv",
        REGMIX / f"{split.replace('X', 'pile_loss')}.csv",
        renormalise=True,
    )


def evaluate(surrogate: BootstrapLaw, pool: np.ndarray, y: np.ndarray, bought: np.ndarray, seed: int):
    """Regret of the recommendation and Spearman on the unbought pool after buying ``bought``."""
    mean = surrogate.fit(pool[bought], y[bought], seed=seed).predict(pool).mean(axis=0)
    regret = float(y[int(np.argmin(mean))] - y.min())
    rest = np.setdiff1d(np.arange(len(y)), bought)
    return regret, float(spearmanr(mean[rest], y[rest]).statistic)


def run_designer(acquisition, surrogate, pool, y, budgets, seed, ask_seconds, explore=0.0):
    """Buy runs with the designer up to the largest budget; score at every budget."""
    designer = Designer(
        [f"d{j}" for j in range(pool.shape[1])], "loss", acquisition=acquisition, seed=seed, pool=pool,
        n_initial=N_INITIAL, surrogate=surrogate, explore=explore,
    )
    index = {tuple(row): i for i, row in enumerate(pool.tolist())}
    bought: list[int] = []
    scores = {}
    while len(bought) < max(budgets):
        n = min(BATCH if len(bought) >= N_INITIAL else N_INITIAL, max(budgets) - len(bought))
        started = time.perf_counter()
        proposals = designer.ask(n)
        if len(bought) >= N_INITIAL:
            ask_seconds.append(time.perf_counter() - started)
        for p in proposals:
            i = index[tuple(designer.runs[p.run_id]["mixture"])]
            bought.append(i)
            designer.tell(p.run_id, float(y[i]))
        if len(bought) in budgets:
            scores[len(bought)] = evaluate(surrogate, pool, y, np.array(bought), seed)
    return scores


class NestedWorld:
    """The ground truth of one seed and variant of the nested simulation (see the module docstring)."""

    def __init__(self, seed: int, shifted: bool):
        self.truth = random_nested_truth(N_NESTED_DOMAINS, seed=seed)
        self.other = random_law(N_NESTED_DOMAINS, seed=seed + 500, noise_sd=0.0, loss_scale=0.6) if shifted else None
        self.noise_sd = math.hypot(self.truth.run_sd, self.truth.noise_sd)
        box = build_box([f"d{j}" for j in range(N_NESTED_DOMAINS)])
        rng = np.random.default_rng([seed, 11])
        self.candidates = feasible_candidates(box, 3000, rng)
        reference = np.vstack([self.candidates, rng.dirichlet(np.ones(N_NESTED_DOMAINS), size=20000)])
        self.optimum = self._polish(reference)
        small_best = reference[int(np.argmin(self.mean(reference, "small")))]
        self.proxy_optimum_regret = float(self.mean(small_best[None], "large")[0] - self.optimum)

    def mean(self, mixtures: np.ndarray, scale: str) -> np.ndarray:
        """True target loss (mean over the validation domains) at a scale, ``(n,)``."""
        size = SMALL if scale == "small" else LARGE
        loss = self.truth.mean_loss(mixtures, size["model_size"], size["tokens"]).mean(axis=1)
        if scale == "small" and self.other is not None:
            uniform = np.full((1, N_NESTED_DOMAINS), 1.0 / N_NESTED_DOMAINS)
            loss = loss + SHIFT * (self.other.mean_loss(mixtures).mean(axis=1) - self.other.mean_loss(uniform).mean())
        return loss

    def _polish(self, reference: np.ndarray) -> float:
        """The true large-scale optimum: best of ``reference``, refined by SLSQP on the simplex."""
        from scipy.optimize import minimize

        values = self.mean(reference, "large")
        best = float(values.min())
        for start in reference[np.argsort(values)[:5]]:
            result = minimize(lambda r: float(self.mean(np.clip(r, 0, 1)[None], "large")[0]), start, method="SLSQP",
                              bounds=[(0.0, 1.0)] * N_NESTED_DOMAINS,
                              constraints=[{"type": "eq", "fun": lambda r: r.sum() - 1.0}])
            if result.success:
                best = min(best, float(result.fun))
        return best

    def regret(self, surrogates: Surrogates, bought: list[tuple[np.ndarray, str, float]], seed: int) -> float:
        """Large-scale regret of the surrogates' recommendation after buying ``bought``."""
        mixtures = np.array([b[0] for b in bought])
        y = np.array([b[2] for b in bought])
        scales = np.array([0 if b[1] == "small" else 1 for b in bought])
        if len(set(scales.tolist())) == 2:
            post = surrogates.multi.fit(mixtures, y, seed=seed, scales=scales, n_scales=2, target_scale=1,
                                        model_sizes=[SMALL["model_size"], LARGE["model_size"]])
        else:  # one size only: its law stands for the target (the RegMix recipe for small runs)
            post = surrogates.single.fit(mixtures, y, seed=seed)
        pool = np.vstack([self.candidates, mixtures])
        rec = pool[int(np.argmin(post.predict(pool).mean(axis=0)))]
        return float(self.mean(rec[None], "large")[0] - self.optimum)


def nested_strategy(
    world: NestedWorld, strategy: str, acquisition: str, surrogates: Surrogates, budgets: list[float], seed: int,
    ask_seconds: list[float], explore: float = 0.0,
) -> dict[float, float | None]:
    """Buy runs with one strategy up to the largest budget; regret at every budget it reaches."""
    rng = np.random.default_rng([seed, 13])
    cost = {"small": SMALL["model_size"] / LARGE["model_size"], "large": 1.0}
    bought: list[tuple[np.ndarray, str, float]] = []
    boundaries: list[tuple[float, int]] = []  # (compute spent, runs) after each batch

    def buy(mixture: np.ndarray, scale: str) -> float:
        loss = float(world.mean(mixture[None], scale)[0] + rng.normal(0.0, world.noise_sd))
        bought.append((np.asarray(mixture, dtype=float), scale, loss))
        return loss

    spent = 0.0
    if strategy.startswith("random"):
        scale = strategy.split("_")[1]
        per_unit = round(1 / cost[scale])
        mixtures = rng.dirichlet(np.ones(N_NESTED_DOMAINS), size=int(max(budgets) * per_unit))
        for mixture in mixtures:
            buy(mixture, scale)
            spent += cost[scale]
            boundaries.append((spent, len(bought)))
    else:
        domains = [f"d{j}" for j in range(N_NESTED_DOMAINS)]
        if strategy == "designer_large":
            designer = Designer(domains, "loss", acquisition=acquisition, seed=seed, n_initial=8,
                                surrogate=surrogates.single, explore=explore)
        else:
            designer = Designer(domains, "loss", acquisition=acquisition, seed=seed, n_initial=8,
                                surrogate=surrogates.multi,
                                scales=[SMALL, LARGE], target_scale="large", cost_aware=True, explore=explore)
        while spent < max(budgets) - 1e-9:
            started = time.perf_counter()
            proposals = designer.ask(NESTED_BATCH)
            if designer.history:
                ask_seconds.append(time.perf_counter() - started)
            for p in proposals:
                scale = p.model or "large"
                designer.tell(p.run_id, buy(np.array([p.mixture[d] for d in domains]), scale))
                spent += cost[scale]
            boundaries.append((spent, len(bought)))
    out: dict[float, float | None] = {}
    for b in budgets:
        runs = [n for c, n in boundaries if c <= b + 1e-9]
        out[b] = world.regret(surrogates, bought[: runs[-1]], seed) if runs and runs[-1] >= 2 else None
    return out


def run_nested(args, surrogates: Surrogates, ask_seconds: list[float]) -> dict:
    """The nested simulation: every variant, strategy and seed; tables and JSON figures."""
    seeds = [0] if args.quick else list(range(args.nested_seeds))
    budgets = [2.0, 4.0, 8.0] if args.quick else [1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0]
    acquisition = args.nested_acquisition
    strategies = ["random_large", "random_small", "designer_large", "designer_cost_aware"]
    print(f"\nNested simulation: sizes small {SMALL['model_size']:.3g} / large {LARGE['model_size']:.3g} params, "
          f"{LARGE['tokens']:.3g} tokens, large = {LARGE['model_size'] / SMALL['model_size']:.0f} x small compute; "
          f"acquisition {acquisition}; seeds {seeds}; budgets (large-run units) {budgets}")
    figures: dict[str, dict] = {"regret": {}, "compute_to_match": {}, "threshold": {}, "proxy_optimum_regret": {}}
    curves: dict[str, dict[str, dict[float, float | None]]] = {}
    for variant in ("same", "shifted"):
        results = {s: {b: [] for b in budgets} for s in strategies}
        proxy_regret = []
        for seed in seeds:
            world = NestedWorld(seed, shifted=variant == "shifted")
            proxy_regret.append(world.proxy_optimum_regret)
            for strategy in strategies:
                with timed() as t:
                    scores = nested_strategy(world, strategy, acquisition, surrogates, budgets, seed, ask_seconds,
                                             args.explore)
                for b, value in scores.items():
                    results[strategy][b].append(value)
                print(f"  {variant} seed {seed} {strategy}: {t['seconds']:.1f} s")
        mean = {
            s: {b: (None if any(v is None for v in vals) else float(np.mean(vals))) for b, vals in results[s].items()}
            for s in strategies
        }
        threshold = mean["random_large"][max(budgets)]
        match = {
            s: next((b for b in budgets if mean[s][b] is not None and mean[s][b] <= threshold + 1e-12), None)
            for s in strategies
        }
        rows = [{"strategy": s, **{f"{b:g}": mean[s][b] for b in budgets}} for s in strategies]
        print_table(rows, ["strategy", *[f"{b:g}" for b in budgets]],
                    f"Nested '{variant}': mean large-scale regret vs compute (large-run units); the small size's "
                    f"own optimum has regret {np.mean(proxy_regret):.4f} at the large size")
        print(f"compute to match random_large at {max(budgets):g} units (regret {threshold:.4f}): {match}")
        figures["regret"][variant] = {s: {f"{b:g}": mean[s][b] for b in budgets} for s in strategies}
        figures["compute_to_match"][variant] = match
        figures["threshold"][variant] = threshold
        figures["proxy_optimum_regret"][variant] = float(np.mean(proxy_regret))
        curves[variant] = mean
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        for ax, (variant, mean) in zip(axes, curves.items(), strict=True):
            for s in strategies:
                xs = [b for b in budgets if mean[s][b] is not None]
                ax.plot(xs, [mean[s][b] for b in xs], marker="o", label=s)
            ax.set(xscale="log", xlabel="compute (large runs, 6ND)", title=f"truth: {variant}")
            ax.set_xticks(budgets, [f"{b:g}" for b in budgets])
            ax.minorticks_off()
        axes[0].set_ylabel("regret at the large size (nats)")
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(args.nested_plot, dpi=100)
        print(f"plot saved to {args.nested_plot}")
    except ImportError:
        print("matplotlib not installed: no plot")
    return figures


def run_pool(args, surrogate: BootstrapLaw, ask_seconds: list[float]) -> dict:
    """The pool-based RegMix simulation (see the module docstring)."""
    seeds = [0] if args.quick else list(range(args.seeds))
    budgets = [16, 32, 48] if args.quick else [16, 24, 32, 48, 64, 96, 128]
    if args.pool_budgets:
        budgets = sorted({int(b) for b in args.pool_budgets.split(",")})
    train, test = load("train_X_1m"), load("test_X_1m")
    pool = np.vstack([train.mixtures.to_numpy(), test.mixtures.to_numpy()])
    y = np.concatenate([train.losses[TARGET].to_numpy(), test.losses[TARGET].to_numpy()])
    print(f"RegMix pool: {len(y)} runs x {pool.shape[1]} domains; target {TARGET}; seeds {seeds}; budgets {budgets}")

    with timed() as t:
        reference = evaluate(surrogate, pool, y, np.arange(512), seed=0)
    print(f"one-shot RegMix 512 runs: regret {reference[0]:.4f}, spearman {reference[1]:.3f} ({t['seconds']:.1f} s)")
    acquisitions = [a.strip() for a in args.pool_acquisitions.split(",") if a.strip()]
    if not acquisitions or set(acquisitions) - set(ACQUISITIONS) or "random" in acquisitions:
        raise SystemExit(f"--pool-acquisitions: give some of {[a for a in ACQUISITIONS if a != 'random']}")
    strategies = ["random", "oneshot", *acquisitions]
    results: dict[str, dict[int, list[tuple[float, float]]]] = {s: {b: [] for b in budgets} for s in strategies}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(y))
        for b in budgets:
            results["random"][b].append(evaluate(surrogate, pool, y, order[:b], seed))
            results["oneshot"][b].append(evaluate(surrogate, pool, y, np.arange(b), seed))
        for acquisition in strategies[2:]:
            with timed() as t:
                scores = run_designer(acquisition, surrogate, pool, y, budgets, seed, ask_seconds, args.explore)
            for b, value in scores.items():
                results[acquisition][b].append(value)
            print(f"seed {seed} {acquisition}: {t['seconds']:.1f} s")

    rows, curves = [], {}
    for s in strategies:
        regret = [float(np.mean([r for r, _ in results[s][b]])) for b in budgets]
        rho = [float(np.mean([p for _, p in results[s][b]])) for b in budgets]
        curves[s] = (regret, rho)
        for b, r, p in zip(budgets, regret, rho, strict=True):
            spread = float(np.std([r for r, _ in results[s][b]]))
            rows.append({"strategy": s, "runs": b, "regret": r, "regret_sd": spread, "spearman_rest": p})
    print_table(rows, ["strategy", "runs", "regret", "regret_sd", "spearman_rest"],
                f"Mean over {len(seeds)} seeds (regret_sd: sd over seeds)")

    def runs_to_match(s: str) -> int | None:
        return next((b for b, r in zip(budgets, curves[s][0], strict=True) if r <= reference[0] + 1e-12), None)

    match = {s: runs_to_match(s) for s in strategies if s != "oneshot"}
    print(f"\nruns to match the one-shot 512-run regret {reference[0]:.4f}: {match} (goal: <= 128)")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for s in strategies:
            axes[0].plot(budgets, curves[s][0], marker="o", label=s)
            axes[1].plot(budgets, curves[s][1], marker="o", label=s)
        axes[0].axhline(reference[0], color="k", ls="--", label="one-shot 512")
        axes[0].set(xlabel="runs bought", ylabel="regret (Pile-CC loss)", title="Regret of recommendation")
        axes[1].set(xlabel="runs bought", ylabel="Spearman on unbought pool", title="Ranking quality")
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"plot saved to {args.plot}")
    except ImportError:
        print("matplotlib not installed: no plot")
    at32 = {s: results[s].get(32) for s in strategies}
    designed = acquisitions[0]
    return {
        "regmix_regret32": float(np.mean([r for r, _ in at32[designed]])) if at32[designed] else None,
        "regmix_spearman32": float(np.mean([p for _, p in at32[designed]])) if at32[designed] else None,
        "regmix_random_regret32": float(np.mean([r for r, _ in at32["random"]])) if at32["random"] else None,
        "regmix_random_spearman32": float(np.mean([p for _, p in at32["random"]])) if at32["random"] else None,
        "regmix_acquisition": designed,
        "runs_to_match_oneshot512": match,
        "oneshot512_regret": reference[0],
        "oneshot512_spearman": reference[1],
        "pool_seeds": len(seeds),
    }


class ScaleBench:
    """The ScaleBench mixture-law task: candidates and target region per size (module docstring)."""

    def __init__(self):
        frame = pd.read_csv(SCALEBENCH / "domain_mixture_scaling_law.csv")
        mix = [f"proportion_domain_{k}" for k in range(1, 6)]
        loss = [f"loss_domain_{k}" for k in range(1, 6)]
        self.sizes = list(SB_SIZES)
        parts = {}
        for split in ("train", "test"):
            rows = frame[frame["split"] == split].sort_values("row")
            parts[split] = [rows[rows["group"] == g] for g in self.sizes]
        self.mixtures = np.stack([r[mix].to_numpy() for r in parts["train"]])  # (size, 20, 5)
        self.losses = np.stack([r[loss].to_numpy() for r in parts["train"]])
        self.target_mixtures = np.stack([r[mix].to_numpy() for r in parts["test"]])  # (size, 6, 5)
        self.target_losses = np.stack([r[loss].to_numpy() for r in parts["test"]])
        published = pd.read_csv(SCALEBENCH / "published_r2_domain.csv")
        self.published = {(r.method, float(r.budget_fraction)): float(r.r2_mean) for r in published.itertuples()}

    def table(self, chosen: list[np.ndarray]) -> bm.RunTable:
        """The runs ``chosen[s]`` (candidate indices) of every size as one RunTable with ``model_size``."""
        frames = []
        for s, size in enumerate(self.sizes):
            idx = np.asarray(chosen[s], dtype=int)
            wide = pd.DataFrame(self.mixtures[s, idx], columns=[f"mix_{d}" for d in SB_DOMAINS])
            for j, d in enumerate(SB_DOMAINS):
                wide[d] = self.losses[s, idx, j]
            wide["model_size"] = SB_SIZES[size]
            wide["run"] = [f"{size}_{i}" for i in idx]
            frames.append(wide)
        return bm.RunTable.from_wide(pd.concat(frames, ignore_index=True))

    def fit(self, chosen: list[np.ndarray], seed: int) -> dict:
        """The scoring law on ``chosen``: target-region R^2 and the draws the designer uses.

        Returns ``r2``, ``draws`` ``(sample, size, 26, domain)`` (the 20 candidates then the 6
        targets of every size), ``noise`` ``(size, domain)`` (the Student-t noise variance),
        ``healthy`` and ``seconds``; a failed fit gives ``r2 = -1`` and ``draws = None``.
        """
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                idata = bm.fit_joint(self.table(chosen), seed=seed, **SB_FIT)
                draws, noise = [], []
                for s, size in enumerate(self.sizes):
                    at = bm.joint_at(idata, SB_SIZES[size])
                    mixtures = pd.DataFrame(np.vstack([self.mixtures[s], self.target_mixtures[s]]), columns=SB_DOMAINS)
                    pred = bm.predict(at, mixtures, kind="mean").sel(domain=SB_DOMAINS)
                    draws.append(pred.transpose("sample", "mixture", "domain").to_numpy())
                    sigma = at.posterior["sigma"].sel(domain=SB_DOMAINS).to_numpy().reshape(-1, len(SB_DOMAINS))
                    noise.append((sigma**2).mean(axis=0) * 5.0 / 3.0)  # Student-t, nu = 5
            draws = np.stack(draws, axis=1)
            mean = draws[:, :, 20:, :].mean(axis=0)
            health = bm.inference.joint.joint_health(idata)
            healthy = bool(getattr(health, "ok", False))
        except Exception as error:  # a failed fit scores -1, as in the task's protocol
            print(f"    fit failed: {type(error).__name__}: {error}")
            return {"r2": -1.0, "draws": None, "noise": None, "healthy": False,
                    "seconds": time.perf_counter() - started}
        return {"r2": self.r2(mean), "draws": draws, "noise": np.array(noise), "healthy": healthy,
                "seconds": time.perf_counter() - started}

    def r2(self, predicted: np.ndarray) -> float:
        """Pooled target-region R^2 of ``predicted`` ``(size, 6, domain)``, clipped to [-1, 1]."""
        y = self.target_losses
        value = 1.0 - float(((predicted - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())
        return float(np.clip(value, -1.0, 1.0)) if np.isfinite(value) else -1.0

    def oneshot(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Greedy maximin order of every size's candidates, from a random first candidate."""
        out = []
        for s in range(len(self.sizes)):
            first = int(rng.integers(20))
            rest = maximin_select(self.mixtures[s], 19, existing=self.mixtures[s, [first]])
            out.append(np.r_[first, rest])
        return out

    def bootstrap_draws(self, chosen: list[np.ndarray], surrogate: BootstrapLaw, seed: int):
        """Draws ``(sample, size, 26, domain)`` and noise ``(domain,)`` of the per-domain multi-scale BootstrapLaw."""
        mixtures = np.vstack([self.mixtures[s, c] for s, c in enumerate(chosen)])
        scales = np.concatenate([np.full(len(c), s) for s, c in enumerate(chosen)])
        n_sizes = len(self.sizes)
        grid = np.vstack([np.vstack([self.mixtures[s], self.target_mixtures[s]]) for s in range(n_sizes)])
        grid_scale = np.repeat(np.arange(n_sizes), 26)
        draws, noise = [], []
        for j in range(len(SB_DOMAINS)):
            y = np.concatenate([self.losses[s, c, j] for s, c in enumerate(chosen)])
            post = surrogate.fit(mixtures, y, seed=seed, scales=scales, n_scales=n_sizes, target_scale=n_sizes - 1)
            draws.append(post.predict(grid, scale=grid_scale).reshape(-1, n_sizes, 26))
            noise.append(max(post.noise_var, SB_NOISE_FLOOR))
        return np.stack(draws, axis=-1), np.array(noise)

    def choose(self, draws: np.ndarray, noise: np.ndarray, chosen: list[np.ndarray], per_size: int) -> list[np.ndarray]:
        """``per_size`` more runs per size by :func:`region_variance_batch` on ``draws``."""
        n_sizes = len(self.sizes)
        samples = draws.shape[0]
        candidates = draws[:, :, :20, :].reshape(samples, n_sizes * 20, len(SB_DOMAINS))
        region = draws[:, :, 20:, :].reshape(samples, -1)
        noise = np.broadcast_to(noise, (n_sizes, len(SB_DOMAINS)))
        exclude = np.concatenate([s * 20 + np.asarray(c, dtype=int) for s, c in enumerate(chosen)])
        picks = region_variance_batch(candidates, region, np.repeat(noise, 20, axis=0), [per_size] * n_sizes,
                                      groups=np.repeat(np.arange(n_sizes), 20), exclude=exclude)
        out = [list(c) for c in chosen]
        for p in picks:
            out[p // 20].append(int(p % 20))
        return [np.asarray(c, dtype=int) for c in out]


def scalebench_designer(task: ScaleBench, order: list[np.ndarray], surrogate: BootstrapLaw, seed: int,
                        steps: list[dict]) -> dict[int, dict]:
    """The designer's runs up to the largest budget; the scoring fit at every budget (module docstring)."""
    chosen = [o[:SB_INITIAL] for o in order]
    fits: dict[int, dict] = {}
    budgets = sorted(SB_BUDGETS.values())
    while len(chosen[0]) < max(budgets):
        n = len(chosen[0])
        started = time.perf_counter()
        if n < budgets[0]:
            draws, noise = task.bootstrap_draws(chosen, surrogate, seed)
            per_size, kind, fit_seconds = 1, "bootstrap", 0.0
        else:
            fit = fits[n]
            if fit["draws"] is None:  # the joint fit failed: go on with the cheap surrogate
                draws, noise = task.bootstrap_draws(chosen, surrogate, seed)
            else:
                draws, noise = fit["draws"], fit["noise"]
            per_size, kind, fit_seconds = min(SB_JOINT_BATCH, max(budgets) - n), "joint", fit["seconds"]
            per_size = min(per_size, next(b for b in budgets if b > n) - n)
        chosen = task.choose(draws, noise, chosen, per_size)
        steps.append({"kind": kind, "seconds": time.perf_counter() - started + fit_seconds, "runs_per_size": per_size})
        if len(chosen[0]) in budgets:
            fits[len(chosen[0])] = task.fit(chosen, seed)
    return fits


def run_scalebench(args) -> dict:
    """The ScaleBench part: every strategy and seed; table and JSON figures."""
    task = ScaleBench()
    seeds = list(range(2 if args.quick else args.sb_seeds))
    surrogate = BootstrapLaw(n_boot=16, n_inits=4)
    fractions = sorted(SB_BUDGETS)
    print(f"\nScaleBench mixture law: {len(task.sizes)} sizes x 20 candidates, target region "
          f"{task.target_losses.size} values; budgets {SB_BUDGETS}; seeds {seeds}; scoring fit fit_joint {SB_FIT}")
    with timed() as t:
        full = task.fit([np.arange(20)] * len(task.sizes), seed=0)
    print(f"all data (20 runs per size): R2 {full['r2']:.4f} (published All Data "
          f"{task.published[('All Data', 1.0)]:.2f}); {t['seconds']:.1f} s")
    strategies = ["random", "oneshot", "designer"]
    results = {s: {f: [] for f in fractions} for s in strategies}
    healthy: list[bool] = []
    fit_seconds: list[float] = []
    steps: list[dict] = []
    for seed in seeds:
        rng = np.random.default_rng([seed, 17])
        orders = {"random": [rng.permutation(20) for _ in task.sizes], "oneshot": task.oneshot(rng)}
        for strategy in ("random", "oneshot"):
            with timed() as t:
                for f in fractions:
                    fit = task.fit([o[: SB_BUDGETS[f]] for o in orders[strategy]], seed)
                    results[strategy][f].append(fit["r2"])
                    healthy.append(fit["healthy"])
                    fit_seconds.append(fit["seconds"])
            print(f"  seed {seed} {strategy}: R2 {[round(results[strategy][f][-1], 4) for f in fractions]} "
                  f"({t['seconds']:.1f} s)")
        with timed() as t:
            fits = scalebench_designer(task, orders["oneshot"], surrogate, seed, steps)
        for f in fractions:
            results["designer"][f].append(fits[SB_BUDGETS[f]]["r2"])
            healthy.append(fits[SB_BUDGETS[f]]["healthy"])
            fit_seconds.append(fits[SB_BUDGETS[f]]["seconds"])
        print(f"  seed {seed} designer: R2 {[round(results['designer'][f][-1], 4) for f in fractions]} "
              f"({t['seconds']:.1f} s)")
    published = {"random": "Random", "designer": "Ours (MSPE)"}
    rows = []
    for s in strategies:
        for f in fractions:
            vals = results[s][f]
            rows.append({"strategy": s, "budget": f"{f:.0%} ({SB_BUDGETS[f]}/size)", "r2_mean": float(np.mean(vals)),
                         "r2_sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else None, "r2_min": float(np.min(vals)),
                         "published": task.published.get((published.get(s, ""), f)),
                         "published_method": published.get(s, "-")})
    rows.append({"strategy": "all data", "budget": "100% (20/size)", "r2_mean": full["r2"], "r2_sd": None,
                 "r2_min": full["r2"], "published": task.published[("All Data", 1.0)], "published_method": "All Data"})
    print_table(rows, ["strategy", "budget", "r2_mean", "r2_sd", "r2_min", "published", "published_method"],
                f"ScaleBench target-region R2 over {len(seeds)} seeds (published: active-sl Table 2, their laws "
                "and fits; ours: the joint law for every strategy)")
    bootstrap_steps = [x["seconds"] for x in steps if x["kind"] == "bootstrap"]
    joint_steps = [x["seconds"] for x in steps if x["kind"] == "joint"]
    print(f"designer step: {np.mean(bootstrap_steps):.2f} s with the BootstrapLaw surrogate (1 run/size), "
          f"{np.mean(joint_steps):.1f} s with the joint NUTS posterior (fit included, <= {SB_JOINT_BATCH} runs/size); "
          f"scoring fit {np.mean(fit_seconds):.1f} s; fits flagged by the sampler health check: "
          f"{sum(not h for h in healthy)}/{len(healthy)}")
    out = {
        "scalebench_seeds": len(seeds),
        "scalebench_all_data_r2": full["r2"],
        "scalebench_seconds_per_designer_step": float(np.mean([x["seconds"] for x in steps])),
        "scalebench_seconds_per_bootstrap_step": float(np.mean(bootstrap_steps)),
        "scalebench_seconds_per_joint_step": float(np.mean(joint_steps)),
        "scalebench_seconds_per_fit": float(np.mean(fit_seconds)),
        "scalebench_unhealthy_fits": int(sum(not h for h in healthy)),
        "scalebench_fits": len(healthy),
    }
    for s, prefix in (("designer", "scalebench"), ("random", "scalebench_random"), ("oneshot", "scalebench_oneshot")):
        for f in fractions:
            out[f"{prefix}_r2_{round(f * 100)}"] = float(np.mean(results[s][f]))
            out[f"{prefix}_r2_sd_{round(f * 100)}"] = float(np.std(results[s][f], ddof=1)) if len(seeds) > 1 else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pool, nested: 1 seed, small budgets; scalebench: 2 seeds")
    parser.add_argument("--seeds", type=int, default=4, help="seeds of the RegMix pool simulation")
    parser.add_argument("--nested-seeds", type=int, default=4, help="seeds of the nested simulation")
    parser.add_argument("--nested-acquisition", default="ei", choices=[a for a in ACQUISITIONS if a != "random"])
    parser.add_argument("--sb-seeds", type=int, default=8, help="seeds of the ScaleBench mixture-law task")
    parser.add_argument("--parts", default="pool,nested,scalebench", help="comma-separated: pool, nested, scalebench")
    parser.add_argument("--explore", type=float, default=0.0, help="Designer(explore=...) of every designer")
    parser.add_argument("--surrogate", default="bootstrap", choices=sorted(SURROGATES),
                        help="the surrogate of the pool part and of the nested part's one-scale fits "
                             "(the two-scale fits: --multi-surrogate)")
    parser.add_argument("--multi-surrogate", default="bootstrap", choices=["bootstrap", "joint"],
                        help="the nested part's two-scale surrogate: bootstrap, or the joint mixture x size law")
    parser.add_argument("--pool-acquisitions", default=",".join(a for a in ACQUISITIONS if a != "random"),
                        help="comma-separated acquisitions of the pool part (the first gives the regmix_* keys)")
    parser.add_argument("--pool-budgets", default="", help="comma-separated run counts scored in the pool part")
    parser.add_argument("--plot", default="benchmarks/active_learning.png")
    parser.add_argument("--nested-plot", default="benchmarks/active_learning_nested.png")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"pool", "nested", "scalebench"}:
        parser.error(f"--parts: give pool, nested and/or scalebench, got {args.parts!r}")
    surrogate = BootstrapLaw(n_boot=16 if args.quick else 32, n_inits=4 if args.quick else 8)
    pool_surrogate = surrogate if args.surrogate == "bootstrap" else SURROGATES[args.surrogate]
    print(f"Active learning on {machine()}; quick={args.quick}; parts {sorted(parts)}; explore {args.explore}; "
          f"pool surrogate {pool_surrogate}")
    figures: dict = {"runs_to_match_oneshot512": None, "seconds_per_ask": None, "explore": args.explore,
                     "pool_surrogate": args.surrogate, "multi_surrogate": args.multi_surrogate}
    pool_asks: list[float] = []
    nested_asks: list[float] = []
    if "pool" in parts:
        figures.update(run_pool(args, pool_surrogate, pool_asks))
        figures["seconds_per_ask"] = float(np.mean(pool_asks)) if pool_asks else None
    if "nested" in parts:
        multi = JointLawFit() if args.multi_surrogate == "joint" else surrogate
        nested = run_nested(args, Surrogates(pool_surrogate, multi), nested_asks)
        figures.update({
            "nested_compute_to_match": nested["compute_to_match"],
            # the keys: the least compute at which a designer matches random_large (null: none did)
            **{f"nested_compute_to_match_{variant}": min(
                (v for s, v in nested["compute_to_match"][variant].items() if s.startswith("designer") and v),
                default=None) for variant in ("same", "shifted")},
            "nested_regret": nested["regret"],
            "nested_match_threshold": nested["threshold"],
            "nested_proxy_optimum_regret": nested["proxy_optimum_regret"],
            "nested_seconds_per_ask": float(np.mean(nested_asks)) if nested_asks else None,
        })
    if "scalebench" in parts:
        figures.update(run_scalebench(args))
    print_json(figures)


if __name__ == "__main__":
    main()

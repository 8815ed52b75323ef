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

The law fit inside the loop is the cheap one the designer uses by default:
:class:`bayesmix.design.BootstrapLaw` (the paper's mixing law with ``r^0.5`` features, Huber /
L-BFGS fits on Bayesian-bootstrap reweightings; ~0.3 s per refit), not NUTS; every strategy,
the one-shot reference included, is scored with the same surrogate.

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

Strategies, each refitted with the same surrogate (:class:`bayesmix.design.BootstrapLaw`, the
multi-scale fit when both scales were bought) and recommending the lowest target-scale posterior
mean among a fixed set of 3000 candidate mixtures and the mixtures bought: ``random_large``
(random mixtures at the target size), ``random_small`` (all compute on random small runs, the
RegMix recipe), ``designer_large`` (the designer at the target size only) and ``designer_cost_aware`` (the
designer over both sizes, acquisition per unit compute, space-filling start at the small size);
both designers: 8 initial runs, then batches of 4, acquisition ``--nested-acquisition``. Regret: the true large-scale loss of the
recommendation minus the true optimum. ``nested_compute_to_match``: the smallest compute (of the
budgets measured) at which a strategy's mean regret is at most ``random_large``'s at the largest
budget.

Usage: ``python benchmarks/active_learning.py [--quick] [--seeds K] [--nested-seeds K]
[--parts pool,nested] [--explore share]``; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from _common import SHARED_DATA, machine, print_json, print_table, timed
from scipy.stats import spearmanr

import bayesmix as bm
from bayesmix.data.simulate import random_law
from bayesmix.data.simulate_curves import random_nested_truth
from bayesmix.design import ACQUISITIONS, BootstrapLaw, Designer, feasible_candidates
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

    def regret(self, surrogate: BootstrapLaw, bought: list[tuple[np.ndarray, str, float]], seed: int) -> float:
        """Large-scale regret of the surrogate's recommendation after buying ``bought``."""
        mixtures = np.array([b[0] for b in bought])
        y = np.array([b[2] for b in bought])
        scales = np.array([0 if b[1] == "small" else 1 for b in bought])
        if len(set(scales.tolist())) == 2:
            post = surrogate.fit(mixtures, y, seed=seed, scales=scales, n_scales=2, target_scale=1)
        else:  # one size only: its law stands for the target (the RegMix recipe for small runs)
            post = surrogate.fit(mixtures, y, seed=seed)
        pool = np.vstack([self.candidates, mixtures])
        rec = pool[int(np.argmin(post.predict(pool).mean(axis=0)))]
        return float(self.mean(rec[None], "large")[0] - self.optimum)


def nested_strategy(
    world: NestedWorld, strategy: str, acquisition: str, surrogate: BootstrapLaw, budgets: list[float], seed: int,
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
            designer = Designer(domains, "loss", acquisition=acquisition, seed=seed, n_initial=8, surrogate=surrogate,
                                explore=explore)
        else:
            designer = Designer(domains, "loss", acquisition=acquisition, seed=seed, n_initial=8, surrogate=surrogate,
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
        out[b] = world.regret(surrogate, bought[: runs[-1]], seed) if runs and runs[-1] >= 2 else None
    return out


def run_nested(args, surrogate: BootstrapLaw, ask_seconds: list[float]) -> dict:
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
                    scores = nested_strategy(world, strategy, acquisition, surrogate, budgets, seed, ask_seconds,
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
    train, test = load("train_X_1m"), load("test_X_1m")
    pool = np.vstack([train.mixtures.to_numpy(), test.mixtures.to_numpy()])
    y = np.concatenate([train.losses[TARGET].to_numpy(), test.losses[TARGET].to_numpy()])
    print(f"RegMix pool: {len(y)} runs x {pool.shape[1]} domains; target {TARGET}; seeds {seeds}; budgets {budgets}")

    with timed() as t:
        reference = evaluate(surrogate, pool, y, np.arange(512), seed=0)
    print(f"one-shot RegMix 512 runs: regret {reference[0]:.4f}, spearman {reference[1]:.3f} ({t['seconds']:.1f} s)")
    strategies = ["random", "oneshot", *[a for a in ACQUISITIONS if a != "random"]]
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
    return {
        "runs_to_match_oneshot512": match,
        "oneshot512_regret": reference[0],
        "oneshot512_spearman": reference[1],
        "pool_seeds": len(seeds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, small budgets (under a minute)")
    parser.add_argument("--seeds", type=int, default=4, help="seeds of the RegMix pool simulation")
    parser.add_argument("--nested-seeds", type=int, default=4, help="seeds of the nested simulation")
    parser.add_argument("--nested-acquisition", default="ei", choices=[a for a in ACQUISITIONS if a != "random"])
    parser.add_argument("--parts", default="pool,nested", help="comma-separated: pool, nested")
    parser.add_argument("--explore", type=float, default=0.0, help="Designer(explore=...) of every designer")
    parser.add_argument("--plot", default="benchmarks/active_learning.png")
    parser.add_argument("--nested-plot", default="benchmarks/active_learning_nested.png")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"pool", "nested"}:
        parser.error(f"--parts: give pool and/or nested, got {args.parts!r}")
    surrogate = BootstrapLaw(n_boot=16 if args.quick else 32, n_inits=4 if args.quick else 8)
    print(f"Active learning on {machine()}; quick={args.quick}; parts {sorted(parts)}; explore {args.explore}")
    figures: dict = {"runs_to_match_oneshot512": None, "seconds_per_ask": None, "explore": args.explore}
    pool_asks: list[float] = []
    nested_asks: list[float] = []
    if "pool" in parts:
        figures.update(run_pool(args, surrogate, pool_asks))
        figures["seconds_per_ask"] = float(np.mean(pool_asks)) if pool_asks else None
    if "nested" in parts:
        nested = run_nested(args, surrogate, nested_asks)
        figures.update({
            "nested_compute_to_match": nested["compute_to_match"],
            "nested_regret": nested["regret"],
            "nested_match_threshold": nested["threshold"],
            "nested_proxy_optimum_regret": nested["proxy_optimum_regret"],
            "nested_seconds_per_ask": float(np.mean(nested_asks)) if nested_asks else None,
        })
    print_json(figures)


if __name__ == "__main__":
    main()

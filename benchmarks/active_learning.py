"""Active-learning benchmark (issue 6): pool-based simulation on the RegMix 1M runs.

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

Usage: ``python benchmarks/active_learning.py [--quick]``; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import SHARED_DATA, machine, print_json, print_table, timed
from scipy.stats import spearmanr

import bayesmix as bm
from bayesmix.design import ACQUISITIONS, BootstrapLaw, Designer

TARGET = "pile_cc"
REGMIX = SHARED_DATA / "regmix"
BATCH = 8
N_INITIAL = 16


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


def run_designer(acquisition, surrogate, pool, y, budgets, seed, ask_seconds):
    """Buy runs with the designer up to the largest budget; score at every budget."""
    designer = Designer(
        [f"d{j}" for j in range(pool.shape[1])], "loss", acquisition=acquisition, seed=seed, pool=pool,
        n_initial=N_INITIAL, surrogate=surrogate,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, budgets to 48 (under a minute)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--plot", default="benchmarks/active_learning.png")
    args = parser.parse_args()
    seeds = [0] if args.quick else list(range(args.seeds))
    budgets = [16, 32, 48] if args.quick else [16, 24, 32, 48, 64, 96, 128]
    surrogate = BootstrapLaw(n_boot=16 if args.quick else 32, n_inits=4 if args.quick else 8)
    train, test = load("train_X_1m"), load("test_X_1m")
    pool = np.vstack([train.mixtures.to_numpy(), test.mixtures.to_numpy()])
    y = np.concatenate([train.losses[TARGET].to_numpy(), test.losses[TARGET].to_numpy()])
    print(f"Active learning on {machine()}; pool {len(y)} runs x {pool.shape[1]} domains; "
          f"target {TARGET}; seeds {seeds}; budgets {budgets}; quick={args.quick}")

    with timed() as t:
        reference = evaluate(surrogate, pool, y, np.arange(512), seed=0)
    print(f"one-shot RegMix 512 runs: regret {reference[0]:.4f}, spearman {reference[1]:.3f} ({t['seconds']:.1f} s)")
    strategies = ["random", "oneshot", *[a for a in ACQUISITIONS if a != "random"]]
    results: dict[str, dict[int, list[tuple[float, float]]]] = {s: {b: [] for b in budgets} for s in strategies}
    ask_seconds: list[float] = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(y))
        for b in budgets:
            results["random"][b].append(evaluate(surrogate, pool, y, order[:b], seed))
            results["oneshot"][b].append(evaluate(surrogate, pool, y, np.arange(b), seed))
        for acquisition in strategies[2:]:
            with timed() as t:
                scores = run_designer(acquisition, surrogate, pool, y, budgets, seed, ask_seconds)
            for b, value in scores.items():
                results[acquisition][b].append(value)
            print(f"seed {seed} {acquisition}: {t['seconds']:.1f} s")

    rows, curves = [], {}
    for s in strategies:
        regret = [float(np.mean([r for r, _ in results[s][b]])) for b in budgets]
        rho = [float(np.mean([p for _, p in results[s][b]])) for b in budgets]
        curves[s] = (regret, rho)
        for b, r, p in zip(budgets, regret, rho, strict=True):
            rows.append({"strategy": s, "runs": b, "regret": r, "spearman_rest": p})
    print_table(rows, ["strategy", "runs", "regret", "spearman_rest"], "Mean over seeds")

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
    print_json({
        "runs_to_match_oneshot512": match,
        "seconds_per_ask": float(np.mean(ask_seconds)) if ask_seconds else None,
        "oneshot512_regret": reference[0],
        "oneshot512_spearman": reference[1],
    })


if __name__ == "__main__":
    main()

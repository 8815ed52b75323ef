"""Mixture optimiser benchmark on the RegMix 1M proxy runs (../shared/data/regmix).

Fits ``MixingLaw(exponent=0.5)`` by NUTS on the 512 train runs, then chooses the mixture that
minimises the posterior expected loss of a target (Pile-CC; in the full run also the mean of the
13 validation losses) three ways, all scored on the same posterior draws:

* bayesmix ``optimise`` (SLSQP on the sample-average objective, analytic gradients, 8 starts),
* the paper's grid enumeration (every mixture on the ``1/steps`` simplex grid over 17 domains),
* RegMix's recipe (100k Dirichlet mixtures around the runs' mean mixture, average the top 128).

For each choice it prints the expected loss with a 90% interval, the wall time, and the realised
loss of the nearest real run (train and 1M test runs, L1 distance) as a sanity check of the law.

Usage: ``python benchmarks/optimiser.py [--quick]``. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
from _common import machine, print_json, print_table, timed
from regmix import load

import bayesmix as bm
from bayesmix.optimise import Problem, dirichlet_search, grid_search, solve

TARGET = "pile_cc"


def nearest_run(runs: bm.RunTable, mixture: np.ndarray, column: str | None) -> dict[str, float]:
    """The run whose mixture is closest (L1) to ``mixture``: distance and realised target loss."""
    distance = np.abs(runs.mixtures.to_numpy() - mixture).sum(axis=1)
    i = int(np.argmin(distance))
    losses = runs.losses.iloc[i]
    return {"nearest_l1": float(distance[i]), "realised": float(losses[column] if column else losses.mean())}


def interval_of(problem: Problem, mixture: np.ndarray) -> tuple[float, float, float]:
    """Mean and 90% interval of the target's expected loss at ``mixture`` on the problem's draws."""
    values = problem.target(problem.per_domain(mixture))[:, 0]
    low, high = np.quantile(values, [0.05, 0.95])
    return float(values.mean()), float(low), float(high)


def compare(problem: Problem, runs: bm.RunTable, column: str | None, steps: int, seed: int) -> list[dict]:
    """Optimiser vs grid vs Dirichlet top-128 on one problem; one table row each."""
    rows = []
    with timed() as t:
        result = solve(problem, n_starts=8, seed=seed)
    choices = [("bayesmix optimise (SLSQP, 8 starts)", result.mixture.to_numpy(), t["seconds"], None)]
    with timed() as t:
        grid = grid_search(problem, steps)
    choices.append((f"paper grid 1/{steps} ({grid.n_evaluated} mixtures)", grid.mixture.to_numpy(), t["seconds"], None))
    with timed() as t:
        dirichlet = dirichlet_search(problem, n=100_000, top=128, seed=seed)
    choices.append(("RegMix: 100k Dirichlet, mean of top 128", dirichlet.mixture.to_numpy(), t["seconds"], None))
    reference = problem.reference
    ref_values = problem.target(problem.per_domain(reference))[:, 0]
    for name, mixture, seconds, _ in choices:
        mean, low, high = interval_of(problem, mixture)
        values = problem.target(problem.per_domain(mixture))[:, 0]
        top = pd.Series(mixture, index=problem.draws.train_domains).sort_values(ascending=False)
        rows.append(
            {
                "method": name,
                "expected_loss": mean,
                "lower90": low,
                "upper90": high,
                "p_beats_ref": float(np.mean(values < ref_values)),
                "seconds": seconds,
                "top_shares": ", ".join(f"{k}={v:.2f}" for k, v in top.head(3).items()),
                **nearest_run(runs, mixture, column),
            }
        )
    mean, low, high = interval_of(problem, reference)
    rows.append(
        {
            "method": "reference (mean mixture of the runs)",
            "expected_loss": mean,
            "lower90": low,
            "upper90": high,
            **nearest_run(runs, reference, column),
        }
    )
    best_run = runs.losses[column] if column else runs.losses.mean(axis=1)
    rows.append({"method": "best observed run", "realised": float(best_run.min())})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 domains, 128 runs, short NUTS (under a minute)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    draws, tune, chains, max_draws, steps = (150, 150, 2, 300, 3) if args.quick else (400, 400, 2, 800, 5)
    train, test = load("train_X_1m"), load("test_X_1m")
    if args.quick:
        keep = [TARGET, "github", "arxiv", "wikipedia_en"]
        train, test = train.select_domains(keep).subset(slice(0, 128)), test.select_domains(keep)
    runs = bm.RunTable(
        pd.concat([train.mixtures, test.mixtures], ignore_index=True),
        pd.concat([train.losses, test.losses], ignore_index=True),
    )
    print(
        f"Optimiser benchmark on {machine()} (shared with other jobs); fit on {train.n_runs} runs x "
        f"{len(train.train_domains)} training domains, {len(train.domains)} validation domains; quick={args.quick}"
    )
    with timed() as t, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = bm.fit(
            train, bm.MixingLaw(exponent=0.5), draws=draws, tune=tune, chains=chains, seed=args.seed, discrepancy=None
        )
    health = bm.health(idata)
    print(
        f"NUTS fit MixingLaw(exponent=0.5): {t['seconds']:.1f} s, divergences {health.divergences}, "
        f"max r_hat {health.max_rhat:.3f}; optimising on {max_draws} posterior draws"
    )
    columns = ["method", "expected_loss", "lower90", "upper90", "p_beats_ref", "seconds", "nearest_l1", "realised", "top_shares"]
    targets = [("Pile-CC", TARGET, TARGET)] + ([] if args.quick else [("mean of domains", "mean", None)])
    headline = None
    for label, target, column in targets:
        problem = Problem.from_idata(idata, target, max_draws=max_draws, seed=args.seed)
        rows = compare(problem, runs, column, steps, args.seed)
        print_table(rows, columns, f"Target {label}: expected loss under the posterior (same draws for all)")
        headline = headline or rows
    bayes, grid, dirichlet = headline[:3]
    print_json(
        {
            "bayes_expected_loss": bayes["expected_loss"],
            "grid_expected_loss": grid["expected_loss"],
            "dirichlet_top128_expected_loss": dirichlet["expected_loss"],
            "bayes_seconds": bayes["seconds"],
            "grid_seconds": grid["seconds"],
            "dirichlet_seconds": dirichlet["seconds"],
            "p_beats_reference": bayes["p_beats_ref"],
        }
    )


if __name__ == "__main__":
    main()

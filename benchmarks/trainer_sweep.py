"""A real sweep on the embedded corpus: does a domain's loss fall as its share grows?

Trains ``--mixtures`` seeded random mixtures over the 7 embedded domains (Dirichlet(1) blended
with 20% uniform, so every share is at least ~3%) for each of ``--models`` CPU-ladder sizes, then,
per model and domain, fits the final validation loss against log(share): the data-mixing-law
papers predict a negative, roughly linear relation. Prints a table and, as the last line, one JSON
object (wall time, fraction of negative slopes, median Spearman correlation).

Usage: ``python benchmarks/trainer_sweep.py [--out DIR] [--steps 150] [--workers 2] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from bayesmix.data.corpus import DOMAINS
from bayesmix.proxy.executor import LocalProcessExecutor
from bayesmix.proxy.plan import grid
from bayesmix.proxy.study import Study
from bayesmix.proxy.sweep import sweep


def mixtures(n: int, seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    out = []
    for w in rng.dirichlet(np.ones(len(DOMAINS)), size=n):
        r = 0.8 * w + 0.2 / len(DOMAINS)
        r = np.round(r, 6)
        r[-1] = 1.0 - r[:-1].sum()
        out.append(dict(zip(DOMAINS, r.tolist(), strict=True)))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/bayesmix-trainer-sweep"))
    p.add_argument("--mixtures", type=int, default=12)
    p.add_argument("--models", nargs="+", default=["cpu-xs", "cpu-s"])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    study = Study.create(
        args.out,
        {
            "corpus": {"kind": "embedded", "train_bytes": 1_000_000, "validation_bytes": 100_000},
            "tokenizer": {"kind": "bpe", "vocab_size": 4096},
            "ladder": "cpu",
            "max_eval_tokens": 4096,
            "train": {"batch_size": 16, "lr": 3e-3, "warmup_steps": 15, "n_evals": 5, "device": "cpu"},
        },
    )
    runs = grid(mixtures(args.mixtures, args.seed), args.models, steps=args.steps)
    report = sweep(study, runs, executor=LocalProcessExecutor(args.workers, args.threads))
    wall = time.perf_counter() - t0
    table = study.ledger.to_long_table()
    final = table[table.step == table.step.max()]
    print(
        f"{len(report.finished)} runs trained, {len(report.skipped)} skipped, {len(report.failed)} failed; "
        f"wall {wall / 60:.1f} min; load average {load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"{'model':8s} {'domain':13s} {'loss@min share':>14s} {'loss@max share':>14s} {'slope/ln r':>10s} {'spearman':>8s}"
    )
    slopes, rhos = [], []
    for _size, sub in final.groupby("model_size"):
        name = study.ledger.get_run(sub.run.iloc[0]).model_name
        for d in DOMAINS:
            rows = sub[sub.domain == d]
            share = rows[f"mix_{d}"].to_numpy()
            loss = rows.loss.to_numpy()
            slope = float(np.polyfit(np.log(share), loss, 1)[0])
            rho = float(spearmanr(share, loss).statistic)
            slopes.append(slope)
            rhos.append(rho)
            print(
                f"{name:8s} {d:13s} {loss[np.argmin(share)]:14.3f} {loss[np.argmax(share)]:14.3f} {slope:10.3f} {rho:8.2f}"
            )
    print(
        json.dumps(
            {
                "runs": len(runs),
                "steps": args.steps,
                "wall_s": round(wall, 1),
                "frac_negative_slope": round(float(np.mean(np.asarray(slopes) < 0)), 3),
                "median_spearman": round(float(np.median(rhos)), 3),
            }
        )
    )


if __name__ == "__main__":
    main()

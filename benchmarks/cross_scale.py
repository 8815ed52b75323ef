"""Across model sizes on real runs: predict RegMix's 60M runs from the 1M runs and a few 60M ones.

Protocol: fit on the 512 RegMix 1M train runs plus 32 of the 256 60M test runs (chosen at random,
seeded), predict the other 224 60M runs' 13 validation losses (absolute, nats/token). Side by
side in the same run:

* **joint**: the joint mixture x model-size law (``bm.fit_joint``, NUTS) read at 60M
  (``bm.joint_at``), so the 60M law borrows every training domain's effect from the 1M runs;
* **mixing@60M**: today's hierarchical mixing law fitted on the 32 60M runs alone (NUTS);
* **paper@60M**: the paper's protocol (point fit) on the same 32 runs.

Scores per method: 90% coverage of the held-out losses by the posterior predictive, mean 90%
width, MAE, and Spearman between predicted and observed loss per validation domain (mean over
the 13 domains; the ranking of mixtures that a decision needs). Both laws use the power
features the RegMix benchmark selects by cross-validation (exponent 0.5).

    python benchmarks/cross_scale.py [--quick] [--seeds 3]

The last line is one JSON object with ``cross_scale_coverage90``, ``cross_scale_spearman``,
``cross_scale_width90``, ``cross_scale_mae`` (joint law) and the same for ``mixing60m_*`` and
``paper60m_*``, over the seeds.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, machine, print_json, print_table, timed

import bayesmix as bm

REGMIX = SHARED_DATA / "regmix"
EXPONENT = 0.5
N_SEEN = 32
SIZES = {"1m": 1e6, "60m": 6e7}


def load(split: str, size: str, prefix: str) -> bm.RunTable:
    """A RegMix file pair as a run table with a ``model_size`` column and prefixed run ids."""
    table = bm.RunTable.from_joined(
        REGMIX / f"{split}_mixture_{size}.csv", REGMIX / f"{split}_pile_loss_{size}.csv", renormalise=True
    )
    index = [f"{prefix}{i}" for i in table.mixtures.index]
    mixtures, losses = table.mixtures.set_axis(index), table.losses.set_axis(index)
    meta = losses[[]].assign(model_size=SIZES[size])
    return bm.RunTable(mixtures, losses, meta)


def concat(a: bm.RunTable, b: bm.RunTable) -> bm.RunTable:
    import pandas as pd

    return bm.RunTable(
        pd.concat([a.mixtures, b.mixtures]), pd.concat([a.losses, b.losses]), pd.concat([a.meta, b.meta])
    )


def score(draws: np.ndarray | None, mean: np.ndarray, observed: np.ndarray) -> dict[str, float]:
    """Coverage and width (when there are draws), MAE and per-domain Spearman of ``mean``."""
    out = {
        "mae": float(np.abs(mean - observed).mean()),
        "spearman": float(np.mean([spearmanr(mean[:, d], observed[:, d])[0] for d in range(observed.shape[1])])),
    }
    if draws is not None:
        lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
        out["coverage90"] = float(((observed >= lo) & (observed <= hi)).mean())
        out["width90"] = float((hi - lo).mean())
    return out


def run(seed: int, quick: bool) -> list[dict]:
    small = load("train", "1m", "1m-")
    large = load("test", "60m", "60m-")
    rng = np.random.default_rng(seed)
    order = rng.permutation(large.n_runs)
    seen, held = large.subset(order[:N_SEEN]), large.subset(order[N_SEEN:])
    observed = held.losses.to_numpy()
    nuts = {"draws": 300, "tune": 400, "chains": 2} if quick else {"draws": 500, "tune": 700, "chains": 4}
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        with timed() as t:
            joint = bm.fit_joint(concat(small, seen), bm.JointMixingLaw(exponent=EXPONENT), seed=seed, **nuts)
        draws = bm.predict(bm.joint_at(joint, SIZES["60m"]), held.mixtures, seed=seed).transpose("sample", "mixture", "domain")
        rows.append({"method": "joint", "seed": seed, "seconds": t["seconds"], "health": str(bm.health(joint).ok),
                     **score(draws.to_numpy(), draws.mean("sample").to_numpy(), observed)})  # fmt: skip
        with timed() as t:
            alone = bm.fit(seen, bm.MixingLaw(exponent=EXPONENT), seed=seed, discrepancy=None, **nuts)
        draws = bm.predict(alone, held.mixtures, seed=seed).transpose("sample", "mixture", "domain")
        rows.append({"method": "mixing@60M", "seed": seed, "seconds": t["seconds"], "health": str(bm.health(alone).ok),
                     **score(draws.to_numpy(), draws.mean("sample").to_numpy(), observed)})  # fmt: skip
        with timed() as t:
            paper = bm.fit(seen, bm.MixingLaw(exponent=1.0), method="paper", seed=seed)
        mean = bm.predict(paper, held.mixtures, kind="mean").mean("sample").transpose("mixture", "domain").to_numpy()
        rows.append({"method": "paper@60M", "seed": seed, "seconds": t["seconds"], "health": "-", **score(None, mean, observed)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one seed, short chains (a few minutes)")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    seeds = [0] if args.quick else list(range(args.seeds))
    print(f"{machine()}; load average {os.getloadavg()[0]:.2f}")
    rows = [row for seed in seeds for row in run(seed, args.quick)]
    print_table(rows, ["method", "seed", "coverage90", "width90", "mae", "spearman", "seconds", "health"],
                f"RegMix 60M: {N_SEEN} 60M runs seen (+512 1M runs for the joint law), 224 predicted")  # fmt: skip

    def mean_of(method: str, key: str) -> float | None:
        values = [r[key] for r in rows if r["method"] == method and key in r]
        return float(np.mean(values)) if values else None

    figures = {}
    for method, prefix in (("joint", "cross_scale"), ("mixing@60M", "mixing60m"), ("paper@60M", "paper60m")):
        for key in ("coverage90", "width90", "mae", "spearman"):
            figures[f"{prefix}_{key}"] = mean_of(method, key)
    figures["seeds"] = len(seeds)
    print_json(figures)


if __name__ == "__main__":
    main()

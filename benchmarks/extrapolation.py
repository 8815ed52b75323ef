"""Are the intervals honest where the team acts on them? Extrapolation in mixture space and in scale.

Side by side in one run:

* **Mixture regions (RegMix 1M).** For each of Pile-CC, GitHub and ArXiv: fit on the 512 train
  runs whose share of that domain is below its 75th percentile (384 runs), predict the 1M test
  runs above it. Methods: the Bayesian mixing law alone (power features, exponent 0.5, NUTS),
  the same law with the mixture-space discrepancy (``fit(..., discrepancy=True)``: a Gaussian
  process on the law's residuals, scaled by region backtests), and the paper's point-fit protocol
  (exponent 1, Huber + L-BFGS, plug-in noise). Figures: 90% coverage of the observed test losses
  (pooled over runs, validation domains and regions), mean 90% width, MAE, and Spearman between
  predicted and observed losses (per region and validation domain, then averaged). Full mode
  predicts all 13 validation losses; ``--quick`` only the region's own domain.
* **Scale (Gemstones).** The protocol of ``benchmarks/gemstones.py``: fit the joint nested law on
  the models of at most 400M parameters and 100B tokens, predict the 350B-token loss of the 10
  larger models; beside it the paper protocol.

* **The paper's setting at its largest size (Data Mixing Laws, 5 domains).** The 26 mixtures'
  curves at 70M, 160M and 305M (18.9M-201.5M non-embedding parameters), steps 3k-30k (longer
  runs cut at 30k), aggregated to the 5 coarse validation losses (weighted means of the 22 Pile
  subsets; the 22 subsets would be 4.4x the curves for a fit that already takes minutes);
  ``fit_nested`` (joint model) then ``predict_target`` at 410M (302.3M) and 30k steps (31.5B
  tokens), against the observed 410M runs: 90% coverage, mean width, MAPE of the 130 losses;
  over the 325 pairs of mixtures, the total loss (Pile-weighted sum over the 22 subsets, the
  same for truth and prediction): ``P(a < b)`` from the draws, the share of pairs called with
  ``P >= 0.9`` and right, and the share of such calls that are wrong. Beside it the paper
  protocol (``paper_nested_predict``, as in ``benchmarks/gemstones.py``; then also its mixing
  law, ``fit(..., method="paper")``, on those predictions): MAPE and plain ranking accuracy.
  Also each chain alone, as a diagnostic where the chains disagree. Full mode only: the joint
  fit alone outlasts ``--quick``'s 3 minutes on 2 cores (its keys are ``null`` there).

* **Across model sizes (RegMix 1M -> 60M).** ``benchmarks/cross_scale.py``'s protocol, seed 0:
  the joint mixture x size law (``fit_joint``) on the 512 1M train runs plus 32 of the 256 60M
  runs, read at 60M (``joint_at``), predicts the other 224 60M runs; beside it the mixing law and
  the paper protocol on the 32 60M runs alone. Full mode only (a 3-5 minute NUTS fit).

Usage: ``python benchmarks/extrapolation.py [--quick] [--only regions|cross_scale|gemstones|mixinglaws]``.
The last line is one JSON object (the keys of parts not run are ``null``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import warnings

import numpy as np
import pandas as pd
import xarray as xr
from _common import SHARED_DATA, machine, print_json, print_table, timed
from scipy.stats import spearmanr

import bayesmix as bm
from bayesmix.errors import SamplerHealthWarning

REGMIX = SHARED_DATA / "regmix"
REGIONS = ("pile_cc", "github", "arxiv")
EXPONENT = 0.5  # the exponent benchmarks/regmix.py selects by CV on these runs
Z90 = 1.6448536269514722
MIXINGLAWS = SHARED_DATA / "mixinglaws_2mix_5mix"
#: non-embedding parameters of the model-size labels (the README, from the authors' pipeline/utils.py)
MIXINGLAWS_SIZES = {"70M": 18.9e6, "160M": 85.1e6, "305M": 201.5e6, "410M": 302.3e6, "1B": 805.7e6}
MIXINGLAWS_FIT = ("70M", "160M", "305M")
MIXINGLAWS_TARGET = "410M"
MIXINGLAWS_STEP = 30_000  # the common last step of every run (longer runs are cut here)
TOKENS_PER_STEP = 1_048_576  # 4096 x 256, the authors' BSZ
CONFIDENT = 0.9
#: a chain whose mean log density is this far below the best chain's is stuck in a minor mode
STUCK_LOGP = 10.0
PARTS = ("regions", "cross_scale", "gemstones", "mixinglaws")
REGION_KEYS = [
    *(f"region_{k}" for k in ("coverage90", "spearman", "width90", "mae")),
    *(f"region_law_{k}" for k in ("coverage90", "spearman", "mae")),
    *(f"region_paper_{k}" for k in ("coverage90", "spearman", "mae")),
]
CROSS_SCALE_KEYS = [
    f"{prefix}_{key}"
    for prefix in ("cross_scale", "mixing60m", "paper60m")
    for key in ("coverage90", "spearman", "width90", "mae")
]
GEMSTONES_KEYS = ["gemstones_coverage90", "gemstones_width90", "gemstones_mape", "paper_mape"]
MIXINGLAWS_KEYS = [
    "mixinglaws_coverage90",
    "mixinglaws_width90",
    "mixinglaws_mape",
    "mixinglaws_pairs_ordered",
    "mixinglaws_confident_wrong",
    "mixinglaws_pairs_right",
    "mixinglaws_spearman",
    "mixinglaws_max_rhat",
    "mixinglaws_fit_s",
    "mixinglaws_stuck_chains",
    "mixinglaws_paper_mape",
    "mixinglaws_paper_pairs_right",
    "mixinglaws_paper_spearman",
    "mixinglaws_paper_s",
]


def load(split: str) -> bm.RunTable:
    return bm.RunTable.from_joined(
        REGMIX / f"{split}_mixture_1m.csv", REGMIX / f"{split}_pile_loss_1m.csv", renormalise=True
    )


def region(train: bm.RunTable, test: bm.RunTable, domain: str, quick: bool) -> tuple[bm.RunTable, bm.RunTable]:
    cut = float(np.quantile(train.mixtures[domain], 0.75))
    a = train.subset(np.flatnonzero(train.mixtures[domain].to_numpy() < cut))
    b = test.subset(np.flatnonzero(test.mixtures[domain].to_numpy() > cut))
    if quick:
        a, b = a.select_domains([domain]), b.select_domains([domain])
    return a, b


def scores(draws: np.ndarray, observed: np.ndarray) -> dict[str, np.ndarray]:
    """Per test run and domain: inside the 90% interval, its width, the error of the mean."""
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
    mean = draws.mean(axis=0)
    spear = [spearmanr(mean[:, i], observed[:, i])[0] for i in range(observed.shape[1])]
    return {
        "inside": ((observed >= lo) & (observed <= hi)).ravel(),
        "width": (hi - lo).ravel(),
        "error": np.abs(mean - observed).ravel(),
        "spearman": np.asarray(spear),
    }


def mixture_regions(quick: bool, settings: dict) -> tuple[list[dict], dict]:
    train, test = load("train"), load("test")
    pooled: dict[str, dict[str, list]] = {}
    rows = []
    for domain in REGIONS:
        a, b = region(train, test, domain, quick)
        observed = b.losses.to_numpy()
        print(f"\nregion {domain}: fit on {a.n_runs} runs (share < 75th pct), predict {b.n_runs} test runs")
        fits = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplerHealthWarning)
            law = bm.MixingLaw(exponent=EXPONENT)
            with timed() as t:
                fits["law alone"] = bm.fit(a, law, seed=0, discrepancy=None, **settings)
            seconds = {"law alone": t["seconds"]}
            with timed() as t:
                fits["law + discrepancy"] = bm.fit(a, law, discrepancy=True, seed=0, **settings)
            seconds["law + discrepancy"] = t["seconds"]
            with timed() as t:
                fits["paper protocol"] = bm.fit(
                    a, bm.MixingLaw(), method="paper", paper_inits=20 if quick else 200, seed=0
                )
            seconds["paper protocol"] = t["seconds"]
        for name, idata in fits.items():
            draws = bm.predict(idata, b.mixtures, kind="predictive", seed=0).values
            s = scores(draws, observed)
            for key, value in s.items():
                pooled.setdefault(name, {}).setdefault(key, []).append(value)
            rows.append(
                {
                    "region": domain,
                    "method": name,
                    "coverage90": float(s["inside"].mean()),
                    "width90": float(s["width"].mean()),
                    "mae": float(s["error"].mean()),
                    "spearman": float(np.mean(s["spearman"])),
                    "fit_s": seconds[name],
                }
            )
        spec = bm.fitted_spec(fits["law + discrepancy"]).extra["discrepancy"]
        print(
            f"  discrepancy: length scale {spec['lengthscale']:.3f} shares, amplitude "
            f"{np.round(spec['sd'], 3).tolist()} nats"
        )
    totals = {}
    for name, parts in pooled.items():
        totals[name] = {
            "coverage90": float(np.concatenate(parts["inside"]).mean()),
            "width90": float(np.concatenate(parts["width"]).mean()),
            "mae": float(np.concatenate(parts["error"]).mean()),
            "spearman": float(np.concatenate(parts["spearman"]).mean()),
        }
    return rows, totals


def gemstones(quick: bool) -> dict:
    from gemstones import MAX_TRAIN_PARAMS, MAX_TRAIN_TOKENS, evaluate_bayes, load_gemstones

    from bayesmix.inference.paper_scaling import paper_nested_predict

    data = load_gemstones()
    small = data[data["total_params"] <= MAX_TRAIN_PARAMS]
    table = bm.CurveTable.from_long(small[small["tokens"] <= MAX_TRAIN_TOKENS].drop(columns=["step"]))
    large = data[data["total_params"] > MAX_TRAIN_PARAMS]
    final = large[large["tokens"] == large.groupby("run")["tokens"].transform("max")]
    targets = final[["run", "domain", "loss", "tokens", "model_size", "total_params"]].reset_index(drop=True)
    settings = {"draws": 300, "tune": 300, "chains": 2} if quick else {"draws": 1000, "tune": 1000, "chains": 4}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = bm.fit_nested(table, seed=0, **settings)
        bayes = evaluate_bayes(fitted, targets, 0)
    paper = paper_nested_predict(
        table, targets["model_size"].unique(), float(targets["tokens"].max()), n_inits=10 if quick else 50, seed=0
    ).rename(columns={"loss": "paper"})
    merged = targets.merge(bayes, on=["run", "domain"]).merge(
        paper[["domain", "model_size", "paper"]], on=["domain", "model_size"]
    )
    inside = (merged["loss"] >= merged["lower"]) & (merged["loss"] <= merged["upper"])
    return {
        "gemstones_coverage90": float(inside.mean()),
        "gemstones_width90": float((merged["upper"] - merged["lower"]).mean()),
        "gemstones_mape": float(100 * ((merged["median"] - merged["loss"]).abs() / merged["loss"]).mean()),
        "paper_mape": float(100 * ((merged["paper"] - merged["loss"]).abs() / merged["loss"]).mean()),
    }


def load_mixinglaws_5mix() -> tuple[pd.DataFrame, pd.Series]:
    """The 5-domain Data Mixing Laws curves, aggregated to the 5 coarse validation losses.

    Reads ``mixinglaws_2mix_5mix/mixinglaws_5mix_long.csv`` and ``pile_valid_weights.csv`` in
    place. Drops run ids above 900 (the off-grid runs 998/999, as the authors' loaders do) and
    every checkpoint that lacks any of the 22 Pile subsets (5 checkpoints of ``70M:3``). Each
    coarse loss is the ``weight``-weighted mean of its group's subsets.

    Returns
    -------
    (frame, group_weights)
        ``frame``: one row per run, coarse domain and checkpoint, with ``run``, ``domain``,
        ``loss``, ``step``, ``tokens`` (step x 1,048,576), ``size_label`` (70M ... 1B),
        ``model_size`` (non-embedding parameters) and the run's ``mix_<domain>`` shares.
        ``group_weights``: each coarse domain's share of the Pile validation weights (sums to
        1), so ``sum_g w_g L_g`` is the weighted sum over all 22 subsets.
    """
    raw = pd.read_csv(MIXINGLAWS / "mixinglaws_5mix_long.csv")
    weights = pd.read_csv(MIXINGLAWS / "pile_valid_weights.csv")
    raw = raw[raw["run"].str.split(":").str[1].astype(int) <= 900]
    complete = raw.groupby(["run", "step"])["domain"].transform("nunique") == len(weights)
    raw = raw[complete].merge(weights, on="domain", validate="many_to_one")
    raw["weighted"] = raw["loss"] * raw["weight"]
    mix = [c for c in raw.columns if c.startswith("mix_")]
    keys = ["run", "model_size", "step", "tokens", "group_5mix", *mix]
    frame = raw.groupby(keys, as_index=False).agg(weighted=("weighted", "sum"), weight=("weight", "sum"))
    frame["loss"] = frame["weighted"] / frame["weight"]
    frame = frame.rename(columns={"group_5mix": "domain", "model_size": "size_label"})
    frame["model_size"] = frame["size_label"].map(MIXINGLAWS_SIZES)
    frame = frame[["run", "domain", "loss", "step", "tokens", "size_label", "model_size", *mix]]
    group_weights = weights.groupby("group_5mix")["weight"].sum()
    return frame.reset_index(drop=True), group_weights / group_weights.sum()


def pair_scores(draws: np.ndarray | None, point: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Over all pairs of mixtures: how well the total losses are ordered.

    ``draws`` (sample, mixture) give ``P(a < b)`` per pair; a pair is a confident call when
    that probability is at least 0.9 either way. ``point`` (mixture) is a point prediction
    (the posterior median, or the paper protocol's number) for the plain ranking figures.
    """
    a, b = np.triu_indices(len(truth), k=1)
    lower = truth[a] < truth[b]
    out = {
        "pairs_right": float(np.mean((point[a] < point[b]) == lower)),
        "spearman": float(spearmanr(point, truth)[0]),
    }
    if draws is not None:
        p = (draws[:, a] < draws[:, b]).mean(axis=0)
        confident = (p >= CONFIDENT) | (p <= 1 - CONFIDENT)
        right = confident & ((p >= CONFIDENT) == lower)
        out["pairs_ordered"] = float(right.mean())
        out["confident"] = float(confident.mean())
        out["confident_wrong"] = float((confident & ~right).sum() / confident.sum()) if confident.any() else None
    return out


def mixinglaws(settings: dict, n_inits: int) -> tuple[list[dict], list[dict], dict]:
    """The paper's 5-domain setting at its largest size: fit 70M-305M, predict the 26 mixtures at 410M/30k."""
    from bayesmix.inference.paper_scaling import paper_nested_predict

    frame, group_weights = load_mixinglaws_5mix()
    frame = frame[frame["step"] <= MIXINGLAWS_STEP]
    fit_part = frame[frame["size_label"].isin(MIXINGLAWS_FIT)]
    table = bm.CurveTable.from_long(fit_part.drop(columns=["step", "size_label"]))
    mixtures, domains = table.mixtures, table.domains
    target = frame[(frame["size_label"] == MIXINGLAWS_TARGET) & (frame["step"] == MIXINGLAWS_STEP)]
    # each observed 410M run is one of the fitted mixtures (the same 26-mixture design)
    shares = target[[f"mix_{c}" for c in mixtures.columns]].to_numpy()
    nearest = np.abs(shares[:, None, :] - mixtures.to_numpy()[None, :, :]).max(axis=2)
    assert (nearest.min(axis=1) < 1e-6).all()
    target = target.assign(mixture=mixtures.index[nearest.argmin(axis=1)])
    truth = target.pivot(index="mixture", columns="domain", values="loss").loc[mixtures.index, domains]
    observed = truth.to_numpy()
    composition = group_weights[domains].to_numpy()
    observed_total = observed @ composition
    size, tokens = MIXINGLAWS_SIZES[MIXINGLAWS_TARGET], float(MIXINGLAWS_STEP * TOKENS_PER_STEP)
    print(
        f"\nmixinglaws 5-domain: fit {len(table.runs)} runs ({', '.join(MIXINGLAWS_FIT)}; {len(mixtures)} "
        f"mixtures; {len(table.frame)} coarse losses, steps 3k-30k), predict the {len(truth)} mixtures' "
        f"{len(domains)} coarse losses at {MIXINGLAWS_TARGET} ({size:.4g} non-embedding) and step "
        f"{MIXINGLAWS_STEP} ({tokens:.4g} tokens)"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerHealthWarning)
        with timed() as t_fit:
            fitted = bm.fit_nested(table, seed=0, **settings)
        draws = bm.predict_target(
            fitted, model_size=size, tokens=tokens, composition=dict(zip(domains, composition, strict=True)), seed=0
        )
    health = fitted.health["joint"]
    print(f"  bayesmix joint fit {t_fit['seconds']:.0f} s; {health}".replace("\n", "; "))
    with timed() as t_paper:
        paper = paper_nested_predict(table, [size], tokens, n_inits=n_inits, seed=0)
    paper_point = paper.pivot(index="mixture", columns="domain", values="loss").loc[mixtures.index, domains]
    # the paper's last stage: its mixing law (point fit) on the nested predictions of the 26 mixtures
    with timed() as t_mix:
        predicted_runs = bm.RunTable.from_wide(
            pd.concat([mixtures.add_prefix("mix_"), paper_point], axis=1).rename_axis("run").reset_index()
        )
        law_fit = bm.fit(predicted_runs, bm.MixingLaw(), method="paper", paper_inits=4 * n_inits, seed=0)
        paper_law = bm.predict(law_fit, mixtures, kind="mean").values.mean(axis=0)

    def row(name: str, values: np.ndarray, total_draws: np.ndarray | None, point: np.ndarray, seconds=None):
        out: dict = {"method": name}
        if values.ndim == 3:
            lo, hi = np.quantile(values, [0.05, 0.95], axis=0)
            out["coverage90"] = float(((observed >= lo) & (observed <= hi)).mean())
            out["width90"] = float((hi - lo).mean())
            values = np.median(values, axis=0)
        out["mape"] = float(100 * np.mean(np.abs(values - observed) / observed))
        out["bias"] = float(np.mean(values - observed))
        out.update(pair_scores(total_draws, point, observed_total))
        out["seconds"] = seconds
        return out

    per_domain = draws.sel(domain=domains).values
    total = draws.sel(domain="total").values
    rows = [
        row("bayesmix joint", per_domain, total, np.median(total, axis=0), t_fit["seconds"]),
        row("paper protocol", paper_point.to_numpy(), None, paper_point.to_numpy() @ composition, t_paper["seconds"]),
        row(
            "paper + its mixing law",
            paper_law,
            None,
            paper_law @ composition,
            t_paper["seconds"] + t_mix["seconds"],
        ),
    ]
    # the chains one at a time: where they disagree (max r_hat > 1.01), this shows what each says,
    # and the mean log density says which of them sit in the posterior's bulk
    def chains_alone(kept: list[int]) -> xr.DataArray:
        alone = dataclasses.replace(fitted, scaling=fitted.scaling.isel(chain=kept))
        return bm.predict_target(
            alone, model_size=size, tokens=tokens, composition=dict(zip(domains, composition, strict=True)), seed=0
        )

    stats = fitted.scaling.sample_stats
    logp = stats["logp" if "logp" in stats else "lp"].mean("draw").values
    chains = []
    for chain in range(len(logp)):
        part = chains_alone([chain])
        chain_total = part.sel(domain="total").values
        scored = row(f"chain {chain}", part.sel(domain=domains).values, chain_total, np.median(chain_total, axis=0))
        posterior = fitted.scaling.posterior.isel(chain=chain)
        scored["mean_logp"] = float(logp[chain])
        scored["run_sd"] = float(posterior["run_sd"].mean())
        scored["size_slope"] = float(posterior["slope_model_size"].median())
        chains.append(scored)
    kept = [c for c in range(len(logp)) if logp[c] >= logp.max() - STUCK_LOGP]
    if len(kept) < len(logp):
        part = chains_alone(kept)
        kept_total = part.sel(domain="total").values
        rows.insert(
            1,
            row(
                f"bayesmix joint, chains {kept} only (diagnostic)",
                part.sel(domain=domains).values,
                kept_total,
                np.median(kept_total, axis=0),
            ),
        )
    figures = {
        "mixinglaws_coverage90": rows[0]["coverage90"],
        "mixinglaws_width90": rows[0]["width90"],
        "mixinglaws_mape": rows[0]["mape"],
        "mixinglaws_pairs_ordered": rows[0]["pairs_ordered"],
        "mixinglaws_confident_wrong": rows[0]["confident_wrong"],
        "mixinglaws_pairs_right": rows[0]["pairs_right"],
        "mixinglaws_spearman": rows[0]["spearman"],
        "mixinglaws_max_rhat": float(health.max_rhat),
        "mixinglaws_fit_s": t_fit["seconds"],
        "mixinglaws_stuck_chains": len(logp) - len(kept),
        "mixinglaws_paper_mape": rows[-2]["mape"],
        "mixinglaws_paper_pairs_right": rows[-2]["pairs_right"],
        "mixinglaws_paper_spearman": rows[-2]["spearman"],
        "mixinglaws_paper_s": t_paper["seconds"],
    }
    return rows, chains, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="own domain per region, short chains (< 3 minutes)")
    parser.add_argument("--only", choices=PARTS, help="run one part only (the others' keys are null)")
    args = parser.parse_args()
    parts = [args.only] if args.only else list(PARTS)
    settings = {"draws": 300, "tune": 300, "chains": 2} if args.quick else {"draws": 1000, "tune": 1000, "chains": 4}
    print(f"extrapolation benchmark ({'quick' if args.quick else 'full'}); {machine()}; load {os.getloadavg()[0]:.2f}")
    figures: dict = dict.fromkeys(REGION_KEYS + CROSS_SCALE_KEYS + GEMSTONES_KEYS + MIXINGLAWS_KEYS)
    with timed() as total:
        if "regions" in parts:
            rows, totals = mixture_regions(args.quick, settings)
            print_table(rows, ["region", "method", "coverage90", "width90", "mae", "spearman", "fit_s"], "Mixture regions")
            pooled = [{"method": k, **v} for k, v in totals.items()]
            print_table(pooled, ["method", "coverage90", "width90", "mae", "spearman"], "Pooled over the three regions")
            product, alone, paper = totals["law + discrepancy"], totals["law alone"], totals["paper protocol"]
            figures.update(
                {
                    "region_coverage90": product["coverage90"],
                    "region_spearman": product["spearman"],
                    "region_width90": product["width90"],
                    "region_mae": product["mae"],
                    "region_law_coverage90": alone["coverage90"],
                    "region_law_spearman": alone["spearman"],
                    "region_law_mae": alone["mae"],
                    "region_paper_coverage90": paper["coverage90"],
                    "region_paper_spearman": paper["spearman"],
                    "region_paper_mae": paper["mae"],
                }
            )
        if "gemstones" in parts:
            with timed() as t:
                scale = gemstones(args.quick)
            print(
                f"\nGemstones (joint nested law, no scale discrepancy yet): 90% coverage "
                f"{scale['gemstones_coverage90']:.2f}, width {scale['gemstones_width90']:.3f} nats, MAPE "
                f"{scale['gemstones_mape']:.2f}% vs paper {scale['paper_mape']:.2f}% ({t['seconds']:.0f} s)"
            )
            figures.update(scale)
        if "cross_scale" in parts and args.quick:
            print(
                "\ncross-scale RegMix (joint mixture x size law): full mode only (its NUTS fit on 544 runs x 13 "
                "domains takes 3-5 min on 2 cores; benchmarks/cross_scale.py --quick runs it alone); keys null"
            )
        elif "cross_scale" in parts:
            import cross_scale

            with timed() as t:
                rows = cross_scale.run(0, quick=False)
            print_table(
                rows,
                ["method", "coverage90", "width90", "mae", "spearman", "seconds", "health"],
                "cross-scale RegMix: 512 1M + 32 60M runs seen, 224 60M runs predicted (absolute losses)",
            )
            for row in rows:
                prefix = {"joint": "cross_scale", "mixing@60M": "mixing60m", "paper@60M": "paper60m"}[row["method"]]
                figures.update({f"{prefix}_{k}": row.get(k) for k in ("coverage90", "spearman", "width90", "mae")})
            print(f"cross-scale part: {t['seconds']:.0f} s")
        if "mixinglaws" in parts and args.quick:
            print(
                "\nmixinglaws 5-domain (410M/30k): full mode only (the joint fit on 78 runs takes about 75 s at "
                "2 x 300 draws and 230 s at 4 x 1000 on 2 cores, the paper protocol 100 s); keys null"
            )
        elif "mixinglaws" in parts:
            with timed() as t:
                rows, chains, found = mixinglaws(settings, n_inits=50)
            columns = ["coverage90", "width90", "mape", "bias", "pairs_ordered", "confident", "confident_wrong"]
            columns += ["pairs_right", "spearman"]
            print_table(
                rows,
                ["method", *columns, "seconds"],
                "mixinglaws 5-domain at 410M / 30k steps: 26 mixtures x 5 coarse losses; pairs: 325 pairs of "
                "total losses (Pile-weighted sum over the 22 subsets)",
            )
            print_table(
                chains,
                ["method", *columns, "mean_logp", "run_sd", "size_slope"],
                "the same prediction from each chain alone (diagnostic: mean_logp = mean log density of its "
                "draws, run_sd = mean per-run effect sd, size_slope = median loss slope in log model size)",
            )
            print(f"mixinglaws part: {t['seconds']:.0f} s")
            figures.update(found)
    print(f"total {total['seconds']:.0f} s; load {os.getloadavg()[0]:.2f}")
    figures["seconds"] = total["seconds"]
    print_json(figures)

if __name__ == "__main__":
    main()

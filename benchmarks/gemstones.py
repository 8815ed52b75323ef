"""Nested scaling laws on the Gemstones loss curves: predict the final loss of larger models.

Data: ``../shared/data/gemstones`` (McLeish et al. 2025; 22 models, 35 checkpoints every 10B
tokens up to 350B, two held-out evaluation sets: FineWeb-Edu and DCLM). It is read in place,
never copied.

Protocol: fit on the models of up to 400M parameters (total; the 12 models of 48M-117M) and on
their checkpoints up to 100B tokens; predict the loss at the final checkpoint (350B tokens) of
every larger model (10 models, 475M-2.0B), on both evaluation sets. ``model_size`` is the
non-embedding parameter count ``depth (15 w^2 + 2 w) + w`` (attention 4w^2 + SwiGLU MLP 11w^2
+ two norms per layer, final norm), which the Gemstones architecture gives exactly. All runs
share one training mixture (Dolma), so the nested pipeline stops after the size stage.

Printed: per model and evaluation set the observed loss, the Bayesian median and 90% interval,
the paper protocol's point prediction, and relative errors; then MAPE and interval coverage.
The last line is one JSON object: ``mape``, ``coverage90``, ``paper_mape``, ``fit_seconds``.

Usage: ``python benchmarks/gemstones.py [--quick] [--staged]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmix.data.curves import CurveTable
from bayesmix.errors import SamplerHealthWarning
from bayesmix.inference.nested import fit_nested, predict_target
from bayesmix.inference.nested_calibration import calibrate_extrapolation
from bayesmix.inference.paper_scaling import paper_nested_predict
from bayesmix.inference.predict import interval

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gemstones"
FILES = {
    "fineweb_edu": "gemstones_fineweb_edu_eval_loss_by_checkpoint.csv",
    "dclm": "gemstones_fineweb_dclm_eval_loss_by_checkpoint.csv",
}
MAX_TRAIN_PARAMS = 4e8
MAX_TRAIN_TOKENS = 100e9 + 1e8  # the 100B checkpoint is at 100.03B tokens


def load_gemstones() -> pd.DataFrame:
    """Both evaluation sets as one long table (``run``, ``domain``, ``loss``, ``tokens``, sizes, ``mix_dolma``)."""
    parts = []
    for domain, name in FILES.items():
        raw = pd.read_csv(DATA / name)
        width, depth = raw["width"].astype(float), raw["depth"].astype(float)
        parts.append(
            pd.DataFrame(
                {
                    "run": raw["run_name"],
                    "domain": domain,
                    "loss": raw["eval_loss"],
                    "tokens": raw["tokens"].astype(float),
                    "step": raw["step"],
                    "model_size": depth * (15 * width**2 + 2 * width) + width,
                    "total_params": raw["params"].astype(float),
                    "mix_dolma": 1.0,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Aligned text table."""

    def fmt(value) -> str:
        if isinstance(value, float | np.floating):
            return f"{value:.4f}" if abs(value) < 100 else f"{value:.3g}"
        return str(value)

    widths = {c: max(len(c), *(len(fmt(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for row in rows:
        print("  ".join(fmt(row[c]).ljust(widths[c]) for c in columns))


def evaluate_bayes(fitted, targets: pd.DataFrame, seed: int, discrepancy=None) -> pd.DataFrame:
    """Median and 90% interval of each target model's final loss (one row per model and domain)."""
    rows = []
    for run, part in targets.groupby("run", sort=False):
        size, tokens = float(part["model_size"].iloc[0]), float(part["tokens"].iloc[0])
        draws = predict_target(fitted, model_size=size, tokens=tokens, seed=seed, discrepancy=discrepancy)
        summary = interval(draws.isel(mixture=0), prob=0.9)
        for _, row in part.iterrows():
            s = summary.sel(domain=row["domain"])
            rows.append(
                {
                    "run": run,
                    "domain": row["domain"],
                    "median": float(s["median"]),
                    "lower": float(s["lower"]),
                    "upper": float(s["upper"]),
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short chains, few paper starts (< 1 minute)")
    parser.add_argument(
        "--staged", action="store_true", help="also run the staged (paper-order) Bayesian fit"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    data = load_gemstones()
    small = data[data["total_params"] <= MAX_TRAIN_PARAMS]
    table = CurveTable.from_long(small[small["tokens"] <= MAX_TRAIN_TOKENS].drop(columns=["step"]))
    large = data[data["total_params"] > MAX_TRAIN_PARAMS]
    final = large[large["tokens"] == large.groupby("run")["tokens"].transform("max")]
    targets = final[["run", "domain", "loss", "tokens", "model_size", "total_params"]].reset_index(drop=True)
    settings = (
        {"draws": 300, "tune": 300, "chains": 2} if args.quick else {"draws": 1000, "tune": 1000, "chains": 4}
    )
    n_inits = 10 if args.quick else 50
    print(f"Gemstones nested scaling laws ({'quick' if args.quick else 'full'} mode)")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}"
    )
    print(
        f"fit: {len(table.runs)} models ({table.runs['model_size'].min():.3g}-{table.runs['model_size'].max():.3g} "
        f"non-embedding params), {len(table.frame)} checkpoint losses up to "
        f"{table.frame['tokens'].max():.3g} tokens; predict {targets['run'].nunique()} larger models at "
        f"{targets['tokens'].max():.3g} tokens"
    )
    methods = ["joint", *(["staged"] if args.staged else [])]
    reported = ["joint", "calibrated", *(["staged"] if args.staged else [])]
    results: dict[str, pd.DataFrame] = {}
    fit_seconds: dict[str, float] = {}
    health = {}
    for method in methods:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SamplerHealthWarning)
            t0 = time.perf_counter()
            fitted = fit_nested(table, method=method, seed=args.seed, **settings)
            results[method] = evaluate_bayes(fitted, targets, args.seed)
            fit_seconds[method] = time.perf_counter() - t0
        health[method] = {k: str(v) for k, v in fitted.health.items()}
        if method == "joint":
            # the joint model with a model-discrepancy term calibrated by a backtest on the
            # largest fitted sizes (bayesmix.inference.nested_calibration)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SamplerHealthWarning)
                calibration = calibrate_extrapolation(table, holdout_sizes=3, seed=args.seed, **settings)
            results["calibrated"] = evaluate_bayes(fitted, targets, args.seed, discrepancy=calibration)
            fit_seconds["calibrated"] = fit_seconds["joint"] + time.perf_counter() - t0
            health["calibrated"] = {"backtest": f"kappa {calibration.kappa:.4f} per e-fold"}
            print(f"backtest on the 3 largest fitted sizes: kappa = {calibration.kappa:.4f} per e-fold")
            print(calibration.residuals.round(4).to_string(index=False))
        for warning in caught:
            if issubclass(warning.category, SamplerHealthWarning):
                print(f"[{method}] {warning.message}")
    t0 = time.perf_counter()
    paper = paper_nested_predict(
        table, targets["model_size"].unique(), float(targets["tokens"].max()), n_inits=n_inits, seed=args.seed
    )
    paper_seconds = time.perf_counter() - t0
    paper = paper.rename(columns={"loss": "paper"})
    merged = targets.merge(paper[["domain", "model_size", "paper"]], on=["domain", "model_size"])
    for method, frame in results.items():
        merged = merged.merge(
            frame.rename(columns={c: f"{method}_{c}" for c in ("median", "lower", "upper")}),
            on=["run", "domain"],
        )
    merged = merged.sort_values(["total_params", "domain"]).reset_index(drop=True)
    figures: dict[str, float] = {}
    for method in reported:
        rel = (merged[f"{method}_median"] - merged["loss"]) / merged["loss"]
        merged[f"{method}_err%"] = 100 * rel
        inside = (merged["loss"] >= merged[f"{method}_lower"]) & (merged["loss"] <= merged[f"{method}_upper"])
        merged[f"{method}_in90"] = np.where(inside, "yes", "no")
        figures[f"{method}_mape"] = float(100 * rel.abs().mean())
        figures[f"{method}_coverage90"] = float(inside.mean())
        figures[f"{method}_width90"] = float((merged[f"{method}_upper"] - merged[f"{method}_lower"]).mean())
    paper_rel = (merged["paper"] - merged["loss"]) / merged["loss"]
    merged["paper_err%"] = 100 * paper_rel
    rows = merged.assign(params=merged["total_params"] / 1e6).to_dict("records")
    for method in reported:
        print(f"\nBayesian {method} model: 90% equal-tailed intervals of each model's final loss")
        print_table(
            rows,
            [
                "run",
                "params",
                "domain",
                "loss",
                f"{method}_median",
                f"{method}_lower",
                f"{method}_upper",
                f"{method}_in90",
                f"{method}_err%",
                "paper",
                "paper_err%",
            ],
        )
    print("\n(params in millions, total; loss in nats/token at 350B tokens; err% = (pred - obs) / obs)")
    print("\nSummary over", len(merged), "(model, evaluation set) pairs")
    for method in reported:
        print(
            f"  bayes {method:7s}: MAPE {figures[f'{method}_mape']:.2f}%  coverage90 "
            f"{figures[f'{method}_coverage90']:.2f}  mean 90% width {figures[f'{method}_width90']:.3f} nats  "
            f"fit+predict {fit_seconds[method]:.1f} s  health {health[method]}"
        )
    print(
        f"  paper protocol : MAPE {100 * paper_rel.abs().mean():.2f}%  ({paper_seconds:.1f} s, {n_inits} starts)"
    )
    print(f"  total wall time {time.perf_counter() - started:.1f} s")
    out = {
        "mape": round(figures["joint_mape"], 4),
        "coverage90": round(figures["joint_coverage90"], 4),
        "paper_mape": round(float(100 * paper_rel.abs().mean()), 4),
        "fit_seconds": round(fit_seconds["joint"], 2),
        "calibrated_mape": round(figures["calibrated_mape"], 4),
        "calibrated_coverage90": round(figures["calibrated_coverage90"], 4),
        "calibrated_width90": round(figures["calibrated_width90"], 4),
        "kappa": round(calibration.kappa, 5),
    }
    if args.staged:
        out.update(
            {
                "staged_mape": round(figures["staged_mape"], 4),
                "staged_coverage90": round(figures["staged_coverage90"], 4),
                "staged_fit_seconds": round(fit_seconds["staged"], 2),
            }
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()

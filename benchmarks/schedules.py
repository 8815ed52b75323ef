"""Two-phase mixture schedules on real proxy runs: does the phase law predict them, and which wins?

Trains a sweep of two-phase runs with bayesmix's own trainer on the embedded corpus (three
domains; each run a seeded random pretraining mixture, a seeded random second-phase mixture and a
switch step between 50% and 90% of training; the cosine learning-rate schedule runs over the
whole run). The sweep's ledger is the benchmark's data; the sweep resumes, so a second run of the
script reuses the trained runs.

Then, side by side in one process:

* k-fold held-out prediction of every run's final losses (own-domain validation sets) by the phase
  law (:func:`bayesmix.fit_schedule`) and by the single-phase mixing law fitted to the runs'
  average mixtures (:func:`bayesmix.fit`, what a team gets by ignoring the phases): Spearman
  correlation per domain (mean over domains) and 90% posterior-predictive coverage;
* the two-phase schedule the phase law recommends for the mean loss, with its interval and
  P(beats the best single-phase mixture), and the best single-phase mixture by the same fit;
  both are then trained (same seed) and the measured losses say which won.

Usage: ``python benchmarks/schedules.py [--quick] [--out DIR] [--runs 24] [--workers 2]``.
``--quick`` uses shorter chains (the sweep is the same: it is the data). The last line is one JSON
object with ``phase_spearman``, ``phase_coverage90``, ``single_phase_spearman`` and more.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

DOMAINS = ("code", "dialogue", "encyclopedic")
STUDY = {
    "corpus": {"kind": "embedded", "domains": list(DOMAINS), "train_bytes": 2_000_000, "validation_bytes": 100_000},
    "tokenizer": {"kind": "bpe", "vocab_size": 4096},
    "ladder": "cpu",
    "max_eval_tokens": 8192,
    "train": {"batch_size": 16, "lr": 3e-3, "warmup_steps": 15, "n_evals": 1, "device": "cpu"},
}


def plan(n: int, steps: int, seed: int) -> list:
    """``n`` seeded two-phase runs: shares of at least 0.1 per domain, switch at 50-90% of training."""
    from bayesmix.proxy.plan import RunSpec

    rng = np.random.default_rng(seed)
    runs = []
    for i in range(n):
        first, second = (0.1 + 0.7 * rng.dirichlet(np.ones(len(DOMAINS))) for _ in range(2))
        switch = round(steps * rng.choice([0.5, 0.6, 0.7, 0.8, 0.9]))
        phases = [
            {"start": 0, "mixture": _rounded(first)},
            {"start": switch, "mixture": _rounded(second)},
        ]
        runs.append(RunSpec.make(None, "cpu-xs", steps, seed=0, id=f"phase-{i:02d}", phases=phases))
    return runs


def _rounded(shares: np.ndarray) -> dict[str, float]:
    r = np.round(shares, 4)
    r[-1] = 1.0 - r[:-1].sum()
    return dict(zip(DOMAINS, r.tolist(), strict=True))


def train(study_dir: Path, runs: list, workers: int) -> float:
    """Train the runs that are not finished yet; returns wall seconds."""
    from bayesmix.proxy.executor import LocalProcessExecutor
    from bayesmix.proxy.study import Study
    from bayesmix.proxy.sweep import sweep

    study = Study(study_dir) if (study_dir / "study.yaml").exists() else Study.create(study_dir, STUDY)
    t0 = time.perf_counter()
    report = sweep(study, runs, executor=LocalProcessExecutor(workers, 1), progress=False)
    if report.failed:
        raise SystemExit(f"runs failed: {report.failed}")
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/bayesmix-schedules"))
    p.add_argument("--runs", type=int, default=24)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folds", type=int, default=6)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--train-only", action="store_true", help="train the sweep and stop")
    args = p.parse_args()
    load0 = os.getloadavg()[0]
    runs = plan(args.runs, args.steps, args.seed)
    wall = train(args.out, runs, args.workers)
    print(f"sweep: {len(runs)} two-phase runs ready in {args.out} ({wall:.0f} s of training this time)")
    if args.train_only:
        return
    evaluate(args, runs, load0)


def _settings(quick: bool) -> dict:
    return {"draws": 500, "tune": 500, "chains": 2} if quick else {"draws": 1000, "tune": 1000, "chains": 4}


def cross_validate(table, folds: int, seed: int, settings: dict) -> dict:
    """Held-out final losses by the phase law and by the single-phase law on the average mixture."""
    import bayesmix as bm

    n = table.runs.n_runs
    order = np.random.default_rng(seed).permutation(n)
    actual = table.runs.losses.to_numpy()
    out = {name: {"mean": np.zeros_like(actual), "lower": np.zeros_like(actual), "upper": np.zeros_like(actual)} for name in ("phase", "single")}
    schedules = _schedules(table)
    for k, held in enumerate(np.array_split(order, folds)):
        train = np.setdiff1d(np.arange(n), held)
        sub = table.subset(train)
        t0 = time.perf_counter()
        phase_fit = bm.fit_schedule(sub, seed=seed + k, **settings)
        held_schedules = [schedules[i] for i in held]
        mean = bm.predict_schedule(phase_fit, held_schedules, kind="mean").mean("sample").to_numpy()
        pred = bm.predict_schedule(phase_fit, held_schedules, kind="predictive", seed=seed + k).to_numpy()
        t1 = time.perf_counter()
        single_fit = bm.fit(sub.runs, seed=seed + k, discrepancy=None, **settings)  # the law alone, as fit_schedule
        mixtures = table.runs.mixtures.iloc[held]
        single_mean = bm.predict(single_fit, mixtures, kind="mean").mean("sample").to_numpy()
        single_pred = bm.predict(single_fit, mixtures, kind="predictive", seed=seed + k).to_numpy()
        t2 = time.perf_counter()
        for name, m, p in (("phase", mean, pred), ("single", single_mean, single_pred)):
            out[name]["mean"][held] = m
            out[name]["lower"][held] = np.quantile(p, 0.05, axis=0)
            out[name]["upper"][held] = np.quantile(p, 0.95, axis=0)
        print(f"  fold {k + 1}/{folds}: phase law {t1 - t0:.1f} s, single-phase law {t2 - t1:.1f} s")
    scores = {}
    for name, res in out.items():
        rho = [spearmanr(res["mean"][:, j], actual[:, j]).statistic for j in range(actual.shape[1])]
        inside = (actual >= res["lower"]) & (actual <= res["upper"])
        scores[name] = {
            "spearman": float(np.mean(rho)),
            "spearman_per_domain": [float(r) for r in rho],
            "coverage90": float(inside.mean()),
            "width90": float((res["upper"] - res["lower"]).mean()),
            "mae": float(np.abs(res["mean"] - actual).mean()),
        }
    return scores


def _schedules(table) -> list:
    train = table.runs.train_domains
    out = []
    for i in range(table.runs.n_runs):
        phases = []
        for p in range(table.n_phases):
            if p and table.tails[i, p] <= 1e-6:
                break
            phases.append((float(1.0 - table.tails[i, p]), dict(zip(train, table.phase_mixtures[i, p].tolist(), strict=True))))
        out.append(phases)
    return out


def evaluate(args, runs, load0: float) -> None:
    import bayesmix as bm
    from bayesmix.proxy.plan import RunSpec
    from bayesmix.proxy.study import Study

    study = Study(args.out)
    settings = _settings(args.quick)
    table = bm.PhaseTable.from_ledger(study.ledger, domains=list(DOMAINS))
    table = table.subset([i for i, r in enumerate(table.runs.mixtures.index) if str(r).startswith("phase-")])
    print(f"{table.runs.n_runs} two-phase runs, final losses on {list(DOMAINS)}; {args.folds}-fold cross-validation")
    t0 = time.perf_counter()
    scores = cross_validate(table, args.folds, args.seed, settings)
    cv_s = time.perf_counter() - t0
    print(f"{'held-out prediction':34s} {'Spearman':>9s} {'cov90':>6s} {'width90':>8s} {'MAE':>7s}")
    for name, label in (("phase", "phase law (bayesmix)"), ("single", "single-phase law, average mixture")):
        s = scores[name]
        print(f"{label:34s} {s['spearman']:9.3f} {s['coverage90']:6.3f} {s['width90']:8.4f} {s['mae']:7.4f}")
    per = ", ".join(
        f"{d} {a:.2f} vs {b:.2f}"
        for d, a, b in zip(DOMAINS, scores["phase"]["spearman_per_domain"], scores["single"]["spearman_per_domain"], strict=True)
    )
    print(f"  Spearman per domain (phase vs single): {per}")

    fit = bm.fit_schedule(table, seed=args.seed, **settings)
    recency = fit.posterior["recency"]
    low, high = recency.quantile([0.05, 0.95], ("chain", "draw")).to_numpy()
    print("recency rho per domain (1 = the average mixture; < 1 = the last phase counts more):")
    for d, m, lo, hi in zip(DOMAINS, recency.mean(("chain", "draw")).to_numpy(), low, high, strict=True):
        print(f"  {d:13s} {m:.2f} [{lo:.2f}, {hi:.2f}]")
    best = bm.optimise_schedule(fit, "mean", seed=args.seed)
    print(
        f"recommended schedule: {best.phases[0][1]} then from {best.phases[1][0]:.0%} of tokens {best.phases[1][1]}\n"
        f"  predicted mean loss {best.expected_loss:.4f} [{best.interval[0]:.4f}, {best.interval[1]:.4f}]; "
        f"best single mixture {best.single_mixture}: {best.single_expected_loss:.4f} "
        f"[{best.single_interval[0]:.4f}, {best.single_interval[1]:.4f}]; "
        f"P(schedule beats it) = {best.prob_beats_single:.3f}, gain {best.gain:.4f} "
        f"[{best.gain_interval[0]:.4f}, {best.gain_interval[1]:.4f}]"
    )
    # train both (two seeds each) and measure
    steps = args.steps
    switch = round(best.phases[1][0] * steps)
    check: dict[str, list] = {"schedule": [], "single": []}
    phases = [{"start": 0, "mixture": best.phases[0][1]}, {"start": switch, "mixture": best.phases[1][1]}]
    for seed in (0, 1):  # ids carry a hash of the schedule: another recommendation is another run
        check["schedule"].append(RunSpec.make(None, "cpu-xs", steps, seed=seed, phases=phases))
        check["single"].append(RunSpec.make(best.single_mixture, "cpu-xs", steps, seed=seed))
    train(args.out, check["schedule"] + check["single"], args.workers)
    final = bm.PhaseTable.from_ledger(study.ledger, domains=list(DOMAINS)).runs.losses
    measured = {kind: float(np.mean([final.loc[r.id].mean() for r in runs_])) for kind, runs_ in check.items()}
    seed_gap = {kind: float(abs(final.loc[runs_[0].id].mean() - final.loc[runs_[1].id].mean())) for kind, runs_ in check.items()}
    winner = "schedule" if measured["schedule"] < measured["single"] else "single"
    print(
        f"trained (2 seeds each): schedule {measured['schedule']:.4f} (seed gap {seed_gap['schedule']:.4f}), "
        f"single {measured['single']:.4f} (seed gap {seed_gap['single']:.4f}): {winner} won by "
        f"{abs(measured['schedule'] - measured['single']):.4f} nats"
    )
    # what a mean of two seeded runs may show: the law's loss plus two runs' noise, averaged
    schedules = [best.schedule(), [(0.0, best.single_mixture)]]
    two_runs = sum(
        bm.predict_schedule(fit, schedules, kind="predictive", seed=100 + s).mean("domain")
        for s in (0, 1)
    ) / 2
    low90, high90 = np.quantile(two_runs.to_numpy(), [0.05, 0.95], axis=0)
    inside = {kind: bool(low90[i] <= measured[kind] <= high90[i]) for i, kind in enumerate(("schedule", "single"))}
    for i, kind in enumerate(("schedule", "single")):
        print(
            f"  {kind}: measured {measured[kind]:.4f}, predicted for a 2-seed mean {float(two_runs[:, i].mean()):.4f} "
            f"[{low90[i]:.4f}, {high90[i]:.4f}] -> {'inside' if inside[kind] else 'OUTSIDE'}"
        )
    print(
        json.dumps(
            {
                "phase_spearman": round(scores["phase"]["spearman"], 3),
                "phase_coverage90": round(scores["phase"]["coverage90"], 3),
                "single_phase_spearman": round(scores["single"]["spearman"], 3),
                "single_phase_coverage90": round(scores["single"]["coverage90"], 3),
                "phase_mae": round(scores["phase"]["mae"], 4),
                "single_phase_mae": round(scores["single"]["mae"], 4),
                "recency": [round(float(v), 3) for v in recency.mean(("chain", "draw")).to_numpy()],
                "prob_schedule_beats_single": round(best.prob_beats_single, 3),
                "predicted_gain": round(best.gain, 4),
                "measured_schedule_loss": round(measured["schedule"], 4),
                "measured_single_loss": round(measured["single"], 4),
                "winner": winner,
                "schedule_loss_in_interval": inside["schedule"],
                "single_loss_in_interval": inside["single"],
                "runs": int(table.runs.n_runs),
                "cv_seconds": round(cv_s, 1),
                "load_average_start": round(load0, 2),
            }
        )
    )


if __name__ == "__main__":
    main()

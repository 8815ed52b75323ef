"""Downstream targets on the OLMo model ladder: predict 7B and 13B task accuracies from small runs.

Data: ``../shared/data/olmo_ladder`` (Bhagia et al. 2024, arXiv 2412.04403; read in place, never
copied). Tasks: the paper's 8 (MMLU-test average with the repository's subject weights,
HellaSwag-val, ARC-C-test, ARC-E-test, PIQA, CSQA, SocialIQA, OBQA-test), 5-shot RC accuracy
and task loss (BPB).

Protocol, chosen on the ladder alone (the 7B/13B answers are read only to score):

1. Three nested fits on the 1/2/5/10xC runs: 190M-370M, 190M-760M and 190M-1B (the paper's fit
   set); the seed reruns inform the noise priors only.
2. Ladder validation, leave the largest out: the form's error is calibrated only from backtests
   inside the fitted set and the sizes beyond it are predicted. v1: fit 190M-760M, calibrated by
   the 370M fit's backtest on 760M, predicts 1B and 3B; v2: fit 190M-1B, calibrated by the 370M
   fit's backtests on 760M and 1B and the 760M fit's on 1B, predicts 3B. Each with the
   multi-distance posterior calibration (chosen) and the single-backtest moment calibration
   (baseline). The previous method check (fit 190M-760M, moment calibration on 1B, predict 3B)
   is printed too. ``--ladder-only`` stops here.
3. The answer: the 190M-1B fit, calibrated (:func:`bayesmix.calibrate_downstream`,
   ``method="posterior"``) on every backtest the ladder offers (370M fit -> 760M, 1B, 3B; 760M
   fit -> 1B, 3B; 1B fit -> 3B: 0.5-3.0 e-folds), predicts the 7B-4T (``peteish7-anneal``) and
   13B-5T (mean of the last 5 checkpoints of ``peteish13``) accuracies, beside the same fit with
   the single-backtest moment calibration on 3B (the baseline).

Compared with the paper's two-step point fit run here with the same data (step 1: Huber loss
on log residuals, delta 1e-3, L-BFGS-B from the repository's start; step 2: ``curve_fit`` of the
sigmoid on the checkpoints after the first 10%, moving average of 5, helper point ``(0, 1)``),
and with the paper's published 13B chained errors (``paper_prediction_errors.csv``) as an anchor.

Printed: the ladder validation table; per task and target the actual accuracy, the Bayesian
median and 90% interval (posterior predictive, calibrated), the baseline's interval, the point
fit's prediction and the paper's published one; the last line is one JSON object:
``task_coverage90``, ``task_mae_points`` (Bayesian median), ``pointfit_mae_points``,
``baseline_coverage90``, the calibration's scales, the ladder validation (``ladder_*``), the
previous method check (``dev_3b_*``) and timings.

Usage: ``python benchmarks/downstream.py [--quick] [--ladder-only]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, machine, print_json, print_table

from bayesmix.errors import SamplerHealthWarning
from bayesmix.inference.diagnostics import stored_health
from bayesmix.inference.downstream import fit_downstream, predict_downstream
from bayesmix.inference.downstream_calibration import calibrate_downstream
from bayesmix.inference.predict import interval
from bayesmix.models.downstream import LadderData

DATA = SHARED_DATA / "olmo_ladder"
MULTIPLES = (1, 2, 5, 10)
#: names of the paper's tasks in paper_prediction_errors.csv
PAPER_NAMES = {
    "mmlu": "mmlu_avg_test_5shot",
    "hellaswag": "hellaswag_val_5shot",
    "arc_challenge": "arc_challenge_test_5shot",
    "arc_easy": "arc_easy_test_5shot",
    "piqa": "piqa_val_5shot",
    "csqa": "csqa_val_5shot",
    "socialiqa": "socialiqa_val_5shot",
    "openbookqa": "openbookqa_test_5shot",
}
TARGETS = {"7B-4T": ("peteish7-anneal", 1), "13B-5T": ("peteish13", 5)}


def ladder_runs(sizes: list[str]) -> list[str]:
    """The 1/2/5/10xC runs of those sizes (the paper's fit set pattern)."""
    return [f"{size}-{m}xC" for size in sizes for m in MULTIPLES]


# ---------------------------------------------------------------------- the paper's point fit


def _huber(u: np.ndarray, delta: float = 1e-3) -> np.ndarray:
    a = np.abs(u)
    return np.where(a < delta, 0.5 * u * u, delta * (a - 0.5 * delta))


def _step1_point(sizes: np.ndarray, tokens: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """The paper's step 1: ``(log A, log B, alpha, beta, E)`` by Huber on log residuals (L-BFGS-B)."""
    from scipy.optimize import minimize

    log_n, log_d = np.log(sizes), np.log(tokens)

    def objective(p: np.ndarray) -> float:
        pred = np.exp(p[0] - log_n * p[2]) + np.exp(p[1] - log_d * p[3]) + p[4]
        return float(_huber(np.log(pred) - np.log(loss)).sum())

    result = minimize(
        objective, [3.0, 6.0, 0.1, 0.2, 1.0], bounds=[(0, None)] * 5, method="L-BFGS-B",
        options={"ftol": 0.0, "gtol": 1e-10, "maxiter": 100000},
    )
    return result.x


def _sigmoid(x: np.ndarray, a: float, x0: float, k: float, b: float) -> np.ndarray:
    return a / (1 + np.exp(-k * (x - x0))) + b


def _moving_average(values: np.ndarray, n: int = 5) -> np.ndarray:
    total = np.cumsum(values, dtype=float)
    if len(total) < n:
        return total / np.arange(1, len(total) + 1)
    total[n:] = total[n:] - total[:-n]
    return np.concatenate([total[: n - 1] / np.arange(1, n), total[n - 1 :] / n])


def _step2_point(data: LadderData, task: str) -> np.ndarray:
    """The paper's step 2: ``(a, x0, k, b)`` by ``curve_fit`` with its starts, bounds and helper point."""
    from scipy.optimize import OptimizeWarning, curve_fit

    xs, ys = [], []
    for _, rows in data.checkpoints.groupby("run", sort=False):
        start = int(np.ceil(0.1 * len(rows)))
        xs += list(_moving_average(data.task_loss.loc[rows.index, task].to_numpy()[start:]))
        ys += list(_moving_average(data.accuracy.loc[rows.index, task].to_numpy()[start:]))
    xs.append(0.0)
    ys.append(1.0)
    chance = float(data.chance[task])
    starts = [[chance - 1.0, 0.9, 3.0, 1.0], [-0.7, 0.6, 7.0, 1.0], [-0.7, 1.4, 3.2, 1.3]]
    coefficients = None
    for i, p0 in enumerate(starts):
        bounds = ([-1.0, 0.0, 0.0, 0.0], [0.0, np.inf, np.inf, 1.0]) if i == 0 else (-np.inf, np.inf)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", OptimizeWarning)
            try:
                coefficients, _ = curve_fit(_sigmoid, np.array(xs), np.array(ys), p0=p0, bounds=bounds, maxfev=500000)
            except RuntimeError:
                continue
        if not any(issubclass(w.category, OptimizeWarning) for w in caught):
            break
    return np.asarray(coefficients)


def point_fit(data: LadderData) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per task the paper's step-1 and step-2 coefficients, fitted on ``data``'s runs."""
    finals = data.final(5)
    sizes = finals.checkpoint_sizes()
    tokens = finals.checkpoints["tokens"].to_numpy(dtype=float)
    return {
        task: (_step1_point(sizes, tokens, finals.task_loss[task].to_numpy()), _step2_point(data, task))
        for task in data.tasks
    }


def point_predict(coefficients: dict, model_size: float, tokens: float) -> dict[str, float]:
    """The point fit's chained accuracy per task."""
    out = {}
    for task, (p1, p2) in coefficients.items():
        loss = np.exp(p1[0] - np.log(model_size) * p1[2]) + np.exp(p1[1] - np.log(tokens) * p1[3]) + p1[4]
        out[task] = float(_sigmoid(loss, *p2))
    return out


# ---------------------------------------------------------------------- scoring


def score(
    fit, data: LadderData, targets: dict[str, tuple[float, float, pd.Series]], calibration, points: dict, seed: int
) -> list[dict]:
    """One row per (target, task): actual, Bayesian median and 90% interval, point prediction."""
    names = list(targets)
    sizes = np.array([targets[n][0] for n in names])
    tokens = np.array([targets[n][1] for n in names])
    draws = predict_downstream(fit, model_size=sizes, tokens=tokens, calibration=calibration, targets=names, seed=seed)
    summary = interval(draws, prob=0.9)
    raw = interval(predict_downstream(fit, model_size=sizes, tokens=tokens, targets=names, seed=seed), prob=0.9)
    rows = []
    for name in names:
        point = point_predict(points, targets[name][0], targets[name][1])
        for task in data.tasks:
            actual = float(targets[name][2][task])
            cell = summary.sel(target=name, task=task)
            lower, upper = float(cell["lower"]), float(cell["upper"])
            raw_cell = raw.sel(target=name, task=task)
            rows.append(
                {
                    "target": name,
                    "task": task,
                    "actual": actual,
                    "median": float(cell["median"]),
                    "lower": lower,
                    "upper": upper,
                    "covered": lower <= actual <= upper,
                    "raw_covered": float(raw_cell["lower"]) <= actual <= float(raw_cell["upper"]),
                    "point": point[task],
                }
            )
    return rows


def figures(rows: list[dict]) -> dict[str, float]:
    """Coverage, mean absolute errors (points) and the mean interval width."""
    frame = pd.DataFrame(rows)
    return {
        "coverage90": float(frame["covered"].mean()),
        "raw_coverage90": float(frame["raw_covered"].mean()),
        "mae_points": float(100 * (frame["median"] - frame["actual"]).abs().mean()),
        "pointfit_mae_points": float(100 * (frame["point"] - frame["actual"]).abs().mean()),
        "width_points": float(100 * (frame["upper"] - frame["lower"]).mean()),
        "bias_points": float(100 * (frame["median"] - frame["actual"]).mean()),
    }


def decompose(fit, data: LadderData, targets: dict, points: dict, seed: int) -> list[dict]:
    """Per target and task: each step's own error (Bayesian median, expected curves; point fit)."""
    rows = []
    for name, (model_size, tokens, _) in targets.items():
        run, n_last = TARGETS[name]
        final = data.select([run]).final(n_last)
        true_loss = final.task_loss.to_numpy()[0]
        actual = final.accuracy.to_numpy()[0]
        bayes_loss = predict_downstream(
            fit, model_size=[model_size], tokens=[tokens], output="task_loss", kind="expected", seed=seed
        ).median("sample").to_numpy()[0]
        bayes_acc = predict_downstream(
            fit, loss=true_loss[None, :], model_size=[model_size], kind="expected", seed=seed
        ).median("sample").to_numpy()[0]
        for j, task in enumerate(data.tasks):
            p1, p2 = points[task]
            point_loss = np.exp(p1[0] - np.log(model_size) * p1[2]) + np.exp(p1[1] - np.log(tokens) * p1[3]) + p1[4]
            rows.append(
                {
                    "target": name,
                    "task": task,
                    "bpb": true_loss[j],
                    "step1_bayes_%": 100 * (bayes_loss[j] / true_loss[j] - 1),
                    "step1_point_%": 100 * (point_loss / true_loss[j] - 1),
                    "step2_bayes_pts": 100 * (bayes_acc[j] - actual[j]),
                    "step2_point_pts": 100 * (float(_sigmoid(true_loss[j], *p2)) - actual[j]),
                }
            )
    return rows


def held_out(data: LadderData, runs: list[str]) -> dict[str, tuple[float, float, pd.Series]]:
    """Final values of held-out ladder runs as targets: ``(N, D, accuracy per task)``."""
    finals = data.select(runs).final(5)
    return {
        run: (float(n), float(d), finals.accuracy.iloc[i])
        for i, (run, n, d) in enumerate(zip(runs, finals.checkpoint_sizes(), finals.checkpoints["tokens"], strict=True))
    }


def validation_rows(fit, data: LadderData, runs: list[str], calibration, points: dict, seed: int, label: str) -> list[dict]:
    """Score a ladder fit on held-out ladder runs, each row tagged with the validation's label."""
    rows = score(fit, data, held_out(data, runs), calibration, points, seed)
    for row in rows:
        row["validation"] = label
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 chains x 300 draws (about 2-3 minutes on 2 cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ladder-only", action="store_true", help="stop after the ladder validation (never reads the 7B/13B answers)"
    )
    args = parser.parse_args()
    if not DATA.exists():
        print(f"{DATA} is absent: this benchmark needs the OLMo ladder tables next to the checkout")
        print_json({"skipped": True})
        return
    draws, tune, chains = (300, 300, 2) if args.quick else (1000, 1000, 4)
    started = time.perf_counter()
    data = LadderData.from_olmo(
        pd.read_csv(DATA / "ladder_checkpoints.csv"), pd.read_csv(DATA / "ladder_tasks_long.csv")
    )
    options = {"draws": draws, "tune": tune, "chains": chains, "seed": args.seed, "target_accept": 0.95}
    small, mid, paper = ["190M", "370M"], ["190M", "370M", "760M"], ["190M", "370M", "760M", "1B"]
    runs_760, runs_1b, runs_3b = ladder_runs(["760M"]), ladder_runs(["1B"]), ladder_runs(["3B"])
    seed = args.seed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerHealthWarning)
        # the three nested ladder fits: every backtest and every prediction below reads one of them
        t0 = time.perf_counter()
        small_fit = fit_downstream(data, ladder_runs(small), **options)
        small_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        dev_fit = fit_downstream(data, ladder_runs(mid), **options)
        dev_seconds = time.perf_counter() - t0
        fit_runs = ladder_runs(paper)
        t0 = time.perf_counter()
        fit = fit_downstream(data, fit_runs, **options)
        fit_seconds = time.perf_counter() - t0
        dev_points = point_fit(data.select(ladder_runs(mid)))
        points = point_fit(data.select(fit_runs))

        # 1. the previous method check: fit 190M-760M, one backtest on 1B (moment), predict 3B
        dev_cal = calibrate_downstream(dev_fit, data, runs_1b, seed=seed)
        dev = figures(score(dev_fit, data, held_out(data, runs_3b), dev_cal, dev_points, seed))

        # 2. ladder validation, leave the largest out: calibrations built only from runs inside
        #    the fitted set, predictions of the sizes beyond it
        v1 = {
            "posterior": calibrate_downstream(small_fit, data, runs_760, method="posterior", seed=seed),
            "moment": calibrate_downstream(small_fit, data, runs_760, seed=seed),
        }
        v2 = {
            "posterior": calibrate_downstream(
                small_fit, data, runs_760 + runs_1b, backtests=[(dev_fit, runs_1b)], method="posterior", seed=seed
            ),
            "moment": calibrate_downstream(dev_fit, data, runs_1b, seed=seed),
        }
        validation = {}
        for name in ("posterior", "moment"):
            rows_v1 = validation_rows(dev_fit, data, runs_1b + runs_3b, v1[name], dev_points, seed, "v1")
            rows_v2 = validation_rows(fit, data, runs_3b, v2[name], points, seed, "v2")
            validation[name] = {
                "v1": figures(rows_v1), "v1_3b": figures([r for r in rows_v1 if r["target"].startswith("3B")]),
                "v2": figures(rows_v2), "pooled": figures(rows_v1 + rows_v2),
            }
        # 3. the calibration used for the answer: every backtest the ladder offers, 1-3 e-folds out
        cal = calibrate_downstream(
            fit, data, runs_3b, backtests=[(small_fit, runs_760 + runs_1b + runs_3b), (dev_fit, runs_1b + runs_3b)],
            method="posterior", seed=seed,
        )
        baseline_cal = calibrate_downstream(fit, data, runs_3b, seed=seed)

    print(f"OLMo ladder -> 7B-4T / 13B-5T task accuracy (points), {machine()}, load {os.getloadavg()[0]:.1f}")
    print(f"draws {chains} x {draws} (tune {tune}); fits on the 1/2/5/10xC runs of 190M-370M, 190M-760M, 190M-1B")
    print(f"previous method check (fit 190M-760M, moment calibration on 1B, 3B held out): coverage "
          f"{dev['coverage90']:.2f} (uncalibrated {dev['raw_coverage90']:.2f}), MAE {dev['mae_points']:.2f} "
          f"vs point fit {dev['pointfit_mae_points']:.2f}")
    vtable = []
    for name, label in (("posterior", "multi-distance posterior"), ("moment", "single backtest, moment")):
        for key, what in (("v1", "fit <=760M, cal 370M->760M; predict 1B+3B"),
                          ("v1_3b", "  of which 3B (1.4-2.0 e-folds)"),
                          ("v2", "fit <=1B, cal within <=1B; predict 3B"), ("pooled", "pooled v1 + v2")):
            f = validation[name][key]
            vtable.append({"calibration": label, "validation": what, "coverage90": f["coverage90"],
                           "uncalibrated": f["raw_coverage90"], "mae": f["mae_points"], "width": f["width_points"],
                           "bias": f["bias_points"], "pointfit_mae": f["pointfit_mae_points"]})
    print_table(vtable, list(vtable[0]), "Ladder validation (leave the largest out; points; chosen on these only)")
    for label, c in (("v1 posterior", v1["posterior"]), ("v2 posterior", v2["posterior"]),
                     ("answer posterior", cal), ("answer moment (3B only)", baseline_cal)):
        d = c.to_dict()
        extra = (f" [90%: {d['kappa_task_loss_q05']:.4f}, {d['kappa_task_loss_q95']:.4f}], rho {d['rho_task_loss']:.2f}"
                 if "rho_task_loss" in d else "")
        extra_acc = (f" [90%: {d['kappa_accuracy_q05']:.4f}, {d['kappa_accuracy_q95']:.4f}], rho {d['rho_accuracy']:.2f}"
                     if "rho_accuracy" in d else "")
        print(f"calibration {label}: kappa_task_loss {c.kappa_task_loss:.4f}{extra}; kappa_accuracy "
              f"{c.kappa_accuracy:.4f}{extra_acc} / e-fold")
    chosen_ok = 0.85 <= validation["posterior"]["pooled"]["coverage90"] <= 0.95
    print("ladder validation of the chosen calibration (pooled coverage 0.85-0.95): " + ("met" if chosen_ok else "MISSED"))
    ladder_json = {
        "ladder_coverage90": validation["posterior"]["pooled"]["coverage90"],
        "ladder_v1_coverage90": validation["posterior"]["v1"]["coverage90"],
        "ladder_v1_3b_coverage90": validation["posterior"]["v1_3b"]["coverage90"],
        "ladder_v2_coverage90": validation["posterior"]["v2"]["coverage90"],
        "ladder_mae_points": validation["posterior"]["pooled"]["mae_points"],
        "ladder_width_points": validation["posterior"]["pooled"]["width_points"],
        "ladder_pointfit_mae_points": validation["posterior"]["pooled"]["pointfit_mae_points"],
        "ladder_baseline_coverage90": validation["moment"]["pooled"]["coverage90"],
        "ladder_baseline_v1_coverage90": validation["moment"]["v1"]["coverage90"],
        "ladder_baseline_v2_coverage90": validation["moment"]["v2"]["coverage90"],
        "ladder_baseline_width_points": validation["moment"]["pooled"]["width_points"],
        "ladder_uncalibrated_coverage90": validation["posterior"]["pooled"]["raw_coverage90"],
        "ladder_validation_ok": bool(chosen_ok),
    }
    if args.ladder_only:
        print_json({**ladder_json, "seconds": time.perf_counter() - started, "quick": bool(args.quick)})
        return

    targets = {}
    for label, (run, n_last) in TARGETS.items():
        final = data.select([run]).final(n_last)
        targets[label] = (float(final.checkpoint_sizes()[0]), float(final.checkpoints["tokens"].iloc[0]), final.accuracy.iloc[0])
    rows = score(fit, data, targets, cal, points, seed)
    result = figures(rows)
    baseline_rows = score(fit, data, targets, baseline_cal, points, seed)
    baseline = figures(baseline_rows)

    paper_table = pd.read_csv(DATA / "paper_prediction_errors.csv")
    chained = paper_table[paper_table["analysis"] == "chained_ND"].set_index("task")
    for row in rows:
        row["paper_pred"] = float(chained.loc[PAPER_NAMES[row["task"]], "pred"]) if row["target"] == "13B-5T" else None
        row["paper_actual"] = float(chained.loc[PAPER_NAMES[row["task"]], "actual"]) if row["target"] == "13B-5T" else None
    thirteen = [r for r in rows if r["target"] == "13B-5T"]
    paper_mae = float(np.mean([100 * abs(r["paper_pred"] - r["paper_actual"]) for r in thirteen]))

    table = [
        {
            "target": r["target"],
            "task": r["task"],
            "actual": 100 * r["actual"],
            "bayes_median": 100 * r["median"],
            "90% interval": f"[{100 * r['lower']:.1f}, {100 * r['upper']:.1f}]",
            "in": "yes" if r["covered"] else "NO",
            "baseline_interval": f"[{100 * b['lower']:.1f}, {100 * b['upper']:.1f}]",
            "in_base": "yes" if b["covered"] else "NO",
            "err_bayes": 100 * (r["median"] - r["actual"]),
            "point_fit": 100 * r["point"],
            "err_point": 100 * (r["point"] - r["actual"]),
            "paper_pred": None if r["paper_pred"] is None else 100 * r["paper_pred"],
            "err_paper": None if r["paper_pred"] is None else 100 * (r["paper_pred"] - r["paper_actual"]),
        }
        for r, b in zip(rows, baseline_rows, strict=True)
    ]
    print_table(table, list(table[0]), "Per task and target: multi-distance posterior calibration (chosen) and the "
                "single-backtest moment calibration (baseline); paper_pred: the published 13B chained prediction")
    health = stored_health(fit)
    print(f"\nfit health: {'ok' if health.ok else '; '.join(health.problems)}")
    print(
        f"coverage90 {result['coverage90']:.3f} (baseline {baseline['coverage90']:.3f}, uncalibrated "
        f"{result['raw_coverage90']:.3f}) on {len(rows)} targets; mean width {result['width_points']:.1f} points "
        f"(baseline {baseline['width_points']:.1f}); MAE Bayesian median {result['mae_points']:.2f} points vs point fit "
        f"{result['pointfit_mae_points']:.2f}; paper's published 13B chained MAE {paper_mae:.2f}"
    )
    diagnosis = decompose(fit, data, targets, points, seed)
    print_table(
        diagnosis, list(diagnosis[0]),
        "Diagnosis, read after the fact (chose nothing): step 1 alone (task-loss error, % of the true BPB) and "
        "step 2 alone (accuracy error in points at the TRUE task loss), Bayesian median vs point fit",
    )
    goal = 0.85 <= result["coverage90"] <= 0.95 and result["mae_points"] <= result["pointfit_mae_points"]
    print("goal (coverage 0.85-0.95 and error <= point fit's): " + ("met" if goal else "MISSED"))
    d = cal.to_dict()
    print_json(
        {
            "task_coverage90": result["coverage90"],
            "task_mae_points": result["mae_points"],
            "pointfit_mae_points": result["pointfit_mae_points"],
            "uncalibrated_coverage90": result["raw_coverage90"],
            "mean_width_points": result["width_points"],
            "bias_points": result["bias_points"],
            "baseline_coverage90": baseline["coverage90"],
            "baseline_width_points": baseline["width_points"],
            "paper_13b_chained_mae_points": paper_mae,
            "n_targets": len(rows),
            "calibration_method": cal.method,
            **{k: v for k, v in d.items()},
            "baseline_kappa_task_loss": baseline_cal.kappa_task_loss,
            "baseline_kappa_accuracy": baseline_cal.kappa_accuracy,
            **ladder_json,
            "dev_3b_coverage90": dev["coverage90"],
            "dev_3b_uncalibrated_coverage90": dev["raw_coverage90"],
            "dev_3b_mae_points": dev["mae_points"],
            "dev_3b_pointfit_mae_points": dev["pointfit_mae_points"],
            "fit_health_ok": health.ok,
            "fit_seconds": fit_seconds,
            "dev_fit_seconds": dev_seconds,
            "small_fit_seconds": small_seconds,
            "seconds": time.perf_counter() - started,
            "quick": bool(args.quick),
            "goal_met": bool(goal),
        }
    )


if __name__ == "__main__":
    main()

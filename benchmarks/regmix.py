"""RegMix benchmark of the law engine.

Fits on the 512 RegMix 1M-parameter train runs (../shared/data/regmix), predicts the 256 1M
test runs and the 256 60M test runs, for two targets: the Pile-CC validation loss and the mean of
all 13 validation losses (explicit aggregation with equal shares). Compares, in the same run:

* bayesmix, the paper's law (``MixingLaw()``: M4, hierarchical, NUTS via nutpie),
* bayesmix, power features ``MixingLaw(exponent=g)`` with ``g`` chosen by 4-fold CV of fast
  point fits on the train runs (``select_exponent``; its time is included in the fit time),
* the paper's point-fit protocol (Huber + L-BFGS from the paper's init grid, per domain),
* plain linear regression (least squares on the proportions, RegMix's linear baseline),
* LightGBM with RegMix's settings, if installed,

and repeats the Pile-CC comparison with only the first 64 and 128 train runs.

Usage: ``python benchmarks/regmix.py [--quick]``. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from _common import SHARED_DATA, machine, print_json, print_table, timed
from scipy.stats import spearmanr

import bayesmix as bm
from bayesmix.inference.select import select_exponent

TARGET = "pile_cc"
REGMIX = SHARED_DATA / "regmix"


def load(split: str) -> bm.RunTable:
    return bm.RunTable.from_joined(
        REGMIX / f"{split.replace('X', 'mixture')}.csv",
        REGMIX / f"{split.replace('X', 'pile_loss')}.csv",
        renormalise=True,
    )


def linear_fit(train: bm.RunTable):
    x = np.c_[np.ones(train.n_runs), train.mixtures.to_numpy()]
    coef, *_ = np.linalg.lstsq(x, train.losses.to_numpy(), rcond=None)
    return lambda table: np.c_[np.ones(table.n_runs), table.mixtures.to_numpy()] @ coef


def lightgbm_fit(train: bm.RunTable, column: str):
    try:
        import lightgbm as lgb
    except ImportError:
        return None
    params = {  # RegMix's regression settings
        "objective": "regression",
        "learning_rate": 1e-2,
        "seed": 42,
        "verbosity": -1,
        "num_threads": 1,
    }
    data = lgb.Dataset(train.mixtures.to_numpy(), train.losses[column].to_numpy())
    model = lgb.train(params, data, num_boost_round=1000)
    return lambda table: model.predict(table.mixtures.to_numpy())


def scores(pred: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    return float(spearmanr(pred, actual).statistic), float(np.mean(np.abs(pred - actual)))


def evaluate_bayes(idata, test: bm.RunTable, column: str | None, prob: float = 0.9):
    """Spearman, MAE and interval coverage of a fit on a test table (column None = mean of domains)."""
    domains = bm.fitted_spec(idata).domains
    composition = None if column else {d: 1.0 for d in domains}
    draws = bm.predict(idata, test.mixtures, composition=composition, max_draws=2000, seed=1)
    key = column or "total"
    summary = bm.interval(draws.sel(domain=key), prob=prob)
    actual = test.losses[column].to_numpy() if column else test.losses.mean(axis=1).to_numpy()
    rho, mae = scores(summary["mean"].to_numpy(), actual)
    covered = (summary["lower"].to_numpy() <= actual) & (actual <= summary["upper"].to_numpy())
    return rho, mae, float(covered.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer draws and inits (under a minute)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    draws, tune, chains, inits = (150, 150, 2, 5) if args.quick else (1000, 1000, 4, 200)
    train, test1m, test60m = load("train_X_1m"), load("test_X_1m"), load("test_X_60m")
    if args.quick:  # a smoke run: 4 validation domains, 128 train runs
        keep = [TARGET, "github", "arxiv", "wikipedia_en"]
        train, test1m, test60m = (t.select_domains(keep) for t in (train, test1m, test60m))
        train = train.subset(slice(0, 128))
    print(
        f"RegMix benchmark on {machine()}; train {train.n_runs} runs x {len(train.train_domains)} "
        f"training domains, {len(train.domains)} validation domains; quick={args.quick}"
    )

    rows, figures = [], {}
    best = "bayes power (CV exponent)"
    names = ["bayes M4 (paper law)", best]

    def bayes_fit(name, table):
        law = bm.MixingLaw()
        if name == best:
            law = bm.MixingLaw(exponent=select_exponent(table, seed=args.seed).exponent)
        with warnings.catch_warnings():
            warnings.simplefilter("always", bm.SamplerHealthWarning)
            return bm.fit(table, law, draws=draws, tune=tune, chains=chains, seed=args.seed, discrepancy=None)

    fits = {}
    for name in names:
        with timed() as t:
            idata = bayes_fit(name, train)
        fits[name] = idata
        health = bm.health(idata)
        row = {
            "method": name,
            "fit_s": t["seconds"],
            "divergences": health.divergences,
            "max_rhat": health.max_rhat,
            "exponent": bm.fitted_spec(idata).law["options"]["exponent"],
        }
        for label, column in (("pile_cc", TARGET), ("mean13", None)):
            rho, mae, cov = evaluate_bayes(idata, test1m, column)
            rho60, _, _ = evaluate_bayes(idata, test60m, column)
            row |= {
                f"{label}_sp1m": rho,
                f"{label}_sp60m": rho60,
                f"{label}_mae1m": mae,
                f"{label}_cov90": cov,
            }
        rows.append(row)

    with timed() as t:
        paper = bm.fit(train, bm.MixingLaw(), method="paper", paper_inits=inits, seed=args.seed)
    row = {"method": "paper point fit (Huber, L-BFGS)", "fit_s": t["seconds"]}
    for label, column in (("pile_cc", TARGET), ("mean13", None)):
        rho, mae, cov = evaluate_bayes(paper, test1m, column)
        rho60, _, _ = evaluate_bayes(paper, test60m, column)
        row |= {f"{label}_sp1m": rho, f"{label}_sp60m": rho60, f"{label}_mae1m": mae, f"{label}_cov90": cov}
    rows.append(row)

    with timed() as t:
        linear = linear_fit(train)
    row = {"method": "linear regression", "fit_s": t["seconds"]}
    cols = list(train.domains)
    for label, pick in (
        ("pile_cc", lambda y: y[:, cols.index(TARGET)]),
        ("mean13", lambda y: y.mean(axis=1)),
    ):
        rho, mae = scores(pick(linear(test1m)), pick(test1m.losses.to_numpy()))
        rho60, _ = scores(pick(linear(test60m)), pick(test60m.losses.to_numpy()))
        row |= {f"{label}_sp1m": rho, f"{label}_sp60m": rho60, f"{label}_mae1m": mae}
    rows.append(row)

    with timed() as t:
        lgbm = lightgbm_fit(train, TARGET)
    if lgbm is not None:
        rho, mae = scores(lgbm(test1m), test1m.losses[TARGET].to_numpy())
        rho60, _ = scores(lgbm(test60m), test60m.losses[TARGET].to_numpy())
        rows.append(
            {
                "method": "LightGBM (RegMix settings)",
                "fit_s": t["seconds"],
                "pile_cc_sp1m": rho,
                "pile_cc_sp60m": rho60,
                "pile_cc_mae1m": mae,
            }
        )

    print_table(
        rows,
        [
            "method",
            "exponent",
            "fit_s",
            "divergences",
            "max_rhat",
            "pile_cc_sp1m",
            "pile_cc_sp60m",
            "pile_cc_mae1m",
            "pile_cc_cov90",
        ],
        f"Target Pile-CC ({train.n_runs} train runs; 90% intervals)",
    )
    print_table(
        rows,
        ["method", "mean13_sp1m", "mean13_sp60m", "mean13_mae1m", "mean13_cov90"],
        "Target mean of the 13 validation losses",
    )

    small_rows = []
    for n in () if args.quick else (64, 128):
        subset = train.subset(slice(0, n))
        row = {"train_runs": n}
        for name in names:
            idata = bayes_fit(name, subset)
            row[name], _, row[name + " cov90"] = evaluate_bayes(idata, test1m, TARGET)
        row["paper point fit"] = evaluate_bayes(
            bm.fit(subset, bm.MixingLaw(), method="paper", paper_inits=inits, seed=args.seed), test1m, TARGET
        )[0]
        lin = linear_fit(subset)
        row["linear"] = scores(lin(test1m)[:, cols.index(TARGET)], test1m.losses[TARGET].to_numpy())[0]
        lg = lightgbm_fit(subset, TARGET)
        row["LightGBM"] = None if lg is None else scores(lg(test1m), test1m.losses[TARGET].to_numpy())[0]
        small_rows.append(row)
    if small_rows:
        print_table(
            small_rows,
            ["train_runs", *names, *(n + " cov90" for n in names), "paper point fit", "linear", "LightGBM"],
            "Pile-CC Spearman on the 1M test with few train runs",
        )
    head = next(r for r in rows if r["method"] == best)
    figures = {
        "spearman_1m": head["pile_cc_sp1m"],
        "spearman_60m": head["pile_cc_sp60m"],
        "mae_1m": head["pile_cc_mae1m"],
        "coverage90_1m": head["pile_cc_cov90"],
        "fit_seconds": head["fit_s"],
        "spearman_1m_64runs": small_rows[0][best] if small_rows else None,
        "spearman_1m_128runs": small_rows[1][best] if small_rows else None,
        "m4_spearman_1m": rows[0]["pile_cc_sp1m"],
        "linear_spearman_1m": next(r for r in rows if r["method"] == "linear regression")["pile_cc_sp1m"],
        "paper_spearman_1m": next(r for r in rows if r["method"].startswith("paper"))["pile_cc_sp1m"],
        "lightgbm_spearman_1m": None if lgbm is None else rows[-1]["pile_cc_sp1m"],
    }
    print_json(figures)


if __name__ == "__main__":
    main()

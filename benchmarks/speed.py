"""Speed of the Bayesian engine, side by side in one process, and the fast posterior checked against NUTS.

Two studies: a simulated one (40 runs, 7 training x 7 validation domains, M4 law) and RegMix
(512 real 1M-parameter runs, 17 training x 13 validation domains, the power law with exponent
0.5 that cross-validation picks there). On each, in the same run:

* the floor: one scipy Huber point fit per domain from one start (the paper's objective);
* LightGBM (RegMix's own regressor; when installed), one model per validation domain;
* the paper protocol (Huber, L-BFGS from 200 starts of its grid);
* NUTS cold (the first fit of that structure: compile included, the cache emptied first);
* NUTS warm (a refit on other runs of the same shape: the compiled model is reused), with the
  chains started from the prior and warm-started at the cold fit's draws (``warm_start=``, what
  a loop that refits after each batch does; the ``nuts_warm_s_*`` keys);
* MAP and the Laplace approximation (warm: they share their own compiled model).

The Laplace approximation is checked against NUTS on held-out runs: 90% interval coverage and
mean width (simulated: 400 new mixtures with simulated noise; RegMix: the 256 1M test runs).
``Designer.ask(8)`` is timed with the Bayesian surrogate (``LawFit``, NUTS and Laplace), and
``--many-domains`` measures how a fit grows with the number of domains (8 to 64 training x
validation domains, 1,000 simulated runs each): NUTS with the default settings and Laplace, cold,
with held-out coverage, leapfrog steps per draw and the cost of one gradient.

Usage: ``python benchmarks/speed.py [--quick] [--many-domains]``. ``--quick`` (under 2 minutes
on a quiet 2-core box) uses short chains on RegMix (2 x 300 + 300), so its RegMix NUTS times are
not the default fit's. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from _common import SHARED_DATA, machine, print_json, print_table

import bayesmix as bm
from bayesmix.data.simulate import random_law, simulate_runs
from bayesmix.design import LawFit
from bayesmix.inference import engine
from bayesmix.inference.paper import fit_paper
from bayesmix.models.mixing_model import summarise_data

REGMIX = SHARED_DATA / "regmix"
COLUMNS = ["study", "method", "seconds", "compile_s", "coverage90", "width90", "note"]


def regmix(split: str) -> bm.RunTable:
    return bm.RunTable.from_joined(
        REGMIX / f"{split.replace('X', 'mixture')}.csv",
        REGMIX / f"{split.replace('X', 'pile_loss')}.csv",
        renormalise=True,
    )


def clock(fn):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn()
    return out, time.perf_counter() - start


def floor_fit(runs: bm.RunTable, law: bm.MixingLaw) -> None:
    ref = np.asarray(summarise_data(runs).mixture_mean)
    fit_paper(runs.mixtures.to_numpy(), runs.losses.to_numpy(), ref, exponent=float(law.exponent), n_inits=1, seed=0)


def lightgbm_fit(runs: bm.RunTable) -> bool:
    try:
        import lightgbm as lgb
    except ImportError:
        return False
    params = {"objective": "regression", "learning_rate": 1e-2, "seed": 42, "verbosity": -1, "num_threads": 1}
    for column in runs.domains:
        lgb.train(params, lgb.Dataset(runs.mixtures.to_numpy(), runs.losses[column].to_numpy()), num_boost_round=1000)
    return True


def interval_check(idata, mixtures: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """90% coverage and mean width of the predictive intervals (run noise included)."""
    draws = bm.predict(idata, mixtures, kind="predictive", seed=1, max_draws=2000)
    summary = bm.interval(draws, prob=0.9)
    lower = summary["lower"].to_numpy()
    upper = summary["upper"].to_numpy()
    lower, upper = lower[:, : actual.shape[1]], upper[:, : actual.shape[1]]
    covered = (lower <= actual) & (actual <= upper)
    return float(covered.mean()), float(np.mean(upper - lower))


def study(label, runs, other, law, held_mix, held_loss, nuts_kwargs, rows, figures, key):
    """Every method on one study; ``other`` is a same-shape table for the warm refit."""
    with engine.one_blas_thread():  # as every fit path of bayesmix runs
        _, floor_s = clock(lambda: floor_fit(runs, law))
    has_lgb, lgb_s = clock(lambda: lightgbm_fit(runs))
    _, paper_s = clock(lambda: bm.fit(runs, law, method="paper"))
    engine.clear_cache()
    cold, cold_s = clock(lambda: bm.fit(runs, law, seed=0, discrepancy=None, **nuts_kwargs))
    compile_s = float(cold.posterior.attrs["bayesmix_compile_seconds"])
    # a refit on other runs: the compiled model is reused; the chains start from the prior, or
    # (a warm start, what a loop that refits after each batch does) at the cold fit's draws
    _, prior_start_s = clock(lambda: bm.fit(other, law, seed=0, discrepancy=None, **nuts_kwargs))
    warm, warm_s = clock(lambda: bm.fit(other, law, seed=0, discrepancy=None, warm_start=cold, **nuts_kwargs))
    again, _ = clock(lambda: bm.fit(other, law, seed=0, discrepancy=None, warm_start=cold, **nuts_kwargs))
    same = all(
        np.array_equal(warm.posterior[v].to_numpy(), again.posterior[v].to_numpy()) for v in ("c", "log_k", "t")
    )
    warm_health = str(bm.health(warm)).splitlines()[0]
    lap_kwargs = {"draws": nuts_kwargs.get("draws", 1000), "chains": nuts_kwargs.get("chains", 4)}
    # MAP and Laplace share their own structure (the non-centred law): the first fit compiles it,
    # the timed ones are warm
    _, lap_cold_s = clock(lambda: bm.fit(other, law, method="laplace", seed=0, discrepancy=None, **lap_kwargs))
    _, map_s = clock(lambda: bm.fit(runs, law, method="map", seed=0, discrepancy=None))
    lap, lap_s = clock(lambda: bm.fit(runs, law, method="laplace", seed=0, discrepancy=None, **lap_kwargs))
    nuts_cov, nuts_width = interval_check(cold, held_mix, held_loss)
    lap_cov, lap_width = interval_check(lap, held_mix, held_loss)
    health = bm.health(cold)
    rows += [
        {"study": label, "method": "floor (1 Huber start)", "seconds": floor_s},
        {"study": label, "method": "LightGBM", "seconds": lgb_s if has_lgb else None},
        {"study": label, "method": "paper protocol", "seconds": paper_s},
        {"study": label, "method": "NUTS cold", "seconds": cold_s, "compile_s": compile_s,
         "coverage90": nuts_cov, "width90": nuts_width, "note": str(health).splitlines()[0]},
        {"study": label, "method": "NUTS warm, chains from the prior", "seconds": prior_start_s, "compile_s": 0.0},
        {"study": label, "method": "NUTS warm, warm-started", "seconds": warm_s, "compile_s": 0.0,
         "note": f"tune {warm.posterior.attrs['bayesmix_tune']}; same seed same numbers: {same}; {warm_health}"},
        {"study": label, "method": "MAP (warm)", "seconds": map_s},
        {"study": label, "method": "Laplace (warm)", "seconds": lap_s, "coverage90": lap_cov, "width90": lap_width,
         "note": f"cold {lap_cold_s:.1f} s; " + str(bm.health(lap)).splitlines()[0]},
    ]
    figures.update({
        f"nuts_cold_s_{key}": cold_s, f"nuts_warm_s_{key}": warm_s, f"compile_s_{key}": compile_s,
        f"nuts_warm_prior_start_s_{key}": prior_start_s,
        f"map_s_{key}": map_s, f"approx_s_{key}": lap_s, f"approx_cold_s_{key}": lap_cold_s, f"floor_s_{key}": floor_s, f"paper_s_{key}": paper_s,
        f"lightgbm_s_{key}": lgb_s if has_lgb else None,
        f"nuts_coverage90_{key}": nuts_cov, f"approx_coverage90_{key}": lap_cov,
        f"nuts_width90_{key}": nuts_width, f"approx_width90_{key}": lap_width,
        f"same_seed_same_numbers_{key}": same,
    })
    print_table(rows[-8:], COLUMNS, f"{label} (load average {os.getloadavg()[0]:.2f})")
    return cold_s, compile_s


def ask8(seconds: dict, quick: bool) -> None:
    truth = random_law(5, seed=3, noise_sd=0.01)
    start = simulate_runs(truth, 16, seed=4)
    for method in ("nuts", "laplace"):
        designer = bm.Designer(list(start.train_domains), target=start.domains[0], seed=0,
                               surrogate=LawFit(method=method))
        for i, row in enumerate(start.mixtures.to_numpy()):
            designer.add(f"init{i}", row, {start.domains[0]: float(start.losses.iloc[i, 0])})
        _, first = clock(lambda d=designer: d.ask(8))   # compiles this structure when it is new
        for p in designer.pending:
            designer.failed(p)
        _, second = clock(lambda d=designer: d.ask(8))  # a warm refit
        seconds[method] = (first, second)


def _gradient_us(runs: bm.RunTable) -> float:
    """Microseconds per log-density gradient of the law's compiled model on ``runs``."""
    from bayesmix.models.mixing_model import build_model

    comp = engine.compiled(build_model(bm.MixingLaw(), runs))
    x = comp.initial_point(0)
    comp.logp_dlogp(x)
    start = time.perf_counter()
    for _ in range(200):
        comp.logp_dlogp(x)
    return (time.perf_counter() - start) / 200 * 1e6


def many_domains(rows: list[dict], figures: dict) -> None:
    """NUTS (the default settings) and Laplace on 8-64 training x validation domains, 1,000 runs each."""
    sizes = [8, 16, 32, 64]
    times: dict[str, list[float]] = {"nuts": [], "laplace": []}
    for m in sizes:
        law = random_law(m, seed=m, noise_sd=0.01)
        runs = simulate_runs(law, 1000, seed=m)
        held = simulate_runs(law, 400, seed=m + 1)
        for method, kwargs in (("nuts", {}), ("laplace", {"draws": 500, "chains": 2})):
            engine.clear_cache()
            idata, seconds = clock(lambda r=runs, k=kwargs, f=method: bm.fit(r, method=f, seed=0, discrepancy=None, **k))
            times[method].append(seconds)
            cov, width = interval_check(idata, held.mixtures.to_numpy(), held.losses.to_numpy())
            attrs = idata.posterior.attrs
            note = str(bm.health(idata)).splitlines()[0]
            if method == "nuts":
                steps = float(idata.sample_stats["n_steps"].mean())
                note = f"{steps:.0f} steps/draw, {_gradient_us(runs):.0f} us/gradient; " + note
            rows.append({"study": f"{m} x {m} domains, 1000 runs", "method": f"{method} (cold)", "seconds": seconds,
                         "compile_s": attrs["bayesmix_compile_seconds"], "coverage90": cov, "width90": width,
                         "note": note})
            print(f"  many domains: {m} x {m}, {method} -> {seconds:.1f} s, coverage {cov:.3f}", flush=True)
    slopes = {k: float(np.polyfit(np.log(sizes), np.log(v), 1)[0]) for k, v in times.items()}
    figures.update({"many_domains_s": times["nuts"][-1], "many_domains_method": "nuts",
                    "many_domains_exponent": slopes["nuts"], "many_domains_laplace_s": times["laplace"][-1],
                    "many_domains_laplace_exponent": slopes["laplace"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short RegMix chains (under 2 minutes)")
    parser.add_argument("--many-domains", action="store_true", help="also 8-64 domains x 1000 runs (NUTS and Laplace, ~10 min)")
    args = parser.parse_args()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    rows: list[dict] = []
    figures: dict = {"quick": args.quick}

    truth = random_law(7, seed=0, noise_sd=0.01)
    small, other = simulate_runs(truth, 40, seed=1), simulate_runs(truth, 40, seed=2)
    held = simulate_runs(truth, 400, seed=9)
    cold_small, compile_small = study("small 40x7x7", small, other, bm.MixingLaw(), held.mixtures.to_numpy(),
                                      held.losses.to_numpy(), {}, rows, figures, "small")

    train, test = regmix("train_X_1m"), regmix("test_X_1m")
    other = _same_shape(train, test)
    kwargs = {"draws": 300, "tune": 300, "chains": 2} if args.quick else {}
    study("RegMix 512x17x13", train, other, bm.MixingLaw(exponent=0.5), test.mixtures.to_numpy(),
          test.losses.to_numpy(), kwargs, rows, figures, "regmix")

    seconds: dict = {}
    ask8(seconds, args.quick)
    for method, (first, second) in seconds.items():
        rows.append({"study": "Designer.ask(8), 16 runs x 5 domains", "method": f"LawFit {method}",
                     "seconds": second, "note": f"first ask (compile) {first:.1f} s"})
    figures["ask8_s"] = seconds["nuts"][1]
    figures["ask8_laplace_s"] = seconds["laplace"][1]
    figures["compile_share"] = compile_small / cold_small
    if args.many_domains:
        many_domains(rows, figures)

    print_table(rows, COLUMNS, "Fit times (s) and 90% held-out interval checks, one process")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print_json(figures)


def _same_shape(train: bm.RunTable, test: bm.RunTable) -> bm.RunTable:
    """512 runs of the same shape as ``train``, half of them others: train 256-511 + the 256 test runs."""
    import pandas as pd

    mixtures = pd.concat([train.mixtures.iloc[256:], test.mixtures.set_axis([f"t{i}" for i in test.mixtures.index])])
    losses = pd.concat([train.losses.iloc[256:], test.losses.set_axis([f"t{i}" for i in test.losses.index])])
    mixtures.index.name = losses.index.name = train.mixtures.index.name
    return bm.RunTable(mixtures, losses)


if __name__ == "__main__":
    main()

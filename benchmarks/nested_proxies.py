"""Nested prediction on proxies trained with bayesmix itself: predict, then train and compare.

Protocol, on the embedded corpus (4 domains: code, dialogue, legal, encyclopedic):

1. the quickstart design: 10 space-filling mixtures, each trained at cpu-xs (0.13M non-embedding
   parameters) and cpu-s (0.44M) for 200 steps of 16 x 128 tokens (0.41M tokens), constant LR
   after 10 warm-up steps, 10 log-spaced evaluations (those from step 10 on are fitted);
2. the nested fit (joint hierarchical model over mixture, size and step; NUTS) and, in the same
   run, the paper's point-fit protocol (step law per run, size law over runs; Huber + L-BFGS);
3. the target: a larger model, cpu-m (1.05M), trained 3x longer (600 steps, 1.23M tokens), on
   three of the design's mixtures (predicted from their own curves) and on the mixture the
   optimiser chooses for that scale (predicted through the mixing law);
4. those four target runs are then trained for real and their final validation losses compared
   with the predictions: relative error, 90% predictive-interval coverage, and the paper
   protocol's relative error on the observed mixtures.

The project folder (``--project``) is reused: finished runs are not retrained, so a second run
of the script only refits. ``--quick`` trains 6 mixtures for 40 steps of 4 sequences (its figures
are a smoke test of the protocol, not a measurement; a minute or two on 2 cores). Last line: one JSON object with ``mape``,
``coverage90``, ``paper_mape``, ``fit_seconds`` (the keys of benchmarks/gemstones.py) and more.

Usage: ``python benchmarks/nested_proxies.py [--quick] [--project DIR] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _common import machine, print_json, print_table

from bayesmix.cli.workflow import QUICKSTART_SETTINGS, merge_quickstart
from bayesmix.data.curves import CurveTable
from bayesmix.errors import SamplerHealthWarning
from bayesmix.inference.nested import fit_nested, predict_target
from bayesmix.inference.nested_target import target_fit
from bayesmix.inference.paper_scaling import paper_nested_predict
from bayesmix.inference.predict import interval
from bayesmix.optimise import optimise
from bayesmix.project import Project, steps
from bayesmix.proxy.config import count_params
from bayesmix.proxy.plan import RunSpec

TARGET_MODEL = "cpu-m"


def settings(quick: bool) -> dict:
    if not quick:
        return QUICKSTART_SETTINGS
    return merge_quickstart(
        {
            "corpus": {**QUICKSTART_SETTINGS["corpus"], "train_bytes": 200_000, "validation_bytes": 30_000},
            "max_eval_tokens": 1_024,
            "train": {"batch_size": 4},
            "project": {
                "steps": 40,
                "min_step": 6,
                "n_mixtures": 6,
                "fit": {"draws": 150, "tune": 150, "chains": 2},
            },
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--project", type=Path, default=None, help="project folder (reused if it exists)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--factor", type=float, default=3.0, help="target steps / proxy steps")
    parser.add_argument("--observed", type=int, default=3, help="design mixtures also trained at the target")
    args = parser.parse_args()
    folder = args.project or Path(f"/tmp/bayesmix-nested-proxies{'-quick' if args.quick else ''}")
    started = time.perf_counter()
    project = (
        Project(folder) if (folder / "study.yaml").exists() else Project.create(folder, settings(args.quick))
    )
    ps = project.settings
    print(f"machine: {machine()}; project {folder}")

    # 1. the design at the proxy sizes
    design = steps.initial_plan(project)
    t0 = time.perf_counter()
    report = steps.train(project, design, workers=args.workers)
    proxy_seconds = time.perf_counter() - t0
    assert not report.failed, report.failed
    # only the proxy sizes (a rerun must not fit on the target runs trained by the first run)
    proxy_sizes = sorted(float(count_params(project.study.model(m), vocab_size=1)[0]) for m in ps.sizes)
    frame = project.long_table()
    frame = frame[(frame["step"] >= ps.min_step) & frame["model_size"].isin(proxy_sizes)]
    table = CurveTable.from_long(frame)

    # 2. the nested fit and the paper protocol
    target_steps = round(ps.steps * args.factor)
    target_spec = project.study.model(TARGET_MODEL)
    target_size = float(count_params(target_spec, vocab_size=1)[0])
    target_tokens = float(target_steps * project.study.train_config.batch_size * target_spec.seq_len)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerHealthWarning)
        fitted = fit_nested(table, seed=ps.seed, **ps.fit)
        mixing = target_fit(fitted, model_size=target_size, tokens=target_tokens)
    fit_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    paper = paper_nested_predict(table, [target_size], target_tokens, seed=ps.seed)
    paper_seconds = time.perf_counter() - t0
    best = optimise(mixing, target=project.objective(), reference=project.reference(), seed=ps.seed)

    # 3. the target runs: observed design mixtures + the optimum
    domains = project.domains
    observed = list(table.mixtures.index[: args.observed])
    targets = {
        m: dict(zip(domains, table.mixtures.loc[m, domains].to_numpy(), strict=True)) for m in observed
    }
    targets["optimum"] = {d: float(best.mixture[d]) for d in domains}
    specs = {
        name: RunSpec.make({d: v for d, v in mix.items() if v > 1e-9}, TARGET_MODEL, target_steps, ps.seed)
        for name, mix in targets.items()
    }
    predictions = {}
    for name, mix in targets.items():
        via = "observed" if name != "optimum" else "mixing_law"
        draws = predict_target(
            fitted, model_size=target_size, tokens=target_tokens, mixtures=[mix], via=via, seed=ps.seed
        )
        predictions[name] = (interval(draws.isel(mixture=0), prob=0.9).to_dataframe(), via)

    # 4. train them and compare
    t0 = time.perf_counter()
    report = steps.train(project, list(specs.values()), workers=args.workers)
    target_seconds = time.perf_counter() - t0
    assert not report.failed, report.failed
    evals = project.study.ledger.evals()
    rows = []
    for name, spec in specs.items():
        run = evals[evals["run"] == spec.id]
        final = run[run["step"] == run["step"].max()].set_index("domain")["loss"]
        summary, via = predictions[name]
        for domain in domains:
            true = float(final[domain])
            row = summary.loc[domain]
            paper_value = np.nan
            if name != "optimum":
                hit = paper[(paper["mixture"] == name) & (paper["domain"] == domain)]
                paper_value = float(hit["loss"].iloc[0])
            rows.append(
                {
                    "mixture": name,
                    "via": via,
                    "domain": domain,
                    "observed": true,
                    "median": float(row["median"]),
                    "lower": float(row["lower"]),
                    "upper": float(row["upper"]),
                    "inside": bool(row["lower"] <= true <= row["upper"]),
                    "rel_err": abs(float(row["median"]) - true) / true,
                    "paper": paper_value,
                    "paper_rel_err": abs(paper_value - true) / true if name != "optimum" else np.nan,
                }
            )
    frame = pd.DataFrame(rows)
    print_table(
        frame.to_dict("records"),
        [
            "mixture",
            "via",
            "domain",
            "observed",
            "median",
            "lower",
            "upper",
            "inside",
            "rel_err",
            "paper",
            "paper_rel_err",
        ],
        f"Final loss of {TARGET_MODEL} ({target_size:,.0f} params) at {target_tokens:,.0f} tokens: "
        f"predicted from {[f'{s:,.0f}' for s in proxy_sizes]} params at {ps.steps} steps",
    )
    obs = frame[frame["mixture"] != "optimum"]
    figures = {
        "mape": round(100 * float(frame["rel_err"].mean()), 3),
        "coverage90": round(float(frame["inside"].mean()), 3),
        "paper_mape": round(100 * float(obs["paper_rel_err"].mean()), 3),
        "bayes_mape_observed": round(100 * float(obs["rel_err"].mean()), 3),
        "coverage90_observed": round(float(obs["inside"].mean()), 3),
        "optimum_rel_err": round(100 * float(frame[frame["mixture"] == "optimum"]["rel_err"].mean()), 3),
        "fit_seconds": round(fit_seconds, 1),
        "paper_seconds": round(paper_seconds, 1),
        "proxy_train_seconds": round(proxy_seconds, 1),
        "target_train_seconds": round(target_seconds, 1),
        "n_predictions": len(frame),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "health_ok": all(h.ok for h in fitted.health.values()),
    }
    print(f"\nsampler: {'; '.join(steps.health_lines(fitted.health))}")
    print_json(figures)


if __name__ == "__main__":
    main()

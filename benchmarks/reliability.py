"""Reliability benchmark (issue 8): fuzzed bad inputs, SIGKILLed sweeps, lost and duplicated runs.

Feeds hypothesis-generated inputs (the strategies of ``tests/test_reliability_fuzz.py``) to the
public entry points and counts how many end in a raw (undocumented) exception; then SIGKILLs a
real ``sweep`` subprocess in the middle of a run, reruns it and counts runs lost, duplicated or
left partial in the ledger.

Usage: ``python benchmarks/reliability.py [--quick]``. The last line is one JSON object with
``bad_inputs_tried``, ``raw_tracebacks``, ``kills_survived``, ``runs_lost``, ``duplicates``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "proxy"), str(ROOT / "tests")]

import torch  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import bayesmix as bm  # noqa: E402
from bayesmix.errors import BayesmixError  # noqa: E402

torch.set_num_threads(1)


def fuzz(n_examples: int) -> tuple[Counter[str], Counter[str], list[str]]:
    """Run every entry point on ``n_examples`` generated inputs; count tries and raw exceptions."""
    import test_reliability_fuzz as t

    from bayesmix.data.runs import RunTable, validate_mixtures
    from bayesmix.data.simulate import random_law, simulate_runs
    from bayesmix.optimise import optimise

    runs = simulate_runs(random_law(3, seed=1), 20, seed=1)
    idata = bm.fit(runs, method="map", seed=0)
    draws = bm.predict(idata, {"web": 0.5, "code": 0.5}, seed=1)
    tried: Counter[str] = Counter()
    raw: Counter[str] = Counter()
    examples: list[str] = []

    def call(kind: str, f: Callable[[], Any]) -> None:
        tried[kind] += 1
        try:
            f()
        except BayesmixError:
            pass
        except Exception as exc:  # counted: a raw traceback a user would see
            raw[kind] += 1
            examples.append(f"{kind}: {type(exc).__name__}: {str(exc)[:100]}")

    plan_dir = Path(tempfile.mkdtemp(prefix="bayesmix-plan-"))
    entry_points = {
        "RunTable.from_wide": (t.frame_strategy(), lambda frame: RunTable.from_wide(frame)),
        "validate_mixtures": (t.mixture_inputs, lambda m: validate_mixtures(m, t.DOMAINS)),
        "predict": (t.mixture_inputs, lambda m: bm.predict(idata, m, kind="mean")),
        "interval": (
            st.one_of(t.weird_floats, st.text(max_size=3), st.none()),
            lambda p: bm.interval(draws, prob=p),
        ),
        "optimise": (
            st.fixed_dictionaries(
                {},
                optional={
                    "target": st.sampled_from([*t.DOMAINS, "zz", 3]),
                    "fixed": st.dictionaries(st.sampled_from(t.DOMAINS), t.cells, max_size=2),
                    "n_starts": st.integers(-1, 2),
                    "seed": st.one_of(st.integers(-2, 3), st.floats(-1, 1)),
                    "max_draws": st.one_of(st.none(), st.integers(-2, 5)),
                },
            ),
            lambda kw: optimise(idata, **{"n_starts": 1, "max_draws": 5, **kw}),
        ),
        "load_plan": (
            st.text(max_size=60),
            lambda text: (
                (plan_dir / "plan.yaml").write_text(text, encoding="utf-8")
                and __import__("bayesmix.proxy.plan", fromlist=["load_plan"]).load_plan(
                    plan_dir / "plan.yaml"
                )
            ),
        ),
    }
    for kind, (strategy, entry) in entry_points.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _fuzz_one(
                strategy, lambda value, kind=kind, entry=entry: call(kind, lambda: entry(value)), n_examples
            )
    return tried, raw, examples


def _fuzz_one(strategy: st.SearchStrategy[Any], check: Callable[[Any], None], n_examples: int) -> None:
    """Feed ``n_examples`` values of ``strategy`` to ``check`` (seeded: derandomized hypothesis)."""

    @settings(
        max_examples=n_examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    @given(strategy)
    def run(value: Any) -> None:
        check(value)

    run()


def kill_and_resume(n_kills: int, steps: int) -> dict[str, int]:
    """SIGKILL a sweep subprocess mid-run ``n_kills`` times (fresh study each), rerun, audit the ledger."""
    from conftest import write_fixture_corpus
    from test_ledger_reliability import make_study, start_worker

    from bayesmix.proxy.plan import grid, save_plan

    out = {"kills_survived": 0, "runs_lost": 0, "duplicates": 0, "partial": 0}
    for k in range(n_kills):
        folder = Path(tempfile.mkdtemp(prefix=f"bayesmix-kill{k}-"))
        study = make_study(folder, write_fixture_corpus, checkpoint_every=5)
        runs = grid(
            [{"legal": 1.0}, {"code": 0.4, "dialogue": 0.6}, {"dialogue": 1.0}], ["t1"], steps, seeds=[k]
        )
        plan = save_plan(runs, folder / "plan.yaml")
        worker = start_worker(study, plan)
        deadline = time.time() + 240
        while time.time() < deadline and not list((study.folder / "checkpoints").glob("*.pt")):
            time.sleep(0.05)
        time.sleep(0.2 * k)  # kill at different points of the run
        worker.send_signal(signal.SIGKILL)
        worker.communicate()
        rerun = start_worker(study, plan)
        rerun.communicate(timeout=600)
        recorded = study.ledger.runs()
        ids = [r.id for r in recorded]
        evals = study.ledger.evals()
        out["runs_lost"] += len({r.id for r in runs} - {r.id for r in recorded if r.status == "finished"})
        out["duplicates"] += len(ids) - len(set(ids)) + int(evals.duplicated(["run", "step", "domain"]).sum())
        out["partial"] += int((evals.groupby(["run", "step"])["domain"].nunique() != 3).sum())
        out["kills_survived"] += int(worker.returncode == -signal.SIGKILL and rerun.returncode == 0)
    return out


def main() -> None:
    """Run the benchmark and print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 inputs per entry point, one kill (< 1 min)")
    args = parser.parse_args()
    n_examples, n_kills, steps = (40, 1, 40) if args.quick else (300, 3, 200)
    t0 = time.perf_counter()
    tried, raw, examples = fuzz(n_examples)
    t1 = time.perf_counter()
    kills = kill_and_resume(n_kills, steps)
    t2 = time.perf_counter()
    print(f"{'entry point':<22}{'bad inputs tried':>18}{'raw tracebacks':>16}")
    for kind in tried:
        print(f"{kind:<22}{tried[kind]:>18}{raw[kind]:>16}")
    print(f"{'all':<22}{sum(tried.values()):>18}{sum(raw.values()):>16}   ({t1 - t0:.1f} s)")
    for line in examples[:10]:
        print(f"  raw: {line}")
    print(
        f"sweeps SIGKILLed mid-run and rerun: {n_kills}; survived {kills['kills_survived']}; "
        f"runs lost {kills['runs_lost']}; duplicates {kills['duplicates']}; "
        f"partial eval rows {kills['partial']}   ({t2 - t1:.1f} s)"
    )
    print(
        json.dumps(
            {
                "bad_inputs_tried": sum(tried.values()),
                "raw_tracebacks": sum(raw.values()),
                "kills_survived": kills["kills_survived"],
                "runs_lost": kills["runs_lost"],
                "duplicates": kills["duplicates"],
            }
        )
    )


if __name__ == "__main__":
    main()

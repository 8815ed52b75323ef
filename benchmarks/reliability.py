"""Reliability benchmark: fuzzed bad inputs, SIGKILLed sweeps, lost and duplicated runs.

Feeds hypothesis-generated inputs (the strategies of ``tests/test_reliability_fuzz.py``,
``tests/test_reliability_fuzz_nested.py`` and ``tests/test_reliability_cli.py``) to the public
entry points and counts how many end in a raw (undocumented) exception; then SIGKILLs a real
``sweep`` subprocess in the middle of a run, reruns it and counts runs lost, duplicated or left
partial in the ledger.

Nothing is sampled or trained while fuzzing: ``fit_nested``/``predict_target`` stop where NUTS
would start and ``bayesmix train``/``sweep`` where data preparation would start (a marker
exception). An input that gets there passed every check and counts as *accepted*, as does a call
that returns.

Then reads plausible but wrong run tables (``tests/_plausible_tables.py``: perturbations of valid
tables with an oracle) and counts *silent misreadings* (read without error into other numbers
than the truth), and injects file faults: a process saving a fit SIGKILLed at random moments,
and a save under a file-size limit (``ulimit -f``); the fit on disk must stay loadable.

Usage: ``python benchmarks/reliability.py [--quick]``. The last line is one JSON object with
``bad_inputs_tried`` (generated inputs that were not accepted: refused with a documented error, or
raw), ``raw_tracebacks``, ``kills_survived``, ``runs_lost``, ``duplicates``, ``silent_misreads``,
``plausible_tables_tried``, ``faults_survived`` and ``faults_tried``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import signal
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "proxy"), str(ROOT / "tests")]

import torch  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import bayesmix as bm  # noqa: E402
from bayesmix.errors import BayesmixError  # noqa: E402

torch.set_num_threads(1)

#: what an entry point returns for an input it refused with a documented error (CLI exit codes)
REFUSED = object()


def _scratch(prefix: str) -> Path:
    """A new temporary folder, removed when the benchmark exits."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def fuzz(n_examples: int) -> tuple[Counter[str], Counter[str], Counter[str], list[str]]:
    """Run every entry point on ``n_examples`` generated inputs; count tries, accepted inputs, raw exceptions."""
    import test_reliability_cli as tc
    import test_reliability_fuzz as t
    import test_reliability_fuzz_nested as tn

    from bayesmix.data.runs import RunTable, validate_mixtures
    from bayesmix.data.simulate import random_law, simulate_runs
    from bayesmix.optimise import optimise

    runs = simulate_runs(random_law(3, seed=1), 20, seed=1)
    idata = bm.fit(runs, method="map", seed=0, discrepancy=None)
    draws = bm.predict(idata, {"web": 0.5, "code": 0.5}, seed=1)
    tried: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    raw: Counter[str] = Counter()
    examples: list[str] = []
    reached = (tn.ReachedSampler, tc.ReachedTraining)

    def call(kind: str, f: Callable[[], Any]) -> None:
        tried[kind] += 1
        try:
            if f() is not REFUSED:
                accepted[kind] += 1
        except reached:  # passed every check; stopped before sampling / training
            accepted[kind] += 1
        except BayesmixError:
            pass
        except Exception as exc:  # counted: a raw traceback a user would see
            raw[kind] += 1
            examples.append(f"{kind}: {type(exc).__name__}: {str(exc)[:100]}")

    plan_dir = _scratch("bayesmix-plan-")
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
        "load_plan": (st.text(max_size=60), lambda text: plan_file(plan_dir / "plan.yaml", text)),
    }
    entry_points.update(_second_families(tn, tc, idata))
    entry_points.update(_workflow_families(idata))
    with ExitStack() as stack:
        _no_sampling_or_training(stack, tn, tc)
        for kind, (strategy, entry) in entry_points.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _fuzz_one(
                    strategy,
                    lambda value, kind=kind, entry=entry: call(kind, lambda: entry(value)),
                    n_examples,
                )
    return tried, accepted, raw, examples


def plan_file(path: Path, text: str) -> Any:
    """Write ``text`` as a plan file and load it."""
    from bayesmix.proxy.plan import load_plan

    path.write_text(text, encoding="utf-8")
    return load_plan(path)


def _no_sampling_or_training(stack: ExitStack, tn: Any, tc: Any) -> None:
    """Stop fit_nested/predict_target before NUTS and train/sweep before data preparation."""
    import bayesmix.inference.nested as nested
    from bayesmix.proxy.study import Study

    def sampler(*args: Any, **kwargs: Any) -> None:
        raise tn.ReachedSampler

    def training(*args: Any, **kwargs: Any) -> None:
        raise tc.ReachedTraining

    stack.enter_context(mock.patch.object(nested, "_sample", sampler))
    stack.enter_context(mock.patch.object(Study, "prepare", training))
    stack.enter_context(mock.patch("bayesmix.proxy.sweep.sweep", training))


def _second_families(tn: Any, tc: Any, idata: Any) -> dict[str, tuple[Any, Callable[[Any], Any]]]:
    """Loss curves, nested-fit and search arguments, and the train/sweep CLI with study files."""
    from typer.testing import CliRunner

    from bayesmix.cli.main import app
    from bayesmix.data.curves import CurveTable
    from bayesmix.inference.nested import fit_nested, predict_target
    from bayesmix.optimise import Problem, dirichlet_search, grid_search
    from bayesmix.proxy.study import Study

    with warnings.catch_warnings():  # a real, tiny nested fit (PyMC NUTS, 20 draws) for predict_target
        warnings.simplefilter("ignore")
        nested_fit = fit_nested(tn.GOOD_TABLE, sampler="pymc", draws=20, tune=20, chains=1, seed=0)
    problem = Problem.from_idata(idata, "mean", max_draws=50)  # the MAP fit of 20 simulated runs
    folder = _scratch("bayesmix-cli-")
    study = folder / "study"
    Study.create(study)
    plans = tc.write_plan_files(folder / "plans")
    runner = CliRunner()
    count = Counter[str]()

    def cli(args: list[str]) -> object:
        result = runner.invoke(app, args, catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # ReachedTraining, or a raw exception the user would have seen
        documented = (result.exit_code == 1 and "Fix:" in result.output) or (
            result.exit_code == 2 and ("Usage" in result.output or "Invalid value" in result.output)
        )
        if not documented:  # exit 0 without training, or a failure without field and fix
            raise RuntimeError(f"bayesmix {args[0]} exited {result.exit_code}: {result.output[-200:]}")
        return REFUSED

    def options(args: list[str], opts: dict[str, str]) -> list[str]:
        return args + [x for key, value in opts.items() for x in (key, value)]

    def study_file(text: str) -> object:
        count["study"] += 1
        fresh = folder / f"study{count['study']}"
        fresh.mkdir()
        (fresh / "study.yaml").write_text(text, encoding="utf-8")
        return cli(["train", str(fresh), "--mixture", "legal=1"])

    return {
        "CurveTable.from_long": (
            tn.curve_mutations,
            lambda c: CurveTable.from_long(tn.mutate_curves(tn.BASE, *c[:4]), tokens_per_step=c[4]),
        ),
        "fit_nested": (tn.fit_cases, lambda c: fit_nested(c[0], **c[1])),
        "predict_target": (
            tn.predict_target_options(nested_fit),
            lambda kw: predict_target(nested_fit, **kw),
        ),
        "grid/dirichlet_search": (
            tn.search_cases,
            lambda c: grid_search(problem, c[1]) if c[0] == "grid" else dirichlet_search(problem, **c[1]),
        ),
        "bayesmix train": (tc.train_options, lambda o: cli(options(["train", str(study)], o))),
        "bayesmix sweep": (
            tc.sweep_options(sorted(plans)),
            lambda o: cli(options(["sweep", str(study)], {**o, "--plan": str(plans[o["--plan"]])})),
        ),
        "study.yaml": (tc.study_texts, study_file),
    }


def _workflow_families(idata: Any) -> dict[str, tuple[Any, Callable[[Any], Any]]]:
    """The project-workflow CLI: ``bayesmix optimise`` arguments and ``bayesmix runs import`` tables."""
    import test_reliability_workflow as tw
    from typer.testing import CliRunner

    from bayesmix.cli.main import app

    folder = _scratch("bayesmix-workflow-")
    fit_path = bm.save(idata, folder / "fit.nc")
    runner = CliRunner()
    count = Counter[str]()

    def cli(args: list[Any]) -> object:
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a raw exception the user would have seen
        if result.exit_code == 0:
            return None
        if (result.exit_code == 1 and "Fix:" in result.output) or (result.exit_code == 2 and "Usage" in result.output):
            return REFUSED  # a documented error (exit 1) or a usage error (exit 2)
        raise RuntimeError(f"bayesmix {args[0]} exited {result.exit_code}: {result.output[-200:]}")

    def import_table(spec: Any) -> object:
        count["import"] += 1
        project = tw.new_project(folder / f"p{count['import']}")
        tw.write_table(folder / "runs.csv", spec)
        outcome = cli(["runs", "import", project.folder, folder / "runs.csv"])
        if outcome is REFUSED and project.study.ledger.runs():
            raise RuntimeError("a refused import left runs in the ledger")
        return outcome

    return {
        "bayesmix optimise": (tw.optimise_options, lambda args: cli(["optimise", fit_path, *args])),
        "bayesmix runs import": (tw.import_tables, import_table),
    }


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
        folder = _scratch(f"bayesmix-kill{k}-")
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


FAULT_CHILD = """
import signal, sys, bayesmix as bm
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit then fails the write with EFBIG
source, target, loops = sys.argv[1], sys.argv[2], int(sys.argv[3])
idata = bm.load(source)
for _ in range(loops):
    try:
        bm.save(idata, target)
    except bm.BayesmixError as err:
        print("refused:", err, file=sys.stderr)
        sys.exit(2)
"""


def file_faults(n_kills: int) -> dict[str, int]:
    """SIGKILL a process saving fits over an existing one at random moments, and save under a file-size limit.

    After each fault the saved fit must load and be either the old or the new one (never lost,
    never mixed); the full-disk child must end with a documented refusal, not a traceback.
    """
    import random
    import subprocess

    import numpy as np

    from bayesmix.data.simulate import random_law, simulate_runs

    out = {"faults": 0, "faults_survived": 0}
    runs = simulate_runs(random_law(3, seed=1, noise_sd=0.01), 30, seed=1)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = Path(tmp)
        old = bm.fit(runs, method="map", seed=0, discrepancy=None)
        new = bm.fit(runs.subset(slice(0, 28)), method="map", seed=0, discrepancy=None)
        bm.save(new, folder / "new.nc")
        values = {k: np.asarray(v.posterior["c"]) for k, v in (("old", old), ("new", new))}

        def intact(path: Path) -> bool:
            try:
                loaded = np.asarray(bm.load(path).posterior["c"])
            except BayesmixError:
                return False
            return any(np.array_equal(loaded, v) for v in values.values())

        rng = random.Random(0)
        for i in range(n_kills):
            target = folder / f"kill{i}.nc"
            bm.save(old, target)
            child = subprocess.Popen([sys.executable, "-c", FAULT_CHILD, str(folder / "new.nc"), str(target), "200"])
            time.sleep(rng.uniform(3.0, 6.0))  # past the import, inside the save loop
            child.send_signal(signal.SIGKILL)
            child.wait()
            out["faults"] += 1
            out["faults_survived"] += int(intact(target))
        target = folder / "full.nc"
        bm.save(old, target)
        limit = max(1, (folder / "new.nc").stat().st_size // 1024 // 2)  # half the fit, in KiB
        child = subprocess.run(
            ["bash", "-c", f'ulimit -f {limit}; exec "$0" -c "$1" "$2" "$3" 1', sys.executable, FAULT_CHILD,
             str(folder / "new.nc"), str(target)],
            capture_output=True, text=True,
        )  # fmt: skip
        out["faults"] += 1
        out["full_disk_exit_code"] = child.returncode
        # the documented refusal, its exit code, and no traceback (a netCDF write that fails
        # half-way can crash the interpreter at exit: the save checks the room before writing)
        clean = "refused:" in child.stderr and "Traceback" not in child.stderr and child.returncode == 2
        out["faults_survived"] += int(clean and intact(target) and not list(folder.glob("full.*.tmp")))
    return out


def plausible_tables(n_bases: int) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """Read every perturbation of ``n_bases`` valid tables (``tests/_plausible_tables.py``) and judge it."""
    import _plausible_tables

    return _plausible_tables.tally(n_bases, seed=0)


def main() -> None:
    """Run the benchmark and print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 inputs per entry point, one kill (< 1 min)")
    args = parser.parse_args()
    n_examples, n_kills, steps = (40, 1, 40) if args.quick else (300, 3, 200)
    t0 = time.perf_counter()
    tried, accepted, raw, examples = fuzz(n_examples)
    t1 = time.perf_counter()
    kills = kill_and_resume(n_kills, steps)
    t2 = time.perf_counter()
    tables, per_kind = plausible_tables(12 if args.quick else 90)
    t3 = time.perf_counter()
    faults = file_faults(1 if args.quick else 3)
    t4 = time.perf_counter()
    print(f"{'entry point':<24}{'inputs tried':>14}{'accepted':>10}{'raw tracebacks':>16}")
    for kind in tried:
        print(f"{kind:<24}{tried[kind]:>14}{accepted[kind]:>10}{raw[kind]:>16}")
    total = (sum(tried.values()), sum(accepted.values()), sum(raw.values()))
    print(f"{'all':<24}{total[0]:>14}{total[1]:>10}{total[2]:>16}   ({t1 - t0:.1f} s)")
    for line in examples[:10]:
        print(f"  raw: {line}")
    print(
        f"sweeps SIGKILLed mid-run and rerun: {n_kills}; survived {kills['kills_survived']}; "
        f"runs lost {kills['runs_lost']}; duplicates {kills['duplicates']}; "
        f"partial eval rows {kills['partial']}   ({t2 - t1:.1f} s)"
    )
    print(f"\n{'plausible table':<44}{'right':>7}{'refused':>9}{'misread':>9}{'raw':>5}")
    for kind in sorted({k for k, _ in per_kind}):
        counts = [per_kind[kind, o] for o in ("right", "refused", "misread", "raw")]
        print(f"{kind:<44}" + "".join(f"{c:>{w}}" for c, w in zip(counts, (7, 9, 9, 5), strict=True)))
    print(
        f"{'all':<44}{tables['right']:>7}{tables['refused']:>9}{tables['misread']:>9}{tables['raw']:>5}"
        f"   ({t3 - t2:.1f} s)"
    )
    print(
        f"file faults (SIGKILL during save, save under a file-size limit): {faults['faults']}; "
        f"survived {faults['faults_survived']}; the file-size-limited save exited with code "
        f"{faults.get('full_disk_exit_code')}   ({t4 - t3:.1f} s)"
    )
    print(
        json.dumps(
            {
                "bad_inputs_tried": total[0] - total[1],  # refused (documented error) or raw
                "raw_tracebacks": sum(raw.values()) + tables["raw"],
                "kills_survived": kills["kills_survived"],
                "runs_lost": kills["runs_lost"],
                "duplicates": kills["duplicates"],
                "silent_misreads": tables["misread"],
                "plausible_tables_tried": sum(tables.values()),
                "faults_survived": faults["faults_survived"],
                "faults_tried": faults["faults"],
            }
        )
    )


if __name__ == "__main__":
    main()

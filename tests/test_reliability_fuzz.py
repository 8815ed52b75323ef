"""Reliability: fuzzed bad input at every public entry point, and numerical edges.

Every input either succeeds with a result that passes its invariants, or raises a documented
:class:`~bayesmix.errors.BayesmixError` (an :class:`~bayesmix.errors.InputError` names the field
and the fix). A raw numpy / pandas / PyMC / torch exception fails the test. Each fuzz test counts
the inputs it tried and asserts the count.
"""

from __future__ import annotations

import functools
import math
import operator
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes
from typer.testing import CliRunner

import bayesmix as bm
from bayesmix.cli.main import app
from bayesmix.data.runs import RunTable, validate_mixtures
from bayesmix.data.simulate import random_law, random_mixtures, simulate_runs
from bayesmix.errors import BayesmixError, InputError
from bayesmix.optimise import optimise

DOMAINS = ["web", "code", "papers"]
#: inputs tried per fuzz test; each test asserts its own count
TRIED: Counter[str] = Counter()
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def attempt(kind: str, call: Callable[[], Any]) -> tuple[Any, BayesmixError | None]:
    """Call ``call``; return ``(result, None)`` or ``(None, documented_error)``; fail on anything else."""
    TRIED[kind] += 1
    try:
        return call(), None
    except BayesmixError as err:
        if isinstance(err, InputError):
            assert err.field and err.problem and err.fix, f"{kind}: InputError without field/fix: {err!r}"
            assert "Fix:" in str(err)
        else:
            assert str(err), f"{kind}: documented error without a message"
        return None, err
    except Exception as exc:
        pytest.fail(f"{kind}: raw {type(exc).__name__} leaked: {exc}")


def check_run_table(table: RunTable) -> None:
    """Invariants of a validated run table."""
    mix = table.mixtures.to_numpy()
    assert np.isfinite(mix).all() and (mix >= 0).all()
    np.testing.assert_allclose(mix.sum(axis=1), 1.0, atol=1e-9)
    loss = table.losses.to_numpy()
    assert np.isfinite(loss).all() and (loss > 0).all()
    assert not table.mixtures.index.has_duplicates and not table.mixtures.index.hasnans


@pytest.fixture(scope="module")
def small_fit() -> tuple[RunTable, Any]:
    """A quick MAP fit of 20 simulated runs of a known 3-domain law (built once per module)."""
    runs = simulate_runs(random_law(3, seed=1), 20, seed=1)
    return runs, bm.fit(runs, method="map", seed=0, discrepancy=None)


# ---------------------------------------------------------------- strategies
weird_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0.0, 1.0, -1.0, 0.5, 1e-300, 1e300, float("nan")]),
)
cells = st.one_of(weird_floats, st.integers(-5, 5), st.booleans(), st.none(), st.text(max_size=3))
names = st.one_of(
    st.sampled_from(["web", "code", "papers", "mix_web", "mix_code", "run", "step", "zz", "", "mix_"]),
    st.text(max_size=6),
)
mixture_inputs = st.one_of(
    st.dictionaries(names, weird_floats | cells, max_size=4),
    st.lists(st.dictionaries(st.sampled_from([*DOMAINS, "zz"]), weird_floats, max_size=3), max_size=3),
    st.lists(st.lists(weird_floats, min_size=0, max_size=4), max_size=3),
    st.lists(weird_floats, max_size=5),
    cells,
    st.builds(lambda r: random_mixtures(4, 3, seed=r), st.integers(0, 50)),
)


def frame_strategy() -> st.SearchStrategy[pd.DataFrame]:
    """Small DataFrames with mixture-like, loss-like and junk columns."""
    cols = [
        column("run", elements=st.one_of(st.integers(0, 3), st.text(max_size=2), st.none())),
        column("mix_web", elements=weird_floats),
        column("mix_code", elements=weird_floats),
        column("web", elements=cells),
        column("code", elements=weird_floats),
    ]
    return st.lists(st.sampled_from(cols), min_size=1, max_size=5, unique_by=lambda c: c.name).flatmap(
        lambda chosen: data_frames(chosen, index=range_indexes(min_size=0, max_size=4))
    )


def good_wide(seed: int, n: int = 4) -> pd.DataFrame:
    """A valid wide table (mixtures on the simplex, positive losses)."""
    rng = np.random.default_rng(seed)
    mix = rng.dirichlet(np.ones(2), size=n)
    return pd.DataFrame(
        {
            "run": [f"r{i}" for i in range(n)],
            "mix_web": mix[:, 0],
            "mix_code": mix[:, 1],
            "web": rng.uniform(2, 4, n),
            "code": rng.uniform(2, 4, n),
        }
    )


def mutate(frame: pd.DataFrame, how: str, row: int, col: str, value: Any) -> pd.DataFrame:
    """One targeted corruption of a valid table."""
    frame = frame.copy()
    if how == "set":
        frame[col] = frame[col].astype(object)
        frame.loc[frame.index[row % len(frame)], col] = value
    elif how == "drop":
        frame = frame.drop(columns=[col])
    elif how == "dup_row":
        frame = pd.concat([frame, frame.iloc[[row % len(frame)]]])
    elif how == "empty":
        frame = frame.iloc[:0]
    return frame


# ---------------------------------------------------------------- run tables
def test_fuzz_wide_tables_from_generated_frames() -> None:
    @FUZZ
    @given(frame_strategy(), st.booleans(), st.booleans())
    def run(frame: pd.DataFrame, renormalise: bool, strip: bool) -> None:
        table, err = attempt(
            "wide", lambda: RunTable.from_wide(frame, renormalise=renormalise, strip_affixes=strip)
        )
        if err is None:
            check_run_table(table)
            assert table.n_runs == len(frame)

    run()
    assert TRIED["wide"] >= 40


def test_fuzz_mutated_valid_tables_in_every_layout(tmp_path: Path) -> None:
    @FUZZ
    @given(
        st.integers(0, 100),
        st.sampled_from(["set", "drop", "dup_row", "empty"]),
        st.integers(0, 3),
        st.sampled_from(["run", "mix_web", "mix_code", "web", "code"]),
        cells,
    )
    def run(seed: int, how: str, row: int, col: str, value: Any) -> None:
        frame = mutate(good_wide(seed), how, row, col, value)
        table, err = attempt("mutated-wide", lambda: RunTable.from_wide(frame))
        if err is None:
            check_run_table(table)
        long = frame.melt(
            id_vars=[c for c in frame.columns if c.startswith("mix_") or c == "run"],
            value_vars=[c for c in ("web", "code") if c in frame.columns],
            var_name="domain",
            value_name="loss",
        )
        table, err = attempt("mutated-long", lambda: RunTable.from_long(long))
        if err is None:
            check_run_table(table)
        key = frame.rename(columns={"run": "index"}) if "run" in frame.columns else frame
        mix = key[[c for c in key.columns if c.startswith("mix_") or c == "index"]]
        loss = key[[c for c in key.columns if not c.startswith("mix_")]]
        table, err = attempt("mutated-joined", lambda: RunTable.from_joined(mix, loss, strip_affixes=False))
        if err is None:
            check_run_table(table)

    run()
    assert TRIED["mutated-wide"] >= 40 and TRIED["mutated-long"] >= 40 and TRIED["mutated-joined"] >= 40


def test_fuzz_csv_text(tmp_path: Path) -> None:
    lines = st.lists(
        st.lists(
            st.one_of(
                st.sampled_from(["mix_web", "web", "0.5", "1", "-1", "nan", "", "x"]), st.text(max_size=4)
            ),
            max_size=4,
        ).map(",".join),
        max_size=5,
    )

    @FUZZ
    @given(lines, st.sampled_from(["wide", "long", "zz"]))
    def run(rows: list[str], layout: str) -> None:
        path = tmp_path / "runs.csv"
        path.write_text("\n".join(rows), encoding="utf-8")
        table, err = attempt("csv", lambda: RunTable.read(path, layout=layout))
        if err is None:
            check_run_table(table)

    run()
    for bad in (3, None, b"mix_web\n1"):
        attempt("csv", lambda bad=bad: RunTable.from_wide(bad))
    assert TRIED["csv"] >= 43


def test_fuzz_validate_mixtures() -> None:
    @FUZZ
    @given(mixture_inputs, st.booleans(), st.booleans())
    def run(mixtures: Any, renormalise: bool, named: bool) -> None:
        domains = DOMAINS if named else None
        frame, err = attempt(
            "mixtures", lambda: validate_mixtures(mixtures, domains, renormalise=renormalise)
        )
        if err is None:
            values = frame.to_numpy()
            assert np.isfinite(values).all() and (values >= 0).all()
            np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-9)
            if named:
                assert list(frame.columns) == DOMAINS

    run()
    assert TRIED["mixtures"] >= 40


# ---------------------------------------------------------------- predict / interval / optimise
def test_fuzz_predict_mixtures_and_arguments(small_fit: tuple[RunTable, Any]) -> None:
    _, idata = small_fit

    @FUZZ
    @given(
        mixture_inputs,
        st.sampled_from(["mean", "predictive", "x", None]),
        st.one_of(st.none(), st.integers(-2, 3), st.floats(0, 2), st.text(max_size=2)),
        st.one_of(st.integers(-2, 3), st.floats(-1, 1), st.text(max_size=2)),
        st.one_of(
            st.none(),
            st.dictionaries(st.sampled_from([*DOMAINS, "zz"]), weird_floats, max_size=3),
            st.text(max_size=3),
            st.lists(weird_floats, max_size=4),
        ),
    )
    def run(mixtures: Any, kind: Any, max_draws: Any, seed: Any, composition: Any) -> None:
        draws, err = attempt(
            "predict",
            lambda: bm.predict(
                idata, mixtures, kind=kind, max_draws=max_draws, seed=seed, composition=composition
            ),
        )
        if err is None:
            assert draws.dims == ("sample", "mixture", "domain")
            assert np.isfinite(draws.to_numpy()).all()

    run()
    for bad_fit in (None, "fit.nc", xr.Dataset()):
        attempt("predict", lambda bad_fit=bad_fit: bm.predict(bad_fit, {"web": 1.0}))
    assert TRIED["predict"] >= 43


def test_fuzz_interval_arguments(small_fit: tuple[RunTable, Any]) -> None:
    _, idata = small_fit
    draws = bm.predict(idata, {"web": 0.5, "code": 0.5}, kind="predictive", seed=1)

    @FUZZ
    @given(
        st.one_of(weird_floats, st.integers(-1, 2), st.none(), st.text(max_size=3), st.booleans()),
        st.sampled_from(["eti", "hdi", "x", None]),
        st.sampled_from(["sample", "draw", "mixture", None]),
    )
    def run(prob: Any, kind: Any, sample_dim: Any) -> None:
        out, err = attempt(
            "interval", lambda: bm.interval(draws, prob=prob, kind=kind, sample_dim=sample_dim)
        )
        if err is None:
            assert (out["lower"] <= out["upper"]).all()
            assert (out["lower"] <= out["median"] + 1e-12).all()

    run()
    for bad in (np.ones(3), [1.0, 2.0], None):
        attempt("interval", lambda bad=bad: bm.interval(bad))
    assert TRIED["interval"] >= 43


def test_fuzz_optimise_arguments(small_fit: tuple[RunTable, Any]) -> None:
    _, idata = small_fit
    share = st.one_of(st.floats(-0.5, 1.5), st.none(), st.just(float("nan")))
    options = st.fixed_dictionaries(
        {},
        optional={
            "target": st.one_of(
                st.sampled_from([*DOMAINS, "mean", "zz", ""]),
                st.dictionaries(st.sampled_from([*DOMAINS, "zz"]), weird_floats, max_size=2),
                st.integers(-1, 3),
            ),
            "risk": st.sampled_from(["mean", "quantile", "cvar", "x"]),
            "level": st.one_of(weird_floats, st.floats(0, 1)),
            "bounds": st.one_of(
                st.dictionaries(st.sampled_from([*DOMAINS, "zz"]), st.tuples(share, share), max_size=2),
                st.lists(st.integers(), max_size=2),
            ),
            "fixed": st.dictionaries(st.sampled_from([*DOMAINS, "zz"]), share, max_size=2),
            "exclude": st.one_of(
                st.lists(st.sampled_from([*DOMAINS, "zz"]), max_size=3), st.sampled_from(DOMAINS)
            ),
            "pull": st.one_of(weird_floats, st.floats(0, 2)),
            "max_draws": st.one_of(st.none(), st.integers(-2, 5), st.floats(0, 3)),
            "n_starts": st.one_of(st.integers(-1, 2), st.floats(0, 2)),
            "seed": st.one_of(st.integers(-2, 5), st.floats(-1, 2)),
            "prob": st.one_of(weird_floats, st.floats(0, 1)),
            "loss_constraints": st.lists(st.integers(), max_size=1),
        },
    )

    @settings(FUZZ, max_examples=30)
    @given(options)
    def run(kwargs: dict[str, Any]) -> None:
        kwargs = {"n_starts": 1, "max_draws": 5, **kwargs}
        result, err = attempt("optimise", lambda: optimise(idata, **kwargs))
        if err is None:
            mix = result.mixture.to_numpy()
            assert np.isfinite(mix).all() and (mix >= -1e-9).all()
            assert math.isclose(mix.sum(), 1.0, abs_tol=1e-6)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        run()
    assert TRIED["optimise"] >= 30


# ---------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def cli_files(small_fit: tuple[RunTable, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Files the CLI fuzz can name: a real fit, good and bad mixtures, bad run tables."""
    runs, idata = small_fit
    folder = tmp_path_factory.mktemp("cli")
    fit_path = bm.save(idata, folder / "fit.nc")
    (folder / "garbage.csv").write_bytes(b"\x00\xff,,\n\x01")
    (folder / "empty.csv").write_text("", encoding="utf-8")
    pd.DataFrame({"web": [0.5, 1.0], "code": [0.5, 0.0]}).to_csv(folder / "mix.csv", index=False)
    pd.DataFrame({"web": [0.5, -1.0], "zz": [0.5, 2.0]}).to_csv(folder / "badmix.csv", index=False)
    same = runs.to_wide()
    for column_name in runs.train_domains:  # valid table, but every run has the same mixture
        same[f"mix_{column_name}"] = same[f"mix_{column_name}"].iloc[0]
    same.to_csv(folder / "same.csv", index=False)
    (folder / "fit_bad.nc").write_bytes(b"not netcdf")
    return {
        "fit": str(fit_path),
        "badfit": str(folder / "fit_bad.nc"),
        "garbage": str(folder / "garbage.csv"),
        "empty": str(folder / "empty.csv"),
        "mix": str(folder / "mix.csv"),
        "badmix": str(folder / "badmix.csv"),
        "same": str(folder / "same.csv"),
        "missing": str(folder / "missing.csv"),
    }


def test_fuzz_cli_arguments(cli_files: dict[str, str]) -> None:
    runner = CliRunner()
    files = st.sampled_from(sorted(cli_files)).map(cli_files.__getitem__)
    value = st.one_of(st.sampled_from(["0.9", "2", "-1", "abc", "nan", "0", "learn", "map", "hdi"]), files)
    option = st.sampled_from(
        [
            "--prob",
            "--kind",
            "--interval-kind",
            "--seed",
            "--layout",
            "--law",
            "--exponent",
            "--method",
            "--draws",
            "--chains",
            "--components",
            "--out",
            "--bogus",
        ]
    )
    pairs = st.lists(st.tuples(option, value).map(list), max_size=3).map(
        lambda ps: functools.reduce(operator.iadd, ps, [])
    )
    fit_cmd = st.tuples(
        st.just(["fit"]),
        st.lists(
            st.sampled_from(["garbage", "empty", "badmix", "same", "missing"]).map(cli_files.__getitem__),
            min_size=0,
            max_size=1,
        ),
        pairs,
    )
    predict_cmd = st.tuples(st.just(["predict"]), st.lists(files, min_size=0, max_size=2), pairs)
    other = st.tuples(
        st.lists(st.sampled_from(["nope", "--help", "corpus", "x"]), max_size=2), st.just([]), st.just([])
    )

    @settings(FUZZ, max_examples=50)
    @given(st.one_of(fit_cmd, predict_cmd, other))
    def run(parts: tuple[list[str], list[str], list[str]]) -> None:
        args = [*parts[0], *parts[1], *parts[2]]
        if args[:1] == ["fit"] and "--out" not in args:
            args += ["--out", str(Path(cli_files["fit"]).parent / "out.nc")]
        TRIED["cli"] += 1
        result = runner.invoke(app, args, catch_exceptions=True)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"bayesmix {args}: raw {type(result.exception).__name__}: {result.exception}"
        )
        if result.exit_code == 1:
            assert "\nerror:" in "\n" + result.stderr and result.stdout == "", result.output  # documented, on stderr
        else:
            assert result.exit_code in (0, 2, 3), result.output  # ok, usage, sampler health

    run()
    assert TRIED["cli"] >= 50


# ---------------------------------------------------------------- plan files and ledger
def test_fuzz_plan_files(tmp_path: Path) -> None:
    from bayesmix.proxy.plan import load_plan

    yaml_text = st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda mix, steps, seed, model: (
                f"runs:\n  - {{mixture: {mix}, model: {model}, steps: {steps}, seed: {seed}}}\n"
            ),
            st.sampled_from(
                ["{legal: 0.5, code: 0.5}", "{legal: 2}", "{legal: x}", "[1, 2]", "7", "{}", "{a: .nan}"]
            ),
            st.sampled_from(["10", "0", "-1", "abc", "1.5", "null", "[1]"]),
            st.sampled_from(["0", "-3", "x", "2.0"]),
            st.sampled_from(["cpu-xs", "null", "[a]", "''"]),
        ),
        st.sampled_from(
            ["runs: 3", "- 1\n- 2", "defaults: 3\nruns: []", "runs: [1]", "{", "runs:\n - {mixture: {a: 1}}"]
        ),
    )
    csv_text = st.lists(
        st.sampled_from(
            ["mix_a,mix_b,model,steps", "0.5,0.5,t1,3", "1,0,t1,x", "a,b,c", "\x00", "2,-1,t1,3", ",,,"]
        ),
        max_size=4,
    ).map("\n".join)

    @FUZZ
    @given(st.one_of(yaml_text.map(lambda t: ("plan.yaml", t)), csv_text.map(lambda t: ("plan.csv", t))))
    def run(named: tuple[str, str]) -> None:
        path = tmp_path / named[0]
        path.write_text(named[1], encoding="utf-8")
        plan, err = attempt("plan", lambda: load_plan(path))
        if err is None:
            for r in plan:
                assert r.steps >= 1 and r.seed >= 0
                assert math.isclose(sum(r.mixture.values()), 1.0, abs_tol=1e-9)

    run()
    assert TRIED["plan"] >= 40


def test_ledger_is_wal_and_refuses_bad_files_and_inputs(tmp_path: Path) -> None:
    import sqlite3

    from bayesmix.data.ledger import Ledger, RunRecord

    ledger = Ledger(tmp_path / "ledger.sqlite")
    with sqlite3.connect(tmp_path / "ledger.sqlite") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    record = RunRecord("r1", {"a": 1.0}, "t", {}, {}, 1, 1, 1.0, 1, 0, "c", "t")
    assert ledger.add_run(record) and not ledger.add_run(record)
    for bad in ({}, {"a": 0.5}, {"a": -1.0, "b": 2.0}):
        attempt(
            "ledger",
            lambda bad=bad: ledger.add_run(RunRecord("r2", bad, "t", {}, {}, 1, 1, 1.0, 1, 0, "c", "t")),
        )
    attempt("ledger", lambda: ledger.set_status("r1", "done"))
    attempt("ledger", lambda: ledger.set_status("nope", "finished"))
    attempt("ledger", lambda: ledger.get_run("nope"))
    changed = RunRecord("r1", {"a": 1.0}, "t", {}, {}, 1, 1, 1.0, 1, 7, "c", "t")
    _, err = attempt("ledger", lambda: ledger.add_run(changed))
    assert isinstance(err, InputError)
    assert [r.id for r in ledger.runs()] == ["r1"]  # nothing half-written by the refused calls
    (tmp_path / "junk.sqlite").write_bytes(b"this is not sqlite" * 100)
    _, err = attempt("ledger", lambda: Ledger(tmp_path / "junk.sqlite"))
    assert isinstance(err, bm.IncompatibleFileError)
    assert TRIED["ledger"] >= 8


# ---------------------------------------------------------------- numerical edges
def test_identical_runs_and_unused_domains_are_refused() -> None:
    law = random_law(3, seed=1)
    same = np.tile([[0.2, 0.3, 0.5]], (20, 1))
    with pytest.raises(InputError, match="same mixture"):
        bm.fit(simulate_runs(law, 20, seed=1, mixtures=same), method="map", discrepancy=None)
    unused = np.c_[random_mixtures(20, 2, seed=2), np.zeros(20)]
    with pytest.raises(InputError, match=r"\['papers'\] are 0 in every run"):
        bm.fit(simulate_runs(law, 20, seed=1, mixtures=unused), method="paper")


def test_more_parameters_than_runs_is_not_enough_data() -> None:
    runs = simulate_runs(random_law(5, seed=2), 4, seed=2)
    with pytest.raises(bm.NotEnoughDataError, match="needs at least"):
        bm.fit(runs, method="map", discrepancy=None)


def test_losses_near_zero_or_very_large_give_the_same_law(small_fit: tuple[RunTable, Any]) -> None:
    """The priors scale with the data, so scaling every loss by 1e-6 or 1e4 scales the fit."""
    runs, idata = small_fit
    base = bm.predict(idata, runs.mixtures, kind="mean").mean("sample").to_numpy()
    for scale in (1e-6, 1e4):
        scaled = bm.fit(RunTable(runs.mixtures, runs.losses * scale), method="map", seed=0, discrepancy=None)
        pred = bm.predict(scaled, runs.mixtures, kind="mean").mean("sample").to_numpy() / scale
        np.testing.assert_allclose(pred, base, rtol=2e-3)


def test_constant_losses_predict_the_constant(small_fit: tuple[RunTable, Any]) -> None:
    """Documented behaviour: losses that never change give a flat law at that value."""
    runs, _ = small_fit
    flat = bm.fit(RunTable(runs.mixtures, runs.losses * 0 + 2.5), method="map", seed=0, discrepancy=None)
    new = random_mixtures(5, 3, seed=9)
    pred = bm.predict(flat, new, kind="mean").to_numpy()
    np.testing.assert_allclose(pred, 2.5, rtol=1e-3)


def test_single_validation_domain(small_fit: tuple[RunTable, Any]) -> None:
    runs, _idata = small_fit
    one = bm.fit(runs.select_domains(["web"]), method="map", seed=0, discrepancy=None)
    pred = bm.predict(one, runs.mixtures, kind="mean").mean("sample")
    assert pred.sizes["domain"] == 1
    truth = random_law(3, seed=1).mean_loss(runs.mixtures.to_numpy())[:, 0]
    np.testing.assert_allclose(pred.sel(domain="web").to_numpy(), truth, rtol=0.1)
    with pytest.raises(InputError, match="shared"):
        bm.fit(runs.select_domains(["web"]), method="map", noise="shared")

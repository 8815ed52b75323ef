"""Reliability, second part: fuzzed loss curves, nested-fit and search arguments, numerical edges.

Like ``tests/test_reliability_fuzz.py``: every input either succeeds with a result that passes its
invariants or raises a documented :class:`~bayesmix.errors.BayesmixError` (an
:class:`~bayesmix.errors.InputError` names the field and the fix); a raw exception fails the test,
and each fuzz test counts the inputs it tried.

Argument fuzzing of :func:`~bayesmix.inference.nested.fit_nested` must not sample: the sampler is
replaced by :class:`ReachedSampler`, so an input that gets that far proves it passed validation,
and an independent oracle (:func:`fit_arguments_valid`) checks that only valid inputs do.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes

import bayesmix as bm
import bayesmix.inference.nested as nested_module
from bayesmix.data.curves import CurveTable
from bayesmix.data.runs import RunTable
from bayesmix.data.simulate import random_law, random_mixtures, simulate_runs
from bayesmix.data.simulate_curves import random_nested_truth, simulate_curves
from bayesmix.errors import BayesmixError, InputError, NotEnoughDataError
from bayesmix.inference.fit import PAPER_MIN_LOSS
from bayesmix.inference.nested import NestedFit, fit_nested, predict_target
from bayesmix.optimise import Problem, dirichlet_search, grid_search, simplex_grid
from bayesmix.optimise.search import MAX_GRID_POINTS

#: inputs tried per fuzz test; each test asserts its own count
TRIED: Counter[str] = Counter()
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
SIZES = (1e7, 3e7)
CHECKPOINTS = tuple(np.geomspace(1e9, 1e10, 4))
TARGET = {"model_size": 1e9, "tokens": 1e11}


class ReachedSampler(Exception):
    """Raised instead of sampling: the arguments passed every check."""


def attempt(kind: str, call: Any) -> tuple[Any, BayesmixError | None]:
    """Call ``call``; return ``(result, None)`` or ``(None, documented_error)``; fail on anything else."""
    TRIED[kind] += 1
    try:
        return call(), None
    except BayesmixError as err:
        if isinstance(err, InputError):
            assert err.field and err.problem and err.fix, f"{kind}: InputError without field/fix: {err!r}"
            assert "Fix:" in str(err)
        return None, err
    except ReachedSampler:
        raise
    except Exception as exc:
        pytest.fail(f"{kind}: raw {type(exc).__name__} leaked: {exc}")


# ---------------------------------------------------------------- curve tables
def real(value: Any) -> bool:
    """A finite real number that fits a float, not a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def base_curves(n_domains: int = 2, n_mixtures: int = 2) -> pd.DataFrame:
    """A valid long table: ``n_mixtures`` mixtures x 2 sizes x 4 checkpoints x ``n_domains`` domains."""
    truth = random_nested_truth(n_domains, seed=3)
    frame, _ = simulate_curves(truth, n_mixtures=n_mixtures, model_sizes=SIZES, tokens=CHECKPOINTS, seed=3)
    return frame


BASE = base_curves()
weird = st.one_of(
    st.sampled_from(
        [0.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e-300, 1e300, None, True, "x", ""]
    ),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.text(max_size=3),
)
CURVE_COLUMNS = ["run", "domain", "loss", "tokens", "model_size", "mix_web", "mix_code"]
#: mutations whose outcome is known: (error class, the field it must name); None: the table stays valid
EXPECTED: dict[str, tuple[type[BayesmixError], str] | None] = {
    "shuffle": None,
    "numbers_as_text": None,
    "one_size": (NotEnoughDataError, "model_size"),
    "few_checkpoints": (NotEnoughDataError, "checkpoints"),
    "duplicate_checkpoint": (InputError, "table"),
    "mixture_mid_run": (InputError, "mix_web"),
    "size_mid_run": (InputError, "model_size"),
}


def check_curve_table(table: CurveTable) -> None:
    """Invariants of a validated curve table."""
    frame = table.frame
    for name in ("loss", "tokens", "model_size"):
        values = frame[name].to_numpy()
        assert values.dtype == float and np.isfinite(values).all() and (values > 0).all(), name
    assert not frame[["run", "domain"]].isna().any().any()
    assert not frame.duplicated(["run", "domain", "tokens"]).any()
    for _, group in frame.groupby(["run", "domain"]):
        assert len(group) >= 3 and group["tokens"].is_monotonic_increasing
    per_run = frame.groupby("run")
    assert (per_run["model_size"].nunique() == 1).all() and (per_run["mixture"].nunique() == 1).all()
    assert len(table.model_sizes) >= 2
    mix = table.mixtures.to_numpy()
    assert np.isfinite(mix).all() and (mix >= 0).all()
    np.testing.assert_allclose(mix.sum(axis=1), 1.0, atol=1e-9)


def assert_same_curves(a: CurveTable, b: CurveTable) -> None:
    """Equal checkpoints and equal run mixtures (mixture ids follow row order, so they may differ)."""
    pd.testing.assert_frame_equal(a.frame.drop(columns="mixture"), b.frame.drop(columns="mixture"))

    def per_run(t: CurveTable) -> pd.DataFrame:
        return t.mixtures.loc[t.runs["mixture"]].set_axis(t.runs.index).sort_index()

    pd.testing.assert_frame_equal(per_run(a), per_run(b))


def mutate_curves(frame: pd.DataFrame, how: str, row: int, col: str, value: Any) -> pd.DataFrame:
    """One corruption (or harmless change) of a valid long table."""
    frame = frame.copy()
    first_run = frame["run"].iloc[0]
    later = (frame["run"] == first_run) & (frame["tokens"] > frame["tokens"].min())
    if how == "set":
        frame[col] = frame[col].astype(object)
        frame.loc[frame.index[row % len(frame)], col] = value
    elif how == "drop":
        frame = frame.drop(columns=[col])
    elif how == "shuffle":
        frame = frame.sample(frac=1.0, random_state=row)
    elif how == "numbers_as_text":
        frame[col if col in ("loss", "tokens", "model_size") else "loss"] = frame[
            col if col in ("loss", "tokens", "model_size") else "loss"
        ].map(repr)
    elif how == "one_size":
        frame = frame[frame["model_size"] == SIZES[row % 2]]
    elif how == "few_checkpoints":
        frame = frame[frame["tokens"] <= CHECKPOINTS[row % 2]]
    elif how == "duplicate_checkpoint":
        frame = pd.concat([frame, frame.iloc[[row % len(frame)]].assign(loss=3.0)])
    elif how == "mixture_mid_run":
        frame.loc[later, "mix_web"] = 0.123
        frame.loc[later, "mix_code"] = 0.877
    elif how == "size_mid_run":
        frame.loc[later, "model_size"] = 5e7
    elif how == "scale":  # zero, negative or non-finite tokens or model sizes everywhere
        frame[col if col in ("tokens", "model_size") else "tokens"] *= value if real(value) else -1.0
    elif how == "steps":
        frame = frame.rename(columns={"tokens": "step"})
    return frame


#: (how, row, column, value, tokens_per_step) for :func:`mutate_curves`
curve_mutations = st.tuples(
    st.sampled_from(["set", "drop", "scale", "steps", *EXPECTED]),
    st.integers(0, 200),
    st.sampled_from(CURVE_COLUMNS),
    weird,
    st.one_of(st.none(), weird, st.sampled_from([1.0, 512.0, 2048])),
)


def test_fuzz_curve_tables_from_mutations() -> None:
    @settings(FUZZ, max_examples=80)
    @given(curve_mutations)
    def run(case: tuple[str, int, str, Any, Any]) -> None:
        how, row, col, value, tokens_per_step = case
        frame = mutate_curves(BASE, how, row, col, value)
        table, err = attempt("curves", lambda: CurveTable.from_long(frame, tokens_per_step=tokens_per_step))
        if err is None:
            check_curve_table(table)
        if how in EXPECTED:
            expected = EXPECTED[how]
            if expected is None:
                assert err is None, f"{how}: {err}"
                assert_same_curves(table, CurveTable.from_long(BASE))
            else:
                assert isinstance(err, expected[0]) and err.field == expected[1], (how, err)
        elif how == "drop":
            assert err is not None and (col in str(err) or err.field.startswith("mixture")), (col, err)
        elif how == "set" and col in ("loss", "tokens", "model_size"):
            number = isinstance(value, float | int) and not isinstance(value, bool)
            if (number and not (math.isfinite(value) and value > 0)) or isinstance(value, bool):
                assert isinstance(err, InputError) and err.field == col, (col, value, err)
        elif how == "scale":
            bad_col = col if col in ("tokens", "model_size") else "tokens"
            if not (real(value) and value > 0):
                assert isinstance(err, InputError) and err.field == bad_col, (bad_col, value, err)
        elif how == "steps" and err is None:
            assert isinstance(tokens_per_step, int | float) and tokens_per_step > 0

    run()
    assert TRIED["curves"] >= 80


def test_fuzz_curve_tables_from_generated_frames() -> None:
    cols = [
        column("run", elements=st.one_of(st.integers(0, 2), st.text(max_size=2), st.none())),
        column("domain", elements=st.one_of(st.sampled_from(["web", "code"]), st.none(), st.integers(0, 1))),
        column("loss", elements=weird),
        column("tokens", elements=st.one_of(weird, st.sampled_from([1e9, 2e9, 3e9]))),
        column("step", elements=st.one_of(weird, st.integers(1, 3))),
        column("model_size", elements=st.one_of(weird, st.sampled_from([1e7, 3e7]))),
        column("mix_web", elements=st.one_of(weird, st.sampled_from([0.0, 0.5, 1.0]))),
        column("mix_code", elements=st.one_of(weird, st.sampled_from([0.0, 0.5, 1.0]))),
    ]
    frames = st.lists(st.sampled_from(cols), min_size=1, max_size=8, unique_by=lambda c: c.name).flatmap(
        lambda chosen: data_frames(chosen, index=range_indexes(min_size=0, max_size=8))
    )
    options = st.fixed_dictionaries(
        {},
        optional={
            "tokens_per_step": st.one_of(weird, st.integers(-2, 3)),
            "mixture_columns": st.one_of(
                st.just(["mix_web"]), st.just("mix_web"), st.just([]), st.integers(), st.just(["zz"])
            ),
            "min_checkpoints": st.one_of(st.integers(-1, 3), st.text(max_size=1), st.floats(0, 3)),
            "min_sizes": st.one_of(st.integers(-1, 2), st.none()),
        },
    )

    @settings(FUZZ, max_examples=60)
    @given(frames, options)
    def run(frame: pd.DataFrame, kwargs: dict[str, Any]) -> None:
        table, err = attempt("curves-generated", lambda: CurveTable.from_long(frame, **kwargs))
        if err is None:
            check_curve_table(table)

    run()
    for bad in (None, 3, "missing.csv", b"run,domain"):
        attempt("curves-generated", lambda bad=bad: CurveTable.from_long(bad))
    assert TRIED["curves-generated"] >= 64


def test_curve_table_edges_are_named() -> None:
    """The edges the issue lists, each with the documented error and field."""
    with pytest.raises(NotEnoughDataError, match=r"model_size: 1 model size\(s\) \(1e\+07\).*Fix: train"):
        CurveTable.from_long(BASE[BASE["model_size"] == 1e7])
    with pytest.raises(InputError, match=r"^tokens: 32 values are not finite and positive"):
        CurveTable.from_long(BASE.assign(tokens=0.0))
    with pytest.raises(InputError, match=r"^model_size: .* not finite and positive"):
        CurveTable.from_long(BASE.assign(model_size=-1e7))
    with pytest.raises(InputError, match=r"^loss: has non-numeric values"):
        CurveTable.from_long(BASE.assign(loss=BASE["loss"].astype(object).where(BASE.index != 0, "abc")))
    with pytest.raises(InputError, match=r"^run: 1 rows have no run"):
        CurveTable.from_long(BASE.assign(run=BASE["run"].where(BASE.index != 5)))
    with pytest.raises(InputError, match=r"^tokens: has true/false values"):
        CurveTable.from_long(BASE.assign(tokens=BASE["tokens"] > 0))
    with pytest.raises(InputError, match=r"^step: has non-numeric"):
        CurveTable.from_long(BASE.rename(columns={"tokens": "step"}).assign(step="x"), tokens_per_step=1.0)
    with pytest.raises(InputError, match=r"^tokens_per_step:"):
        CurveTable.from_long(BASE.rename(columns={"tokens": "step"}), tokens_per_step="512")
    with pytest.raises(InputError, match=r"^table: repeats columns \['run'\]"):
        CurveTable.from_long(BASE.rename(columns={"domain": "run"}))
    # non-monotone rows are sorted; numbers written as text (CSV) are read as numbers
    shuffled = CurveTable.from_long(BASE.iloc[::-1].assign(model_size=BASE["model_size"].iloc[::-1].map(str)))
    assert_same_curves(shuffled, CurveTable.from_long(BASE))


# ---------------------------------------------------------------- fit_nested arguments
GOOD_TABLE = CurveTable.from_long(BASE)
ONE_SIZE_TABLE = CurveTable.from_long(BASE[BASE["model_size"] == 1e7], min_sizes=1)
numbers = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.5, 0.9, 0.99, 1.0, 2.0, 10.0, 100.0, float("nan"), float("inf"), 10**400]),
    st.floats(-2, 2),
    st.text(max_size=2),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


def _count(value: Any, low: int) -> bool:
    return real(value) and float(value).is_integer() and value >= low


def fit_arguments_valid(table: Any, kwargs: dict[str, Any]) -> bool:
    """An independent statement of fit_nested's argument rules (the docstring's).

    A table of one model size (accepted with ``min_sizes=1``) is fitted by the staged step laws
    only; the joint law needs two sizes.
    """

    get = kwargs.get
    return (
        (table is GOOD_TABLE or (table is ONE_SIZE_TABLE and get("method", "joint") == "staged"))
        and get("method", "joint") in ("joint", "staged")
        and _count(get("draws", 1000), 1)
        and _count(get("tune", 1000), 0)
        and _count(get("chains", 4), 1)
        and real(get("target_accept", 0.9))
        and 0.5 <= get("target_accept", 0.9) < 1
        and get("sampler", "nutpie") in ("nutpie", "pymc")
        and isinstance(get("seed", 0), int)
        and not isinstance(get("seed", 0), bool)
        and get("seed", 0) >= 0
        and get("likelihood", "student_t") in ("student_t", "normal")
        and real(get("nu", 5.0))
        and get("nu", 5.0) > 0
        and all(isinstance(get(k, False), bool) for k in ("run_effect", "strict", "progressbar"))
    )


VALID_FIT_OPTIONS = {
    "method": st.sampled_from(["joint", "staged"]),
    "draws": st.one_of(st.integers(1, 50), st.just(10.0)),
    "tune": st.integers(0, 50),
    "chains": st.integers(1, 4),
    "target_accept": st.floats(0.5, 0.99),
    "sampler": st.sampled_from(["nutpie", "pymc"]),
    "seed": st.integers(0, 2**32),
    "likelihood": st.sampled_from(["student_t", "normal"]),
    "nu": st.floats(0.1, 100),
    "run_effect": st.booleans(),
    "strict": st.booleans(),
}
BAD_VALUES = st.one_of(numbers, st.sampled_from(["paper", "", "JOINT", "numpyro", "cauchy", "no"]))
#: valid settings with up to two of them replaced by junk (which may by chance be valid: the oracle decides)
fit_options = st.tuples(
    st.fixed_dictionaries({}, optional=VALID_FIT_OPTIONS),
    st.one_of(
        st.just({}), st.dictionaries(st.sampled_from(sorted(VALID_FIT_OPTIONS)), BAD_VALUES, max_size=2)
    ),
).map(lambda pair: {**pair[0], **pair[1]})


#: (table, fit_nested keyword arguments)
fit_cases = st.tuples(
    st.one_of(st.just(GOOD_TABLE), st.sampled_from([ONE_SIZE_TABLE, BASE, None])), fit_options
)


def test_fuzz_fit_nested_arguments_fail_before_sampling(monkeypatch: pytest.MonkeyPatch) -> None:
    def reached(*args: Any, **kwargs: Any) -> None:
        raise ReachedSampler

    monkeypatch.setattr(nested_module, "_sample", reached)
    outcomes: Counter[str] = Counter()

    @settings(FUZZ, max_examples=80)
    @given(fit_cases)
    def run(case: tuple[Any, dict[str, Any]]) -> None:
        table, kwargs = case
        valid = fit_arguments_valid(table, kwargs)
        try:
            _, err = attempt("fit_nested", lambda: fit_nested(table, **kwargs))
        except ReachedSampler:
            outcomes["reached"] += 1
            assert valid, f"fit_nested({kwargs}) reached the sampler with a bad argument"
            return
        outcomes["refused"] += 1
        assert not valid, f"fit_nested refused valid arguments {kwargs}: {err}"
        assert isinstance(err, InputError)
        if table is ONE_SIZE_TABLE and fit_arguments_valid(GOOD_TABLE, kwargs):
            # valid for two sizes, so the method is the joint law: refused with the staged fix
            assert isinstance(err, NotEnoughDataError) and err.field == "model_size", err
            assert "method='staged'" in err.fix

    run()
    assert TRIED["fit_nested"] >= 80
    assert outcomes["reached"] >= 5 and outcomes["refused"] >= 30, outcomes  # both sides were exercised


def test_single_model_size_is_not_enough_data_for_the_joint_law() -> None:
    with pytest.raises(NotEnoughDataError, match="model_size") as info:
        fit_nested(ONE_SIZE_TABLE, draws=10, tune=10, chains=1)
    assert info.value.field == "model_size" and "method='staged'" in info.value.fix
    # a table of one size accepted with the default minimum (two sizes) is refused for any method
    with pytest.raises(NotEnoughDataError, match="model size"):
        CurveTable.from_long(BASE[BASE["model_size"] == 1e7])


# ---------------------------------------------------------------- predict_target arguments
@pytest.fixture(scope="module")
def tiny_nested_fit() -> NestedFit:
    """A real (tiny) joint fit: PyMC's NUTS, 1 chain x 20 draws, on 2 mixtures x 2 sizes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_nested(GOOD_TABLE, sampler="pymc", draws=20, tune=20, chains=1, seed=0)


def predict_target_options(fitted: NestedFit) -> st.SearchStrategy[dict[str, Any]]:
    """predict_target keyword arguments: valid ones, or valid ones with one or two replaced by junk."""
    observed = fitted.mixtures.iloc[0].to_dict()
    mixtures = st.one_of(
        st.none(),
        st.just(observed),
        st.just([observed, fitted.mixtures.iloc[1].to_dict()]),
        st.just({"web": 0.31, "code": 0.69}),
        st.dictionaries(st.sampled_from(["web", "code", "zz"]), numbers, max_size=2),
        numbers,
    )
    good = st.fixed_dictionaries(
        {"model_size": st.floats(1, 1e12), "tokens": st.floats(1, 1e13)},
        optional={
            "mixtures": st.sampled_from([None, observed, [observed, fitted.mixtures.iloc[1].to_dict()]]),
            "kind": st.sampled_from(["predictive", "mean"]),
            "via": st.sampled_from(["auto", "observed"]),
            "composition": st.one_of(st.none(), st.just({"web": 0.7, "code": 0.3}), st.just([1.0, 3.0])),
            "renormalise": st.booleans(),
            "max_draws": st.one_of(st.none(), st.integers(1, 30)),
            "seed": st.integers(0, 2**32),
            "force": st.booleans(),
        },
    )
    junk = {
        "model_size": numbers,
        "tokens": numbers,
        "mixtures": mixtures,
        "kind": st.one_of(st.just("x"), numbers),
        "via": st.one_of(st.sampled_from(["mixing_law", "x"]), numbers),
        "composition": st.one_of(
            st.dictionaries(st.sampled_from(["web", "code", "zz"]), numbers, max_size=2),
            st.lists(numbers, max_size=3),
            st.text(max_size=2),
        ),
        "renormalise": st.sampled_from(["x", 1, None]),
        "max_draws": numbers,
        "seed": numbers,
        "force": st.sampled_from(["x", 1, None]),
    }
    # junk may by chance be valid: the test's rules decide
    replaced = st.lists(st.sampled_from(sorted(junk)), min_size=1, max_size=2, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: junk[k] for k in keys})
    )
    return st.one_of(good, st.tuples(good, replaced).map(lambda pair: {**pair[0], **pair[1]}))


def test_fuzz_predict_target_arguments(tiny_nested_fit: NestedFit, monkeypatch: pytest.MonkeyPatch) -> None:
    def reached(*args: Any, **kwargs: Any) -> None:
        raise ReachedSampler  # an unobserved mixture would fit the mixing stage: validation is done

    monkeypatch.setattr(nested_module, "_sample", reached)
    fitted = tiny_nested_fit
    options = predict_target_options(fitted)
    scalar_rules = {
        "model_size": lambda v: real(v) and v >= 1,
        "tokens": lambda v: real(v) and v >= 1,
        "kind": lambda v: v in ("predictive", "mean"),
        "via": lambda v: v in ("auto", "observed", "mixing_law"),
        "seed": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "max_draws": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
        "renormalise": lambda v: isinstance(v, bool),
        "force": lambda v: isinstance(v, bool),
    }

    outcomes: Counter[str] = Counter()

    @settings(FUZZ, max_examples=60)
    @given(options)
    def run(kwargs: dict[str, Any]) -> None:
        bad = [k for k, ok in scalar_rules.items() if k in kwargs and not ok(kwargs[k])]
        try:
            draws, err = attempt("predict_target", lambda: predict_target(fitted, **kwargs))
        except ReachedSampler:
            assert not bad, f"predict_target({kwargs}) reached the mixing stage with bad {bad}"
            return
        if bad:
            assert isinstance(err, InputError), f"bad {bad} accepted: {kwargs}"
        outcomes["ok" if err is None else "refused"] += 1
        if err is None:
            if not kwargs.get("force", False):  # the target checks: not below every run, not absurdly far
                assert draws.attrs["model_size"] >= draws.attrs["fitted_model_size_min"]
                assert draws.attrs["tokens"] >= draws.attrs["fitted_tokens_min"]
                assert draws.attrs["extrapolation_efolds_model_size"] <= nested_module.MAX_EFOLDS
                assert draws.attrs["extrapolation_efolds_tokens"] <= nested_module.MAX_EFOLDS
            assert draws.dims == ("sample", "mixture", "domain")
            assert list(draws["domain"].values) == [*fitted.domains, "total"]
            values = draws.to_numpy()
            assert np.isfinite(values).all()
            inner = values[..., :-1]
            assert (values[..., -1] >= inner.min(axis=-1) - 1e-9).all()  # a weighted mean of the domains
            assert (values[..., -1] <= inner.max(axis=-1) + 1e-9).all()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", nested_module.TargetExtrapolationWarning)
        run()
    for bad_fit in (None, GOOD_TABLE, "fit.nc"):
        attempt("predict_target", lambda bad_fit=bad_fit: predict_target(bad_fit, **TARGET))
    assert TRIED["predict_target"] >= 63
    assert outcomes["ok"] >= 3 and outcomes["refused"] >= 30, outcomes


def test_predict_target_checks_composition_before_fitting_a_stage(
    tiny_nested_fit: NestedFit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad composition with an unobserved mixture is refused before the mixing stage is sampled."""

    def reached(*args: Any, **kwargs: Any) -> None:
        raise ReachedSampler

    monkeypatch.setattr(nested_module, "_sample", reached)
    with pytest.raises(InputError, match=r"^composition"):
        predict_target(tiny_nested_fit, **TARGET, mixtures={"web": 0.31, "code": 0.69}, composition={"zz": 1})


# ---------------------------------------------------------------- grid and Dirichlet search
@pytest.fixture(scope="module")
def problem() -> Problem:
    runs = simulate_runs(random_law(3, seed=1), 20, seed=1)
    return Problem.from_idata(bm.fit(runs, method="map", seed=0, discrepancy=None), "mean", max_draws=50)


search_counts = st.one_of(
    st.integers(-3, 40),
    st.sampled_from([10**9, 10**30, 2**63, MAX_GRID_POINTS + 1]),
    st.floats(-2, 50),
    st.sampled_from([float("nan"), float("inf"), True, None, "10", np.int64(5)]),
)
dirichlet_good = st.fixed_dictionaries(
    {"n": st.integers(1, 2000)},
    optional={
        "top": st.integers(1, 50),
        "centre": st.sampled_from([None, [0.2, 0.3, 0.5], np.array([1.0, 0.0, 0.0])]),
        "seed": st.one_of(st.integers(0, 100), st.just(np.int64(3))),
        "screen_draws": st.one_of(st.none(), st.integers(1, 30)),
    },
)
dirichlet_junk = {
    "n": search_counts,
    "top": st.one_of(st.integers(-2, 0), st.sampled_from([None, "x", 1.5])),
    "centre": st.one_of(
        st.lists(st.one_of(st.floats(-1, 2), st.just(float("nan"))), max_size=4), st.text(max_size=2)
    ),
    "seed": st.one_of(st.integers(-2, -1), st.sampled_from([1.5, "a", None])),
    "screen_draws": st.one_of(st.integers(-1, 0), st.just("x")),
}
dirichlet_replaced = st.lists(
    st.sampled_from(sorted(dirichlet_junk)), min_size=1, max_size=2, unique=True
).flatmap(lambda keys: st.fixed_dictionaries({k: dirichlet_junk[k] for k in keys}))
dirichlet_args = st.one_of(
    dirichlet_good, st.tuples(dirichlet_good, dirichlet_replaced).map(lambda pair: {**pair[0], **pair[1]})
)
grid_steps = st.one_of(st.integers(1, 60), search_counts)

#: ("grid", steps) or ("dirichlet", keyword arguments)
search_cases = st.one_of(
    grid_steps.map(lambda n: ("grid", n)), dirichlet_args.map(lambda kw: ("dirichlet", kw))
)


def test_fuzz_search_arguments(problem: Problem) -> None:
    outcomes: Counter[str] = Counter()

    @settings(FUZZ, max_examples=60)
    @given(search_cases)
    def run(case: tuple[str, Any]) -> None:
        which, args = case
        started = time.perf_counter()
        if which == "grid":
            result, err = attempt("search", lambda: grid_search(problem, args))
        else:
            result, err = attempt("search", lambda: dirichlet_search(problem, **args))
        assert time.perf_counter() - started < 20, "a huge request must be refused, not computed"
        outcomes[f"{which} {'ok' if err is None else 'refused'}"] += 1
        if err is None:
            mix = result.mixture.to_numpy()
            assert np.isfinite(mix).all() and (mix >= -1e-12).all()
            assert math.isclose(mix.sum(), 1.0, abs_tol=1e-9)
            assert np.isfinite(result.objective) and result.n_evaluated >= 1
        else:
            assert err.field in ("steps", "n", "top", "seed", "centre", "screen_draws"), err

    run()
    for bad in (None, "problem", 3):
        attempt("search", lambda bad=bad: grid_search(bad, 10))
        attempt("search", lambda bad=bad: dirichlet_search(bad, n=10))
    assert TRIED["search"] >= 66
    assert min(outcomes.values()) >= 3 and len(outcomes) == 4, outcomes


def test_huge_grids_are_refused_quickly_with_the_largest_steps_that_fit(problem: Problem) -> None:
    started = time.perf_counter()
    with pytest.raises(InputError, match=r"^steps: steps=1000000000 gives more than 2,000,000 grid points"):
        simplex_grid(17, 10**9)
    with pytest.raises(InputError, match=r"use steps <= 1998 for 3 domains"):
        simplex_grid(3, 2000)
    assert len(simplex_grid(3, 1998)) <= MAX_GRID_POINTS  # the suggested steps do fit
    with pytest.raises(InputError, match=r"steps=100\.\.\.\(401 digits\)"):
        grid_search(problem, 10**400)
    with pytest.raises(InputError, match="too many for a grid"):
        simplex_grid(10**7, 1)
    with pytest.raises(InputError, match=r"^n: got 1000000000"):
        dirichlet_search(problem, n=10**9)
    assert time.perf_counter() - started < 10
    np.testing.assert_allclose(simplex_grid(3, 4).sum(axis=1), 1.0)
    assert len(simplex_grid(3, 4)) == 15 and len(np.unique(simplex_grid(3, 4), axis=0)) == 15
    assert simplex_grid(1, 10**50).tolist() == [[1.0]]


# ---------------------------------------------------------------- numerical edges of RunTable fits
def test_paper_protocol_refuses_losses_near_zero_and_fits_large_ones() -> None:
    """Documented in ``bm.fit``'s Notes: the paper's grid is in nats, so tiny losses are refused."""
    runs = simulate_runs(random_law(3, seed=1), 20, seed=1)
    new = random_mixtures(5, 3, seed=9)
    with pytest.raises(InputError, match=r"^runs: the smallest loss is 2\.\d+e-06; the paper protocol"):
        bm.fit(RunTable(runs.mixtures, runs.losses * 1e-6), method="paper")
    assert PAPER_MIN_LOSS == 0.02
    fit_large = bm.fit(RunTable(runs.mixtures, runs.losses * 1e4), method="paper", paper_inits=50)
    base = bm.predict(bm.fit(runs, method="paper", paper_inits=50), new, kind="mean").to_numpy()
    large = bm.predict(fit_large, new, kind="mean")
    np.testing.assert_allclose(large.to_numpy() / 1e4, base, rtol=5e-3)


def test_paper_protocol_with_more_parameters_than_runs_is_not_enough_data() -> None:
    runs = simulate_runs(random_law(5, seed=2), 7, seed=2)  # 7 parameters per domain: one run short
    with pytest.raises(NotEnoughDataError, match=r"^runs: 7 runs for the paper protocol .* at least 8 runs"):
        bm.fit(runs, method="paper", paper_inits=10)
    bm.fit(simulate_runs(random_law(5, seed=2), 8, seed=2), method="paper", paper_inits=10)  # exactly enough


@pytest.mark.slow
def test_nuts_fit_of_tiny_and_huge_losses_is_the_same_law() -> None:
    runs = simulate_runs(random_law(3, seed=1), 20, seed=1)
    new = random_mixtures(5, 3, seed=9)
    options = {"sampler": "pymc", "draws": 200, "tune": 200, "chains": 1, "seed": 0, "discrepancy": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = bm.predict(bm.fit(runs, **options), new, kind="mean").mean("sample").to_numpy()
        for scale in (1e-6, 1e4):
            fit = bm.fit(RunTable(runs.mixtures, runs.losses * scale), **options)
            pred = bm.predict(fit, new, kind="mean").mean("sample").to_numpy() / scale
            np.testing.assert_allclose(pred, base, rtol=5e-3)

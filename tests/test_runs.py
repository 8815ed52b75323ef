"""Run tables: importers for the three layouts, validation errors that name the field and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import bayesmix as bm
from bayesmix.data.runs import strip_common_affixes


def wide_frame(n=6, seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.dirichlet(np.ones(3), size=n)
    return pd.DataFrame(
        {
            "run": [f"r{i}" for i in range(n)],
            "mix_web": mix[:, 0],
            "mix_code": mix[:, 1],
            "mix_books": mix[:, 2],
            "web": rng.uniform(2, 4, n),
            "code": rng.uniform(2, 4, n),
            "model_size": 1_000_000,
        }
    )


def test_wide_import_finds_columns_and_meta(tmp_path):
    frame = wide_frame()
    runs = bm.RunTable.from_wide(frame)
    assert runs.train_domains == ["web", "code", "books"]
    assert runs.domains == ["web", "code"]
    assert list(runs.meta.columns) == ["model_size"]
    assert runs.n_runs == 6
    np.testing.assert_allclose(runs.mixtures.sum(axis=1), 1.0)
    # CSV and Parquet round trips give the same table
    for name in ("runs.csv", "runs.parquet"):
        path = tmp_path / name
        wide = runs.to_wide()
        wide.to_csv(path, index=False) if name.endswith("csv") else wide.to_parquet(path)
        again = bm.RunTable.read(path)
        pd.testing.assert_frame_equal(again.mixtures, runs.mixtures, check_dtype=False)
        pd.testing.assert_frame_equal(again.losses, runs.losses, check_dtype=False)


def test_long_import_matches_wide():
    frame = wide_frame()
    long = frame.melt(
        id_vars=["run", "mix_web", "mix_code", "mix_books", "model_size"],
        value_vars=["web", "code"],
        var_name="domain",
        value_name="loss",
    )
    runs = bm.RunTable.from_long(long)
    wide = bm.RunTable.from_wide(frame)
    pd.testing.assert_frame_equal(
        runs.losses[wide.domains].sort_index(), wide.losses.sort_index(), check_names=False
    )
    pd.testing.assert_frame_equal(runs.mixtures.sort_index(), wide.mixtures.sort_index(), check_names=False)


def test_long_import_keeps_last_checkpoint_when_asked():
    frame = wide_frame(3)
    long = frame.melt(
        id_vars=["run", "mix_web", "mix_code", "mix_books"],
        value_vars=["web"],
        var_name="domain",
        value_name="loss",
    )
    early = long.assign(step=10, loss=long["loss"] + 1)
    late = long.assign(step=20)
    both = pd.concat([early, late])
    with pytest.raises(bm.InputError, match="step"):
        bm.RunTable.from_long(both)
    runs = bm.RunTable.from_long(both, step="last")
    np.testing.assert_allclose(runs.losses["web"].sort_index(), frame.set_index("run")["web"].sort_index())


def test_joined_import_of_regmix_layout(regmix_dir):
    runs = bm.RunTable.from_joined(
        regmix_dir / "train_mixture_1m.csv", regmix_dir / "train_pile_loss_1m.csv", renormalise=True
    )
    assert runs.n_runs == 512
    assert len(runs.train_domains) == 17 and len(runs.domains) == 13
    assert "pile_cc" in runs.domains and "pile_cc" in runs.train_domains
    np.testing.assert_allclose(runs.mixtures.sum(axis=1), 1.0)
    # without renormalising, the rounded rows (sums 0.996..1.003) are rejected with the fix named
    with pytest.raises(bm.InputError, match="renormalise=True"):
        bm.RunTable.from_joined(regmix_dir / "train_mixture_1m.csv", regmix_dir / "train_pile_loss_1m.csv")


def test_strip_common_affixes():
    assert strip_common_affixes(["metric/the_pile_a_val_loss", "metric/the_pile_bb_val_loss"]) == ["a", "bb"]
    assert strip_common_affixes(["abc"]) == ["abc"]


@pytest.mark.parametrize(
    ("mutate", "field", "fix"),
    [
        (lambda f: f.assign(mix_web=f["mix_web"] + 0.5), "mixture columns", "renormalise"),
        (
            lambda f: f.assign(mix_web=-0.1, mix_code=f["mix_code"] + f["mix_web"] + 0.1),
            "mixture columns",
            ">= 0",
        ),
        (lambda f: f.assign(web=np.nan), "losses['web']", "drop or re-evaluate"),
        (lambda f: f.assign(code=np.inf), "losses['code']", "drop or re-evaluate"),
        (lambda f: f.assign(web=-1.0), "losses['web']", "nats per token"),
        (lambda f: pd.concat([f, f.iloc[[0]]]), "run", "unique id"),
        (lambda f: f.assign(mix_web=0.0, mix_code=0.0, mix_books=0.0), "mixture columns", "positive part"),
        (lambda f: f.assign(web="x"), "losses", "numeric losses"),
    ],
)
def test_bad_wide_tables_fail_naming_field_and_fix(mutate, field, fix):
    with pytest.raises(bm.InputError) as info:
        bm.RunTable.from_wide(mutate(wide_frame()))
    assert field in str(info.value) and fix in str(info.value)


def test_missing_and_unknown_columns_and_files(tmp_path):
    with pytest.raises(bm.InputError, match="missing columns"):
        bm.RunTable.from_wide(wide_frame(), mixture_columns=["mix_web", "nope"])
    with pytest.raises(bm.InputError, match="no column starts with 'mix_'"):
        bm.RunTable.from_wide(wide_frame().rename(columns=lambda c: c.replace("mix_", "share_")))
    with pytest.raises(bm.InputError, match="does not exist"):
        bm.RunTable.read(tmp_path / "absent.csv")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(bm.InputError, match="could not read"):
        bm.RunTable.read(corrupt)
    with pytest.raises(bm.InputError, match="layout"):
        bm.RunTable.read(tmp_path / "x.csv", layout="diagonal")


def test_joined_tables_must_hold_the_same_runs():
    mix = pd.DataFrame({"index": [1, 2, 3], "a": [0.5, 1.0, 0.2], "b": [0.5, 0.0, 0.8]})
    loss = pd.DataFrame({"index": [1, 2], "a": [3.0, 3.1]})
    with pytest.raises(bm.InputError, match="only in the mixture table"):
        bm.RunTable.from_joined(mix, loss)


def test_too_few_runs_for_the_law():
    frame = wide_frame(3)
    runs = bm.RunTable.from_wide(frame)
    with pytest.raises(bm.NotEnoughDataError, match=r"5 parameters .* needs at least 6 runs"):
        bm.fit(runs, method="map")


def test_validate_mixtures_accepts_dicts_and_fills_missing_domains():
    frame = bm.validate_mixtures({"web": 0.25, "code": 0.75}, ["web", "code", "books"])
    assert list(frame.columns) == ["web", "code", "books"]
    np.testing.assert_allclose(frame.to_numpy(), [[0.25, 0.75, 0.0]])
    with pytest.raises(bm.InputError, match="unknown training domains \\['cats'\\]"):
        bm.validate_mixtures({"cats": 1.0}, ["web"])
    with pytest.raises(bm.InputError, match="3 training domains"):
        bm.validate_mixtures(np.ones((2, 2)) / 2, ["a", "b", "c"])


@given(values=arrays(np.float64, (4, 3), elements=st.floats(allow_nan=True, allow_infinity=True, width=64)))
def test_validate_mixtures_never_lets_bad_rows_through(values):
    """Any input either comes out on the simplex or raises InputError naming the field."""
    try:
        frame = bm.validate_mixtures(values, ["a", "b", "c"], renormalise=True)
    except bm.InputError as err:
        assert err.field == "mixtures" and err.fix
        return
    out = frame.to_numpy()
    assert np.all(np.isfinite(out)) and np.all(out >= 0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)

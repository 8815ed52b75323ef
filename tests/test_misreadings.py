"""Tables read right or refused: names, rounded mixtures, advice that works, corrupt fits, run counts.

Every refusal's advice is checked by following it: the call it names must then succeed.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from _plausible_tables import long_table
from typer.testing import CliRunner

import bayesmix as bm
from bayesmix.cli.main import app
from bayesmix.data.curves import MIXTURE_TOLERANCE, CurveTable
from bayesmix.data.runs import (
    RUNS_MARGIN,
    RunTable,
    looks_like_bookkeeping,
    match_affixes,
    strip_common_affixes,
)
from bayesmix.data.simulate import random_law, simulate_runs
from bayesmix.inference.io import CorruptFitError

runner = CliRunner()


@pytest.fixture(scope="module")
def mixinglaws_dir(regmix_dir):
    path = regmix_dir.parent / "mixinglaws_2mix_5mix"
    if not path.exists():
        pytest.skip("../shared/data/mixinglaws_2mix_5mix is not next to this checkout")
    return path


@pytest.fixture(scope="module")
def runs3() -> RunTable:
    """25 runs over 3 training domains: every fit here has this structure (one compile)."""
    return simulate_runs(random_law(3, seed=2, noise_sd=0.01), 25, seed=2)


# ---------------------------------------------------------------- names: whole parts only
def test_affixes_are_whole_name_parts():
    assert strip_common_affixes(["train_python", "train_php", "train_perl"]) == ["python", "php", "perl"]
    assert strip_common_affixes(["metric/the_pile_a_val_loss", "metric/the_pile_bb_val_loss"]) == ["a", "bb"]
    assert strip_common_affixes(["abc_x", "dbc_x"]) == ["abc", "dbc"]
    assert strip_common_affixes(["code.txt", "web.txt", "wiki.txt"]) == ["code", "web", "wiki"]
    # a name is never stripped to nothing: the prefix alone when both would empty one
    assert strip_common_affixes(["x_y", "x_z_y"]) == ["y", "z_y"]
    assert strip_common_affixes(["train", "train_x"]) == ["train", "train_x"]


def test_joined_tables_keep_whole_names_and_report_the_renaming(caplog):
    mix = pd.DataFrame(
        {
            "index": [1, 2, 3],
            "train_python": [0.2, 0.5, 0.3],
            "train_php": [0.3, 0.2, 0.3],
            "train_perl": [0.5, 0.3, 0.4],
        }
    )
    loss = pd.DataFrame(
        {"index": [1, 2, 3], "val/python_loss": [3.0, 3.1, 3.2], "val/php_loss": [2.0, 2.1, 2.2]}
    )
    with caplog.at_level(logging.INFO, logger="bayesmix.data.runs"):
        runs = RunTable.from_joined(mix, loss)
    assert runs.train_domains == ["python", "php", "perl"]
    assert runs.domains == ["python", "php"]
    assert runs.renamed["mixtures"] == {"train_python": "python", "train_php": "php", "train_perl": "perl"}
    assert runs.renamed["losses"] == {"val/python_loss": "python", "val/php_loss": "php"}
    assert "train_python -> python" in caplog.text and "val/php_loss -> php" in caplog.text
    # the renaming travels with subsets
    assert runs.subset(slice(0, 2)).renamed == runs.renamed


def test_wide_table_renaming_names_the_file_columns():
    frame = pd.DataFrame(
        {
            "mix_train_python": [0.5, 0.2],
            "mix_train_php": [0.5, 0.8],
            "loss_python": [3.0, 3.1],
            "loss_php": [2.0, 2.1],
        }
    )
    runs = RunTable.from_wide(frame, strip_affixes=True)
    assert runs.train_domains == ["python", "php"] and runs.domains == ["python", "php"]
    assert runs.renamed["mixtures"] == {"mix_train_python": "python", "mix_train_php": "php"}
    assert RunTable.from_wide(frame).renamed == {}


def test_an_extra_validation_set_does_not_unmatch_the_others():
    train = ["train_the_pile_arxiv", "train_the_pile_pile_cc", "train_the_pile_github"]
    valid = ["metric/the_pile_arxiv_val_loss", "metric/the_pile_pile_cc_val_loss"]
    assert match_affixes(train, valid) == (["arxiv", "pile_cc", "github"], ["arxiv", "pile_cc"])
    # c4 has no "the_pile_": alone it would change what all loss columns share
    assert match_affixes(train, [*valid, "metric/c4_val_loss"]) == (
        ["arxiv", "pile_cc", "github"],
        ["arxiv", "pile_cc", "c4"],
    )
    # the same on the training side, and unrelated names are left alone
    assert match_affixes([*train, "train_c4"], valid) == (
        ["arxiv", "pile_cc", "github", "c4"],
        ["arxiv", "pile_cc"],
    )
    assert match_affixes(["academic", "prose"], ["ArXiv", "Github"]) == (
        ["academic", "prose"],
        ["ArXiv", "Github"],
    )


def test_regmix_with_an_extra_validation_set_still_matches(regmix_dir):
    mix = pd.read_csv(regmix_dir / "train_mixture_1m.csv")
    loss = pd.read_csv(regmix_dir / "train_pile_loss_1m.csv")
    plain = RunTable.from_joined(mix, loss, renormalise=True)
    assert len(set(plain.domains) & set(plain.train_domains)) == 13
    assert plain.renamed["mixtures"]["train_the_pile_pile_cc"] == "pile_cc"
    extra = loss.assign(**{"metric/c4_val_loss": loss["metric/the_pile_pile_cc_val_loss"]})
    runs = RunTable.from_joined(mix, extra, renormalise=True)
    assert runs.train_domains == plain.train_domains
    assert runs.domains == [*plain.domains, "c4"]
    pd.testing.assert_frame_equal(runs.losses[plain.domains], plain.losses)


# ---------------------------------------------------------------- rounded mixtures
def curves(mixtures: dict[str, tuple[float, float]], sizes: dict[str, float]) -> pd.DataFrame:
    """Three checkpoints of one domain per run; ``mixtures`` and ``sizes`` keyed by run."""
    rows = []
    for run, (a, b) in mixtures.items():
        for i, tokens in enumerate((1e9, 2e9, 4e9)):
            rows.append(
                {"run": run, "domain": "web", "loss": 3.0 - 0.1 * i, "tokens": tokens,
                 "model_size": sizes[run], "mix_web": a, "mix_code": b}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_a_mixture_rounded_at_one_size_is_one_mixture(caplog):
    frame = curves(
        {"a1": (0.333, 0.667), "a2": (0.3333333, 0.6666667), "b1": (0.5, 0.5), "b2": (0.5, 0.5)},
        {"a1": 1e7, "a2": 3e7, "b1": 1e7, "b2": 3e7},
    )
    with caplog.at_level(logging.INFO, logger="bayesmix.data.curves"):
        table = CurveTable.from_long(frame)
    assert MIXTURE_TOLERANCE == 5e-3
    assert len(table.mixtures) == 2
    assert table.runs.loc["a1", "mixture"] == table.runs.loc["a2", "mixture"] == "m0"
    assert table.runs.loc["b1", "mixture"] == "m1"
    # the shares of the version written with the most decimals
    np.testing.assert_allclose(table.mixtures.loc["m0"].to_numpy(), [0.3333333, 0.6666667])
    assert "taken as one" in caplog.text and "0.333" in caplog.text
    # exact matching is still there when asked for
    assert len(CurveTable.from_long(frame, mixture_tolerance=0).mixtures) == 3


def test_rounded_real_design_keeps_its_mixtures(mixinglaws_dir):
    frame = pd.read_csv(mixinglaws_dir / "mixinglaws_5mix_long.csv")
    frame = frame[(frame["step"] == 30_000) & frame["model_size"].isin(["70M", "160M"])]
    frame = frame.assign(model_size=frame["model_size"].map({"70M": 18.9e6, "160M": 85.1e6}))
    shares = [c for c in frame.columns if c.startswith("mix_")]
    exact = CurveTable.from_long(frame, min_checkpoints=1)
    small = frame["model_size"] == 18.9e6
    rounded = frame.copy()
    rounded.loc[small, shares] = rounded.loc[small, shares].round(3)  # 0.09375 -> 0.094 at 70M only
    assert (rounded[shares] != frame[shares]).any().any()
    table = CurveTable.from_long(rounded, min_checkpoints=1, renormalise=True)
    assert len(table.mixtures) == len(exact.mixtures) == 26
    pd.testing.assert_series_equal(table.runs["mixture"], exact.runs["mixture"])
    # without matching the rounded 70M mixtures would be counted twice
    assert (
        len(CurveTable.from_long(rounded, min_checkpoints=1, renormalise=True, mixture_tolerance=0).mixtures)
        > 26
    )


def _follow(err: bm.InputError) -> dict:
    """The keyword arguments the advice names (``name=value``), evaluated."""
    return {name: eval(value) for name, value in re.findall(r"\b(\w+)=([\w.']+)", err.fix)}


def test_close_mixtures_at_one_size_stay_two_mixtures():
    # a random design can hold mixtures 0.002 apart: at one size they are two mixtures
    frame = curves(
        {"a1": (0.5, 0.5), "b1": (0.502, 0.498), "a2": (0.5, 0.5), "b2": (0.502, 0.498)},
        {"a1": 1e7, "b1": 1e7, "a2": 3e7, "b2": 3e7},
    )
    table = CurveTable.from_long(frame)
    assert len(table.mixtures) == 2
    assert (
        table.runs.loc["a1", "mixture"] == table.runs.loc["a2", "mixture"] != table.runs.loc["b1", "mixture"]
    )


def test_a_mixture_close_to_two_mixtures_of_one_size_is_refused_and_the_advice_works():
    frame = curves(
        {"a1": (0.5, 0.5), "b1": (0.503, 0.497), "c2": (0.501, 0.499)}, {"a1": 1e7, "b1": 1e7, "c2": 3e7}
    )
    with pytest.raises(bm.InputError, match=r"run 'c2' .* two mixtures trained at model size 1e\+07") as info:
        CurveTable.from_long(frame)
    assert "ambiguous" in info.value.problem and "mixture_tolerance=0" in info.value.fix
    assert len(CurveTable.from_long(frame, **_follow(info.value)).mixtures) == 3


def test_a_chain_of_close_mixtures_is_refused_and_the_advice_works():
    frame = curves(
        {"a": (0.5, 0.5), "b": (0.504, 0.496), "c": (0.508, 0.492)}, {"a": 1e7, "b": 3e7, "c": 1e8}
    )
    with pytest.raises(bm.InputError, match="ambiguous") as info:
        CurveTable.from_long(frame)
    assert len(CurveTable.from_long(frame, **_follow(info.value)).mixtures) == 3
    with pytest.raises(bm.InputError, match="mixture_tolerance"):
        CurveTable.from_long(frame, mixture_tolerance=-1.0)


# ---------------------------------------------------------------- advice that works
def test_curve_table_advice_to_renormalise_works():
    frame = curves({"a": (0.55, 0.55), "b": (0.3, 0.7)}, {"a": 1e7, "b": 3e7})
    with pytest.raises(bm.InputError, match="do not sum to 1") as info:
        CurveTable.from_long(frame)
    assert _follow(info.value) == {"renormalise": True}
    table = CurveTable.from_long(frame, **_follow(info.value))
    np.testing.assert_allclose(table.mixtures.loc[table.runs.loc["a", "mixture"]].to_numpy(), [0.5, 0.5])


def test_curve_table_advice_on_steps_works():
    frame = curves({"a": (0.5, 0.5), "b": (0.3, 0.7)}, {"a": 1e7, "b": 3e7}).rename(
        columns={"tokens": "step"}
    )
    with pytest.raises(bm.InputError, match="tokens_per_step") as info:
        CurveTable.from_long(frame)
    assert "tokens_per_step=" in info.value.fix
    assert CurveTable.from_long(frame, tokens_per_step=1024).frame["tokens"].max() == 4e9 * 1024


def test_run_table_constructor_advice_works(runs3):
    mixtures = runs3.mixtures * 1.1
    with pytest.raises(bm.InputError, match="do not sum to 1") as info:
        RunTable(mixtures, runs3.losses)
    # the constructor has no renormalise argument: the advice divides first, or names the importer
    assert "mixtures.div(mixtures.sum(axis=1), axis=0)" in info.value.fix
    assert "RunTable.from_wide(..., renormalise=True)" in info.value.fix
    fixed = RunTable(mixtures.div(mixtures.sum(axis=1), axis=0), runs3.losses)
    pd.testing.assert_frame_equal(fixed.mixtures, runs3.mixtures)
    wide = runs3.to_wide()
    wide[[c for c in wide.columns if c.startswith("mix_")]] *= 1.1
    pd.testing.assert_frame_equal(RunTable.from_wide(wide, renormalise=True).mixtures, runs3.mixtures)


@pytest.mark.parametrize(
    ("importer", "table", "keyword"),
    [
        ("from_wide", lambda wide, long: wide.assign(mix_web=wide["mix_web"] + 0.5), "renormalise"),
        (
            "from_wide",
            lambda wide, long: wide.rename(columns=lambda c: c.replace("mix_", "share_")),
            "mixture_columns",
        ),
        ("from_wide", lambda wide, long: wide.assign(note="x"), "loss_columns"),
        ("from_long", lambda wide, long: long.assign(mix_web=long["mix_web"] + 0.5), "renormalise"),
        ("from_long", lambda wide, long: pd.concat([long.assign(step=1), long.assign(step=2)]), "step"),
        (
            "from_long",
            lambda wide, long: long.rename(columns=lambda c: c.replace("mix_", "share_")),
            "mixture_columns",
        ),
    ],
)
def test_every_run_table_advice_names_an_argument_of_the_importer(runs3, importer, table, keyword):
    wide, long = runs3.to_wide(), long_table(runs3)
    bad = table(wide, long)
    read = getattr(RunTable, importer)
    with pytest.raises(bm.InputError) as info:
        read(bad)
    assert f"{keyword}=" in info.value.fix
    fixes = {
        "renormalise": {"renormalise": True},
        "mixture_columns": {"mixture_columns": [f"share_{d}" for d in runs3.train_domains]},
        "loss_columns": {"loss_columns": runs3.domains},
        "step": {"step": "last"},
    }
    fixed = read(bad, **fixes[keyword])
    assert fixed.n_runs == runs3.n_runs


# ---------------------------------------------------------------- the command line's advice
def test_cli_advice_names_the_flag_and_following_it_works(runs3, tmp_path):
    wide = runs3.to_wide()
    wide[[c for c in wide.columns if c.startswith("mix_")]] *= 1.1  # rows sum to 1.1
    wide.to_csv(tmp_path / "runs.csv", index=False)
    # --no-discrepancy: the form-error backtests take seconds and are not what is tested here
    command = [
        "fit",
        str(tmp_path / "runs.csv"),
        "--out",
        str(tmp_path / "fit.nc"),
        "--method",
        "map",
        "--no-discrepancy",
    ]
    result = runner.invoke(app, command)
    assert result.exit_code == 1, result.output
    assert "--renormalise" in result.output and "renormalise=True" not in result.output
    result = runner.invoke(app, [*command, "--renormalise"])
    assert result.exit_code == 0, result.output
    pd.DataFrame({"web": [0.6, 0.2], "code": [0.6, 0.3], "papers": [0.0, 0.5]}).to_csv(
        tmp_path / "mix.csv", index=False
    )
    predict = ["predict", str(tmp_path / "fit.nc"), str(tmp_path / "mix.csv"), "--kind", "mean"]
    result = runner.invoke(app, predict)
    assert (
        result.exit_code == 1 and "--renormalise" in result.output and "renormalise=True" not in result.output
    )
    assert runner.invoke(app, [*predict, "--renormalise"]).exit_code == 0


def test_cli_advice_names_the_flag_that_works(runs3, tmp_path):
    long = long_table(runs3)
    pd.concat([long.assign(step=1), long.assign(step=2)]).to_csv(tmp_path / "long.csv", index=False)
    command = ["fit", str(tmp_path / "long.csv"), "--layout", "long", "--method", "map", "--no-discrepancy",
               "--out", str(tmp_path / "fit.nc")]  # fmt: skip
    result = runner.invoke(app, command)
    assert result.exit_code == 1
    assert "--step last" in result.stderr and "step='last'" not in result.stderr
    applied = runner.invoke(app, [*command, "--step", "last"])  # the advice, applied
    assert applied.exit_code == 0, applied.output


def test_predict_reads_plausible_mixture_files_right_or_refuses(runs3, tmp_path):
    """The mixtures file of predict: padded, upper-case, reordered or run-table layouts read the same."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bm.save(bm.fit(runs3, method="map", seed=0, discrepancy=None), tmp_path / "fit.nc")
    clean = pd.DataFrame({"web": [0.6, 0.2], "code": [0.3, 0.3], "papers": [0.1, 0.5]})
    variants = {
        "clean": clean,
        "run table": clean.add_prefix("mix_").assign(run=["a", "b"], web=[3.0, 3.1], seed=[1, 2]),
        "upper-case prefix": clean.add_prefix("MIX_"),
        "padded headers": clean.rename(columns=lambda c: f" mix_{c} "),
        "one padded header": clean.add_prefix("mix_").rename(columns={"mix_code": " mix_code"}),
        "reordered": clean[["papers", "web", "code"]],
    }
    predictions = {}
    for name, frame in variants.items():
        frame.to_csv(tmp_path / "mix.csv", index=False)
        out = tmp_path / f"{name}.csv"
        result = runner.invoke(app, ["predict", str(fit), str(tmp_path / "mix.csv"), "--kind", "mean", "--out", str(out)])
        assert result.exit_code == 0, (name, result.output)
        predictions[name] = pd.read_csv(out)
    for name, table in predictions.items():
        pd.testing.assert_frame_equal(table, predictions["clean"], obj=name)
    # the same domain twice once the padding is gone: refused, naming the column
    clean.assign(**{" web": clean["web"]}).to_csv(tmp_path / "twice.csv", index=False)
    result = runner.invoke(app, ["predict", str(fit), str(tmp_path / "twice.csv")])
    assert result.exit_code == 1 and "repeats columns ['web']" in result.output


# ---------------------------------------------------------------- corrupt fits
def test_a_fit_saved_with_nan_is_refused_on_load(runs3, tmp_path):
    idata = bm.fit(runs3, method="map", seed=0, discrepancy=None)
    bm.save(idata, tmp_path / "good.nc")
    assert bm.load(tmp_path / "good.nc").posterior["c"].shape == idata.posterior["c"].shape
    bad = idata.copy()
    values = bad.posterior["c"].values.copy()
    values.flat[1] = np.nan
    bad.posterior["c"] = bad.posterior["c"].copy(data=values)
    path = bm.save(bad, tmp_path / "bad.nc")  # the sidecar's checksum is of the corrupt file
    with pytest.raises(bm.InputError, match=r"posterior variable 'c' holds 1 NaN or infinite") as info:
        bm.load(path)
    assert str(path) in str(info.value) and info.value.fix.startswith("refit")
    assert isinstance(info.value, bm.IncompatibleFileError) and isinstance(info.value, CorruptFitError)
    observed = idata.copy()
    observed.observed_data["loss"] = observed.observed_data["loss"].copy(
        data=np.full_like(observed.observed_data["loss"].values, np.inf)
    )
    with pytest.raises(bm.InputError, match="observed data variable 'loss'"):
        bm.load(bm.save(observed, tmp_path / "observed.nc"))
    # the advice works: the refit loads
    bm.save(bm.fit(runs3, method="map", seed=0, discrepancy=None), path)
    assert np.isfinite(bm.load(path).posterior["c"].values).all()


# ---------------------------------------------------------------- too few runs
def test_as_many_runs_as_parameters_is_not_enough():
    law = bm.MixingLaw()
    assert law.n_parameters(2, 2) == 4 and RUNS_MARGIN == 1
    runs = simulate_runs(random_law(2, seed=1), 5, seed=1)
    four = runs.subset(slice(0, 4))
    with pytest.raises(
        bm.NotEnoughDataError,
        match=r"4 runs .* has 4 parameters per validation domain and needs at least 5 runs",
    ) as info:
        four.check_enough_runs(4, "the mixing law")
    assert "add 1 or more runs" in info.value.fix
    with pytest.raises(bm.NotEnoughDataError, match="needs at least 5 runs"):
        bm.fit(four, law, method="map", discrepancy=None)
    runs.check_enough_runs(4)  # one run more than parameters is enough


# ---------------------------------------------------------------- checkpoints: one comparable step per run
def test_runs_of_different_lengths_are_refused_and_a_common_step_reads_them(mixinglaws_dir):
    """The paper's 5-domain 70M curves: 20 runs end at 30k steps, 6 at 90k/100k."""
    curves = pd.read_csv(mixinglaws_dir / "mixinglaws_5mix_long.csv")
    curves = curves[curves["model_size"] == "70M"].drop(columns=["table", "model_size"])
    ends = curves.groupby("run")["step"].max()
    assert ends.nunique() > 1
    with pytest.raises(bm.InputError, match="different steps") as info:
        RunTable.from_long(curves, step="last")
    assert info.value.field == "step"
    common = int(re.search(r"step=(\d+)", info.value.fix).group(1))
    assert common == max(set.intersection(*(set(g["step"]) for _, g in curves.groupby("run"))))
    table = RunTable.from_long(curves, step=common)  # the advice works
    assert table.n_runs == curves["run"].nunique()
    tokens = curves.loc[curves["step"] == common, "tokens"].iloc[0]
    by_tokens = RunTable.from_long(curves, tokens=tokens)
    pd.testing.assert_frame_equal(by_tokens.losses, table.losses)
    # the long runs' last losses are lower from training length alone: never mixed in silently
    long_runs = ends[ends > common].index
    last = curves[curves["step"] == curves.groupby("run")["step"].transform("max")]
    at_end = last[last["run"].isin(long_runs)].groupby("run")["loss"].mean()
    at_common = curves[(curves["step"] == common) & curves["run"].isin(long_runs)].groupby("run")["loss"].mean()
    assert (at_end < at_common - 0.05).all()


def test_same_length_runs_read_at_their_last_step(runs3):
    long = long_table(runs3)
    two = pd.concat([long.assign(step=100, loss=long["loss"] + 0.5), long.assign(step=200)])
    table = RunTable.from_long(two, step="last")
    pd.testing.assert_frame_equal(
        table.losses[runs3.domains].sort_index(), runs3.losses.sort_index(), check_names=False
    )
    with pytest.raises(bm.InputError, match="no checkpoint at step 150"):
        RunTable.from_long(two, step=150)


# ---------------------------------------------------------------- column roles: bookkeeping is not a loss
@pytest.mark.parametrize(
    "extra",
    [
        {"seed": lambda n: np.arange(n) % 5},
        {"run_id": lambda n: np.arange(n) + 1000},
        {"Unnamed: 0": lambda n: np.arange(n)},
        {"job": lambda n: np.arange(n).astype(float)},
        {"count": lambda n: np.full(n, 7)},
        {"checkpoint": lambda n: np.full(n, 30000.0)},
    ],
)
def test_bookkeeping_columns_are_not_fitted_as_losses(runs3, extra):
    (name, make), = extra.items()
    wide = runs3.to_wide()
    wide[name] = make(len(wide))
    with pytest.raises(bm.InputError, match="bookkeeping") as info:
        RunTable.from_wide(wide)
    assert name in info.value.field and "loss_columns=" in info.value.fix
    fixed = RunTable.from_wide(wide, loss_columns=runs3.domains)  # the advice works
    assert fixed.domains == runs3.domains
    pd.testing.assert_frame_equal(fixed.losses, runs3.losses, check_names=False)


def test_real_losses_are_not_taken_for_bookkeeping(runs3):
    wide = runs3.to_wide()
    assert RunTable.from_wide(wide).domains == runs3.domains
    assert not any(looks_like_bookkeeping(d, wide[d]) for d in runs3.domains)


# ---------------------------------------------------------------- spreadsheet exports
@pytest.mark.parametrize(("sep", "decimal"), [(";", ","), (";", "."), ("\t", "."), ("|", ",")])
def test_spreadsheet_exports_are_read_right(runs3, tmp_path, sep, decimal):
    path = tmp_path / "runs.csv"
    runs3.to_wide().to_csv(path, index=False, sep=sep, decimal=decimal)
    table = RunTable.from_wide(path)
    pd.testing.assert_frame_equal(table.losses, runs3.losses, check_names=False)
    pd.testing.assert_frame_equal(table.mixtures, runs3.mixtures, check_names=False)


# ---------------------------------------------------------------- files: a killed save keeps the last good fit
@pytest.mark.parametrize("killed_at", [1, 2, 3])
def test_a_save_killed_between_renames_keeps_the_previous_fit(runs3, tmp_path, monkeypatch, killed_at):
    import os

    import bayesmix.inference.io as io

    old = bm.fit(runs3, method="map", seed=0, discrepancy=None)
    new = bm.fit(runs3.subset(slice(0, 24)), method="map", seed=0, discrepancy=None)
    path = bm.save(old, tmp_path / "fit.nc")
    calls = {"n": 0}
    real = os.replace

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == killed_at:
            raise KeyboardInterrupt("killed")  # like a SIGKILL between two renames
        return real(src, dst)

    monkeypatch.setattr(io.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        bm.save(new, path)
    monkeypatch.setattr(io.os, "replace", real)
    with warnings_or_none(killed_at) as record:
        loaded = bm.load(path)
    np.testing.assert_allclose(loaded.posterior["c"].values, old.posterior["c"].values)
    assert record is None or any(issubclass(w.category, io.InterruptedSaveWarning) for w in record)
    bm.save(new, path)  # the next save completes and cleans up
    np.testing.assert_allclose(bm.load(path).posterior["c"].values, new.posterior["c"].values)
    assert not (tmp_path / "fit.nc.prev").exists()


@contextlib.contextmanager
def warnings_or_none(killed_at: int):
    """Record warnings when the kill came after the previous netCDF was moved aside."""
    if killed_at == 1:
        yield None
        return
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        yield record


def test_a_resumed_checkpoint_is_named_by_its_step():
    rows = [
        {"run": "r1", "domain": "web", "loss": 3.0 - 0.1 * k, "step": step, "model_size": 1e7, "mix_web": 1.0}
        for k, step in enumerate((100, 200, 300, 300))
    ]
    with pytest.raises(bm.InputError, match="at step 300 ") as info:
        CurveTable.from_long(pd.DataFrame(rows), tokens_per_step=4096)
    assert "tokens" not in info.value.problem

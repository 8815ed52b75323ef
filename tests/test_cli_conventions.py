"""The command line's convention: results on stdout, errors on stderr, documented exit codes,
``--json``, ``--quiet``/``--verbose``, ``--version``, lazy imports, and own data from the shell."""

import json
import logging
import subprocess
import sys
import warnings

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import bayesmix as bm
from bayesmix.cli import _output
from bayesmix.cli.main import app
from bayesmix.data.simulate import example_runs

runner = CliRunner()
FAST = ["--method", "laplace", "--no-discrepancy"]


@pytest.fixture(scope="module")
def runs5() -> bm.RunTable:
    return example_runs(n_runs=16, seed=3)[0]


def test_version_prints_the_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"bayesmix {bm.__version__}"


def test_help_and_version_do_not_import_the_modelling_stack():
    code = (
        "import sys; from typer.testing import CliRunner; from bayesmix.cli.main import app;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output;"
        "r = CliRunner().invoke(app, ['fit', '--help']); assert r.exit_code == 0, r.output;"
        "heavy = [m for m in ('pymc', 'arviz', 'pytensor', 'torch', 'transformers', 'matplotlib') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"--help imported {done.stdout.strip()}"


def test_documented_error_goes_to_stderr_with_exit_1(tmp_path):
    result = runner.invoke(app, ["fit", str(tmp_path / "missing.csv")])
    assert result.exit_code == _output.EXIT_ERROR == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error:") and "Fix:" in result.stderr


def test_usage_error_exits_2():
    result = runner.invoke(app, ["fit"])
    assert result.exit_code == _output.EXIT_USAGE == 2
    assert result.stdout == ""


def test_json_output_is_the_whole_of_stdout(runs5, tmp_path):
    runs5.to_wide().to_csv(tmp_path / "runs.csv", index=False)
    fitted = runner.invoke(
        app, ["fit", str(tmp_path / "runs.csv"), *FAST, "--out", str(tmp_path / "fit.nc"), "--json"]
    )
    assert fitted.exit_code == 0, fitted.output
    record = json.loads(fitted.stdout)
    assert record["runs"] == 16 and record["domains"] == list(runs5.domains)
    assert record["fit"] == str(tmp_path / "fit.nc") and record["health"]["method"] == "laplace"
    assert "Fitting" in fitted.stderr  # progress goes to stderr, not into the JSON
    mixtures = pd.DataFrame({d: [1 / len(runs5.train_domains)] for d in runs5.train_domains})
    mixtures.to_csv(tmp_path / "mix.csv", index=False)
    predicted = runner.invoke(
        app, ["predict", str(tmp_path / "fit.nc"), str(tmp_path / "mix.csv"), "--kind", "mean", "--json"]
    )
    assert predicted.exit_code == 0, predicted.output
    rows = json.loads(predicted.stdout)["predictions"]
    assert len(rows) == len(runs5.domains)
    expected = bm.interval(bm.predict(bm.load(tmp_path / "fit.nc"), mixtures, kind="mean"), prob=0.9)
    assert rows[0]["mean"] == pytest.approx(float(expected["mean"].sel(domain=rows[0]["domain"]).item()))
    assert rows[0]["lower"] < rows[0]["mean"] < rows[0]["upper"]


def test_quiet_keeps_results_and_drops_progress(runs5, tmp_path):
    runs5.to_wide().to_csv(tmp_path / "runs.csv", index=False)
    args = ["fit", str(tmp_path / "runs.csv"), *FAST, "--out", str(tmp_path / "fit.nc")]
    quiet = runner.invoke(app, ["--quiet", *args])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == "" and "Saved" in quiet.stdout


def test_two_files_with_a_key_from_the_shell(runs5, tmp_path):
    mix = runs5.mixtures.add_prefix("train_").rename_axis("run_id").reset_index()
    loss = runs5.losses.add_prefix("valid_").add_suffix("_loss").rename_axis("run_id").reset_index()
    mix.to_csv(tmp_path / "mix.csv", index=False)
    loss.sample(frac=1.0, random_state=0).to_csv(tmp_path / "loss.csv", index=False)  # another row order
    out = tmp_path / "fit.nc"
    result = runner.invoke(
        app, ["fit", str(tmp_path / "mix.csv"), str(tmp_path / "loss.csv"), "--key", "run_id", *FAST,
              "--out", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["train_domains"] == list(runs5.train_domains) and record["domains"] == list(runs5.domains)
    assert "train_" in result.stderr  # the renaming is reported
    direct = bm.fit(runs5, method="laplace", seed=0, discrepancy=None)
    new = pd.DataFrame([runs5.mixtures.iloc[0].to_numpy()], columns=runs5.train_domains)
    a = bm.predict(bm.load(out), new, kind="mean").mean("sample")
    b = bm.predict(direct, new, kind="mean").mean("sample")
    assert float(abs(a - b).max()) < 1e-6  # read right: the same study as the Python table
    wrong_key = runner.invoke(app, ["fit", str(tmp_path / "mix.csv"), str(tmp_path / "loss.csv"), *FAST])
    assert wrong_key.exit_code == 1 and "--key" in wrong_key.stderr and "key=" not in wrong_key.stderr
    missing_side = runner.invoke(app, ["fit", str(tmp_path / "mix.csv"), "--layout", "joined", *FAST])
    assert missing_side.exit_code == 1 and "LOSSES" in missing_side.stderr


def test_column_flags_pick_the_losses_and_refuse_bookkeeping(runs5, tmp_path):
    wide = runs5.to_wide().assign(seed=range(runs5.n_runs))  # a bookkeeping column
    wide.to_csv(tmp_path / "runs.csv", index=False)
    refused = runner.invoke(app, ["fit", str(tmp_path / "runs.csv"), *FAST, "--out", str(tmp_path / "f.nc")])
    assert refused.exit_code == 1 and "--loss-column" in refused.stderr
    flags = [arg for d in runs5.domains for arg in ("--loss-column", d)]
    chosen = runner.invoke(
        app, ["fit", str(tmp_path / "runs.csv"), *flags, *FAST, "--out", str(tmp_path / "f.nc"), "--json"]
    )
    assert chosen.exit_code == 0, chosen.output
    assert json.loads(chosen.stdout)["domains"] == list(runs5.domains)


def test_predict_reads_the_run_table_layout(runs5, tmp_path):
    runs5.to_wide().to_csv(tmp_path / "runs.csv", index=False)
    assert runner.invoke(app, ["fit", str(tmp_path / "runs.csv"), *FAST, "--out", str(tmp_path / "fit.nc")]).exit_code == 0
    result = runner.invoke(app, ["predict", str(tmp_path / "fit.nc"), str(tmp_path / "runs.csv"), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["predictions"]
    assert len(rows) == runs5.n_runs * len(runs5.domains)


# the warning and log routing, on a small app wired like the real one
probe = typer.Typer()


@probe.callback()
def _probe_root(ctx: typer.Context, quiet: bool = False, verbose: bool = False) -> None:
    _output.configure(ctx, quiet, verbose)


@probe.command()
def talk() -> None:
    logging.getLogger("pytensor.tensor.blas").warning("Using NumPy C-API based implementation for BLAS functions.")
    warnings.warn("third-party deprecation", FutureWarning, stacklevel=1)
    warnings.warn_explicit("the form-error term was skipped", bm.DiscrepancySkippedWarning, "x.py", 1)
    logging.getLogger("bayesmix.inference").info("fitting the law")
    _output.out.print("result")


@pytest.mark.parametrize("verbose", [False, True])
def test_third_party_warnings_only_with_verbose(verbose):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        result = runner.invoke(probe, [*(["--verbose"] if verbose else []), "talk"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "result"
    assert "the form-error term was skipped" in result.stderr and "fitting the law" in result.stderr
    assert ("BLAS" in result.stderr) == verbose and ("third-party deprecation" in result.stderr) == verbose
    assert logging.getLogger("bayesmix").handlers == []  # undone when the command ends


def test_a_refit_warm_starts_from_an_earlier_fit_file(runs5, tmp_path):
    runs5.to_wide().to_csv(tmp_path / "runs.csv", index=False)
    short = ["--draws", "50", "--tune", "50", "--chains", "2", "--no-discrepancy"]
    first = runner.invoke(app, ["fit", str(tmp_path / "runs.csv"), *short, "--out", str(tmp_path / "first.nc")])
    assert first.exit_code == 0, first.output
    args = ["fit", str(tmp_path / "runs.csv"), *short, "--out", str(tmp_path / "again.nc")]
    again = runner.invoke(app, [*args, "--warm-start", str(tmp_path / "first.nc")])
    assert again.exit_code == 0, again.output
    assert bm.load(tmp_path / "again.nc").posterior.attrs["bayesmix_warm_start"] == 1
    assert bm.load(tmp_path / "first.nc").posterior.attrs["bayesmix_warm_start"] == 0
    refused = runner.invoke(app, [*args, "--method", "laplace", "--warm-start", str(tmp_path / "first.nc")])
    assert refused.exit_code == 1 and "warm_start" in refused.stderr and "Fix:" in refused.stderr
    missing = runner.invoke(app, [*args, "--warm-start", str(tmp_path / "none.nc")])
    assert missing.exit_code == 1 and "none.nc" in missing.stderr

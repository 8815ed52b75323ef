"""Reliability: fuzzed arguments and files of the project-workflow commands.

``bayesmix optimise`` (``--target``, ``--bound``, ``--exclude``, ``--risk``, ``--level`` on a saved
fit) and ``bayesmix runs import`` (random long tables): every invocation either succeeds or exits 2
with a documented error that names the field and the fix; a raw exception fails the test, and a
refused import leaves the ledger as it was.
"""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import bayesmix as bm
from bayesmix.cli.main import app
from bayesmix.data.simulate import random_law, simulate_runs
from bayesmix.project import Project

TRIED: Counter[str] = Counter()
OUTCOMES: Counter[tuple[str, int]] = Counter()
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
DOMAINS = ["web", "code", "papers"]


def run(kind: str, args: list[str]):
    TRIED[kind] += 1
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"bayesmix {args}: raw {type(result.exception).__name__}: {result.exception}"
    )
    OUTCOMES[(kind, result.exit_code)] += 1
    if result.exit_code not in (0, 1, 2):
        raise AssertionError(f"bayesmix {args}: exit {result.exit_code}: {result.output}")
    if result.exit_code == 1:  # a documented error: on stderr, with its fix
        assert "Fix:" in result.stderr, result.output
    return result


@pytest.fixture(scope="module")
def fit_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("opt")
    fitted = bm.fit(simulate_runs(random_law(3, seed=1, noise_sd=0.01), 20, seed=1), method="map", discrepancy=None)
    return bm.save(fitted, folder / "fit.nc")


words = st.sampled_from([*DOMAINS, "nope", "", "mean", "web=1", "code=0.5,web=0.5", "=", "[/x]", "1e400"])
bounds = st.one_of(
    st.builds(lambda d, lo, hi: f"{d}={lo}:{hi}", words, st.sampled_from(["", "0", "0.2", "-1", "x", "nan"]),
              st.sampled_from(["", "1", "0.1", "2", "inf", "y"])),
    st.text(max_size=12),
)  # fmt: skip


def optimise_args(target, bound, exclude, risk, level) -> list[str]:
    """The arguments after ``bayesmix optimise <fit>``."""
    args = ["--risk", risk, "--level", level] + ([] if target is None else ["--target", target])
    for b in bound:
        args += ["--bound", b]
    for e in exclude:
        args += ["--exclude", e]
    return args


#: fuzzed argument lists of ``bayesmix optimise <fit>`` (also used by benchmarks/reliability.py)
optimise_options = st.builds(
    optimise_args,
    target=st.one_of(st.none(), words, st.text(max_size=10)),
    bound=st.lists(bounds, max_size=2),
    exclude=st.lists(words, max_size=2),
    risk=st.sampled_from(["mean", "cvar", "quantile", "max", ""]),
    level=st.sampled_from(["0.9", "0", "1", "-3", "nan", "abc"]),
)


@FUZZ
@given(args=optimise_options)
def test_optimise_arguments(fit_file, args):
    result = run("optimise", ["optimise", fit_file, *args])
    if result.exit_code == 0:
        assert "P(optimum beats the reference)" in result.output


cell = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 10**7), st.text(max_size=4))
BASE = ["run", "domain", "loss", "tokens", "step", "model_size", "mix_web", "mix_code"]

#: a long run table to import: (runs, dropped column, extra domain, damaged cells)
import_tables = st.tuples(
    st.integers(1, 3),
    st.one_of(st.none(), st.sampled_from(BASE)),
    st.booleans(),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 8), cell), max_size=3),
)


def write_table(path, spec) -> None:
    """Write the run table described by an ``import_tables`` example to ``path`` (CSV)."""
    n_runs, dropped, extra_domain, damages = spec
    columns = [c for c in BASE if c != dropped] + (["mix_x"] if extra_domain else [])
    rows = []
    for r in range(n_runs):
        for tokens in (1e6, 2e6, 4e6):
            for domain in ("web", "code"):
                row = {"run": f"r{r}", "domain": domain, "loss": 3.0 - np.log10(tokens) / 10, "tokens": tokens,
                       "step": tokens / 1e3, "model_size": 1e6, "mix_web": 0.5, "mix_code": 0.5, "mix_x": 0.0}  # fmt: skip
                rows.append({c: row[c] for c in columns})
    for where, column, value in damages:
        rows[min(int(where * len(rows)), len(rows) - 1)][columns[column % len(columns)]] = value
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    path.write_text(buffer.getvalue())


def new_project(folder) -> Project:
    """An empty project over the domains web and code."""
    return Project.create(folder, {"corpus": {"kind": "embedded", "domains": ["web", "code"]}})


@FUZZ
@given(spec=import_tables)
def test_runs_import_tables(tmp_path_factory, spec):
    folder = tmp_path_factory.mktemp("imp")
    project = new_project(folder / "p")
    write_table(folder / "runs.csv", spec)
    result = run("runs import", ["runs", "import", project.folder, folder / "runs.csv"])
    runs = project.study.ledger.runs()
    if result.exit_code != 0:
        assert not runs  # a refused import adds nothing
    else:
        assert runs and all(r.status == "finished" for r in runs)


def test_inputs_were_counted():
    assert TRIED["optimise"] >= 60 and TRIED["runs import"] >= 60
    # both accepted and refused inputs occurred, so the checks above were exercised both ways
    for kind in ("optimise", "runs import"):
        assert OUTCOMES[(kind, 0)] > 0 and OUTCOMES[(kind, 1)] > 0, dict(OUTCOMES)


def test_runs_import_text_in_step_column(tmp_path):
    # found by benchmarks/reliability.py: a text cell made the whole step column text, and
    # int("1000.0") leaked a raw ValueError
    project = new_project(tmp_path / "p")
    write_table(tmp_path / "runs.csv", (1, None, False, [(0.0, 4, "ab")]))
    result = run("runs import", ["runs", "import", project.folder, tmp_path / "runs.csv"])
    assert result.exit_code == 1 and "step" in result.output and not project.study.ledger.runs()

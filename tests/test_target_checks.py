"""Targets are checked against the fitted runs; a mixture's prediction does not depend on the others.

One small joint nested fit (2 domains, 6 mixtures, model sizes 1e7 and 3e7, tokens 1e9 to 1e10) is
shared by the module; the mixing stage is fitted once, at :data:`TARGET`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import warnings

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from bayesmix.cli.main import app
from bayesmix.data.curves import CurveTable
from bayesmix.data.simulate_curves import random_nested_truth, simulate_curves
from bayesmix.errors import InputError, SamplerHealthWarning
from bayesmix.inference.nested import (
    MAX_EFOLDS,
    WARN_EFOLDS_MODEL_SIZE,
    TargetExtrapolationWarning,
    check_target,
    fit_nested,
    predict_target,
    target_extrapolation,
)
from bayesmix.inference.nested_io import save_nested
from bayesmix.project import Project, steps

SIZES = (1e7, 3e7)
CHECKPOINTS = tuple(np.geomspace(1e9, 1e10, 4))
TARGET = {"model_size": 1e8, "tokens": 3e10}  # 1.2 and 1.1 e-folds beyond the runs


def _frame(model_sizes=SIZES):
    truth = random_nested_truth(2, seed=3)
    frame, _ = simulate_curves(truth, n_mixtures=6, model_sizes=model_sizes, tokens=CHECKPOINTS, seed=3)
    return frame


@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerHealthWarning)
        return fit_nested(CurveTable.from_long(_frame()), draws=100, tune=150, chains=2, seed=0)


def test_extrapolation_is_reported_in_efolds(fitted):
    info = target_extrapolation(fitted, **TARGET)
    assert info == target_extrapolation(fitted.table, **TARGET)  # a fit or its table
    assert info["fitted_model_size_min"] == 1e7 and info["fitted_model_size_max"] == 3e7
    assert info["fitted_tokens_min"] == pytest.approx(1e9)
    assert info["fitted_tokens_max"] == pytest.approx(1e10)
    assert info["extrapolation_efolds_model_size"] == pytest.approx(np.log(1e8 / 3e7))
    assert info["extrapolation_efolds_tokens"] == pytest.approx(np.log(3e10 / 1e10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # within the limits: no warning
        draws = predict_target(fitted, **TARGET, kind="mean")
    for key, value in info.items():
        assert draws.attrs[key] == pytest.approx(value), key
    assert list(draws["via"].values) == ["observed"] * len(fitted.mixtures)


def test_far_target_warns_with_efolds_and_range(fitted):
    far = 3e7 * np.exp(WARN_EFOLDS_MODEL_SIZE + 1)  # 4 e-folds beyond the largest size
    expected = r"model size .* 4\.0 e-folds .*fitted model size 1e\+07 to 3e\+07"
    with pytest.warns(TargetExtrapolationWarning, match=expected):
        draws = predict_target(fitted, model_size=far, tokens=3e10, kind="mean")
    assert draws.attrs["extrapolation_efolds_model_size"] == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("target", "field", "problem"),
    [
        ({"model_size": 4.2e6, "tokens": 3e10}, "model_size", "below every run"),
        ({"model_size": 1e8, "tokens": 1e8}, "tokens", "below every run"),
        ({"model_size": 3e7 * np.exp(MAX_EFOLDS + 0.5), "tokens": 3e10}, "model_size", "7.5 e-folds"),
        ({"model_size": 1e8, "tokens": 1e10 * np.exp(MAX_EFOLDS + 1)}, "tokens", "8.0 e-folds"),
    ],
)
def test_refused_targets_and_the_advice_works(fitted, target, field, problem):
    with pytest.raises(InputError) as refused:
        predict_target(fitted, **target, kind="mean")
    assert refused.value.field == field and problem in refused.value.problem
    assert "force=True" in refused.value.fix
    # the advice: pass force=True (far targets still warn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TargetExtrapolationWarning)
        draws = predict_target(fitted, **target, kind="mean", force=True)
    assert np.isfinite(draws.values).all()
    with pytest.raises(InputError, match="force"):
        predict_target(fitted, **TARGET, force="yes")


def test_steps_in_the_tokens_column_are_refused(fitted):
    frame = _frame()
    steps_of = dict(zip(CHECKPOINTS, np.geomspace(1e4, 3e4, 4), strict=True))
    frame["tokens"] = frame["tokens"].map(steps_of)  # steps written where tokens belong
    table = CurveTable.from_long(frame)
    with pytest.raises(InputError) as refused:
        check_target(table, model_size=1e8, tokens=1e11)
    err = refused.value
    assert err.field == "tokens"
    efolds = float(re.search(r"([\d.]+) e-folds", err.problem).group(1))
    assert efolds >= 15
    assert "optimiser steps, not tokens" in err.problem and "tokens_per_step" in err.fix
    # predict_target refuses it before anything is sampled
    on_steps = dataclasses.replace(fitted, table=table, mixing_stages={})
    with pytest.raises(InputError, match="optimiser steps"):
        predict_target(on_steps, model_size=1e8, tokens=1e11)


@pytest.mark.parametrize("kind", ["predictive", "mean"])
def test_observed_mixture_does_not_depend_on_the_others(fitted, kind, caplog):
    observed = fitted.mixtures.iloc[1].to_dict()
    new, other = {"web": 0.37, "code": 0.63}, {"web": 0.7, "code": 0.3}
    first_time = (TARGET["model_size"], TARGET["tokens"]) not in fitted.mixing_stages
    with caplog.at_level(logging.INFO, logger="bayesmix"), warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerHealthWarning)
        both = predict_target(fitted, **TARGET, mixtures=[observed, new], kind=kind, seed=4)
    fitting = [r.getMessage() for r in caplog.records if "fitting the mixing law" in r.getMessage()]
    assert len(fitting) == int(first_time)  # said once, when the mixing stage is fitted
    if first_time:
        assert "target scale (N*=1e+08, D*=3e+10)" in fitting[0]
    alone = predict_target(fitted, **TARGET, mixtures=[observed], kind=kind, seed=4)
    np.testing.assert_array_equal(alone.values[:, 0], both.values[:, 0])
    assert list(both["via"].values) == ["observed", "mixing_law"] and both.attrs["via"] == "mixed"
    assert alone.attrs["via"] == "observed"
    # a new mixture's draws do not depend on the others either, nor on its position (up to the
    # rounding of the law's batched matrix products)
    new_alone = predict_target(fitted, **TARGET, mixtures=[new], kind=kind, seed=4)
    new_second = predict_target(fitted, **TARGET, mixtures=[other, new], kind=kind, seed=4)
    np.testing.assert_array_equal(new_alone.values[:, 0], both.values[:, 1])
    np.testing.assert_allclose(new_alone.values[:, 0], new_second.values[:, 1], rtol=1e-12)
    assert new_alone.attrs["via"] == "mixing_law"
    # forcing one route still sends every mixture that way
    forced = predict_target(fitted, **TARGET, mixtures=[observed, new], kind=kind, seed=4, via="mixing_law")
    assert list(forced["via"].values) == ["mixing_law", "mixing_law"]
    np.testing.assert_allclose(forced.values[:, 1], both.values[:, 1], rtol=1e-12)
    with pytest.raises(InputError, match="not observed"):
        predict_target(fitted, **TARGET, mixtures=[observed, new], via="observed")


# ---------------------------------------------------------------- the project's target scale
def _imported_project(folder) -> Project:
    """A project with the default (ladder) target and runs imported from larger models."""
    project = Project.create(folder / "p", {"corpus": {"kind": "embedded", "domains": ["web", "code"]}})
    frame = _frame(model_sizes=(1e8, 3e8))
    frame.to_csv(folder / "runs.csv", index=False)
    from bayesmix.project.runs_io import import_runs

    import_runs(project, folder / "runs.csv")
    return project


def test_project_default_target_below_imported_runs_is_refused(tmp_path, fitted):
    project = _imported_project(tmp_path)
    model_size, _ = project.target_scale()
    assert model_size < 1e8  # the default ladder target is smaller than every imported run
    with pytest.raises(InputError) as refused:
        project.check_target()
    err = refused.value
    assert err.field == "project.target" and "below every run" in err.problem
    assert "study.yaml" in err.fix and "force" not in err.fix
    # choose refuses before the target-scale mixing law is fitted
    with pytest.raises(InputError, match=r"^project\.target"):
        steps.choose(project, dataclasses.replace(fitted, table=project.curves(), mixing_stages={}))
    # the advice: set project.target in study.yaml (the example it gives)
    example = yaml.safe_load(re.search(r"e\.g\. (\{.*\})", err.fix).group(1))
    path = project.folder / "study.yaml"
    settings = yaml.safe_load(path.read_text())
    settings["project"]["target"] = example
    path.write_text(yaml.safe_dump(settings))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        info = Project(project.folder).check_target()
    assert info["extrapolation_efolds_model_size"] > 0 and info["extrapolation_efolds_tokens"] > 0
    # a target between the runs is allowed, with a warning that it is no extrapolation
    settings["project"]["target"] = {"model_size": 2e8, "tokens": 1e11}
    path.write_text(yaml.safe_dump(settings))
    with pytest.warns(UserWarning, match="not beyond the largest run in model_size"):
        Project(project.folder).check_target()


def test_cli_optimise_prints_the_project_fix(tmp_path, fitted):
    project = _imported_project(tmp_path)
    save_nested(dataclasses.replace(fitted, table=project.curves(), mixing_stages={}), project.nested_dir)
    result = CliRunner().invoke(app, ["optimise", str(project.folder)])
    assert result.exit_code == 1, result.output
    assert "project.target" in result.output and "below every run" in result.output
    assert "study.yaml" in result.output and "force=True" not in result.output


def test_target_fit_checks_its_target_like_predict_target(fitted):
    from bayesmix.inference.nested_target import target_fit

    with pytest.raises(InputError, match="below every run") as refused:
        target_fit(fitted, model_size=4.2e6, tokens=3e10)
    assert refused.value.field == "model_size" and "force=True" in refused.value.fix
    with pytest.raises(InputError, match="e-folds"):
        target_fit(fitted, model_size=3e7 * np.exp(MAX_EFOLDS + 0.5), tokens=3e10)

"""The project workflow from the command line: quickstart, runs, fit, optimise, suggest (tiny data).

One quickstart on a tiny local corpus (three synthetic domains, a 2-entry ladder of very small
models, 40 steps) is shared by the module; every other command then runs on that project.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from bayesmix.cli.main import app
from bayesmix.project import Project, steps
from bayesmix.proxy.plan import load_plan


def _fixture_corpus_writer():
    """The three-domain fixture corpus writer of tests/proxy/conftest.py (not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "proxy_conftest", Path(__file__).parent / "proxy" / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_fixture_corpus


write_fixture_corpus = _fixture_corpus_writer()

runner = CliRunner()

LADDER = """
ladder: tiny
defaults: {seq_len: 32, tie_word_embeddings: true}
models:
  t-xs: {hidden_size: 16, num_layers: 1, num_heads: 2, intermediate_size: 32}
  t-s: {hidden_size: 32, num_layers: 2, num_heads: 2, intermediate_size: 64}
"""


def tiny_settings(folder: Path) -> dict:
    paths = {k: str(v) for k, v in write_fixture_corpus(folder / "corpus").items()}
    (folder / "ladder.yaml").write_text(LADDER)
    return {
        "corpus": {"kind": "local", "paths": paths, "val_fraction": 0.15},
        "tokenizer": {"kind": "bpe", "vocab_size": 300},
        "ladder": str(folder / "ladder.yaml"),
        "max_eval_tokens": 256,
        "train": {
            "batch_size": 8,
            "n_evals": 6,
            "schedule": "constant",
            "warmup_steps": 4,
            "checkpoint_every": 0,
        },
        "project": {
            "sizes": ["t-xs", "t-s"],
            "steps": 40,
            "min_step": 4,
            "n_mixtures": 6,
            "target": {"model_size": 100_000, "tokens": 200_000},
            "n_suggest": 2,
            "fit": {"draws": 100, "tune": 150, "chains": 2},
        },
    }


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    folder = tmp_path_factory.mktemp("workflow")
    settings = tiny_settings(folder)
    (folder / "settings.yaml").write_text(yaml.safe_dump(settings))
    project = folder / "project"
    result = invoke(
        "quickstart", "--project", project, "--settings", folder / "settings.yaml", "--workers", 0
    )
    assert result.exit_code == 0, result.output
    return folder, project, settings, result.output


def test_quickstart_writes_every_artefact(quickstart):
    _folder, project, _settings, output = quickstart
    proj = Project(project)
    finished = proj.study.ledger.runs("finished")
    assert len(finished) == 12  # 6 mixtures x 2 sizes
    assert {r.model_name for r in finished} == {"t-xs", "t-s"}
    for path in (
        proj.nested_dir / "nested.json",
        proj.proxy_fit_path,
        proj.optimum_path,
        proj.suggestions_path,
    ):
        assert path.exists(), path
    optimum = json.loads(proj.optimum_path.read_text())
    shares = np.array(list(optimum["mixture"].values()))
    assert abs(shares.sum() - 1) < 1e-5 and (shares >= -1e-9).all()
    low, high = optimum["interval"]
    assert low <= optimum["expected_loss"] <= high
    assert 0 <= optimum["p_beats_reference"] <= 1
    assert optimum["model_size"] == 100_000 and optimum["tokens"] == 200_000
    assert set(optimum["health"]) >= {"joint"}
    # the summary printed is the one saved
    assert f"{optimum['p_beats_reference']:.3f}" in output
    assert "quickstart done" in output
    assert "fitting the mixing law at the target scale" in output  # progress of the slow first fit
    plan = load_plan(proj.suggestions_path)
    # runs at two sizes: cost-aware (mixture, size) pairs, n_suggest of them
    assert len(plan) == 2 and {r.model for r in plan} <= {"t-xs", "t-s"}
    done = {tuple(sorted(r.mixture.items())) for r in proj.study.ledger.runs()}
    assert not any(tuple(sorted(r.mixture.items())) in done for r in plan)
    html = (proj.report_dir / "report.html").read_text()
    markdown = (proj.report_dir / "report.md").read_text()
    for section in (
        "observed_vs_predicted",
        "scaling",
        "interactions",
        "optimum",
        "diagnostics",
        "suggestions",
    ):
        assert f"id='{section}'" in html, section
    assert "http://" not in html and "https://" not in html
    assert f"{optimum['p_beats_reference']:.3f}" in markdown
    # rerunning the training step finds every run finished (resumable)
    again = steps.train(proj, steps.initial_plan(proj), workers=0)
    assert again.finished == [] and len(again.skipped) == 12


def test_runs_list_and_export(quickstart, tmp_path):
    _folder, project, _settings, _ = quickstart
    listed = invoke("runs", "list", project)
    assert listed.exit_code == 0 and "12 finished" in listed.output
    out = tmp_path / "runs.csv"
    assert invoke("runs", "export", project, "--out", out).exit_code == 0
    frame = pd.read_csv(out)
    assert frame["run"].nunique() == 12 and set(frame["domain"]) == {"legal", "code", "dialogue"}
    assert len(frame) == 12 * 3 * 6  # runs x domains x evaluations
    assert invoke("runs", "export", project, "--out", tmp_path / "runs.txt").exit_code == 1


def test_runs_import_round_trip_and_refusals(quickstart, tmp_path):
    _folder, project, settings, _ = quickstart
    exported = tmp_path / "runs.csv"
    invoke("runs", "export", project, "--out", exported)
    other = tmp_path / "other"
    Project.create(other, settings)
    result = invoke("runs", "import", other, exported)
    assert result.exit_code == 0 and "imported 12 runs" in result.output
    before = Project(project).study.ledger.to_long_table()
    after = Project(other).study.ledger.to_long_table()
    columns = ["run", "domain", "loss", "step", "tokens", "model_size"]
    pd.testing.assert_frame_equal(before[columns], after[columns])
    # the imported curves are cut at the same point of training as the trained ones
    assert len(Project(other).curves().frame) == len(Project(project).curves().frame)
    assert after["bits_per_byte"].isna().all()  # not measured for imported runs: NaN, not made up
    # importing again adds nothing; a table with an unknown domain is refused and nothing is added
    assert "imported 0 runs" in invoke("runs", "import", other, exported).output
    bad = pd.read_csv(exported).rename(columns={"mix_code": "mix_web"})
    bad["run"] = bad["run"] + "-bad"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    refused = invoke("runs", "import", other, tmp_path / "bad.csv")
    assert refused.exit_code == 1 and "web" in refused.output
    assert len(Project(other).study.ledger.runs()) == 12
    nan = pd.read_csv(exported)
    nan.loc[3, "loss"] = np.nan
    nan["run"] = nan["run"] + "-nan"
    nan.to_csv(tmp_path / "nan.csv", index=False)
    refused = invoke("runs", "import", other, tmp_path / "nan.csv")
    assert refused.exit_code == 1 and "loss" in refused.output
    assert len(Project(other).study.ledger.runs()) == 12
    # a table with one new run and one run that conflicts with the ledger adds nothing
    table = pd.read_csv(exported)
    first = table["run"].iloc[0]
    clash = table[table["run"] == first].copy()
    clash["model_size"] = clash["model_size"] * 2
    fresh = table[table["run"] == first].copy()
    fresh["run"] = "fresh"
    pd.concat([fresh, clash]).to_csv(tmp_path / "clash.csv", index=False)
    refused = invoke("runs", "import", other, tmp_path / "clash.csv")
    assert refused.exit_code == 1 and "another mixture or model size" in refused.output
    assert len(Project(other).study.ledger.runs()) == 12
    # a run with one checkpoint is imported, and left out of the scaling fit with a warning
    single = fresh[fresh["step"] == fresh["step"].max()].assign(run="single")
    single.to_csv(tmp_path / "single.csv", index=False)
    assert "imported 1 runs" in invoke("runs", "import", other, tmp_path / "single.csv").output
    with pytest.warns(UserWarning, match="single"):
        curves = Project(other).curves()
    assert "single" not in set(curves.frame["run"]) and curves.frame["run"].nunique() == 12


def test_optimise_on_project_with_bounds_target_and_strict(quickstart, tmp_path):
    _folder, project, _settings, _ = quickstart
    out = tmp_path / "opt.json"
    result = invoke("optimise", project, "--target", "legal", "--bound", "code=0.3:0.5", "--out", out)
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["target"] == "legal"
    assert 0.3 - 1e-6 <= record["mixture"]["code"] <= 0.5 + 1e-6
    # the tiny fit has r_hat > 1.01: --strict turns that into exit 3, after printing the result
    assert set(record["per_domain"]) == {"legal", "code", "dialogue", "target"}
    health_ok = record["health_ok"]
    assert health_ok == all(stage["ok"] for stage in record["health"].values())
    strict = invoke("optimise", project, "--strict", "--out", tmp_path / "s.json")
    assert strict.exit_code == (0 if health_ok else 3)
    assert invoke("optimise", project, "--bound", "code=high").exit_code == 1
    assert invoke("optimise", project, "--target", "nope").exit_code == 1


def test_report_command_rewrites_the_report(quickstart):
    _folder, project, _settings, _ = quickstart
    html = Project(project).report_dir / "report.html"
    optimum = Project(project).optimum_path.read_bytes()
    html.unlink()
    result = invoke("report", project)
    assert result.exit_code == 0, result.output
    assert html.exists() and "wrote" in result.output
    assert Project(project).optimum_path.read_bytes() == optimum  # the report writes no optimum
    assert invoke("report", project.parent / "nowhere").exit_code == 1


def test_suggest_writes_a_plan_sweep_can_read(quickstart):
    _folder, project, _settings, _ = quickstart
    result = invoke("suggest", project, "--n", 1)
    assert result.exit_code == 0, result.output
    plan = load_plan(Project(project).suggestions_path)
    assert len(plan) == 1
    mixture = np.array(list(plan[0].mixture.values()))
    assert abs(mixture.sum() - 1) < 1e-9
    assert invoke("suggest", project, "--n", 0).exit_code == 1


def test_fit_project_folder(quickstart, tmp_path):
    _folder, project, _settings, _ = quickstart
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    shutil.rmtree(copy / "fits")
    refused = invoke("fit", copy, "--draws", 10)
    assert refused.exit_code == 1 and "--draws" in refused.output and not (copy / "fits").exists()
    result = invoke("fit", copy)
    assert result.exit_code == 0, result.output
    assert (copy / "fits" / "nested" / "nested.json").exists() and (copy / "fits" / "proxy.nc").exists()
    assert "sampler joint" in result.output
    # the same seed gives the same numbers
    a = steps.load_fits(Project(project)).scaling.posterior["alpha"].values
    b = steps.load_fits(Project(copy)).scaling.posterior["alpha"].values
    np.testing.assert_array_equal(a, b)


def test_project_settings_errors(tmp_path):
    from bayesmix.errors import InputError

    with pytest.raises(InputError, match=r"project\.sizes"):
        Project.create(tmp_path / "a", {"project": {"sizes": []}})
    with pytest.raises(InputError, match=r"project\.target"):
        Project.create(tmp_path / "b", {"project": {"target": {"model": "cpu-xl"}}})
    with pytest.raises(InputError, match="unknown keys"):
        Project.create(tmp_path / "c", {"project": {"stepz": 3}})
    with pytest.raises(InputError, match="ladder"):
        Project.create(tmp_path / "d", {"project": {"sizes": ["cpu-nope"]}})
    result = invoke("runs", "list", tmp_path / "missing")
    assert result.exit_code == 1 and "study.yaml" in result.output


def test_corpus_import_builds_a_local_corpus(quickstart, tmp_path):
    from bayesmix.proxy.study import Study

    paths = write_fixture_corpus(tmp_path / "text")
    study = tmp_path / "study"
    for name, path in paths.items():
        result = invoke("corpus", "import", study, name, path)
        assert result.exit_code == 0, result.output
        assert f"{name}:" in result.output and "train docs" in result.output
    corpus = Study(study).load_corpus()
    assert list(corpus.domains) == list(paths)
    assert all(d.train and d.validation for d in corpus.domains.values())
    assert invoke("corpus", "import", study, "web", tmp_path / "missing").exit_code == 1
    # a study whose ledger has runs keeps its corpus, and says why
    _folder, project, _settings, _ = quickstart
    refused = invoke("corpus", "import", project, "web", paths["code"])
    assert refused.exit_code == 1 and "already has runs" in refused.output
    assert "web" not in Study(project).settings["corpus"]["paths"]

"""Export of the chosen mixture: tokens and epochs for a budget, each framework's shape, the CLI."""

from __future__ import annotations

import collections
import importlib
import itertools
import json
import shlex
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from bayesmix.cli.export import FORMAT_NAMES, export_cmd
from bayesmix.errors import InputError
from bayesmix.optimise import OptimisationResult
from bayesmix.optimise.export import (
    FORMATS,
    RepetitionWarning,
    export_mixture,
    interleave_snippet,
    mixture_dict,
    number,
    parse_tokens,
    read_available,
    resolve_paths,
    split_budget,
    to_json,
    to_yaml,
    token_plan,
)

MIX = {"web": 0.6, "code": 0.3, "papers": 0.1}
PATHS = "/data/{domain}_text_document"


def _result() -> OptimisationResult:
    """A real result (no fit needed): four domains, one of them with share 0."""
    domains = ["web", "code", "papers", "books"]
    summary = pd.DataFrame(
        {
            "mean": [2.1, 2.0],
            "lower": [2.0, 1.9],
            "upper": [2.2, 2.1],
            "ref_mean": [2.2, 2.1],
            "ref_lower": [2.1, 2.0],
            "ref_upper": [2.3, 2.2],
        },
        index=pd.Index(["val", "target"], name="domain"),
    )
    return OptimisationResult(
        mixture=pd.Series([0.5123456, 0.3, 0.1876544, 0.0], index=domains, name="share"),
        reference=pd.Series(0.25, index=domains, name="share"),
        objective=2.0,
        summary=summary,
        p_beats_reference=0.8,
        loss_constraints=pd.DataFrame(),
        starts=pd.DataFrame(),
        target="mean",
        risk="mean",
        level=0.9,
        prob=0.9,
        n_draws=100,
    )


def _fields(excinfo: pytest.ExceptionInfo[InputError]) -> str:
    return excinfo.value.field


# --- tokens and epochs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("300B", 300 * 10**9),
        ("2T", 2 * 10**12),
        ("1e12", 10**12),
        ("1.5k", 1500),
        ("4M", 4 * 10**6),
        ("10G", 10 * 10**9),
        ("1_000_000", 10**6),
        (7, 7),
        (2.5e9, 2_500_000_000),
    ],
)
def test_parse_tokens(text, tokens):
    assert parse_tokens(text) == tokens


@pytest.mark.parametrize("bad", ["abc", "-5B", "0", "", "B", "nanB", True, float("inf")])
def test_parse_tokens_rejects(bad):
    with pytest.raises(InputError) as excinfo:
        parse_tokens(bad, "budget")
    assert _fields(excinfo) == "budget"


def test_split_budget_by_hand():
    assert split_budget({"a": 0.5, "b": 0.3, "c": 0.2}, 10) == {"a": 5, "b": 3, "c": 2}
    # 3.5, 2.1, 1.4 -> 3, 2, 1 and the one token left goes to the largest remainder (a)
    assert split_budget({"a": 0.5, "b": 0.3, "c": 0.2}, 7) == {"a": 4, "b": 2, "c": 1}
    thirds = mixture_dict({"a": 1, "b": 1, "c": 1})  # 0.333334, 0.333333, 0.333333
    assert split_budget(thirds, 100) == {"a": 34, "b": 33, "c": 33}
    big = split_budget({"a": 0.123457, "b": 0.876543}, 3 * 10**12 + 1)
    assert big == {"a": 370371000000, "b": 2629629000001}
    assert sum(big.values()) == 3 * 10**12 + 1


def test_token_plan_epochs_by_hand():
    with pytest.warns(RepetitionWarning, match="code 1.20 epochs"):
        plan = token_plan({"web": 0.6, "code": 0.4}, "300B", {"web": "1T", "code": "100B"})
    assert plan.tokens == {"web": 180 * 10**9, "code": 120 * 10**9}
    assert plan.epochs == pytest.approx({"web": 0.18, "code": 1.2})
    assert plan.repeated == pytest.approx({"code": 1.2})
    record = plan.to_dict()
    assert record["budget"] == 300 * 10**9 and record["repeated"] == ["code"]
    assert plan.table().loc["code", "epochs"] == pytest.approx(1.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = token_plan({"web": 0.6, "code": 0.4}, "300B", {"web": "1T", "code": "1T"})
    assert quiet.repeated == {}


def test_token_plan_without_available_and_zero_share():
    plan = token_plan({"web": 1.0, "papers": 0.0}, "1e9", {"web": "2B"})  # papers needs no data
    assert plan.tokens == {"web": 10**9}
    assert plan.epochs == {"web": 0.5}
    assert token_plan({"web": 0.5, "code": 0.5}, 11).epochs is None


def test_token_plan_errors_name_the_field():
    with pytest.raises(InputError, match="no data") as excinfo:
        token_plan(MIX, "300B", {"web": "1T", "code": "0", "papers": "1T"})
    assert _fields(excinfo) == "available" and "--exclude code" in excinfo.value.fix
    with pytest.raises(InputError, match="no token count") as excinfo:
        token_plan(MIX, "300B", {"web": "1T"})
    assert _fields(excinfo) == "available"
    with pytest.raises(InputError) as excinfo:
        token_plan(MIX, "300B", {"web": "1T", "code": "10B", "papers": "1T"}, max_epochs=4)
    assert _fields(excinfo) == "max_epochs" and "code=0:0.133" in excinfo.value.fix
    with pytest.raises(InputError) as excinfo:
        token_plan(MIX, "300B", {"web": "1T", "code": "1T", "papers": "40B"}, max_epochs=0.5)  # 0.75 epochs
    assert _fields(excinfo) == "max_epochs" and "papers" in excinfo.value.problem
    with pytest.raises(InputError) as excinfo:
        token_plan(MIX, "300B", max_epochs=4)
    assert _fields(excinfo) == "max_epochs"
    with pytest.raises(InputError) as excinfo:
        token_plan({"web": 0.5, "code": 0.3}, "300B")
    assert _fields(excinfo) == "mixture"
    with pytest.raises(InputError) as excinfo:
        token_plan({"web": 1.2, "code": -0.2}, "300B")
    assert _fields(excinfo) == "mixture"


def test_read_available_files(tmp_path):
    expected = {"web": 2 * 10**12, "code": 300 * 10**9}
    (tmp_path / "header.csv").write_text("domain,tokens\nweb,2T\ncode,300000000000\n")
    (tmp_path / "plain.csv").write_text("web,2e12\ncode,300B\n")
    (tmp_path / "map.json").write_text(json.dumps({"web": 2e12, "code": "300B"}))
    (tmp_path / "rows.json").write_text(
        json.dumps([{"domain": "web", "tokens": "2T"}, {"domain": "code", "tokens": 3e11}])
    )
    (tmp_path / "map.yaml").write_text("web: 2T\ncode: 300B\n")
    for name in ("header.csv", "plain.csv", "map.json", "rows.json", "map.yaml"):
        assert read_available(tmp_path / name) == expected, name
    assert read_available("web=2T,code=300B") == expected
    (tmp_path / "twice.csv").write_text("web,1\nweb,2\n")
    for bad in ("web:2T", str(tmp_path / "twice.csv"), "web=lots"):
        with pytest.raises(InputError) as excinfo:
            read_available(bad)
        assert _fields(excinfo) == "available"


def test_resolve_paths(tmp_path):
    assert resolve_paths(["web", "code"], "/d/{domain}/*.npy") == {
        "web": "/d/web/*.npy",
        "code": "/d/code/*.npy",
    }
    assert resolve_paths(["web"], "web=/w,code=/c") == {"web": "/w"}
    (tmp_path / "paths.yaml").write_text("web: /w\ncode: /c\n")
    (tmp_path / "paths.json").write_text(json.dumps({"web": "/w", "code": "/c"}))
    for name in ("paths.yaml", "paths.json"):
        assert resolve_paths(["web", "code"], str(tmp_path / name)) == {"web": "/w", "code": "/c"}
    for bad in ("/data/web", "web=/w"):  # no template, and no path for code: never invented
        with pytest.raises(InputError) as excinfo:
            resolve_paths(["web", "code"], bad)
        assert _fields(excinfo) == "paths"


# --- the formats -------------------------------------------------------------------------------


def _alternating(words: list) -> tuple[list[float], list[str]]:
    """Megatron's blend list: weight, prefix, weight, prefix, ... (get_blend_from_list's zip)."""
    assert len(words) % 2 == 0
    weights = [float(w) for w in words[::2]]
    prefixes = words[1::2]
    assert all(isinstance(p, str) and p for p in prefixes)
    return weights, prefixes


def test_megatron_formats():
    line = export_mixture(MIX, "megatron", paths=PATHS).text
    words = shlex.split(line)
    assert words[0] == "--data-path"
    weights, prefixes = _alternating(words[1:])
    assert sum(weights) == pytest.approx(1.0, abs=1e-12)
    assert prefixes == [f"/data/{d}_text_document" for d in MIX]
    weights, prefixes = _alternating(export_mixture(MIX, "megatron-args", paths=PATHS).text.split())
    assert weights == pytest.approx(list(MIX.values()))
    split = json.loads(export_mixture(MIX, "megatron-split", paths=PATHS).text)
    assert set(split) == {"train", "valid", "test"} and split["valid"] is None and split["test"] is None
    weights, _ = _alternating(split["train"])
    assert sum(weights) == pytest.approx(1.0)
    quoted = export_mixture({"web": 1.0}, "megatron", paths={"web": "/my data/web"}).text
    assert shlex.split(quoted)[2] == "/my data/web"
    with pytest.raises(InputError) as excinfo:
        export_mixture({"web": 1.0}, "megatron-args", paths={"web": "/my data/web"})
    assert _fields(excinfo) == "paths"


def test_nemo_format():
    text = export_mixture(MIX, "nemo", paths=PATHS, budget="300B").text
    prefix = yaml.safe_load(text)["model"]["data"]["data_prefix"]
    weights, prefixes = _alternating(prefix)
    assert all(isinstance(w, float) for w in prefix[::2])
    assert sum(weights) == pytest.approx(1.0) and prefixes[0] == "/data/web_text_document"
    assert "180,000,000,000 tokens" in text  # the plan, as comments


def test_olmo_core_format():
    available = {"web": "2T", "code": "50B", "papers": "7B"}
    with pytest.warns(RepetitionWarning):
        export = export_mixture(
            MIX,
            "olmo-core",
            paths="/data/{domain}/*.npy",
            budget="300B",
            available=available,
            global_batch_size="4M",
        )
    config = yaml.safe_load(export.text)
    assert set(config) == {"source_list", "requested_tokens", "global_batch_size"}
    assert config["requested_tokens"] == 300 * 10**9 and config["global_batch_size"] == 4 * 10**6
    sources = config["source_list"]["sources"]
    fields = {"source_name", "target_ratio", "paths", "max_repetition_ratio", "max_source_fraction"}
    assert all(set(s) <= fields for s in sources)  # SourceMixtureConfig's fields
    assert [s["source_name"] for s in sources] == list(MIX)
    assert np.allclose(sum(s["target_ratio"] for s in sources), 1.0)  # SourceMixtureList.validate
    assert sources[0]["paths"] == ["/data/web/*.npy"]
    for source in sources:  # SourceMixtureDatasetConfig.build: enough tokens for each source
        assert source["max_repetition_ratio"] >= 1
        have = parse_tokens(available[source["source_name"]])
        needed = int(config["requested_tokens"] * source["target_ratio"])
        assert int(have * source["max_repetition_ratio"]) >= needed
    assert [s["max_repetition_ratio"] for s in sources] == [1.0, 1.8, 4.29]  # 30B/7B = 4.2857 epochs
    without = export_mixture(MIX, "olmo-core", paths=PATHS, budget="300B").text
    assert "global_batch_size" not in yaml.safe_load(without) and "# global_batch_size:" in without


class _Recorder:
    """A stand-in class that records the arguments it was built with."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _module(monkeypatch, name: str, **attributes) -> None:
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)


def test_litgpt_snippet_builds_combined_dataset(monkeypatch):
    classes = {
        n: type(n, (_Recorder,), {})
        for n in ("CombinedStreamingDataset", "StreamingDataLoader", "StreamingDataset", "TokensLoader")
    }
    _module(monkeypatch, "litdata")
    _module(monkeypatch, "litdata.streaming", **classes)
    code = export_mixture(MIX, "litgpt", paths="s3://bucket/{domain}", seed=3).text
    namespace: dict = {}
    exec(compile(code, "litgpt_snippet", "exec"), namespace)
    combined = namespace["combined_dataset"]
    assert isinstance(combined, classes["CombinedStreamingDataset"])
    assert combined.kwargs["iterate_over_all"] is False and combined.kwargs["seed"] == 3
    assert sum(combined.kwargs["weights"]) == pytest.approx(1.0)
    dirs = [d.kwargs["input_dir"] for d in combined.kwargs["datasets"]]
    assert dirs == [f"s3://bucket/{d}" for d in MIX]
    assert all(d.kwargs["item_loader"].kwargs["block_size"] == 2049 for d in combined.kwargs["datasets"])


def _shares(rows, column: str) -> dict[str, float]:
    counts = collections.Counter(row[column] for row in rows)
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


def test_torchtitan_snippet_registers_an_interleaving_loader(monkeypatch):
    import datasets

    registry: dict = {}
    config = type("DatasetConfig", (_Recorder,), {})
    _module(monkeypatch, "torchtitan")
    _module(monkeypatch, "torchtitan.hf_datasets", DatasetConfig=config)
    _module(monkeypatch, "torchtitan.hf_datasets.text_datasets", DATASETS=registry)
    text = export_mixture(MIX, "torchtitan", paths="/data/{domain}", seed=1).text
    assert '#   dataset = "bayesmix_mixture"' in text
    namespace: dict = {}
    exec(compile(text, "torchtitan_snippet", "exec"), namespace)
    entry = registry["bayesmix_mixture"]
    assert set(entry.kwargs) == {"path", "loader", "sample_processor"}

    def fake_load(path, split, streaming):
        assert split == "train" and streaming
        return datasets.Dataset.from_dict({"text": [path] * 2000}).to_iterable_dataset()

    namespace["load_dataset"] = fake_load
    stream = entry.kwargs["loader"]("bayesmix_mixture")  # torchtitan calls loader(path)
    rows = list(itertools.islice(stream, 2000))
    shares = _shares(rows, "text")
    for domain, share in MIX.items():
        assert shares[f"/data/{domain}"] == pytest.approx(share, abs=0.03)
    assert entry.kwargs["sample_processor"](rows[0]) == rows[0]["text"]


def test_nanotron_format():
    config = yaml.safe_load(export_mixture(MIX, "nanotron", paths="/tok/{domain}", seed=5).text)
    (stage,) = config["data_stages"]
    assert stage["start_training_step"] == 1 and stage["name"]
    data = stage["data"]
    assert data["seed"] == 5 and data["num_loading_workers"] == 1
    folders, weights = data["dataset"]["dataset_folder"], data["dataset"]["dataset_weights"]
    assert folders == [f"/tok/{d}" for d in MIX] and len(weights) == len(folders)
    assert sum(weights) == pytest.approx(1.0)


def test_hf_snippet_interleaves_at_the_shares():
    import datasets

    code = export_mixture(MIX, "hf", seed=0).text
    namespace: dict = {"load_domain": lambda name: datasets.Dataset.from_dict({"domain": [name] * 1500})}
    exec(compile(code, "hf_snippet", "exec"), namespace)
    mixed = namespace["mixed"]
    shares = _shares(mixed, "domain")
    assert namespace["probabilities"] == [0.6, 0.3, 0.1]
    for domain, share in MIX.items():
        assert shares[domain] == pytest.approx(share, abs=0.02)
    with_paths = export_mixture(MIX, "hf", paths="/data/{domain}").text
    compile(with_paths, "hf_snippet_paths", "exec")
    assert 'load_dataset(paths[name], split="train", streaming=True)' in with_paths


def test_json_and_yaml_formats():
    with pytest.warns(RepetitionWarning):
        export = export_mixture(
            _result(), "json", budget="1e9", available={"web": 1e9, "code": 1e8, "papers": 1e9}
        )
    record = json.loads(export.text)
    assert "books" not in record["mixture"] and sum(record["mixture"].values()) == pytest.approx(1.0)
    assert sum(record["tokens"].values()) == 10**9
    assert record["epochs"]["code"] == pytest.approx(3.0) and record["repeated"] == ["code"]
    assert yaml.safe_load(export_mixture(MIX, "yaml").text) == {"mixture": MIX}
    assert export_mixture(MIX, "json", budget=10).to_dict()["tokens"] == {"web": 6, "code": 3, "papers": 1}


def test_every_format_renders_and_is_listed():
    assert tuple(FORMATS) == FORMAT_NAMES
    for fmt in FORMATS:
        export = export_mixture(MIX, fmt, paths=PATHS, budget="300B")
        assert export.text.endswith("\n") and export.shares == MIX
        if fmt in ("litgpt", "torchtitan", "hf"):
            compile(export.text, fmt, "exec")


def test_export_errors_name_the_field():
    cases = [
        (dict(fmt="parquet"), "format"),
        (dict(fmt="megatron"), "paths"),
        (dict(fmt="olmo-core", paths=PATHS), "budget"),
        (dict(fmt="json", available="web=1T"), "available"),
        (dict(fmt="json", budget="lots"), "budget"),
        (dict(fmt="olmo-core", paths=PATHS, budget="1B", global_batch_size="big"), "global_batch_size"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InputError) as excinfo:
            export_mixture(MIX, **kwargs)
        assert _fields(excinfo) == field, kwargs


def test_existing_exports_still_work():
    opt = importlib.import_module("bayesmix.optimise")  # bayesmix.optimise is also the function

    assert opt.to_json is to_json and opt.interleave_snippet is interleave_snippet
    assert json.loads(to_json({"a": 2, "b": 2})) == {"a": 0.5, "b": 0.5}
    tiny = {"a": 0.999999, "b": 0.000001}
    assert yaml.safe_load(to_yaml(tiny))["mixture"] == tiny  # never 1e-06, a string to YAML 1.1
    assert number(1e-6) == "0.000001" and number(1.0) == "1.0" and number(0.6) == "0.6"
    assert "load_domain(name)" in interleave_snippet({"a": 0.5, "b": 0.5, "c": 0.0}, seed=2)
    assert _result().to_dict()["mixture"]["books"] == 0.0


# --- the command -------------------------------------------------------------------------------

app = typer.Typer()
app.command("export")(export_cmd)
app.command("version")(lambda: None)  # two commands, so `export` is a subcommand as in bayesmix
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["export", *map(str, args)])


@pytest.fixture
def optimum(tmp_path) -> Path:
    """The JSON `bayesmix optimise` writes: OptimisationResult.to_dict()."""
    path = tmp_path / "optimum.json"
    path.write_text(json.dumps(_result().to_dict(), indent=2))
    return path


def test_cli_megatron_from_optimum_json(optimum):
    result = invoke(optimum, "--format", "megatron", "--paths", PATHS)
    assert result.exit_code == 0, result.output
    weights, prefixes = _alternating(shlex.split(result.stdout)[1:])
    assert prefixes == [f"/data/{d}_text_document" for d in ("web", "code", "papers")]  # books: share 0
    assert weights == pytest.approx([0.512346, 0.3, 0.187654]) and sum(weights) == pytest.approx(1.0)


def test_cli_json_with_budget_and_available(optimum, tmp_path):
    csv = tmp_path / "available.csv"
    csv.write_text("domain,tokens\nweb,1T\ncode,100B\npapers,1T\nbooks,0\n")
    result = invoke(
        optimum, "--format", "nemo", "--paths", PATHS, "--budget", "300B", "--available", csv, "--json"
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {"mixture", "tokens", "epochs", "text", "budget", "available", "repeated", "paths"} <= set(payload)
    assert payload["budget"] == 300 * 10**9 and sum(payload["tokens"].values()) == payload["budget"]
    assert payload["tokens"]["code"] == 90 * 10**9 and payload["epochs"]["code"] == pytest.approx(0.9)
    assert payload["epochs"]["web"] == pytest.approx(0.512346 * 0.3, abs=1e-6)
    assert yaml.safe_load(payload["text"])["model"]["data"]["data_prefix"][1] == "/data/web_text_document"


def test_cli_text_on_stdout_table_on_stderr():
    result = invoke(
        "--mixture",
        "web=0.6,code=0.4",
        "--format",
        "yaml",
        "--budget",
        "1e9",
        "--available",
        "web=1B,code=100M",
    )
    assert result.exit_code == 0, result.output
    record = yaml.safe_load(result.stdout)  # stdout is only the export
    assert record["tokens"] == {"web": 600_000_000, "code": 400_000_000} and record["repeated"] == ["code"]
    assert (
        "data repeated: code 4.00 epochs" in result.stderr and "Budget 1,000,000,000 tokens" in result.stderr
    )


def test_cli_out_is_written_atomically(tmp_path):
    out = tmp_path / "configs" / "blend.yaml"
    result = invoke(
        "--mixture", "web=0.6,code=0.4", "--format", "nanotron", "--paths", "/tok/{domain}", "--out", out
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout
    assert yaml.safe_load(out.read_text())["data_stages"][0]["data"]["dataset"]["dataset_weights"] == [
        0.6,
        0.4,
    ]
    assert [p.name for p in out.parent.iterdir()] == ["blend.yaml"]  # no temporary file left
    again = invoke(
        "--mixture", "web=0.5,code=0.5", "--format", "nanotron", "--paths", "/tok/{domain}", "--out", out
    )
    assert again.exit_code == 0 and "0.5" in out.read_text()


def test_cli_project_folder_budget_from_optimum(tmp_path):
    record = {**_result().to_dict(), "tokens": 2e9, "model_size": 1e9}
    (tmp_path / "optimum.json").write_text(json.dumps(record))
    result = invoke(tmp_path, "--format", "olmo-core", "--paths", "/d/{domain}/*.npy", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["budget"] == 2 * 10**9 and yaml.safe_load(payload["text"])["requested_tokens"] == 2 * 10**9
    assert "target tokens" in result.stderr


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--mixture", "web=0.6,code=0.4", "--budget", "lots"], "--budget"),
        (["--mixture", "web=0.6,code=0.4", "--format", "parquet"], "--format"),
        (["--mixture", "web=0.6,code=0.4", "--format", "olmo-core", "--paths", PATHS], "--budget"),
        (["--mixture", "web=0.6,code=0.4", "--format", "megatron"], "--paths"),
        (["--mixture", "web=0.6,code=0.4", "--format", "megatron", "--paths", "/data/web"], "--paths"),
        (["--mixture", "web=0.6,code"], "--mixture"),
        (["--mixture", "web=0.6,code=0.1"], "--mixture"),
        ([], "--mixture"),
        (["--mixture", "web=0.6,code=0.4", "--available", "web=1T"], "--available"),
        (["--mixture", "web=0.6,code=0.4", "--budget", "1B", "--available", "web=1T,code=0"], "--available"),
        (
            [
                "--mixture",
                "web=0.6,code=0.4",
                "--budget",
                "1B",
                "--available",
                "web=1T,code=1M",
                "--max-epochs",
                "4",
            ],
            "--max-epochs",
        ),
    ],
)
def test_cli_errors_name_the_option(args, option):
    result = invoke(*args)
    assert result.exit_code != 0
    assert f"error: {option}:" in result.output, result.output


def test_cli_error_advice_is_a_working_flag(optimum, tmp_path):
    result = invoke("--mixture", "web=0.6,code=0.4", "--budget", "1B", "--available", "web=1T,code=0")
    assert "bayesmix optimise --exclude code" in result.output
    both = invoke(optimum, "--mixture", "web=1")
    assert both.exit_code != 0 and "error: --mixture:" in both.output
    missing = invoke(tmp_path / "nothing.json")
    assert missing.exit_code != 0 and "bayesmix optimise" in missing.output

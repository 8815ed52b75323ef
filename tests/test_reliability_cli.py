"""Reliability: fuzzed arguments of ``bayesmix train`` and ``bayesmix sweep``, and corrupt study files.

Every invocation either gets as far as training (valid input) or exits with a documented error
whose message names the argument, key or file and the fix; a raw exception fails the test. Nothing
is trained: ``Study.prepare`` and ``sweep`` are replaced by :class:`ReachedTraining`, so reaching
them proves the input passed every check, and an independent oracle says which inputs may.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bayesmix.cli.main import app
from bayesmix.data.corpus import DOMAINS
from bayesmix.proxy.config import load_ladder
from bayesmix.proxy.study import Study
from bayesmix.proxy.trainer import TrainConfig

TRIED: Counter[str] = Counter()
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
MODELS = list(load_ladder("cpu"))
LIMIT = max(64, 4 * (os.cpu_count() or 1))  # --workers / --threads ceiling (bayesmix.cli.train)


class ReachedTraining(Exception):
    """Raised instead of preparing data or sweeping: the command's input passed every check."""


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def reached(*args: Any, **kwargs: Any) -> None:
        raise ReachedTraining

    monkeypatch.setattr(Study, "prepare", reached)
    monkeypatch.setattr("bayesmix.proxy.sweep.sweep", reached)


def invoke(kind: str, args: list[str]) -> tuple[bool, Any]:
    """Run ``bayesmix <args>``; return (reached training, result). Fails on a raw exception."""
    TRIED[kind] += 1
    result = CliRunner().invoke(app, args, catch_exceptions=True)
    if isinstance(result.exception, ReachedTraining):
        return True, result
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"bayesmix {args}: raw {type(result.exception).__name__}: {result.exception}"
    )
    assert result.exit_code != 0, f"bayesmix {args} neither trained nor failed: {result.output}"
    if result.exit_code == 1:  # a documented error: names the field and the fix
        assert "Fix:" in result.output, result.output
    else:  # typer's own usage errors (e.g. --steps abc)
        assert result.exit_code == 2 and ("Usage" in result.output or "Invalid value" in result.output)
    return False, result


# ---------------------------------------------------------------- bayesmix train
def mixture_valid(text: str) -> bool:
    """An independent statement of the --mixture rules: domain=share pairs, a distribution over known domains."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            share = float(value)
        except ValueError:
            return False
        if not sep or not name or name in mix:
            return False
        mix[name] = share
    shares = [v for v in mix.values() if v != 0.0]
    return (
        bool(shares)
        and all(math.isfinite(v) and v >= 0 for v in shares)
        and abs(sum(shares) - 1.0) <= 1e-3
        and {k for k, v in mix.items() if v != 0.0} <= set(DOMAINS)
    )


def integer_in(text: str, low: int, high: int) -> bool:
    try:
        return low <= int(text) <= high
    except ValueError:
        return False


def run_id_valid(text: str) -> bool:
    return (
        0 < len(text) <= 200
        and text == text.strip()
        and not text.startswith(".")
        and "/" not in text
        and "\\" not in text
        and all(ord(c) >= 32 and ord(c) != 127 for c in text)
    )


shares = st.sampled_from(["0.5", "0.25", "1", "0", "-1", "nan", "inf", "x", "", "1e400", "0.75"])
domain_names = st.sampled_from(["legal", "code", "dialogue", "zz", "", " ", "[/x]"])
mixture_text = st.one_of(
    st.lists(st.tuples(domain_names, shares).map("=".join), min_size=0, max_size=3).map(",".join),
    st.sampled_from(["legal=1", "legal=0.5,code=0.5", "legal", ",", "=1", "legal=0.5,legal=0.5"]),
    st.text(max_size=8),
)


valid_train_options = st.fixed_dictionaries(
    {"--mixture": st.sampled_from(["legal=1", "legal=0.5,code=0.5", "code=0.25, dialogue=0.75,legal=0"])},
    optional={
        "--model": st.sampled_from(MODELS),
        "--steps": st.sampled_from(["1", "10", "1000000000"]),
        "--seed": st.sampled_from(["0", "7", str(2**63 - 1)]),
        "--run-id": st.sampled_from(["r01", "mix-a_b.1"]),
    },
)
fuzzed_train_options = st.fixed_dictionaries(
    {"--mixture": mixture_text},
    optional={
        "--model": st.sampled_from([*MODELS[:2], "nope", "", "[/x]"]),
        "--steps": st.sampled_from(["10", "1", "0", "-1", "abc", "1000000001", "99999999999999999999"]),
        "--seed": st.sampled_from(["0", "7", "-1", "abc", str(2**63)]),
        "--run-id": st.sampled_from(["r01", "", "../escape", "a/b", ".hidden", " x", "[/red]", "x" * 201]),
    },
)
#: valid options half of the time, so both outcomes are exercised
train_options = valid_train_options | fuzzed_train_options


def train_valid(opts: dict[str, str]) -> bool:
    """Whether ``bayesmix train`` with these options may train (the oracle)."""
    return (
        mixture_valid(opts["--mixture"])
        and opts.get("--model", "cpu-xs") in MODELS
        and integer_in(opts.get("--steps", "200"), 1, 10**9)
        and integer_in(opts.get("--seed", "0"), 0, 2**63 - 1)
        and ("--run-id" not in opts or run_id_valid(opts["--run-id"]))
    )


def test_fuzz_train_arguments(no_training: None, tmp_path: Path) -> None:
    study = tmp_path / "study"
    Study.create(study)
    options = train_options
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(options)
    def run(opts: dict[str, str]) -> None:
        args = ["train", str(study)]
        for key, value in opts.items():
            args += [key, value]
        valid = train_valid(opts)
        reached, result = invoke("train", args)
        outcomes["reached" if reached else "refused"] += 1
        assert reached == valid, f"bayesmix {args}: valid={valid} but reached={reached}\n{result.output}"

    run()
    assert TRIED["train"] >= 60
    assert outcomes["reached"] >= 3 and outcomes["refused"] >= 30, outcomes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"]  # no run id escaped the study folder


# ---------------------------------------------------------------- bayesmix sweep
@pytest.fixture
def plan_files(tmp_path: Path) -> dict[str, Path]:
    """Good and broken plan files (and paths that are not plan files)."""
    return write_plan_files(tmp_path / "plans")


def write_plan_files(folder: Path) -> dict[str, Path]:
    """Write good and broken plan files into ``folder``; names starting with "good" are valid."""
    folder.mkdir(parents=True)
    texts: dict[str, str | bytes] = {
        "good.yaml": "defaults: {model: cpu-xs, steps: 5}\nruns:\n  - {mixture: {legal: 0.5, code: 0.5}}\n",
        "good.csv": "mix_legal,mix_code,model,steps\n0.5,0.5,cpu-xs,5\n",
        "unknown_model.yaml": "runs:\n  - {mixture: {legal: 1}, model: nope, steps: 5}\n",
        "unknown_domain.yaml": "runs:\n  - {mixture: {zz: 1}, model: cpu-xs, steps: 5}\n",
        "bad_steps.yaml": "runs:\n  - {mixture: {legal: 1}, model: cpu-xs, steps: -3}\n",
        "escape_id.yaml": "runs:\n  - {id: ../../x, mixture: {legal: 1}, model: cpu-xs, steps: 5}\n",
        "not_yaml.yaml": "runs: [{mixture: {legal: 1}",
        "binary.yaml": b"\x00\xff\xfe runs",
        "scalar.yaml": "5",
        "empty.csv": "",
        "junk.csv": "a,b\n1,2\n",
    }
    paths = {}
    for name, text in texts.items():
        path = folder / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        paths[name] = path
    paths["missing.yaml"] = folder / "missing.yaml"
    paths["a folder"] = folder
    return paths


def sweep_options(plan_names: list[str]) -> st.SearchStrategy[dict[str, str]]:
    """``bayesmix sweep`` options over the plan files of :func:`write_plan_files`."""
    return st.fixed_dictionaries(
        {"--plan": st.sampled_from(plan_names)},
        optional={
            "--workers": st.sampled_from(["0", "1", "2", "-1", str(LIMIT + 1), "abc", "1.5"]),
            "--threads": st.sampled_from(["1", "2", "0", "-3", str(LIMIT + 1), "x"]),
        },
    )


def sweep_valid(opts: dict[str, str]) -> bool:
    """Whether ``bayesmix sweep`` with these options may train (the oracle)."""
    return (
        opts["--plan"].startswith("good")
        and integer_in(opts.get("--workers", "1"), 0, LIMIT)
        and integer_in(opts.get("--threads", "1"), 1, LIMIT)
    )


def test_fuzz_sweep_arguments(no_training: None, tmp_path: Path, plan_files: dict[str, Path]) -> None:
    study = tmp_path / "study"
    Study.create(study)
    options = sweep_options(sorted(plan_files))
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(options)
    def run(opts: dict[str, str]) -> None:
        args = ["sweep", str(study), "--plan", str(plan_files[opts["--plan"]])]
        args += [x for key in ("--workers", "--threads") if key in opts for x in (key, opts[key])]
        valid = sweep_valid(opts)
        reached, result = invoke("sweep", args)
        outcomes["reached" if reached else "refused"] += 1
        assert reached == valid, f"bayesmix {args}: valid={valid} but reached={reached}\n{result.output}"

    run()
    assert TRIED["sweep"] >= 60
    assert outcomes["reached"] >= 3 and outcomes["refused"] >= 30, outcomes


# ---------------------------------------------------------------- study.yaml
junk = st.one_of(
    st.sampled_from(["abc", "", 5, -1, 0, 2.5, 1e-3, True, None, [1], {"a": 1}, float("nan")]),
    st.integers(-5, 5000),
    st.text(max_size=3),
)
train_settings = st.dictionaries(
    st.sampled_from(
        ["lr", "batch_size", "warmup_steps", "schedule", "beta1", "grad_clip", "device", "bogus"]
    ),
    junk,
    max_size=3,
)
settings_dicts = st.fixed_dictionaries(
    {},
    optional={
        "corpus": st.one_of(
            junk,
            st.fixed_dictionaries(
                {"kind": st.sampled_from(["embedded", "local", "x"])},
                optional={
                    "train_bytes": junk,
                    "domains": st.one_of(junk, st.just(["legal"])),
                    "paths": junk,
                    "val_fraction": junk,
                },
            ),
        ),
        "tokenizer": st.one_of(
            junk,
            st.fixed_dictionaries(
                {"kind": st.sampled_from(["bpe", "gpt2", "auto", "x"])}, optional={"vocab_size": junk}
            ),
        ),
        "ladder": st.one_of(st.sampled_from(["cpu", "gpu", "nope"]), junk),
        "max_eval_tokens": junk,
        "train": st.one_of(train_settings, junk),
        "project": junk,  # another layer's section: kept, not checked here
    },
)
study_texts = st.one_of(
    settings_dicts.map(lambda d: yaml.safe_dump(d, sort_keys=False)),
    st.sampled_from(["{", "- 1\n- 2", "\x00", "train: {lr: abc}", "ladder: 5", "train: [1]", ": :"]),
    st.text(max_size=20),
)


def check_loaded_study(folder: Path) -> None:
    """A study that passed validation holds settings of the right types."""
    study = Study(folder)
    config = study.train_config
    assert isinstance(config, TrainConfig)
    for name in ("batch_size", "warmup_steps", "n_evals", "eval_batch_size", "checkpoint_every"):
        value = getattr(config, name)
        assert isinstance(value, int) and not isinstance(value, bool), (name, value)
    for name in ("lr", "weight_decay", "beta1", "beta2", "grad_clip"):
        value = getattr(config, name)
        assert isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    assert study.ladder and isinstance(study.settings["max_eval_tokens"], int)
    assert set(study.domains) <= set(DOMAINS) or study.settings["corpus"]["kind"] == "local"


def test_fuzz_study_yaml_files(no_training: None, tmp_path: Path) -> None:
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(study_texts, st.booleans())
    def run(text: str, as_settings_option: bool) -> None:
        n = TRIED["study.yaml"]
        folder = tmp_path / f"study{n}"
        source = tmp_path / f"settings{n}.yaml"
        source.write_text(text, encoding="utf-8")
        if as_settings_option:  # bayesmix train NEW --settings FILE
            args = ["train", str(folder), "--mixture", "legal=1", "--settings", str(source)]
        else:  # an existing study folder whose study.yaml was edited by hand
            folder.mkdir()
            (folder / "study.yaml").write_text(text, encoding="utf-8")
            args = ["train", str(folder), "--mixture", "legal=1"]
        reached, _ = invoke("study.yaml", args)
        outcomes["reached" if reached else "refused"] += 1
        if reached:
            check_loaded_study(folder)
        elif as_settings_option:
            assert not (folder / "study.yaml").exists(), "refused settings must not be written"

    run()
    assert TRIED["study.yaml"] >= 60
    assert outcomes["reached"] >= 3 and outcomes["refused"] >= 30, outcomes


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("train: {lr: abc}", "train.lr: is 'abc'"),
        ("train: {batch_size: 2.5}", "train.batch_size: is 2.5"),
        ("train: {bogus: 1}", "train: has unknown keys ['bogus']"),
        ("train: [1]", "train: is [1], not a mapping"),
        ("ladder: 5", "ladder: is 5"),
        ("ladder: nope", "nope is not a file or a shipped ladder"),
        ("corpus: {kind: local}", "corpus.paths: is None"),
        ("corpus: {kind: embedded, paths: {a: b}}", "corpus: has unknown keys ['paths']"),
        ("tokenizer: {kind: bpe, vocab_size: 10}", "tokenizer.vocab_size: is 10"),
        ("max_eval_tokens: -1", "max_eval_tokens: is -1"),
        ("{", "is not valid YAML (ParserError)"),
        ("- 1", "is a list, not a mapping"),
    ],
)
def test_corrupt_study_yaml_names_the_key(no_training: None, tmp_path: Path, text: str, named: str) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "study.yaml").write_text(text, encoding="utf-8")
    reached, result = invoke("named", ["train", str(folder), "--mixture", "legal=1"])
    output = " ".join(result.output.split())  # rich wraps long lines
    assert not reached and result.exit_code == 1 and named in output, output
    assert str(folder / "study.yaml") in output  # and the file


def test_named_cli_errors(no_training: None, tmp_path: Path, plan_files: dict[str, Path]) -> None:
    study = tmp_path / "study"
    cases = [
        (
            ["train", str(study), "--mixture", "legal=0.5,code=x"],
            "--mixture: 'code=x' is not domain=proportion",
        ),
        (["train", str(study), "--mixture", "[/x]=1"], "names domains ['[/x]']"),  # rich markup, printed
        (
            ["train", str(study), "--mixture", "legal=1", "--model", "nope"],
            "model: 'nope' is not in the ladder",
        ),
        (["train", str(study), "--mixture", "legal=1", "--steps", "-1"], "steps: is -1"),
        (
            ["train", str(study), "--mixture", "legal=1", "--run-id", "../x"],
            "run id '../x' is not a safe file",
        ),
        (
            ["train", str(study), "--mixture", "legal=1", "--settings", str(tmp_path / "no.yaml")],
            "--settings",
        ),
        (["train", str(plan_files["good.yaml"]), "--mixture", "legal=1"], "is a file"),
        (["sweep", str(study), "--plan", str(plan_files["missing.yaml"])], "does not exist"),
        (["sweep", str(study), "--plan", str(plan_files["a folder"])], "is not a file"),
        (["sweep", str(study), "--plan", str(plan_files["binary.yaml"])], "is not valid YAML/JSON"),
        (
            ["sweep", str(study), "--plan", str(plan_files["good.yaml"]), "--workers", "-1"],
            "--workers: is -1",
        ),
        (["sweep", str(study), "--plan", str(plan_files["good.yaml"]), "--threads", "0"], "--threads: is 0"),
        (["sweep", str(study), "--plan", str(plan_files["unknown_domain.yaml"])], "names domains ['zz']"),
    ]
    for args, named in cases:
        reached, result = invoke("named", args)
        output = " ".join(result.output.split())
        assert not reached and result.exit_code == 1 and named in output, (args, output)
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()

"""Local corpora are read safely: links that leave the folder, huge files and tokenizer paths."""

from __future__ import annotations

import builtins
import json
import pathlib
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bayesmix.cli.main import app
from bayesmix.data.corpus import load_local
from bayesmix.data.corpus.loaders import MAX_DOMAIN_BYTES, read_file
from bayesmix.errors import InputError

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]


def _texts(tag: str, n: int) -> list[str]:
    return [f"{tag} document {i}: " + " ".join(WORDS[(i + k) % 6] for k in range(30)) for i in range(n)]


def _folder(path: Path, n: int = 30) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i, t in enumerate(_texts(path.name, n)):
        (path / f"{i:03d}.txt").write_text(t, encoding="utf-8")
    return path


def _never_open(monkeypatch: pytest.MonkeyPatch, *forbidden: Path) -> None:
    """Make opening any of ``forbidden`` fail, so a refusal must come from the sizes alone."""
    names = {str(p) for p in forbidden}
    real_open, real_path_open = builtins.open, pathlib.Path.open

    def guarded_open(file, *args, **kwargs):
        if str(file) in names:
            raise AssertionError(f"{file} was opened")
        return real_open(file, *args, **kwargs)

    def guarded_path_open(self, *args, **kwargs):
        if str(self) in names:
            raise AssertionError(f"{self} was opened")
        return real_path_open(self, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(pathlib.Path, "open", guarded_path_open)


def _sparse(path: Path, size: int) -> Path:
    """A file of ``size`` bytes on disk by os.stat, holding no data blocks."""
    with path.open("wb") as fh:
        fh.truncate(size)
    return path


# ---------------------------------------------------------------- symbolic links


def test_link_to_a_file_outside_the_folder_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not for the corpus " * 20, encoding="utf-8")
    folder = _folder(tmp_path / "papers")
    link = folder / "zz.txt"
    link.symlink_to(secret)
    with pytest.raises(InputError) as err:
        load_local({"papers": folder})
    assert err.value.field == str(link)
    assert str(secret.resolve()) in err.value.problem and "outside the imported folder" in err.value.problem
    assert "remove the link" in err.value.fix and "cp --remove-destination" in err.value.fix


def test_link_to_a_file_inside_the_folder_is_read(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "papers")
    (folder / "sub").mkdir()
    (folder / "sub" / "link.txt").symlink_to(folder / "000.txt")
    (folder / "relative.txt").symlink_to("001.txt")
    corpus = load_local({"papers": folder}, val_fraction=0.2)
    dom = corpus.domains["papers"]
    ids = {d.id for d in dom.train + dom.validation}
    assert {"link.txt", "relative.txt"} <= ids
    assert len(ids) == 32


def test_corpus_import_refuses_a_link_outside_and_writes_nothing(tmp_path: Path) -> None:
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n" * 5, encoding="utf-8")
    folder = _folder(tmp_path / "papers")
    (folder / "passwd.txt").symlink_to(secret)
    study = tmp_path / "study"
    result = CliRunner().invoke(app, ["corpus", "import", str(study), "papers", str(folder)])
    output = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "passwd.txt" in output and str(secret) in output and "remove the link" in output
    assert not (study / "study.yaml").exists()


# ---------------------------------------------------------------- size limits


def test_default_limit_refuses_a_huge_text_file_from_its_size(tmp_path: Path, monkeypatch) -> None:
    folder = _folder(tmp_path / "big")
    huge = _sparse(folder / "huge.txt", 2**30)  # 1 GiB by os.stat, no data on disk
    _never_open(monkeypatch, huge)
    with pytest.raises(InputError) as err:
        load_local({"big": folder}, train_bytes=2000, validation_bytes=500)  # budgets do not help a .txt
    assert err.value.field == str(huge)
    assert f"{MAX_DOMAIN_BYTES:,} bytes" in err.value.problem and "'big'" in err.value.problem
    assert "nothing was read" in err.value.problem and "max_domain_bytes" in err.value.fix


def test_default_limit_refuses_a_huge_jsonl_without_budget(tmp_path: Path, monkeypatch) -> None:
    huge = _sparse(tmp_path / "huge.jsonl", 2**30)
    _never_open(monkeypatch, huge)
    with pytest.raises(InputError) as err:
        load_local({"web": huge})
    assert err.value.field == "domain 'web'"
    assert str(huge) in err.value.problem and f"{MAX_DOMAIN_BYTES:,}" in err.value.problem
    assert "train_bytes and validation_bytes" in err.value.fix


def test_many_small_files_over_the_limit_are_refused_before_reading(tmp_path: Path, monkeypatch) -> None:
    folder = _folder(tmp_path / "many", n=40)
    total = sum(p.stat().st_size for p in folder.iterdir())
    _never_open(monkeypatch, *folder.iterdir())
    with pytest.raises(InputError, match=r"40 files.*nothing was read") as err:
        load_local({"many": folder}, max_domain_bytes=total - 1)
    assert err.value.field == "domain 'many'"


def test_limit_just_above_and_just_below(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in _texts("a", 60)), encoding="utf-8")
    size = path.stat().st_size
    assert load_local({"alpha": path}, max_domain_bytes=size).domains["alpha"].train
    with pytest.raises(InputError, match="max_domain_bytes"):
        load_local({"alpha": path}, max_domain_bytes=size - 1)
    text = tmp_path / "t" / "one.txt"
    text.parent.mkdir()
    text.write_text("x" * 5000, encoding="utf-8")
    assert next(read_file(text, max_bytes=5000)).text == "x" * 5000
    with pytest.raises(InputError, match="5,000 bytes, more than"):
        next(read_file(text, max_bytes=4999))


def test_budgeted_jsonl_streams_and_stops_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in _texts("a", 400)), encoding="utf-8")
    size = path.stat().st_size
    # small budgets fill long before the limit: the rest of the file is never read
    small = load_local({"alpha": path}, train_bytes=2000, validation_bytes=300, max_domain_bytes=size // 2)
    assert small.domains["alpha"].train_bytes <= 2000
    # budgets that cannot fill within the limit: streaming stops there and says so
    with pytest.raises(InputError, match="reading stopped there") as err:
        load_local({"alpha": path}, train_bytes=10**9, validation_bytes=10**9, max_domain_bytes=size // 2)
    assert err.value.field == str(path) and f"{size // 2:,} bytes" in err.value.problem


def test_one_huge_jsonl_line_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "line.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{"text": "' + "y" * 4_000_000 + '"}\n')
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="reading stopped there"):
            load_local({"alpha": path}, train_bytes=10**9, validation_bytes=10**9, max_domain_bytes=64_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak  # the 4 MB line was never held whole


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "64MB", None])
def test_max_domain_bytes_must_be_a_positive_integer(tmp_path: Path, bad: object) -> None:
    folder = _folder(tmp_path / "papers")
    with pytest.raises(InputError, match="max_domain_bytes: is"):
        load_local({"papers": folder}, max_domain_bytes=bad)  # type: ignore[arg-type]


def test_corpus_import_refuses_a_huge_file(tmp_path: Path, monkeypatch) -> None:
    huge = _sparse(tmp_path / "dump.jsonl", 2**30)
    _never_open(monkeypatch, huge)
    study = tmp_path / "study"
    result = CliRunner().invoke(app, ["corpus", "import", str(study), "web", str(huge)])
    output = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "domain 'web'" in output and "max_domain_bytes" in output and "nothing was read" in output
    assert not (study / "study.yaml").exists()


# ---------------------------------------------------------------- tokenizer path


def _auto_study(folder: Path, path: str):
    from bayesmix.proxy.study import Study

    return Study.create(folder, {"tokenizer": {"kind": "auto", "path": path}})


def test_auto_tokenizer_path_is_read_from_the_study_folder(tmp_path: Path, monkeypatch) -> None:
    from bayesmix.data.tokenizer import save_pretrained, train_bpe

    study_dir = tmp_path / "study"
    bpe = train_bpe(_texts("tok", 200), "fp", vocab_size=300)
    save_pretrained(bpe, study_dir / "tok")
    study = _auto_study(study_dir, "./tok")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    tok = study.load_tokenizer(None)  # type: ignore[arg-type]
    assert tok.name == "tok"  # as written, so run records do not depend on where the study lives
    assert tok.encode_batch(["alpha beta"]) == bpe.encode_batch(["alpha beta"])


def test_missing_auto_tokenizer_folder_names_the_resolved_path(tmp_path: Path, monkeypatch) -> None:
    study_dir = tmp_path / "study"
    study = _auto_study(study_dir, "./tok")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tok").mkdir()  # a folder of that name in the working directory is not used
    with pytest.raises(InputError) as err:
        study.load_tokenizer(None)  # type: ignore[arg-type]
    assert err.value.field.endswith("study.yaml: tokenizer.path")
    assert str((study_dir / "tok").absolute()) in err.value.problem
    assert "relative paths are read from the study folder" in err.value.problem
    assert "save_pretrained" in err.value.fix


def test_auto_tokenizer_folder_without_a_tokenizer_is_an_input_error(tmp_path: Path) -> None:
    study_dir = tmp_path / "study"
    study = _auto_study(study_dir, "tok")
    (study_dir / "tok").mkdir()
    with pytest.raises(InputError) as err:
        study.load_tokenizer(None)  # type: ignore[arg-type]
    assert err.value.field.endswith("tokenizer.path")
    assert "holds no tokenizer that transformers can load" in err.value.problem


def test_corpus_import_limit_flag_is_the_advice_and_is_kept(tmp_path: Path, monkeypatch) -> None:
    import inspect

    import bayesmix.data.corpus.loaders as loaders

    # the default is bound at definition time; give load_local the small default the test needs
    monkeypatch.setattr(loaders.load_local, "__defaults__", tuple(
        1_000 if p.name == "max_domain_bytes" else p.default
        for p in inspect.signature(loaders.load_local).parameters.values() if p.default is not p.empty
    ))
    folder = _folder(tmp_path / "papers")
    size = sum(p.stat().st_size for p in folder.iterdir())
    study = tmp_path / "study"
    refused = CliRunner().invoke(app, ["corpus", "import", str(study), "papers", str(folder)])
    assert refused.exit_code == 1 and "--max-domain-bytes" in refused.stderr, refused.output
    assert "load_local" not in refused.stderr and not (study / "study.yaml").exists()
    applied = CliRunner().invoke(
        app, ["corpus", "import", str(study), "papers", str(folder), "--max-domain-bytes", str(size)]
    )
    assert applied.exit_code == 0, applied.output
    from bayesmix.proxy.study import Study

    assert Study(study).settings["corpus"]["max_domain_bytes"] == size


def test_parquet_text_is_streamed_and_counted_as_text(tmp_path: Path) -> None:
    import pandas as pd

    # repetitive text compresses many-fold: small on disk, past the limit once decompressed
    texts = [("the same sentence again. " * 400) + str(i) for i in range(200)]
    path = tmp_path / "web.parquet"
    pd.DataFrame({"text": texts, "id": range(200)}).to_parquet(path)
    text_bytes = sum(len(t.encode("utf-8")) for t in texts)
    limit = text_bytes // 4
    assert path.stat().st_size < limit  # the on-disk size alone would have let it through
    with pytest.raises(InputError, match="past its limit") as err:
        list(read_file(path, max_bytes=limit))
    assert "--max-domain-bytes" not in err.value.fix  # the Python advice, where Python is used
    # within the limit every row is read, from the text column only, in order
    docs = list(read_file(path, max_bytes=text_bytes))
    assert [d.text for d in docs] == texts and docs[3].id == "web.parquet#3"
    # a big non-text column does not count against the limit: only the text column is read
    wide = tmp_path / "wide.parquet"
    pd.DataFrame({"text": ["short text"] * 10, "blob": [np.random.default_rng(0).bytes(50_000)] * 10}).to_parquet(wide)
    assert wide.stat().st_size > 1_000
    assert len(list(read_file(wide, max_bytes=1_000))) == 10
    with pytest.raises(InputError, match=r"no column 'body'.*columns: \['text', 'blob'\]"):
        list(read_file(wide, text_field="body"))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        list(read_file(broken))

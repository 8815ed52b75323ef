import json

import pandas as pd
import pytest

from bayesmix.data.corpus import domain_name, load_datasets, load_local
from bayesmix.errors import InputError

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]


def _texts(tag: str, n: int) -> list[str]:
    return [f"{tag} document {i}: " + " ".join(WORDS[(i + k) % 6] for k in range(30)) for i in range(n)]


def test_load_local_txt_jsonl_parquet(tmp_path):
    (tmp_path / "legal").mkdir()
    for i, t in enumerate(_texts("legal", 30)):
        (tmp_path / "legal" / f"{i:03d}.txt").write_text(t, encoding="utf-8")
    with (tmp_path / "chat.jsonl").open("w") as fh:
        for t in _texts("chat", 40):
            fh.write(json.dumps({"body": t}) + "\n")
    pd.DataFrame({"body": _texts("code", 40)}).to_parquet(tmp_path / "code.parquet")
    corpus = load_local(
        {
            "legal": tmp_path / "legal",
            "dialogue": tmp_path / "chat.jsonl",
            "code": [tmp_path / "code.parquet"],
        },
        text_field="body",
        val_fraction=0.2,
    )
    assert corpus.names == ["legal", "dialogue", "code"]
    for dom in corpus.domains.values():
        assert len(dom.train) + len(dom.validation) in (30, 40)
        assert dom.validation and dom.train
        assert all(d.text.startswith(("legal", "chat", "code")) for d in dom.train)
    assert (
        corpus.fingerprint()
        == load_local(
            {
                "legal": tmp_path / "legal",
                "dialogue": tmp_path / "chat.jsonl",
                "code": [tmp_path / "code.parquet"],
            },
            text_field="body",
            val_fraction=0.2,
        ).fingerprint()
    )


def test_load_local_budget_and_errors(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps({"text": t}) for t in _texts("a", 200)))
    corpus = load_local({"alpha": path}, train_bytes=2000, validation_bytes=500)
    assert corpus.domains["alpha"].train_bytes <= 2000
    with pytest.raises(InputError, match="does not exist"):
        load_local({"alpha": tmp_path / "missing"})
    with pytest.raises(InputError, match="lowercase"):
        load_local({"Bad Name": path})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"txt": "x"}\n')
    with pytest.raises(InputError, match="no string field 'text'"):
        load_local({"alpha": bad})


def test_domain_name():
    assert domain_name("Pile-CC") == "pile_cc"
    assert domain_name("FreeLaw") == "freelaw"
    assert domain_name("2020 news") == "d_2020_news"


def test_load_datasets_domain_column_streaming(tmp_path):
    pytest.importorskip("datasets")
    path = tmp_path / "pile.jsonl"
    rows = []
    for label in ("FreeLaw", "Github", "Pile-CC"):
        rows += [{"text": t, "meta": {"pile_set_name": label}} for t in _texts(label, 40)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    corpus = load_datasets("json", data_files=str(path), domain_field="meta.pile_set_name", streaming=True)
    assert corpus.names == ["freelaw", "github", "pile_cc"]
    only = load_datasets(
        "json",
        data_files=str(path),
        domain_field="meta.pile_set_name",
        domains={"Github": "code", "FreeLaw": "legal"},
        train_bytes=1500,
        validation_bytes=400,
    )
    assert only.names == ["code", "legal"]
    assert only.domains["code"].train_bytes <= 1500
    with pytest.raises(InputError, match="never appear"):
        load_datasets("json", data_files=str(path), domain_field="meta.pile_set_name", domains=["news"])


def test_load_datasets_one_dataset_per_domain(tmp_path):
    pytest.importorskip("datasets")
    for name in ("legal", "code"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "part.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in _texts(name, 80)))
    corpus = load_datasets({"legal": str(tmp_path / "legal"), "code": str(tmp_path / "code")})
    assert corpus.names == ["legal", "code"]
    assert all(d.text.startswith("code") for d in corpus.domains["code"].train)

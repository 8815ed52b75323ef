import random

import pytest
import torch

from bayesmix.data.corpus import load_local
from bayesmix.data.tokenizer import train_bpe
from bayesmix.proxy.config import ModelSpec
from bayesmix.proxy.data import tokenize_corpus

torch.set_num_threads(1)

VOCAB = {
    "legal": "licensee shall grant warranty liability notice agreement party terms hereby copyright".split(),
    "code": "def return self import class for in if else lambda yield none true".split(),
    "dialogue": "hi how are you doing good thanks what about lol yeah sure okay".split(),
}


def write_fixture_corpus(folder, n_docs: int = 60, seed: int = 0):
    """Small three-domain corpus: each domain has its own vocabulary and its own word order habits."""
    rng = random.Random(seed)
    for name, words in VOCAB.items():
        d = folder / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n_docs):
            lines = []
            for _ in range(8):
                start = rng.randrange(len(words))
                lines.append(" ".join(words[(start + k * (1 + k % 2)) % len(words)] for k in range(10)))
            (d / f"{i:03d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {name: folder / name for name in VOCAB}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    corpus = load_local(write_fixture_corpus(folder), val_fraction=0.15)
    tok = train_bpe(corpus.train_texts(), corpus.fingerprint(), vocab_size=300)
    return tokenize_corpus(corpus, tok, seq_len=32, max_eval_tokens=32 * 8)


@pytest.fixture(scope="session")
def tiny_spec():
    return ModelSpec("tiny", hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seq_len=32)


@pytest.fixture
def corpus_writer():
    return write_fixture_corpus

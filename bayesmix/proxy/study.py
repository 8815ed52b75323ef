"""A study folder: its settings, prepared data, ledger and checkpoints.

Layout::

    <study>/study.yaml          settings (corpus, tokenizer, ladder, training)
    <study>/ledger.sqlite       the run ledger
    <study>/cache/              tokenizer and tokenized sequences (``tokens-<key>.npz``)
    <study>/checkpoints/<run>.pt

``study.yaml`` holds::

    corpus: {kind: embedded, domains: [legal, code], train_bytes: 2000000, validation_bytes: 200000}
    # or    {kind: local, paths: {legal: ./legal/, code: code.jsonl}, text_field: text}
    tokenizer: {kind: bpe, vocab_size: 4096}      # or {kind: gpt2} or {kind: auto, path: ./tok}
    ladder: cpu                                   # or a YAML path
    max_eval_tokens: 8192
    train: {batch_size: 16, lr: 0.003, ...}       # TrainConfig fields
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bayesmix.data.corpus import Corpus, load_embedded, load_local
from bayesmix.data.ledger import Ledger
from bayesmix.data.tokenizer import Tokenizer, auto_tokenizer, gpt2_tokenizer, train_bpe
from bayesmix.errors import InputError
from bayesmix.proxy.config import ModelSpec, load_ladder
from bayesmix.proxy.data import TokenizedCorpus, tokenize_corpus
from bayesmix.proxy.trainer import TrainConfig

DEFAULT_SETTINGS: dict[str, Any] = {
    "corpus": {"kind": "embedded", "train_bytes": 2_000_000, "validation_bytes": 200_000},
    "tokenizer": {"kind": "bpe", "vocab_size": 4096},
    "ladder": "cpu",
    "max_eval_tokens": 8_192,
    "train": {},
}


@dataclass
class Prepared:
    """What every run of a study shares: tokenized data per sequence length, and ids."""

    data_paths: dict[int, Path]
    corpus_id: str
    tokenizer_id: str
    attributions: tuple[str, ...]


class Study:
    """A study folder (see the module docstring).

    Parameters
    ----------
    folder
        The study folder; it must hold ``study.yaml`` (see :meth:`create`).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        path = self.folder / "study.yaml"
        if not path.is_file():
            raise InputError(
                "study", f"{path} does not exist", "create the study first (Study.create or `corpus build`)"
            )
        self.settings = _merge(DEFAULT_SETTINGS, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        self.train_config = TrainConfig(**self.settings["train"])
        self.ladder: dict[str, ModelSpec] = load_ladder(self.settings["ladder"])

    @classmethod
    def create(
        cls, folder: str | Path, settings: dict[str, Any] | None = None, overwrite: bool = False
    ) -> Study:
        """Write ``study.yaml`` (defaults merged with ``settings``) and return the study."""
        folder = Path(folder)
        path = folder / "study.yaml"
        merged = _merge(DEFAULT_SETTINGS, settings or {})
        if path.exists() and not overwrite:
            old = _merge(DEFAULT_SETTINGS, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
            if old != merged:
                raise InputError(
                    "study",
                    f"{path} exists with other settings",
                    "use another folder, or pass overwrite=True (its ledger stays)",
                )
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")
        return cls(folder)

    @property
    def ledger(self) -> Ledger:
        """The study's ledger."""
        return Ledger(self.folder / "ledger.sqlite")

    @property
    def cache_dir(self) -> Path:
        """The study's cache folder."""
        return self.folder / "cache"

    def checkpoint_path(self, run_id: str) -> Path:
        """Checkpoint file of a run."""
        return self.folder / "checkpoints" / f"{run_id}.pt"

    def model(self, name: str) -> ModelSpec:
        """Return a ladder entry by name."""
        if name not in self.ladder:
            raise InputError("model", f"{name!r} is not in the ladder", f"choose from {list(self.ladder)}")
        return self.ladder[name]

    def load_corpus(self) -> Corpus:
        """Load the corpus the settings describe."""
        spec = dict(self.settings["corpus"])
        kind = spec.pop("kind", "embedded")
        if kind == "embedded":
            return load_embedded(**spec)
        if kind == "local":
            paths = {
                d: (self.folder / p if not Path(p).is_absolute() else Path(p))
                for d, p in spec.pop("paths").items()
            }
            return load_local(paths, **spec)
        raise InputError("corpus.kind", f"is {kind!r}", "use embedded or local (or build a Corpus in Python)")

    def load_tokenizer(self, corpus: Corpus) -> Tokenizer:
        """Build or load the tokenizer the settings describe."""
        spec = dict(self.settings["tokenizer"])
        kind = spec.get("kind", "bpe")
        if kind == "bpe":
            return train_bpe(
                corpus.train_texts(),
                corpus.fingerprint(),
                int(spec.get("vocab_size", 4096)),
                cache_dir=self.cache_dir,
            )
        if kind == "gpt2":
            return gpt2_tokenizer()
        if kind == "auto":
            return auto_tokenizer(spec["path"])
        raise InputError("tokenizer.kind", f"is {kind!r}", "use bpe, gpt2 or auto")

    def prepare(self, seq_lens: list[int] | None = None) -> Prepared:
        """Load the corpus, build the tokenizer and tokenize for every sequence length needed."""
        corpus = self.load_corpus()
        tok = self.load_tokenizer(corpus)
        lens = sorted(set(seq_lens or [m.seq_len for m in self.ladder.values()]))
        paths = {}
        for n in lens:
            data = tokenize_corpus(
                corpus, tok, n, int(self.settings["max_eval_tokens"]), cache_dir=self.cache_dir
            )
            paths[n] = self.cache_dir / f"tokens-{data.key}.npz"
        return Prepared(
            paths, corpus.fingerprint(), f"{tok.name}:{tok.fingerprint[:16]}", corpus.attributions
        )

    def data(self, prepared: Prepared, seq_len: int) -> TokenizedCorpus:
        """Load the tokenized data of one sequence length."""
        return TokenizedCorpus.load(prepared.data_paths[seq_len])


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "corpus":
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out

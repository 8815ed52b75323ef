"""Tokenized training and validation sequences per domain, cached as ``.npz`` (no pickle).

Every document is encoded, followed by the end-of-text id, and the domain's documents are
concatenated into one stream (in corpus order) that is cut into non-overlapping sequences of
``seq_len`` tokens; the incomplete tail is dropped. Validation streams are cut the same way and
capped at ``max_eval_tokens`` per domain. ``bytes_per_token`` (UTF-8 bytes of a domain's
validation text over its validation tokens) converts losses into bits per byte.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bayesmix.data.corpus.types import Corpus, Document
from bayesmix.data.files import write_failure
from bayesmix.data.tokenizer import Tokenizer
from bayesmix.errors import IncompatibleFileError, InputError

FORMAT_VERSION = 1


@dataclass
class TokenizedCorpus:
    """Fixed-length token sequences per domain.

    Parameters
    ----------
    domains
        Domain names, in corpus order.
    train, validation
        ``{domain: int32 array of shape (n, seq_len)}``.
    bytes_per_token
        ``{domain: UTF-8 bytes per validation token}``.
    seq_len, vocab_size, eos_id
        Sequence length and tokenizer facts.
    key
        Fingerprint of corpus, tokenizer and settings.
    """

    domains: list[str]
    train: dict[str, np.ndarray]
    validation: dict[str, np.ndarray]
    bytes_per_token: dict[str, float]
    seq_len: int
    vocab_size: int
    eos_id: int
    key: str

    def sizes(self) -> dict[str, int]:
        """Return the number of training sequences per domain."""
        return {d: int(self.train[d].shape[0]) for d in self.domains}

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` file atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"train/{d}": self.train[d] for d in self.domains}
        arrays |= {f"validation/{d}": self.validation[d] for d in self.domains}
        meta = np.array([FORMAT_VERSION, self.seq_len, self.vocab_size, self.eos_id], dtype=np.int64)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        os.close(fd)
        try:
            np.savez(
                tmp,
                meta=meta,
                domains=np.array(self.domains, dtype=np.str_),
                bytes_per_token=np.array([self.bytes_per_token[d] for d in self.domains]),
                key=np.array(self.key, dtype=np.str_),
                **arrays,
            )
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise write_failure(exc, path, "the tokenized corpus") from None
        return path

    @classmethod
    def load(cls, path: str | Path) -> TokenizedCorpus:
        """Read a file written by :meth:`save` (``allow_pickle=False``)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                version, seq_len, vocab_size, eos_id = (int(x) for x in z["meta"])
                if version != FORMAT_VERSION:
                    raise IncompatibleFileError(f"{path} has format {version}, expected {FORMAT_VERSION}")
                domains = [str(d) for d in z["domains"]]
                return cls(
                    domains=domains,
                    train={d: z[f"train/{d}"] for d in domains},
                    validation={d: z[f"validation/{d}"] for d in domains},
                    bytes_per_token=dict(zip(domains, (float(x) for x in z["bytes_per_token"]), strict=True)),
                    seq_len=seq_len,
                    vocab_size=vocab_size,
                    eos_id=eos_id,
                    key=str(z["key"]),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise IncompatibleFileError(f"{path} is not a tokenized corpus: {exc}") from exc


def _stream(docs: Sequence[Document], tokenizer: Tokenizer, chunk: int = 256) -> tuple[np.ndarray, int]:
    ids: list[int] = []
    n_bytes = 0
    for start in range(0, len(docs), chunk):
        batch = docs[start : start + chunk]
        for doc, enc in zip(batch, tokenizer.encode_batch([d.text for d in batch]), strict=True):
            ids.extend(enc)
            ids.append(tokenizer.eos_id)
            n_bytes += doc.n_bytes
    return np.asarray(ids, dtype=np.int32), n_bytes


def _cut(stream: np.ndarray, seq_len: int, limit: int | None = None) -> np.ndarray:
    n = len(stream) // seq_len
    if limit is not None:
        n = min(n, limit)
    return stream[: n * seq_len].reshape(n, seq_len)


def tokenize_corpus(
    corpus: Corpus,
    tokenizer: Tokenizer,
    seq_len: int,
    max_eval_tokens: int = 8_192,
    cache_dir: str | Path | None = None,
) -> TokenizedCorpus:
    """Tokenize every domain into fixed-length sequences (cached when ``cache_dir`` is given).

    Parameters
    ----------
    corpus
        The corpus.
    tokenizer
        The tokenizer.
    seq_len
        Tokens per sequence (the models' context length).
    max_eval_tokens
        Cap on validation tokens per domain (evaluation cost grows with it).
    cache_dir
        Folder of ``tokens-<key>.npz`` files; ``None`` disables caching.

    Returns
    -------
    TokenizedCorpus
        With at least one training and one validation sequence per domain.
    """
    if seq_len < 8:
        raise InputError("seq_len", f"is {seq_len}", "use at least 8 tokens")
    key = hashlib.sha256(
        f"{FORMAT_VERSION}:{corpus.fingerprint()}:{tokenizer.fingerprint}:{seq_len}:{max_eval_tokens}".encode()
    ).hexdigest()[:20]
    path = Path(cache_dir) / f"tokens-{key}.npz" if cache_dir is not None else None
    if path is not None and path.exists():
        return TokenizedCorpus.load(path)
    train, val, bpt = {}, {}, {}
    for name, dom in corpus.domains.items():
        t_stream, _ = _stream(dom.train, tokenizer)
        v_stream, v_bytes = _stream(dom.validation, tokenizer)
        train[name] = _cut(t_stream, seq_len)
        val[name] = _cut(v_stream, seq_len, max(1, max_eval_tokens // seq_len))
        for split, arr in (("training", train[name]), ("validation", val[name])):
            if arr.shape[0] == 0:
                raise InputError(
                    f"domain {name!r}",
                    f"has fewer {split} tokens than one sequence of {seq_len}",
                    "raise the byte budget or lower seq_len",
                )
        bpt[name] = v_bytes / len(v_stream)
    out = TokenizedCorpus(
        list(corpus.domains), train, val, bpt, seq_len, tokenizer.vocab_size, tokenizer.eos_id, key
    )
    if path is not None:
        out.save(path)
    return out

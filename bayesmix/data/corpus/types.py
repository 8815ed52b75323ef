"""Plain containers for documents and per-domain corpora."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """One whole document of one domain.

    Parameters
    ----------
    id
        Identifier unique within its domain (e.g. ``"sotu:1790-Washington-1.txt"``).
    text
        Cleaned UTF-8 text.
    """

    id: str
    text: str

    @property
    def n_bytes(self) -> int:
        """Length of the UTF-8 encoded text in bytes."""
        return len(self.text.encode("utf-8"))


@dataclass(frozen=True)
class DomainCorpus:
    """The training and validation documents of one domain.

    Parameters
    ----------
    name
        Short lowercase domain identifier (``"legal"``, ``"code"`` ...).
    train
        Training documents.
    validation
        Held-out whole documents, never seen in training.
    """

    name: str
    train: tuple[Document, ...]
    validation: tuple[Document, ...]

    @property
    def train_bytes(self) -> int:
        """UTF-8 bytes of the training documents."""
        return sum(d.n_bytes for d in self.train)

    @property
    def validation_bytes(self) -> int:
        """UTF-8 bytes of the validation documents."""
        return sum(d.n_bytes for d in self.validation)


@dataclass(frozen=True)
class Corpus:
    """Several domains with their splits, plus where the text came from.

    Parameters
    ----------
    domains
        Domain corpora keyed by domain name, in a fixed order.
    attributions
        Attribution lines that the text's licences ask to be shown.
    source
        Short description of where the corpus came from (``"embedded"``, a path ...).
    """

    domains: dict[str, DomainCorpus]
    attributions: tuple[str, ...] = ()
    source: str = "user"
    _fingerprint: list[str] = field(default_factory=list, repr=False, compare=False)

    @property
    def names(self) -> list[str]:
        """Domain names in corpus order."""
        return list(self.domains)

    def train_texts(self) -> Iterator[str]:
        """Yield every training text, domain by domain (the tokenizer is trained on these)."""
        for dom in self.domains.values():
            for doc in dom.train:
                yield doc.text

    def fingerprint(self) -> str:
        """Return a sha256 hex digest of every domain, document id and text, in order.

        Returns
        -------
        str
            A key for caches that depend on the corpus (tokenizers, tokenized arrays).
        """
        if not self._fingerprint:
            h = hashlib.sha256()
            for name, dom in self.domains.items():
                for split, docs in (("train", dom.train), ("validation", dom.validation)):
                    for doc in docs:
                        for part in (name, split, doc.id, doc.text):
                            h.update(part.encode("utf-8"))
                            h.update(b"\0")
            self._fingerprint.append(h.hexdigest())
        return self._fingerprint[0]

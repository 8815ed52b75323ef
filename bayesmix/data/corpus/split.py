"""The fixed whole-document validation split and the per-domain byte budget.

Rule (fixed, independent of the budget and of the order documents arrive in): a document goes to
validation iff the first 8 hex digits of ``sha256("<domain>:<document id>")``, read as an integer
and divided by ``16**8``, are below ``val_fraction`` (default 0.1). Whole documents are held out,
so no validation text is ever trained on.

Budget: documents are taken in arrival order; a domain's training documents are added until their
UTF-8 bytes reach ``train_bytes`` (the last one is cut at a line break so the budget is met
exactly), and validation documents likewise up to ``validation_bytes``. Reading stops once both are
full. Sources deliver documents in a fixed pseudo-random order, so a smaller budget gives a subset of
a larger one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from bayesmix.data.corpus.types import Document, DomainCorpus
from bayesmix.errors import InputError

DEFAULT_VAL_FRACTION = 0.1


def is_validation(domain: str, doc_id: str, val_fraction: float = DEFAULT_VAL_FRACTION) -> bool:
    """Say whether a document belongs to the validation split.

    Parameters
    ----------
    domain
        Domain name.
    doc_id
        Document identifier, unique within the domain.
    val_fraction
        Expected fraction of documents held out.

    Returns
    -------
    bool
        True for validation documents.
    """
    digest = hashlib.sha256(f"{domain}:{doc_id}".encode()).hexdigest()
    return int(digest[:8], 16) / 16**8 < val_fraction


def _cut(text: str, n_bytes: int) -> str:
    """Cut ``text`` to at most ``n_bytes`` UTF-8 bytes, at the last line break if there is one."""
    raw = text.encode("utf-8")[:n_bytes]
    head = raw.decode("utf-8", errors="ignore")
    nl = head.rfind("\n")
    return head[:nl] if nl > len(head) // 2 else head


def domain_budget(budget: int | Mapping[str, int] | None, domain: str, field: str) -> int | None:
    """One domain's byte budget from a budget for every domain or a ``{domain: bytes}`` mapping.

    Raises
    ------
    InputError
        A mapping that gives ``domain`` no budget.
    """
    if not isinstance(budget, Mapping):
        return budget
    if domain not in budget:
        raise InputError(
            field,
            f"gives no budget for domain {domain!r} (it names {sorted(budget)})",
            f"give every domain a budget, e.g. {{{domain}: 1000000, ...}}, or one number for all",
        )
    return budget[domain]


class BudgetedSplit:
    """Accumulate one domain's documents into train and validation up to byte budgets.

    Parameters
    ----------
    domain
        Domain name.
    train_bytes
        Training budget in UTF-8 bytes (one number, or ``{domain: bytes}`` read for
        ``domain``); ``None`` for no limit.
    validation_bytes
        Validation budget in UTF-8 bytes, likewise; ``None`` for no limit.
    val_fraction
        Fraction of documents held out (see the module docstring).
    """

    def __init__(
        self,
        domain: str,
        train_bytes: int | Mapping[str, int] | None,
        validation_bytes: int | Mapping[str, int] | None,
        val_fraction: float = DEFAULT_VAL_FRACTION,
    ):
        train_bytes = domain_budget(train_bytes, domain, "train_bytes")
        validation_bytes = domain_budget(validation_bytes, domain, "validation_bytes")
        if not 0.0 < val_fraction < 1.0:
            raise InputError("val_fraction", f"is {val_fraction}", "use a fraction strictly between 0 and 1")
        for name, value in (("train_bytes", train_bytes), ("validation_bytes", validation_bytes)):
            if value is not None and value <= 0:
                raise InputError(name, f"is {value}", "give a positive number of bytes, or None for no limit")
        self.domain = domain
        self.val_fraction = val_fraction
        self._budget = {"train": train_bytes, "validation": validation_bytes}
        self._used = {"train": 0, "validation": 0}
        self._docs: dict[str, list[Document]] = {"train": [], "validation": []}
        self._seen: set[str] = set()

    def full(self) -> bool:
        """Return True once both budgets are met (never, for an unlimited budget)."""
        return all(b is not None and self._used[k] >= b for k, b in self._budget.items())

    def add(self, doc: Document) -> None:
        """Offer one document; it is kept, cut to fit, or dropped if its split is full.

        Parameters
        ----------
        doc
            The document. Empty documents are ignored.
        """
        if not doc.text.strip():
            return
        if doc.id in self._seen:
            raise InputError(
                "document id",
                f"{doc.id!r} appears twice in domain {self.domain!r}",
                "give every document of a domain a unique id",
            )
        self._seen.add(doc.id)
        split = "validation" if is_validation(self.domain, doc.id, self.val_fraction) else "train"
        budget = self._budget[split]
        if budget is not None:
            room = budget - self._used[split]
            if room <= 0:
                return
            if doc.n_bytes > room:
                doc = Document(doc.id, _cut(doc.text, room))
                if not doc.text:
                    return
        self._docs[split].append(doc)
        self._used[split] += doc.n_bytes

    def extend(self, docs: Iterable[Document]) -> None:
        """Offer documents in order, stopping early once both budgets are met."""
        for doc in docs:
            if self.full():
                return
            self.add(doc)

    def documents(self) -> tuple[list[Document], list[Document]]:
        """Return the kept training and validation documents, in arrival order."""
        return list(self._docs["train"]), list(self._docs["validation"])

    def result(self) -> DomainCorpus:
        """Return the domain corpus; raise if either split is empty.

        Raises
        ------
        InputError
            If no training or no validation document was kept.
        """
        for split in ("train", "validation"):
            if not self._docs[split]:
                raise InputError(
                    f"domain {self.domain!r}",
                    f"has no {split} documents",
                    "give the domain more (or smaller) documents, or raise val_fraction / the byte budget",
                )
        return DomainCorpus(self.domain, tuple(self._docs["train"]), tuple(self._docs["validation"]))

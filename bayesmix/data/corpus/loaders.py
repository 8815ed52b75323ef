"""Loaders for users' own corpora: local text/JSONL/Parquet files, and ``datasets`` datasets.

Every loader applies the same fixed whole-document validation split and byte budgets as the
embedded corpus (:mod:`bayesmix.data.corpus.split`). Documents are taken in file order (sorted
file names, then line or row order); shuffle your files beforehand if that order is not random.

Local files are read safely: a symbolic link inside an imported folder whose target lies outside
that folder is refused, text and JSONL files are streamed, and one domain may read at most
:data:`MAX_DOMAIN_BYTES` (file sizes are checked before anything is read).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bayesmix.data.corpus.split import DEFAULT_VAL_FRACTION, BudgetedSplit, domain_budget
from bayesmix.data.corpus.types import Corpus, Document
from bayesmix.errors import InputError

TEXT_SUFFIXES = (".txt", ".md")
JSONL_SUFFIXES = (".jsonl", ".json")
PARQUET_SUFFIXES = (".parquet",)
#: rows of a Parquet file read at once (its text column only)
_PARQUET_BATCH_ROWS = 256
_DOMAIN_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

MAX_DOMAIN_BYTES = 64 * 1024 * 1024
"""Most bytes of local files one domain may read (64 MiB; override with ``max_domain_bytes``).

The largest embedded domain (technical, about 40 MB of text when ``corpus build`` reads it whole)
fits with room for JSONL markup, and CPU proxies train on 2 MB per domain by default. Text, JSONL
and Parquet files count their UTF-8 text as it is streamed (Parquet: its text column only). With no
byte budget (``train_bytes`` or ``validation_bytes`` is ``None``) every file is read, so the sizes
of a domain's files are summed and checked before any of them is opened.
"""
_CHUNK_CHARS = 1 << 20


def domain_name(raw: str) -> str:
    """Turn a label such as ``"Pile-CC"`` or ``"FreeLaw"`` into a domain name (``pile_cc``, ``freelaw``)."""
    name = re.sub(r"[^a-z0-9]+", "_", raw.strip().lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"d_{name}"
    return name


def _check_name(name: str) -> None:
    if not _DOMAIN_NAME.match(name):
        raise InputError(
            "domain",
            f"{name!r} is not a short lowercase identifier",
            f"use letters, digits and underscores, starting with a letter (e.g. {domain_name(name)!r})",
        )


def _link_outside(path: Path, top: Path, root: Path) -> None:
    """Refuse ``path`` (found under folder ``top``) when it resolves outside ``root`` through a link."""
    target = path.resolve()
    if target.is_relative_to(root):
        return
    link = path
    current = top
    for part in path.relative_to(top).parts:
        current = current / part
        if current.is_symlink():
            link = current
            break
    raise InputError(
        str(link),
        f"is a symbolic link to {target}, outside the imported folder {root}",
        f"copy the file into the folder in place of the link (cp --remove-destination "
        f"{shlex.quote(str(target))} {shlex.quote(str(link))}) or remove the link",
    )


def _files(path: Path) -> list[Path]:
    """List a file, or the text/JSONL/Parquet files under a folder (sorted); refuse links that leave it."""
    if path.is_file():
        return [path]
    if path.is_dir():
        root = path.resolve()
        found = sorted(
            p
            for p in path.rglob("*")
            if p.suffix in TEXT_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES and p.is_file()
        )
        for p in found:
            _link_outside(p, path, root)
        return found
    raise InputError(str(path), "does not exist", "give an existing file or folder")


def _limit_fix(limit: int) -> str:
    return (
        f"give the domain at most {limit:,} bytes of text (import a sample of its documents), "
        "or raise the limit with max_domain_bytes (a load_local argument, or corpus.max_domain_bytes "
        "in study.yaml)"
    )


class _ByteCap:
    """Count the bytes one domain reads and refuse the read that would pass ``limit``."""

    def __init__(self, domain: str, limit: int):
        self.domain = domain
        self.limit = limit
        self.used = 0

    @property
    def room(self) -> int:
        """Bytes the domain may still read."""
        return max(self.limit - self.used, 0)

    def take(self, n_bytes: int, path: Path) -> None:
        """Count ``n_bytes`` read from ``path``; raise once the domain has read more than the limit."""
        self.used += n_bytes
        if self.used > self.limit:
            raise InputError(
                str(path),
                f"takes domain {self.domain!r} past its limit of {self.limit:,} bytes "
                f"(max_domain_bytes; reading stopped there)",
                _limit_fix(self.limit),
            )


def _check_sizes(domain: str, files: Sequence[Path], limit: int, reads_all: bool) -> None:
    """Refuse, from the sizes on disk alone, files a domain cannot read within ``limit`` bytes.

    A text file is read whole, so one larger than the limit is refused (JSONL and Parquet files
    are streamed and counted as they are read); when every file is read (no byte budget) their
    total must fit as well.
    """
    sizes = {f: os.stat(f).st_size for f in files}
    for f, size in sizes.items():
        if f.suffix.lower() in TEXT_SUFFIXES and size > limit:
            raise InputError(
                str(f),
                f"is {size:,} bytes, more than domain {domain!r} may read ({limit:,} bytes, "
                "max_domain_bytes); nothing was read",
                _limit_fix(limit),
            )
    total = sum(sizes.values())
    if reads_all and total > limit:
        largest = max(sizes, key=lambda f: sizes[f])
        raise InputError(
            f"domain {domain!r}",
            f"has {total:,} bytes in {len(files)} files (largest {largest}, {sizes[largest]:,} bytes), "
            f"more than its limit of {limit:,} bytes (max_domain_bytes); nothing was read",
            _limit_fix(limit) + ", or set train_bytes and validation_bytes to read only part of it",
        )


def _check_limit(max_domain_bytes: object) -> int:
    if not isinstance(max_domain_bytes, int) or isinstance(max_domain_bytes, bool) or max_domain_bytes <= 0:
        raise InputError(
            "max_domain_bytes",
            f"is {max_domain_bytes!r}",
            f"give a positive number of bytes (default {MAX_DOMAIN_BYTES:,})",
        )
    return max_domain_bytes


def read_file(path: Path, text_field: str = "text", max_bytes: int = MAX_DOMAIN_BYTES) -> Iterator[Document]:
    """Yield the documents of one local file.

    Parameters
    ----------
    path
        A ``.txt``/``.md`` file (one document), a ``.jsonl`` file (one JSON object per line, text in
        ``text_field``) or a ``.parquet`` file (one row per document, text in column ``text_field``).
    text_field
        Field or column holding the text.
    max_bytes
        Most bytes to read (see :data:`MAX_DOMAIN_BYTES`); a text file larger on disk is refused
        before it is opened, and streaming stops at the limit.

    Yields
    ------
    Document
        Documents with ids ``"<file name>"`` or ``"<file name>#<line or row>"``.

    Raises
    ------
    InputError
        A file past ``max_bytes``, a JSONL line that is not a JSON object with the text field, a
        Parquet file without the column, or an unsupported suffix.
    """
    limit = _check_limit(max_bytes)
    _check_sizes(path.name, [path], limit, reads_all=False)
    yield from _read(path, text_field, _ByteCap(path.name, limit))


def _read_text(path: Path, cap: _ByteCap) -> str:
    """Read a text file in chunks, counting its UTF-8 bytes against ``cap``."""
    parts = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        while chunk := fh.read(min(_CHUNK_CHARS, cap.room + 1)):
            cap.take(len(chunk.encode("utf-8")), path)
            parts.append(chunk)
    return "".join(parts)


def _read_parquet(path: Path, text_field: str, cap: _ByteCap) -> Iterator[Document]:
    """Stream the text column of a Parquet file in row batches, counting its UTF-8 bytes against ``cap``.

    Only ``text_field`` is read, a batch at a time, so neither the file's other columns nor text
    that decompresses past the domain's limit (Parquet compresses repetitive text many-fold) are
    ever held in memory.
    """
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            str(path), "is Parquet, which needs pyarrow", 'install it: pip install "bayesmix[parquet]"'
        ) from None
    try:
        handle = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types for damaged files
        raise InputError(str(path), f"is not a readable Parquet file ({type(exc).__name__})", "rewrite the file") from None
    names = handle.schema_arrow.names
    if text_field not in names:
        raise InputError(
            str(path),
            f"has no column {text_field!r} (columns: {names})",
            "set text_field to the column that holds the text",
        )
    i = 0
    for batch in handle.iter_batches(columns=[text_field], batch_size=_PARQUET_BATCH_ROWS):
        for text in batch.column(0).to_pylist():
            if isinstance(text, str):
                cap.take(len(text.encode("utf-8")), path)
                yield Document(f"{path.name}#{i}", text)
            i += 1


def _read(path: Path, text_field: str, cap: _ByteCap) -> Iterator[Document]:
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        yield Document(path.name, _read_text(path, cap))
    elif suffix in JSONL_SUFFIXES:
        with path.open(encoding="utf-8") as fh:
            i = -1
            while True:
                i += 1
                try:
                    line = fh.readline(cap.room + 1)
                except UnicodeDecodeError as exc:
                    raise InputError(
                        f"{path} near line {i + 1}", f"is not UTF-8 ({exc.reason})", "save the file as UTF-8"
                    ) from None
                if not line:
                    break
                cap.take(len(line.encode("utf-8")), path)
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(
                        f"{path} line {i + 1}", f"is not JSON ({exc.msg})", "write one JSON object per line"
                    ) from exc
                if not isinstance(rec, dict) or not isinstance(rec.get(text_field), str):
                    raise InputError(
                        f"{path} line {i + 1}",
                        f"has no string field {text_field!r}",
                        "set text_field to the field that holds the text",
                    )
                yield Document(f"{path.name}#{i}", rec[text_field])
    elif suffix in PARQUET_SUFFIXES:
        yield from _read_parquet(path, text_field, cap)
    else:
        raise InputError(
            str(path), f"has unsupported suffix {suffix!r}", "use .txt, .md, .jsonl or .parquet files"
        )


def _finish(splits: Mapping[str, BudgetedSplit], source: str) -> Corpus:
    return Corpus({name: s.result() for name, s in splits.items()}, source=source)


def load_local(
    paths: Mapping[str, str | Path | Sequence[str | Path]],
    text_field: str = "text",
    train_bytes: int | Mapping[str, int] | None = None,
    validation_bytes: int | Mapping[str, int] | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    max_domain_bytes: int = MAX_DOMAIN_BYTES,
) -> Corpus:
    """Load a corpus from local files, one entry per domain.

    Parameters
    ----------
    paths
        ``{domain: path or list of paths}``; a folder means every text/JSONL/Parquet file under it.
    text_field
        JSONL field / Parquet column holding the text.
    train_bytes, validation_bytes
        Per-domain byte budgets: one number for every domain or ``{domain: bytes}`` (``None``:
        everything).
    val_fraction
        Fraction of whole documents held out for validation.
    max_domain_bytes
        Most bytes one domain may read (see :data:`MAX_DOMAIN_BYTES`).

    Returns
    -------
    Corpus
        The domains in the order given.

    Raises
    ------
    InputError
        A missing path, a symbolic link in a folder that points outside it, a domain whose files
        pass ``max_domain_bytes`` (refused from their sizes before reading where possible), or a
        file that cannot be read as text.
    """
    if not paths:
        raise InputError("paths", "is empty", "give at least one {domain: path}")
    limit = _check_limit(max_domain_bytes)
    splits = {}
    for name, spec in paths.items():
        _check_name(name)
        split = BudgetedSplit(name, train_bytes, validation_bytes, val_fraction)
        files = [f for p in ([spec] if isinstance(spec, str | Path) else list(spec)) for f in _files(Path(p))]
        _check_sizes(
            name,
            files,
            limit,
            reads_all=domain_budget(train_bytes, name, "train_bytes") is None
            or domain_budget(validation_bytes, name, "validation_bytes") is None,
        )
        cap = _ByteCap(name, limit)
        for f in files:
            if split.full():
                break
            split.extend(_read(f, text_field, cap))
        splits[name] = split
    return _finish(splits, source="local files")


def _get(record: Mapping[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise InputError(
                "field",
                f"{dotted!r} is not in a record (keys: {list(record)})",
                "name an existing field; use dots for nested fields, e.g. meta.pile_set_name",
            )
        value = value[part]
    return value


def _split_records(
    records: Iterable[Mapping[str, Any]],
    prefix: str,
    text_field: str,
    domain_of: Any,
    splits: dict[str, BudgetedSplit],
    make: Any,
    wanted: set[str] | None,
) -> None:
    for i, rec in enumerate(records):
        name = domain_of(rec)
        if wanted is not None and name not in wanted:
            continue
        split = splits.get(name)
        if split is None:
            split = splits[name] = make(name)
        text = _get(rec, text_field)
        if isinstance(text, str):
            split.add(Document(f"{prefix}#{i}", text))
        if wanted is not None and len(splits) == len(wanted) and all(s.full() for s in splits.values()):
            return


def load_datasets(
    dataset: str | Mapping[str, str],
    domain_field: str | None = None,
    domains: Sequence[str] | Mapping[str, str] | None = None,
    text_field: str = "text",
    split: str = "train",
    data_files: Any = None,
    streaming: bool = True,
    train_bytes: int | None = None,
    validation_bytes: int | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    **load_kwargs: Any,
) -> Corpus:
    """Load a corpus with the ``datasets`` library (local builders such as ``"json"`` or a local folder).

    Two layouts are supported:

    * one dataset with a domain column (``domain_field``, dotted for nested fields such as The
      Pile's ``meta.pile_set_name``); labels become domain names via :func:`domain_name`, or via
      ``domains`` given as a ``{label: domain}`` mapping;
    * one dataset per domain: ``dataset`` is a ``{domain: dataset path or name}`` mapping.

    Parameters
    ----------
    dataset
        Path or name passed to :func:`datasets.load_dataset`, or ``{domain: path or name}``.
    domain_field
        Field naming each record's domain (first layout only).
    domains
        Domains to keep; with streaming and budgets, reading stops once all of them are full.
    text_field
        Field holding the text (dotted for nested fields).
    split
        Dataset split to read.
    data_files
        Passed to :func:`datasets.load_dataset` (e.g. local JSONL files with ``dataset="json"``).
    streaming
        Stream records instead of materialising the dataset.
    train_bytes, validation_bytes
        Per-domain byte budgets (``None``: everything).
    val_fraction
        Fraction of whole documents held out for validation.
    **load_kwargs
        Further arguments for :func:`datasets.load_dataset` (``revision``, ``trust_remote_code`` ...).

    Returns
    -------
    Corpus
        Domains in first-seen order (or the order of ``domains``).
    """
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InputError("datasets", "is not installed", 'pip install "bayesmix[train]"') from exc

    def make(name: str) -> BudgetedSplit:
        _check_name(name)
        return BudgetedSplit(name, train_bytes, validation_bytes, val_fraction)

    splits: dict[str, BudgetedSplit] = {}
    if isinstance(dataset, Mapping):
        for name, path in dataset.items():
            ds = datasets.load_dataset(path, split=split, streaming=streaming, **load_kwargs)
            splits[name] = make(name)
            _split_records(ds, name, text_field, lambda _r, n=name: n, splits, make, {name})
        return _finish(splits, source="datasets")
    if domain_field is None:
        raise InputError(
            "domain_field",
            "is missing for a single dataset",
            "name the field holding each record's domain, or pass {domain: dataset}",
        )
    mapping = dict(domains) if isinstance(domains, Mapping) else None
    wanted = set(mapping.values()) if mapping else (set(domains) if domains else None)

    def domain_of(rec: Mapping[str, Any]) -> str:
        label = str(_get(rec, domain_field))
        return mapping.get(label, "") if mapping else domain_name(label)

    ds = datasets.load_dataset(
        dataset, split=split, data_files=data_files, streaming=streaming, **load_kwargs
    )
    _split_records(ds, str(dataset), text_field, domain_of, splits, make, wanted)
    if wanted:
        missing = wanted - set(splits)
        if missing:
            raise InputError(
                "domains",
                f"{sorted(missing)} never appear in {domain_field!r}",
                "check the labels (they are turned into names with domain_name)",
            )
        order = list(mapping.values()) if mapping else list(domains or [])
        splits = {n: splits[n] for n in dict.fromkeys(order)}
    return _finish(splits, source=f"datasets:{dataset}")

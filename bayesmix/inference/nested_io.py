"""Save and load a :class:`~bayesmix.inference.nested.NestedFit` (a folder, no pickle).

Layout of a saved nested fit::

    <folder>/nested.json        manifest: format, method, sampler settings, health per stage,
                                versions, sha256 of every other file
    <folder>/curves.csv         the CurveTable's rows (run, domain, loss, tokens, model_size, mixture)
    <folder>/mixtures.csv       its mixtures (one row per mixture id)
    <folder>/runs.csv           its runs (mixture id, model size)
    <folder>/scaling.nc         the joint model's (or step stage's) posterior
    <folder>/size-<i>.nc        staged fits: size stages fitted so far (their target tokens in the manifest)
    <folder>/mixing-<i>.nc      mixing stages fitted so far (their target scale in the manifest)

Every file is written under a temporary name and moved into place, and the manifest (with the
sha256 of every file) last: a save interrupted half way leaves files that do not match the
manifest, which ``load_nested`` refuses (it never mixes two fits; save again). ``load_nested``
checks the format, every checksum and the bayesmix version, rebuilds the curves from the table
(deterministically, exactly as the fit did) and returns a fit that predicts exactly what the
saved one predicted, cached stages included.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from bayesmix.data.curves import CurveTable
from bayesmix.data.files import atomic_path
from bayesmix.errors import IncompatibleFileError, InputError
from bayesmix.inference import _arviz
from bayesmix.inference.diagnostics import SamplerHealth
from bayesmix.inference.nested import NestedFit
from bayesmix.models.nested import group_curves, size_stage_keys
from bayesmix.versions import __version__, package_versions

NESTED_FORMAT = 1
MANIFEST = "nested.json"
KIND = "bayesmix-nested-fit"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_csv(frame: pd.DataFrame, path: Path, index: bool) -> None:
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=index, float_format="%.17g")


def _write_netcdf(idata: _arviz.InferenceData, path: Path) -> None:
    with atomic_path(path) as temporary:
        _arviz.to_netcdf(idata, str(temporary))


def save_nested(fitted: NestedFit, folder: str | os.PathLike[str]) -> Path:
    """Write a nested fit (and the later stages fitted so far) to ``folder``.

    Parameters
    ----------
    fitted
        The result of :func:`~bayesmix.inference.nested.fit_nested`.
    folder
        Created if missing; an earlier nested fit in it is replaced.

    Returns
    -------
    pathlib.Path
        The manifest's path (``<folder>/nested.json``).
    """
    if not isinstance(fitted, NestedFit):
        raise InputError("fitted", f"got {type(fitted).__name__}", "pass the result of bayesmix.fit_nested")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = fitted.table
    files: dict[str, str] = {}
    for name, frame, index in (
        ("curves.csv", table.frame, False),
        ("mixtures.csv", table.mixtures, True),
        ("runs.csv", table.runs, True),
    ):
        _write_csv(frame, folder / name, index)
        files[name] = name
    _write_netcdf(fitted.scaling, folder / "scaling.nc")
    files["scaling.nc"] = "scaling.nc"
    size_stages = []
    for i, (tokens, (idata, _)) in enumerate(sorted(fitted.size_stages.items())):
        name = f"size-{i}.nc"
        _write_netcdf(idata, folder / name)
        size_stages.append({"tokens": tokens, "file": name})
        files[name] = name
    mixing_stages = []
    for i, ((model_size, tokens), idata) in enumerate(sorted(fitted.mixing_stages.items())):
        name = f"mixing-{i}.nc"
        _write_netcdf(idata, folder / name)
        mixing_stages.append({"model_size": model_size, "tokens": tokens, "file": name})
        files[name] = name
    manifest = {
        "kind": KIND,
        "format": NESTED_FORMAT,
        "method": fitted.method,
        "settings": fitted.settings,
        "fit_seconds": fitted.fit_seconds,
        "health": {stage: json.loads(h.to_json()) for stage, h in fitted.health.items()},
        "domain_order": list(table.domain_order),
        "min_checkpoints": int(table.min_checkpoints),
        "min_sizes": int(table.min_sizes),
        "size_stages": size_stages,
        "mixing_stages": mixing_stages,
        "sha256": {name: _sha256(folder / name) for name in files},
        "saved_with": package_versions(),
    }
    path = folder / MANIFEST
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return path


def _read_manifest(folder: Path, allow_other_version: bool) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise IncompatibleFileError(
            f"{path} does not exist: a saved nested fit is a folder written by bayesmix.save_nested"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        kind, file_format = manifest["kind"], manifest["format"]
        checksums: dict[str, str] = manifest["sha256"]
        needed = (
            "method",
            "settings",
            "fit_seconds",
            "health",
            "domain_order",
            "size_stages",
            "mixing_stages",
        )
        missing = [key for key in needed if key not in manifest]
        if missing:
            raise KeyError(missing[0])
    except (ValueError, KeyError, TypeError) as exc:
        raise IncompatibleFileError(
            f"{path} is not a valid nested-fit manifest ({exc}); save the fit again"
        ) from None
    if kind != KIND:
        raise IncompatibleFileError(f"{path} holds a {kind!r}, not a nested fit")
    if file_format != NESTED_FORMAT:
        raise IncompatibleFileError(
            f"{path} uses nested-fit format {file_format}; this bayesmix reads format {NESTED_FORMAT}: "
            "refit, or load it with the bayesmix version that wrote it"
        )
    written_by = manifest.get("saved_with", {}).get("bayesmix")
    if written_by != __version__ and not allow_other_version:
        raise IncompatibleFileError(
            f"{path} was written by bayesmix {written_by}, this is {__version__}: refit, or pass "
            "allow_other_version=True to load it anyway"
        )
    for name, checksum in checksums.items():
        file = folder / name
        if not file.is_file() or _sha256(file) != checksum:
            raise IncompatibleFileError(
                f"{file} is missing or does not match the checksum in {MANIFEST}: the fit is truncated or "
                "was changed after saving; save it again"
            )
    return manifest


def _read_table(folder: Path, domain_order: list[str], minimums: dict[str, int] | None = None) -> CurveTable:
    try:
        # keep_default_na=False: a run or domain named "NA" or "null" stays a name
        frame = pd.read_csv(
            folder / "curves.csv", dtype={"run": str, "domain": str, "mixture": str}, keep_default_na=False
        )
        mixtures = pd.read_csv(
            folder / "mixtures.csv", index_col="mixture", dtype={"mixture": str}, keep_default_na=False
        )
        runs = pd.read_csv(
            folder / "runs.csv", index_col="run", dtype={"run": str, "mixture": str}, keep_default_na=False
        )
    except (ValueError, KeyError, pd.errors.ParserError) as exc:
        raise IncompatibleFileError(f"{folder} holds unreadable curve tables ({exc})") from None
    mixtures.columns = [str(c) for c in mixtures.columns]
    return CurveTable(
        frame=frame, mixtures=mixtures, runs=runs, domain_order=tuple(domain_order), **(minimums or {})
    )


def _read_netcdf(path: Path) -> _arviz.InferenceData:
    try:
        return _arviz.from_netcdf(str(path))
    except Exception as exc:  # any read failure means the file is not a usable posterior
        raise IncompatibleFileError(f"{path} could not be read ({type(exc).__name__}: {exc})") from None


def load_nested(folder: str | os.PathLike[str], *, allow_other_version: bool = False) -> NestedFit:
    """Load a nested fit written by :func:`save_nested`.

    Parameters
    ----------
    folder
        The folder (or its ``nested.json``).
    allow_other_version
        Accept a fit written by another bayesmix version.

    Raises
    ------
    IncompatibleFileError
        Missing manifest, wrong kind or format, a file missing, truncated or changed (sha256),
        another bayesmix version.
    """
    folder = Path(folder)
    if folder.name == MANIFEST:
        folder = folder.parent
    manifest = _read_manifest(folder, allow_other_version)
    minimums = {k: int(manifest[k]) for k in ("min_checkpoints", "min_sizes") if k in manifest}
    table = _read_table(folder, manifest["domain_order"], minimums)
    method = manifest["method"]
    by = "mixture" if method == "joint" else "run"
    curves = group_curves(table.frame, by, table.domains)
    fitted = NestedFit(
        table=table,
        method=method,
        scaling=_read_netcdf(folder / "scaling.nc"),
        curves=curves,
        settings=dict(manifest["settings"]),
        fit_seconds=float(manifest["fit_seconds"]),
        health={stage: SamplerHealth.from_json(json.dumps(h)) for stage, h in manifest["health"].items()},
    )
    for entry in manifest["size_stages"]:
        keys = size_stage_keys(table, curves)
        size_curves = group_curves(keys, "mixture", curves.domains)
        fitted.size_stages[float(entry["tokens"])] = (_read_netcdf(folder / entry["file"]), size_curves)
    for entry in manifest["mixing_stages"]:
        key = (float(entry["model_size"]), float(entry["tokens"]))
        fitted.mixing_stages[key] = _read_netcdf(folder / entry["file"])
    saved_curves = fitted.scaling.posterior.coords.get("curve")
    if saved_curves is not None and list(saved_curves.values) != curves.names:
        raise IncompatibleFileError(f"{folder}: the saved posterior's curves do not match its curve table")
    return fitted

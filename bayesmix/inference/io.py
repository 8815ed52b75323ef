"""Save and load fits: a netCDF InferenceData plus a JSON sidecar (spec, hash, versions, checksum).

``save(idata, "fit.nc")`` writes ``fit.nc`` and ``fit.json``. ``load`` checks, before trusting
anything: both files exist, the JSON parses and has this file format, the netCDF's SHA-256
matches (so a truncated or altered file is caught), the spec stored inside the netCDF is the one
in the JSON, the bayesmix version that wrote it is this one, the posterior and the data it was
fitted to hold only finite numbers (so a fit that was corrupt when written is caught), and
(optionally) the spec is the one the caller expects. Nothing is unpickled.

Every group of the fit is written, ``log_likelihood`` and ``posterior_predictive`` included
(float32, as ``fit`` makes them), uncompressed (:func:`bayesmix.inference._arviz.to_netcdf`);
files written before fits carried those groups load without them
(:func:`~bayesmix.inference.predict.add_log_likelihood` adds them back).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bayesmix.errors import IncompatibleFileError, InputError
from bayesmix.inference import _arviz
from bayesmix.laws.base import Law
from bayesmix.models.mixing_model import ModelSpec
from bayesmix.versions import __version__, package_versions

FILE_FORMAT = 1
#: the groups of a saved fit whose numbers must all be finite, where present (files written
#: before fits carried ``log_likelihood`` and ``posterior_predictive`` load without them)
FINITE_GROUPS = ("posterior", "constant_data", "observed_data", "log_likelihood", "posterior_predictive")


class InterruptedSaveWarning(UserWarning):
    """:func:`load` found a save that was interrupted and loaded the previous fit instead."""


class CorruptFitError(InputError, IncompatibleFileError):
    """A saved fit whose numbers are not all finite.

    It is an :class:`InputError` (the file is the bad input) and an
    :class:`IncompatibleFileError` (a corrupt file), so either ``except`` catches it.
    """


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def save(idata: _arviz.InferenceData, path: str | os.PathLike[str]) -> Path:
    """Write a fit to ``path`` (netCDF, ``.nc`` added if missing) and its JSON sidecar.

    Any fit of :func:`bayesmix.fit`, :func:`~bayesmix.joint_at`, :func:`~bayesmix.fit_joint`,
    :func:`~bayesmix.fit_schedule`, :func:`~bayesmix.fit_downstream` or
    :func:`~bayesmix.fit_downstream_link`; the sidecar holds its spec (or its settings).

    Both files are written under temporary names first; the previous netCDF is kept as
    ``<name>.nc.prev`` until the new sidecar (the commit point) is in place, so a save killed at
    any moment leaves either the new fit or the previous one loadable (:func:`load` falls back
    to it with an :class:`InterruptedSaveWarning`), never a half-written file.

    Returns
    -------
    pathlib.Path
        The netCDF path.

    Raises
    ------
    InputError
        ``idata`` is not a bayesmix fit, or the files cannot be written (full disk, file-size
        limit, permissions): the temporary files are removed and a previous fit stays as it was.
    """
    path = Path(path)
    if path.suffix != ".nc":
        path = path.with_suffix(path.suffix + ".nc") if path.suffix else path.with_suffix(".nc")
    attrs = getattr(idata, "posterior", None)
    if attrs is None or _fit_kind(idata) is None:
        raise InputError(
            "idata",
            "is not a bayesmix fit",
            "save the result of bayesmix.fit, fit_joint, fit_schedule, fit_downstream or fit_downstream_link",
        )
    temporary = path.with_name(path.name + ".tmp")
    sidecar_temporary = _sidecar(path).with_name(_sidecar(path).name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_pair(idata, path, temporary, sidecar_temporary)
    except OSError as exc:  # full disk, file-size limit, permissions: nothing half-written stays
        for leftover in (temporary, sidecar_temporary):
            leftover.unlink(missing_ok=True)
        raise InputError(
            "path",
            f"could not write the fit to {str(path)!r} ({exc.strerror or exc})",
            "free disk space or choose another folder; the previous fit there, if any, is unchanged",
        ) from None
    return path


def _save_pair(idata: _arviz.InferenceData, path: Path, temporary: Path, sidecar_temporary: Path) -> None:
    """Write both files under temporary names, then move them into place (see :func:`save`)."""
    _arviz.to_netcdf(idata, str(temporary))
    kind = _fit_kind(idata)
    if kind == SPEC_KEY:
        spec = ModelSpec.from_json(idata.posterior.attrs[SPEC_KEY])
        described: dict[str, Any] = {"spec": json.loads(spec.to_json()), "spec_hash": spec.hash}
    else:  # a joint, phase-law or downstream fit: its settings (which rebuild its law) are the spec
        described = {"kind": kind, "settings": json.loads(idata.posterior.attrs[kind])}
    sidecar = {
        "format": FILE_FORMAT,
        **described,
        "fitted_with": json.loads(idata.posterior.attrs.get("bayesmix_versions", "{}")),
        "saved_with": package_versions(),
        "netcdf": path.name,
        "netcdf_sha256": _sha256(temporary),
    }
    sidecar_temporary.write_text(json.dumps(sidecar, indent=2, sort_keys=True))
    # the sidecar is the commit point: until it is replaced, the previous pair stays loadable
    # (its netCDF under .prev, which load falls back to when the new netCDF does not match)
    previous = _previous(path)
    if path.exists() and _sidecar(path).exists():
        os.replace(path, previous)
    os.replace(temporary, path)
    os.replace(sidecar_temporary, _sidecar(path))
    previous.unlink(missing_ok=True)


#: the attribute of an ordinary fit's spec, and those of the fits that store their own settings
SPEC_KEY = "bayesmix_spec"
OTHER_KINDS = ("bayesmix_joint", "bayesmix_schedule", "bayesmix_downstream")


def _fit_kind(idata: _arviz.InferenceData) -> str | None:
    """The attribute that describes the fit: its spec, or a joint / phase-law / downstream fit's settings."""
    attrs = idata.posterior.attrs
    for key in (SPEC_KEY, *OTHER_KINDS):
        if key in attrs:
            return key
    return None


def _previous(path: Path) -> Path:
    """Where :func:`save` keeps the previous netCDF until the new sidecar is in place."""
    return path.with_name(path.name + ".prev")


def load(
    path: str | os.PathLike[str],
    *,
    expected: ModelSpec | Law | None = None,
    allow_other_version: bool = False,
) -> _arviz.InferenceData:
    """Load a fit written by :func:`save`, refusing corrupt, foreign or mismatched files.

    Parameters
    ----------
    path
        The ``.nc`` path (or its ``.json`` sidecar). Fits of :func:`bayesmix.fit`,
        :func:`~bayesmix.fit_joint`, :func:`~bayesmix.fit_schedule`, :func:`~bayesmix.fit_downstream`
        and :func:`~bayesmix.fit_downstream_link` all load.
    expected
        If given, the file must hold a fit of this spec (or of this law); only for fits of
        :func:`bayesmix.fit` (and :func:`~bayesmix.joint_at`).
    allow_other_version
        Accept a file written by another bayesmix version (its spec must still match).

    Raises
    ------
    IncompatibleFileError
        Missing sidecar, corrupt or truncated netCDF, spec mismatch, other version.
    CorruptFitError
        A variable of the posterior, of the constant or observed data, or of the
        ``log_likelihood`` or ``posterior_predictive`` group, holds NaN or infinite values
        (the fit was corrupt when it was saved): an ``InputError`` that names the file and the
        variable (and an ``IncompatibleFileError``).
    """
    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".nc")
    sidecar_path = _sidecar(path)
    for needed in (path, sidecar_path):
        if not needed.exists() and not (needed == path and _previous(path).exists()):
            raise IncompatibleFileError(
                f"{needed} does not exist: a saved fit is a .nc file with a .json sidecar written by bayesmix.save"
            )
    try:
        sidecar: dict[str, Any] = json.loads(sidecar_path.read_text())
        file_format = sidecar["format"]
        kind = sidecar.get("kind", SPEC_KEY)
        if kind not in (SPEC_KEY, *OTHER_KINDS):
            raise ValueError(f"unknown kind {kind!r}")
        spec = ModelSpec.from_json(json.dumps(sidecar["spec"])) if kind == SPEC_KEY else None
        checksum = sidecar["netcdf_sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IncompatibleFileError(f"{sidecar_path} is not a valid bayesmix sidecar ({exc})") from None
    if file_format != FILE_FORMAT:
        raise IncompatibleFileError(
            f"{path} uses file format {file_format}; this bayesmix reads format {FILE_FORMAT}: refit, or load it "
            "with the bayesmix version that wrote it"
        )
    digest = _sha256(path) if path.exists() else None  # hashed once: a large fit takes ~0.4 s a pass
    if digest != checksum and _previous(path).exists():
        if _sha256(_previous(path)) == checksum:  # a save was interrupted before its sidecar
            warnings.warn(
                f"{path}: a save was interrupted before it finished; loaded the previous fit "
                f"({_previous(path).name}), which its sidecar describes",
                InterruptedSaveWarning,
                stacklevel=2,
            )
            path = _previous(path)
            digest = checksum
    if not path.exists():
        raise IncompatibleFileError(
            f"{path} does not exist: a saved fit is a .nc file with a .json sidecar written by bayesmix.save"
        )
    if digest != checksum:
        raise IncompatibleFileError(
            f"{path} does not match the checksum in {sidecar_path.name}: the file is truncated or was changed "
            "after saving; save the fit again"
        )
    written_by = sidecar.get("fitted_with", {}).get("bayesmix")
    if written_by != __version__ and not allow_other_version:
        raise IncompatibleFileError(
            f"{path} was fitted with bayesmix {written_by}, this is {__version__}: refit, or pass "
            "allow_other_version=True to load it anyway"
        )
    try:
        idata = _arviz.from_netcdf(str(path))
        inner = idata.posterior.attrs[kind]
    except Exception as exc:  # any read failure means the file is not a usable fit
        raise IncompatibleFileError(
            f"{path} could not be read as a bayesmix fit ({type(exc).__name__}: {exc})"
        ) from None
    if spec is None:
        if json.loads(inner) != sidecar.get("settings"):
            raise IncompatibleFileError(f"{path} holds other settings than its sidecar {sidecar_path.name}")
        _check_finite(idata, path)
        if expected is not None:
            raise IncompatibleFileError(f"{path} holds a {kind[len('bayesmix_'):]} fit, which has no law spec to compare")
        return idata
    if ModelSpec.from_json(inner).hash != spec.hash:
        raise IncompatibleFileError(f"{path} holds another spec than its sidecar {sidecar_path.name}")
    _check_finite(idata, path)
    if expected is not None:
        if isinstance(expected, Law):
            if spec.build_law() != expected:
                raise IncompatibleFileError(
                    f"{path} holds a fit of {spec.build_law()!r}, not of the expected {expected!r}"
                )
        elif expected.hash != spec.hash:
            raise IncompatibleFileError(
                f"{path} holds a fit of another spec (hash {spec.hash[:12]}, expected {expected.hash[:12]})"
            )
    return idata


def _check_finite(idata: _arviz.InferenceData, path: Path) -> None:
    """Raise :class:`CorruptFitError` at the first variable of :data:`FINITE_GROUPS` with NaN or inf."""
    for group in FINITE_GROUPS:
        dataset = getattr(idata, group, None)
        if dataset is None:
            continue
        for name, variable in dataset.data_vars.items():
            values = np.asarray(variable.values)
            if values.dtype.kind not in "fc":
                continue
            bad = int((~np.isfinite(values)).sum())
            if bad:
                raise CorruptFitError(
                    str(path),
                    f"the {group.replace('_', ' ')} variable {name!r} holds {bad} NaN or infinite "
                    f"value(s) of {values.size}: the fit was corrupt when it was saved",
                    "refit: run the fit again (bayesmix.fit, or `bayesmix fit`) and save it; do not use "
                    "this file",
                )

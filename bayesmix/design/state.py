"""The designer's state file: format, checksum, atomic writes and the checks on reading.

A state file is the JSON of :meth:`~bayesmix.design.Designer.to_dict` with ``kind``
(:data:`STATE_KIND`), ``version`` (:data:`STATE_VERSION`; version-1 files of the single-scale
designer are read too) and a ``sha256`` of the rest (:func:`digest`). :func:`write_state` writes
it atomically (a temporary file, then :func:`os.replace`); :func:`read_state` refuses a missing,
damaged or edited file; :func:`check_state` checks the kind, version and field types,
:func:`state_settings` gives the designer's settings back, and :func:`checked_run` and
:func:`checked_snapshot` check the recorded runs and the refit history. Every refusal is an
:class:`~bayesmix.errors.IncompatibleFileError` naming the file, the field, the problem and the
fix (:func:`corrupt`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bayesmix.design.records import STATUSES, mixture_row, target_loss
from bayesmix.design.stopping import Snapshot
from bayesmix.design.surrogate import surrogate_from_dict
from bayesmix.errors import IncompatibleFileError, InputError

#: version of the state file written by :meth:`~bayesmix.design.Designer.save`
STATE_VERSION = 2
#: the ``kind`` field of a designer state file
STATE_KIND = "bayesmix.design.Designer"
#: the fix offered for a state file that cannot be read
REBUILD = "restore the file from a backup, or rebuild the designer with Designer.from_ledger or Designer.from_runs"

_NUMBER = (int, float)
_FIELDS_V1: dict[str, tuple[type, ...]] = {
    "domains": (list,),
    "target": (dict,),
    "acquisition": (str,),
    "seed": (int,),
    "constraints": (dict,),
    "pool": (list, type(None)),
    "n_initial": (int,),
    "n_candidates": (int,),
    "min_distance": _NUMBER,
    "zero_weight": _NUMBER,
    "surrogate": (dict,),
    "runs": (dict,),
    "n_asks": (int,),
    "history": (list,),
}
_FIELDS_V2: dict[str, tuple[type, ...]] = {
    **_FIELDS_V1,
    "cost_aware": (bool,),
    "scales": (list, type(None)),
    "target_scale": (str, type(None)),
    "initial_scale": (str, type(None)),
    "explore": _NUMBER,
}


def digest(state: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``state`` without its ``sha256`` field."""
    body = {k: v for k, v in state.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def corrupt(source: str, field: str, problem: str, fix: str) -> IncompatibleFileError:
    """The error for a state (``source``: its file name) with a bad ``field``."""
    return IncompatibleFileError(f"{source}: {field}: {problem}. Fix: {fix}")


def write_state(state: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``state`` with its :func:`digest` as ``sha256`` to a JSON file.

    Atomic: a temporary file next to ``path``, then a rename over it.
    """
    path = Path(path)
    state = {**state, "sha256": digest(state)}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, path)


def read_state(path: str | os.PathLike[str], verify: bool = True) -> Any:
    """The parsed JSON of a state file, its sha256 checked with ``verify``.

    Only the checksum is checked here (of a designer state of version 2 or later); the fields
    are checked by :func:`check_state`.

    Raises
    ------
    InputError
        The file does not exist or is not a file.
    IncompatibleFileError
        Binary, not JSON (e.g. truncated), or, with ``verify``, without a sha256 or edited
        after it was saved.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("path", f"{str(path)!r} does not exist", "give a file written by save()") from None
    except IsADirectoryError:
        raise InputError("path", f"{str(path)!r} is a directory", "give a file written by save()") from None
    except UnicodeDecodeError:
        raise corrupt(str(path), "file", "is binary, not JSON", "give a file written by Designer.save") from None
    try:
        state = json.loads(text)
    except json.JSONDecodeError as exc:
        raise corrupt(str(path), "file", f"is not valid JSON, it may be truncated ({exc})", REBUILD) from None
    if verify and isinstance(state, Mapping) and state.get("version") != 1 and state.get("kind") == STATE_KIND:
        if "sha256" not in state:
            raise corrupt(str(path), "sha256", "is missing", "pass verify=False to load a file written by hand")
        if state["sha256"] != digest(state):
            raise corrupt(str(path), "sha256", "does not match the content: the file was changed after it "
                          "was saved", f"{REBUILD}; pass verify=False if you edited it on purpose")
    return state


def check_state(state: Any, source: str) -> None:
    """Check a parsed state's kind, version and the presence and types of its fields.

    Parameters
    ----------
    state
        The parsed state.
    source
        What to call it in error messages (the file name).

    Raises
    ------
    IncompatibleFileError
        Not a designer state, another version, a missing field, one of the wrong type, or an
        unknown one.
    """
    if not isinstance(state, Mapping):
        raise corrupt(source, "file", f"holds a JSON {type(state).__name__}, not a designer state",
                      "give a file written by Designer.save")
    kind, version = state.get("kind"), state.get("version")
    if kind != STATE_KIND and not (kind is None and version == 1):
        raise corrupt(source, "kind", f"is {kind!r}, not {STATE_KIND!r}: this is not a designer state file",
                      "give a file written by Designer.save")
    if version not in (1, STATE_VERSION) or isinstance(version, bool):
        raise corrupt(source, "version", f"is {version!r}; this bayesmix reads designer states 1 and "
                      f"{STATE_VERSION}", "open it with the bayesmix version that wrote it, or "
                      "rebuild the designer with Designer.from_ledger or Designer.from_runs")
    fields = _FIELDS_V1 if version == 1 else _FIELDS_V2
    for name, types in fields.items():
        if name not in state:
            raise corrupt(source, name, "is missing", REBUILD)
        value = state[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise corrupt(source, name, f"has type {type(value).__name__}", REBUILD)
    extra = set(state) - set(fields) - {"kind", "version", "sha256"}
    if extra:
        raise corrupt(source, "file", f"unknown fields {sorted(extra)}", REBUILD)


def state_settings(state: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :class:`~bayesmix.design.Designer` that rebuild a checked state.

    The settings a version-1 state lacks are at their defaults.

    Raises
    ------
    InputError, TypeError, ValueError
        A surrogate or pool that cannot be rebuilt (the caller reports it against the file).
    """
    return {
        "domains": state["domains"],
        "target": state["target"],
        "acquisition": state["acquisition"],
        "seed": state["seed"],
        "constraints": state["constraints"],
        "pool": None if state["pool"] is None else np.asarray(state["pool"], dtype=float),
        "n_initial": state["n_initial"],
        "n_candidates": state["n_candidates"],
        "min_distance": state["min_distance"],
        "zero_weight": state["zero_weight"],
        "surrogate": surrogate_from_dict(state["surrogate"]),
        "scales": state.get("scales"),
        "target_scale": state.get("target_scale"),
        "cost_aware": state.get("cost_aware", False),
        "initial_scale": state.get("initial_scale"),
        "explore": state.get("explore", 0.0),
    }


def checked_run(
    run_id: str,
    record: Any,
    source: str,
    domains: Sequence[str],
    target: Mapping[str, float],
    scale_names: Sequence[str],
) -> dict[str, Any]:
    """One run record of a state file, checked and in the designer's form.

    Parameters
    ----------
    run_id, record
        The run's id and its record (``mixture``, ``status``, ``losses``, ``target``, ``scale``).
    source
        What to call the state in error messages.
    domains, target, scale_names
        The designer's training domains, target weights and scale names (empty without scales).

    Raises
    ------
    IncompatibleFileError
        Unknown keys or status, a mixture off the simplex, an unknown scale, or (for a finished
        run) bad losses or a ``target`` that its losses do not give.
    """
    field = f"runs[{run_id!r}]"
    if not isinstance(record, Mapping):
        raise corrupt(source, field, f"is a {type(record).__name__}", REBUILD)
    unknown = set(record) - {"mixture", "status", "losses", "target", "scale"}
    if unknown:
        raise corrupt(source, field, f"unknown keys {sorted(unknown)}", REBUILD)
    status = record.get("status")
    if status not in STATUSES:
        raise corrupt(source, f"{field}.status", f"is {status!r}, not one of {STATUSES}", REBUILD)
    mixture = record.get("mixture")
    try:
        if not isinstance(mixture, list):
            raise InputError("mixture", "not a list", "")
        row = mixture_row(domains, run_id, mixture)
    except InputError:
        raise corrupt(source, f"{field}.mixture", f"{mixture!r} is not a mixture on the simplex of "
                      f"{len(domains)} domains {domains}", REBUILD) from None
    scale = record.get("scale")
    if scale_names:
        names = list(scale_names)
        if scale not in names:
            raise corrupt(source, f"{field}.scale", f"unknown scale {scale!r} (scales: {names})", REBUILD)
    elif scale is not None:
        raise corrupt(source, f"{field}.scale", f"is {scale!r} but the designer has no scales", REBUILD)
    out: dict[str, Any] = {"mixture": row, "status": status, "losses": None, "scale": scale}
    if status == "done":
        losses = record.get("losses")
        if not isinstance(losses, Mapping):
            raise corrupt(source, f"{field}.losses", f"is {losses!r}", REBUILD)
        try:
            expected, clean = target_loss(target, run_id, losses)
        except InputError as exc:
            raise corrupt(source, f"{field}.losses", exc.problem, REBUILD) from None
        told = record.get("target")
        if not isinstance(told, int | float) or not math.isclose(told, expected, rel_tol=1e-9, abs_tol=1e-12):
            raise corrupt(source, f"{field}.target", f"is {told!r}, but its losses give {expected!r}", REBUILD)
        out.update(losses=clean, target=float(told))
    return out


def checked_snapshot(i: int, snap: Any, source: str, n_domains: int) -> Snapshot:
    """Entry ``i`` of a state file's refit history, checked.

    Raises
    ------
    IncompatibleFileError
        Not the fields of a :class:`~bayesmix.design.stopping.Snapshot`, or a mixture that does
        not have ``n_domains`` shares.
    """
    field = f"history[{i}]"
    try:
        snapshot = Snapshot(**snap)
    except TypeError:
        raise corrupt(source, field, f"is {snap!r}", REBUILD) from None
    if not isinstance(snapshot.mixture, list) or len(snapshot.mixture) != n_domains:
        raise corrupt(source, f"{field}.mixture", f"{snapshot.mixture!r}", REBUILD)
    return snapshot

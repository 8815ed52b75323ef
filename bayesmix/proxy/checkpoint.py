"""Atomic training checkpoints: written to a temporary file, then moved into place with os.replace.

A checkpoint holds the model and optimizer states, the step, the sampler state, the torch RNG
states and the training-loss history, so a resumed run continues exactly where the saved one was.
It is read with ``torch.load(weights_only=True)`` (no pickle code execution).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from bayesmix.data.files import write_failure
from bayesmix.errors import IncompatibleFileError

FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically: a crash leaves either the old checkpoint or the new one.

    Parameters
    ----------
    path
        Destination ``.pt`` file.
    state
        Tensors, numbers, strings, lists and dicts only.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    InputError
        The write failed (full disk, file-size limit): the temporary file is removed and the
        previous checkpoint stays as it was.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format": FORMAT_VERSION, **state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch reports a failed write as a RuntimeError
        Path(tmp).unlink(missing_ok=True)
        raise write_failure(exc, path, "the training checkpoint") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``.

    Raises
    ------
    IncompatibleFileError
        If the file is corrupt or of another format version.
    """
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise IncompatibleFileError(f"checkpoint {path} cannot be read: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise IncompatibleFileError(f"checkpoint {path} has another format; delete it to restart the run")
    return state

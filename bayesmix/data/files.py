"""Files written whole or not at all: a temporary file beside the target, renamed over it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds.

    A crash or an error inside the block leaves ``path`` as it was (the temporary file is
    removed), so a reader never sees half a file.

    Examples
    --------
    >>> with atomic_path("predictions.csv") as tmp:   # doctest: +SKIP
    ...     frame.to_csv(tmp)
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def check_room(path: str | os.PathLike[str], nbytes: int) -> None:
    """Raise ``OSError`` unless ``nbytes`` can be written to ``path``: free disk space and file-size limit.

    A check before writing, for writers that cannot fail cleanly half-way (netCDF/HDF5). It
    cannot see space taken by other processes meanwhile, so writers still handle ``OSError``.

    Raises
    ------
    OSError
        ``ENOSPC`` when the file system has fewer than ``nbytes`` free, ``EFBIG`` when the
        process's file-size limit (``ulimit -f``) is below ``nbytes``.
    """
    import errno
    import shutil

    folder = Path(path).parent
    free = shutil.disk_usage(folder if folder.exists() else Path.cwd()).free
    if free < nbytes:
        raise OSError(errno.ENOSPC, f"needs about {nbytes / 1e6:.3g} MB, {free / 1e6:.3g} MB free")
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):  # no resource module (Windows)
        return
    if limit != resource.RLIM_INFINITY and limit < nbytes:
        raise OSError(errno.EFBIG, f"needs about {nbytes / 1e6:.3g} MB, the file-size limit is {limit / 1e6:.3g} MB")


def write_failure(exc: BaseException, path: str | os.PathLike[str], what: str) -> Exception:
    """The documented error for a write that failed (full disk, file-size limit, permissions).

    Returns a :class:`~bayesmix.errors.InputError` naming the file and what was being written, for
    the caller to raise after removing its temporary file (so nothing half-written is kept).
    """
    from bayesmix.errors import InputError

    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return InputError(
        str(path),
        f"could not write {what} ({reason})",
        "free disk space (or raise the file-size limit) and run the command again; nothing half-written was kept",
    )


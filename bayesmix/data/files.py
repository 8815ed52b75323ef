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

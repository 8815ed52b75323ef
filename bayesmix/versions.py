"""Versions of bayesmix and the packages its results depend on (recorded in saved artefacts)."""

from __future__ import annotations

from importlib import metadata

__version__ = "0.1.0"

TRACKED = ("numpy", "scipy", "pandas", "xarray", "pymc", "pytensor", "arviz", "nutpie")


def package_versions() -> dict[str, str]:
    """``{package: version}`` for bayesmix and :data:`TRACKED` (``"absent"`` if not installed)."""
    out = {"bayesmix": __version__}
    for name in TRACKED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out

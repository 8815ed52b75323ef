"""The ``bayesmix`` command line (typer)."""

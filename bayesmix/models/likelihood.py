"""The robust (Student-t) or normal observation model shared by the mixing and nested models."""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesmix.errors import InputError

LIKELIHOODS = ("student_t", "normal")


def check_likelihood(likelihood: str) -> None:
    """Raise :class:`~bayesmix.errors.InputError` unless ``likelihood`` is one of :data:`LIKELIHOODS`."""
    if likelihood not in LIKELIHOODS:
        raise InputError("likelihood", f"unknown likelihood {likelihood!r}", f"use one of {LIKELIHOODS}")


def observe(name: str, mu: Any, sigma: Any, observed: np.ndarray, likelihood: str, nu: float, dims: Any) -> Any:
    """Add independent Student-t (``nu`` degrees of freedom) or normal observations to the model."""
    import pymc as pm

    check_likelihood(likelihood)
    if likelihood == "student_t":
        return pm.StudentT(name, nu=nu, mu=mu, sigma=sigma, observed=observed, dims=dims)
    return pm.Normal(name, mu=mu, sigma=sigma, observed=observed, dims=dims)

"""What the optimiser minimises: one domain, a weighted sum of domains, or a user function of them.

Or a benchmark's error rate through a loss -> accuracy link
(:class:`~bayesmix.optimise.downstream.DownstreamTarget`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bayesmix.errors import InputError
from bayesmix.laws.aggregation import ExplicitAggregation

#: relative step of the finite differences of a user target function (in loss units)
FUNCTION_STEP = 1e-6


@dataclass(frozen=True)
class Target:
    """A scalar loss computed from per-domain losses ``(..., domain)``.

    Attributes
    ----------
    name
        Label used in reports (a domain name, ``"weighted"`` or the function's name).
    weights
        Linear weights over the domains, or ``None`` for a user function.
    function
        Vectorised ``f(losses (..., domain)) -> (...)``, or ``None`` for a linear target.
    gradient_function
        Its derivative ``(..., domain) -> (..., domain)`` when known in closed form (otherwise
        finite differences of ``function``).
    """

    name: str
    weights: np.ndarray | None = None
    function: Callable[[np.ndarray], np.ndarray] | None = None
    gradient_function: Callable[[np.ndarray], np.ndarray] | None = None

    def __call__(self, per_domain: np.ndarray) -> np.ndarray:
        """Target values, shape ``per_domain.shape[:-1]``."""
        if self.weights is not None:
            return per_domain @ self.weights
        return np.asarray(self.function(per_domain), dtype=float)

    def gradient(self, per_domain: np.ndarray) -> np.ndarray:
        """Derivative with respect to the per-domain losses, same shape as ``per_domain``."""
        if self.weights is not None:
            return np.broadcast_to(self.weights, per_domain.shape)
        if self.gradient_function is not None:
            return np.asarray(self.gradient_function(per_domain), dtype=float)
        n = per_domain.shape[-1]
        points = per_domain[..., None, :] + FUNCTION_STEP * np.vstack([np.zeros(n), np.eye(n)])
        values = self(points)  # (..., n + 1)
        return (values[..., 1:] - values[..., :1]) / FUNCTION_STEP


def resolve_target(
    target: str | Mapping[str, float] | Sequence[float] | Callable[[np.ndarray], np.ndarray],
    domains: Sequence[str],
) -> Target:
    """Turn the user's ``target`` into a :class:`Target` over the fitted ``domains``.

    Parameters
    ----------
    target
        A fitted domain name (for an :class:`~bayesmix.laws.ImplicitMixingLaw` fit, the modelled
        total column, e.g. ``"total"``); ``"mean"`` for the equal-weight mean of all domains; a
        mapping ``domain -> share`` or a sequence of shares (explicit composition, normalised);
        or a vectorised function of the per-domain losses ``(..., domain) -> (...)``; or an
        object with a ``resolve_domains(domains) -> Target`` method, such as
        :class:`~bayesmix.optimise.downstream.DownstreamTarget`.
    domains
        The fit's validation domains, in order.

    Raises
    ------
    InputError
        Unknown domain names, bad shares, or a function whose output has the wrong shape.
    """
    domains = list(domains)
    resolve = getattr(target, "resolve_domains", None)
    if resolve is not None and callable(resolve):
        return resolve(domains)
    if isinstance(target, str):
        if target in domains:
            return Target(target, weights=np.eye(len(domains))[domains.index(target)])
        if target == "mean":
            return Target("mean", weights=np.full(len(domains), 1.0 / len(domains)))
        raise InputError("target", f"unknown domain {target!r}", f"use one of {domains}, 'mean' or a mapping")
    if callable(target):
        probe = np.asarray(target(np.ones((2, len(domains)))))
        if probe.shape != (2,):
            raise InputError(
                "target",
                f"the function maps losses (2, {len(domains)}) to shape {probe.shape}",
                "return one number per row: f(losses (..., domain)) -> (...)",
            )
        return Target(getattr(target, "__name__", "function"), function=target)
    weights = ExplicitAggregation(target, domains).weights
    return Target("weighted", weights=weights)


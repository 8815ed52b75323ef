"""Analytic mixture gradients of the built-in laws (batched finite differences for any other law).

Every function returns ``(value, jacobian)`` for one mixture ``r`` of length ``M``: the loss per
draw and domain ``(sample, domain)`` and its derivative ``(sample, domain, M)`` with respect to
``r`` (unconstrained partial derivatives; the optimiser handles the simplex).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayesmix.laws.aggregation import ImplicitMixingLaw
from bayesmix.laws.base import Law
from bayesmix.laws.linear import LinearLaw
from bayesmix.laws.mixing import MixingLaw

#: proportions below this are treated as this in the derivative of ``r ** g`` (finite for ``g < 1``)
DERIVATIVE_FLOOR = 1e-6
#: step of the forward differences used for laws without an analytic gradient
FD_STEP = 1e-6


def _exponent(law: Any, params: Mapping[str, Any]) -> np.ndarray:
    """The exponent as an array broadcastable to ``(sample,)`` (1 for the paper's law)."""
    if law.exponent == 1.0:
        return np.asarray(1.0)
    return np.asarray(params.get("exponent", 1.0), dtype=float)


def _features(r: np.ndarray, reference: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred features ``r^g - rref^g`` and their derivative ``g r^(g-1)``, each ``(sample or 1, M)``."""
    g = np.atleast_1d(g)[:, None]
    if np.all(g == 1.0):
        return (r - reference)[None, :], np.ones((1, r.size))
    power = np.where(r > 0, np.power(np.where(r > 0, r, 1.0), g), 0.0)
    ref_power = np.where(reference > 0, np.power(np.where(reference > 0, reference, 1.0), g), 0.0)
    derivative = g * np.power(np.maximum(r, DERIVATIVE_FLOOR), g - 1.0)
    return power - ref_power, derivative


def mixing_jacobian(law: MixingLaw, params: Mapping[str, Any], r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``L = c + exp(log_k + t . f(r))``; ``dL/dr_j = exp(...) t_j f'(r_j)``."""
    features, derivative = _features(r, params["reference_mixture"], _exponent(law, params))
    t = np.asarray(params["t"])  # (S, D, M)
    reducible = np.exp(params["log_k"] + np.einsum("sdm,sm->sd", t, np.broadcast_to(features, (t.shape[0], r.size))))
    value = params["c"] + reducible
    jacobian = reducible[:, :, None] * t * derivative[:, None, :]
    return value, jacobian


def implicit_jacobian(
    law: ImplicitMixingLaw, params: Mapping[str, Any], r: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``L = b + sum_k exp(log_w_k + t_k . f(r))``; the gradient sums the components' terms."""
    features, derivative = _features(r, params["reference_mixture"], _exponent(law, params))
    t = np.asarray(params["t"])  # (S, D, K, M)
    feats = np.broadcast_to(features, (t.shape[0], r.size))
    latent = np.exp(params["log_w"] + np.einsum("sdkm,sm->sdk", t, feats))
    value = params["b"] + latent.sum(axis=-1)
    jacobian = np.einsum("sdk,sdkm->sdm", latent, t) * derivative[:, None, :]
    return value, jacobian


def linear_jacobian(law: LinearLaw, params: Mapping[str, Any], r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``L = a + beta . (r - rref)``; the gradient is ``beta``."""
    beta = np.asarray(params["beta"])
    value = params["a"] + np.einsum("sdm,m->sd", beta, r - params["reference_mixture"])
    return value, beta


def finite_difference_jacobian(law: Law, params: Mapping[str, Any], r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences for any law, in one batched ``evaluate`` call on ``M + 1`` mixtures."""
    points = np.vstack([r, r + FD_STEP * np.eye(r.size)])
    values = np.asarray(law.evaluate(params, points, xp=np))  # (S, M + 1, D)
    value = values[:, 0, :]
    jacobian = (values[:, 1:, :] - value[:, None, :]) / FD_STEP
    return value, np.swapaxes(jacobian, -1, -2)


def law_jacobian(law: Law, params: Mapping[str, Any], r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Loss ``(sample, domain)`` and gradient ``(sample, domain, M)`` of ``law`` at mixture ``r``.

    A law with its own ``value_and_jacobian(params, r)`` method (e.g.
    :class:`~bayesmix.laws.RepetitionMixingLaw`) supplies its analytic gradient.
    """
    own = getattr(law, "value_and_jacobian", None)
    if own is not None:
        return own(params, r)
    if type(law) is MixingLaw:
        return mixing_jacobian(law, params, r)
    if type(law) is ImplicitMixingLaw:
        return implicit_jacobian(law, params, r)
    if type(law) is LinearLaw:
        return linear_jacobian(law, params, r)
    return finite_difference_jacobian(law, params, r)

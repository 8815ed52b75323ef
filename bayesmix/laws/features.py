"""Mixture features shared by the mixing laws (numpy and PyTensor alike)."""

from __future__ import annotations

from typing import Any


def power_features(mixtures: Any, exponent: Any, xp: Any) -> Any:
    """``r ** exponent`` with ``0 ** exponent = 0`` and finite gradients at ``r = 0``.

    ``exponent`` may be a Python number, a scalar tensor, or a numpy array of leading (sample)
    axes; the result then has those axes in front of ``mixtures``' shape.
    """
    if isinstance(exponent, int | float) and exponent == 1:
        return mixtures
    g = xp.expand_dims(xp.expand_dims(exponent, -1), -1)
    positive = mixtures > 0
    safe = xp.where(positive, mixtures, 1.0)
    return xp.where(positive, xp.exp(g * xp.log(safe)), 0.0)


def centred_features(mixtures: Any, reference: Any, exponent: Any, xp: Any) -> Any:
    """Features of ``mixtures`` minus those of the reference mixture, shape ``(..., mixture, train_domain)``."""
    reference_row = xp.expand_dims(reference, -2)
    return power_features(mixtures, exponent, xp) - power_features(reference_row, exponent, xp)

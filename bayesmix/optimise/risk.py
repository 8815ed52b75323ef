"""Risk measures of the target loss over posterior draws, with their (sub)gradients.

``mean``: the posterior expected loss. ``quantile``: the ``level`` posterior quantile (linear
interpolation of order statistics, as :func:`numpy.quantile`). ``cvar``: the mean of the worst
``1 - level`` share of the draws (conditional value at risk, upper tail: high loss is bad).
"""

from __future__ import annotations

import numpy as np

from bayesmix.errors import InputError

RISKS = ("mean", "quantile", "cvar")


def check_risk(risk: str, level: float) -> None:
    """Raise :class:`InputError` on an unknown risk measure or a level outside (0, 1)."""
    if risk not in RISKS:
        raise InputError("risk", f"unknown risk measure {risk!r}", f"use one of {RISKS}")
    if risk != "mean" and not 0 < level < 1:
        raise InputError("level", f"got {level}", "give a probability in (0, 1), e.g. 0.9")


def risk_values(values: np.ndarray, risk: str, level: float) -> np.ndarray:
    """Risk of draws ``values (sample, ...)`` over the leading axis."""
    if risk == "mean":
        return values.mean(axis=0)
    if risk == "quantile":
        return np.quantile(values, level, axis=0)
    n_tail = _tail_size(values.shape[0], level)
    return np.sort(values, axis=0)[-n_tail:].mean(axis=0)


def risk_value_and_grad(values: np.ndarray, grads: np.ndarray, risk: str, level: float) -> tuple[float, np.ndarray]:
    """Risk of ``values (sample,)`` and its gradient from per-draw gradients ``grads (sample, M)``."""
    if risk == "mean":
        return float(values.mean()), grads.mean(axis=0)
    order = np.argsort(values, kind="stable")
    if risk == "quantile":
        position = level * (values.size - 1)
        low = int(np.floor(position))
        high = min(low + 1, values.size - 1)
        frac = position - low
        i, j = order[low], order[high]
        value = (1 - frac) * values[i] + frac * values[j]
        return float(value), (1 - frac) * grads[i] + frac * grads[j]
    tail = order[-_tail_size(values.size, level) :]
    return float(values[tail].mean()), grads[tail].mean(axis=0)


def _tail_size(n: int, level: float) -> int:
    return max(1, int(np.ceil((1 - level) * n)))

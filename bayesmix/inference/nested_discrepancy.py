"""The model-discrepancy term of the nested model's size extrapolation.

:func:`~bayesmix.inference.nested_calibration.calibrate_extrapolation` estimates a scale
``kappa`` of the log-loss error that the nested model's form does not explain, per e-fold of size
extrapolation, and returns it as an :class:`ExtrapolationCalibration`;
:func:`~bayesmix.inference.nested.predict_target` with ``discrepancy=`` multiplies its draws by
:func:`discrepancy_factor`. Both sides read this module, which depends on neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.errors import InputError


@dataclass(frozen=True)
class ExtrapolationCalibration:
    """Result of :func:`~bayesmix.inference.nested_calibration.calibrate_extrapolation`.

    Attributes
    ----------
    kappa
        Standard deviation of the unexplained log-loss error per e-fold of size extrapolation.
    max_fit_size
        Largest model size of the refit (the held-out sizes are above it).
    residuals
        One row per held-out (run, domain): ``observed``, ``predicted`` (posterior mean of the
        log loss, exponentiated), ``log_residual``, ``predictive_var`` (of the log loss),
        ``efolds``.
    refit
        The nested fit on the sizes up to ``max_fit_size`` that made the backtest's predictions.
    """

    kappa: float
    max_fit_size: float
    residuals: pd.DataFrame
    refit: Any = None


def discrepancy_factor(
    discrepancy: ExtrapolationCalibration | float, model_size: float, max_size: float, n: int, seed: int
) -> np.ndarray:
    """Multiplicative draws ``exp(kappa * e* * z)`` (shape ``(n,)``) for a target of ``model_size``."""
    kappa = discrepancy.kappa if isinstance(discrepancy, ExtrapolationCalibration) else discrepancy
    if isinstance(kappa, bool) or not isinstance(kappa, int | float) or not np.isfinite(kappa) or kappa < 0:
        raise InputError(
            "discrepancy", f"got {discrepancy!r}", "give calibrate_extrapolation's result or kappa >= 0"
        )
    efolds = max(0.0, float(np.log(model_size / max_size)))
    z = np.random.default_rng([seed, 7]).standard_normal(n)
    return np.exp(float(kappa) * efolds * z)

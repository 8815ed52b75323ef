"""The per-domain data mixing law (Ye et al. 2024, Eq. 7, "M4") and its power-feature variant.

.. math::

    L_i(r) = c_i + k_i \\exp\\Big(\\sum_j t_{ij} (r_j^{\\gamma} - \\bar r_j^{\\gamma})\\Big)

With ``exponent=1`` (the default) this is exactly the paper's law, written around a reference
mixture :math:`\\bar r` (the mean mixture of the runs) so that :math:`k_i` is the reducible loss
of domain *i* at that reference. Because :math:`\\sum_j r_j = 1`, adding a constant to a row
:math:`t_{i\\cdot}` only rescales :math:`k_i`: the paper's parameterisation has a flat ridge. Here
each row of ``t`` is zero-sum, which removes that direction without restricting the family of
functions (see ``docs`` in the README).

``exponent`` other than 1 (a number, or ``"learn"`` for a posterior over it shared by all
domains) is a bayesmix extension: features :math:`r_j^\\gamma` with :math:`\\gamma < 1` let the
loss react more strongly to small proportions. With :math:`\\gamma \\ne 1` the row sums of ``t``
are identifiable, so each row gets a free offset.

Hierarchy (partial pooling over validation domains): ``c_i`` and ``k_i`` share population
distributions on the logit / log scale; the rows ``t_i.`` are a shared column effect (how much
training domain *j* helps every domain) plus a shared "self" effect (training on domain *i*
helps validating on *i*) plus domain-specific deviations with a pooled scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayesmix.errors import InputError
from bayesmix.laws.base import DataSummary, Law, ParameterSpec, register_law
from bayesmix.laws.features import centred_features


def _check_exponent(exponent: float | str) -> float | str:
    if exponent == "learn":
        return exponent
    try:
        value = float(exponent)
    except (TypeError, ValueError):
        raise InputError("exponent", f"got {exponent!r}", "give a number in (0, 2] or 'learn'") from None
    if not 0 < value <= 2:
        raise InputError("exponent", f"got {value}", "give a number in (0, 2] or 'learn'")
    return value


@register_law
class MixingLaw(Law):
    """Per-domain mixing law ``L_i(r) = c_i + k_i exp(t_i . (r^g - rref^g))``.

    Parameters
    ----------
    exponent
        Power applied to the proportions: ``1.0`` is the paper's M4, a number in (0, 2] fixes
        another power, ``"learn"`` puts a LogNormal(0, 0.5) prior on it (centred on M4).
    self_effect
        Share a "training on domain i helps validating on i" effect across domains whose name
        is also a training domain.
    """

    name = "mixing"
    parameters = (
        ParameterSpec("c", ("domain",)),
        ParameterSpec("log_k", ("domain",)),
        ParameterSpec("t", ("domain", "train_domain")),
    )
    constants = (ParameterSpec("reference_mixture", ("train_domain",)),)

    def __init__(self, exponent: float | str = 1.0, self_effect: bool = True):
        self.exponent = _check_exponent(exponent)
        self.self_effect = bool(self_effect)

    def options(self) -> dict[str, Any]:
        """See :meth:`Law.options`."""
        return {"exponent": self.exponent, "self_effect": self.self_effect}

    @property
    def _power_is_one(self) -> bool:
        return self.exponent == 1.0

    def n_parameters(self, n_domains: int, n_train_domains: int) -> int:
        """``c``, ``k``, ``M - 1`` free entries of ``t`` (``M`` if the exponent is not 1), noise."""
        return n_train_domains + 2 + (0 if self._power_is_one else 1)

    def constant_values(self, data: DataSummary) -> dict[str, np.ndarray]:
        """The reference mixture (mean of the runs), and the exponent when it is fixed."""
        values = {"reference_mixture": np.asarray(data.mixture_mean, dtype=float)}
        if self.exponent != "learn":
            values["exponent"] = np.asarray(float(self.exponent))
        return values

    def evaluate(self, params: Mapping[str, Any], mixtures: Any, xp: Any = np) -> Any:
        """See :meth:`Law.evaluate`."""
        exponent = params.get("exponent", 1.0)
        if self._power_is_one:
            exponent = 1.0
        features = centred_features(mixtures, params["reference_mixture"], exponent, xp)
        exponent_term = xp.matmul(features, xp.swapaxes(params["t"], -1, -2))
        return xp.expand_dims(params["c"], -2) + xp.exp(xp.expand_dims(params["log_k"], -2) + exponent_term)

    def build_priors(self, data: DataSummary) -> dict[str, Any]:
        """See :meth:`Law.build_priors` and the module docstring for the hierarchy."""
        import pymc as pm
        import pytensor.tensor as pt

        n_domains, n_train = len(data.domains), len(data.train_domains)
        # c_i: the part of the smallest observed loss that no mixture removes, pooled on the logit scale
        c_logit_mu = pm.Normal("c_logit_mu", 0.0, 1.5)
        c_logit_sd = pm.HalfNormal("c_logit_sd", 1.0)
        c_logit_z = pm.Normal("c_logit_z", 0.0, 1.0, dims="domain")
        c = pm.Deterministic(
            "c", data.loss_min * pm.math.sigmoid(c_logit_mu + c_logit_sd * c_logit_z), dims="domain"
        )
        # k_i: reducible loss at the reference mixture, centred on (mean loss - c_i)
        log_k_sd = pm.HalfNormal("log_k_sd", 1.0)
        log_k_z = pm.Normal("log_k_z", 0.0, 1.0, dims="domain")
        reducible = pt.maximum(data.loss_mean - c, 1e-3 * data.loss_mean)
        log_k = pm.Deterministic("log_k", pt.log(reducible) + log_k_sd * log_k_z, dims="domain")
        # t_i.: shared column effect + shared self effect + pooled deviations, rows sum to zero
        column_sd = pm.HalfNormal("t_column_sd", 1.0)
        column = pm.ZeroSumNormal("t_column", sigma=column_sd, dims="train_domain")
        deviation_sd = pm.HalfNormal("t_deviation_sd", 1.5)
        deviation = pm.ZeroSumNormal("t_deviation_z", sigma=1.0, dims=("domain", "train_domain"))
        t = column[None, :] + deviation_sd * deviation
        has_self = data.self_index >= 0
        if self.self_effect and has_self.any():
            indicator = np.zeros((n_domains, n_train))
            indicator[np.flatnonzero(has_self), data.self_index[has_self]] = 1.0
            indicator[has_self] -= 1.0 / n_train  # keep the rows zero-sum
            self_effect = pm.Normal("t_self", -1.0, 2.0)
            t = t + self_effect * indicator
        if not self._power_is_one:
            offset_mu = pm.Normal("t_offset_mu", 0.0, 1.0)
            offset_sd = pm.HalfNormal("t_offset_sd", 1.0)
            offset_z = pm.Normal("t_offset_z", 0.0, 1.0, dims="domain")
            t = t + (offset_mu + offset_sd * offset_z)[:, None]
        t = pm.Deterministic("t", t, dims=("domain", "train_domain"))
        params: dict[str, Any] = {"c": c, "log_k": log_k, "t": t}
        if self.exponent == "learn":
            params["exponent"] = pm.LogNormal("exponent", 0.0, 0.5)
        return params

"""A linear law (the RegMix linear-regression baseline as a Bayesian law).

``L_i(r) = a_i + sum_j beta_ij (r_j - rref_j)``, rows of ``beta`` zero-sum (again because the
proportions sum to one). It doubles as the worked example of adding a law: nothing outside this
file knows about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayesmix.laws.base import DataSummary, Law, ParameterSpec, register_law


@register_law
class LinearLaw(Law):
    """Linear in the proportions; no floor, no curvature."""

    name = "linear"
    parameters = (ParameterSpec("a", ("domain",)), ParameterSpec("beta", ("domain", "train_domain")))
    constants = (ParameterSpec("reference_mixture", ("train_domain",)),)
    symbolic_data = True

    def options(self) -> dict[str, Any]:
        """No options."""
        return {}

    def n_parameters(self, n_domains: int, n_train_domains: int) -> int:
        """Intercept, ``M - 1`` slopes, noise."""
        return n_train_domains + 1

    def constant_values(self, data: DataSummary) -> dict[str, np.ndarray]:
        """The reference mixture."""
        return {"reference_mixture": np.asarray(data.mixture_mean, dtype=float)}

    def evaluate(self, params: Mapping[str, Any], mixtures: Any, xp: Any = np) -> Any:
        """See :meth:`Law.evaluate`."""
        centred = mixtures - xp.expand_dims(params["reference_mixture"], -2)
        return xp.expand_dims(params["a"], -2) + xp.matmul(centred, xp.swapaxes(params["beta"], -1, -2))

    def build_priors(self, data: DataSummary) -> dict[str, Any]:
        """Intercepts around the mean loss; slopes with a pooled, data-scaled spread."""
        import pymc as pm

        a = pm.Normal("a", data.loss_mean, 2 * data.loss_sd, dims="domain")
        beta_sd = pm.HalfNormal("beta_sd", 10 * pm.math.max(data.loss_sd))
        beta = pm.ZeroSumNormal("beta", sigma=beta_sd, dims=("domain", "train_domain"))
        return {"a": a, "beta": beta}

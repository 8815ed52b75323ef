r"""Total loss of a validation set: explicit and implicit domain aggregation (paper §3.3).

*Explicit*: the composition ``s`` of the validation set over the modelled domains is known, and
``L(r) = sum_i s_i L_i(r)`` (:class:`ExplicitAggregation`, applied to per-domain predictions).

*Implicit*: only the total loss is observed. It is modelled as a mixture of ``K`` latent
domains, each a mixing law (:class:`ImplicitMixingLaw`):

.. math::

    L(r) = b + \\sum_{k=1}^{K} w_k \\exp\\big(t_k \\cdot (r^\\gamma - \\bar r^\\gamma)\\big),

with ``b = sum_k s_k c_k`` (the constants are not separately identifiable) and ``w_k = s_k k_k``.
Label switching (the ``K!`` equivalent orderings of the components) is removed by an ordered
prior on the components' shares of the reducible loss: component 0 always has the smallest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bayesmix.errors import InputError
from bayesmix.laws.base import DataSummary, Law, ParameterSpec, register_law
from bayesmix.laws.features import centred_features
from bayesmix.laws.mixing import _check_exponent, contrast_dim, mixing_constants, zero_sum_basis


@register_law
class ImplicitMixingLaw(Law):
    """Implicit domain aggregation: each modelled loss column is a sum of ``K`` latent mixing laws.

    Parameters
    ----------
    n_components
        Number ``K`` of implicit domains (the paper's pipeline used 30 with heavy regularisation;
        with a proper prior 2-5 is usually enough).
    exponent
        As in :class:`~bayesmix.laws.mixing.MixingLaw`.
    """

    name = "implicit"
    parameters = (
        ParameterSpec("b", ("domain",)),
        ParameterSpec("log_w", ("domain", "component")),
        ParameterSpec("t", ("domain", "component", "train_domain")),
    )
    constants = (ParameterSpec("reference_mixture", ("train_domain",)),)
    symbolic_data = True

    def __init__(self, n_components: int = 3, exponent: float | str = 1.0):
        if int(n_components) != n_components or n_components < 1:
            raise InputError("n_components", f"got {n_components!r}", "give a positive integer such as 3")
        self.n_components = int(n_components)
        self.exponent = _check_exponent(exponent)

    def options(self) -> dict[str, Any]:
        """See :meth:`Law.options`."""
        return {"n_components": self.n_components, "exponent": self.exponent}

    def extra_coords(self) -> dict[str, list[Any]]:
        """The latent ``component`` dim."""
        return {"component": list(range(self.n_components))}

    def n_parameters(self, n_domains: int, n_train_domains: int) -> int:
        """``b``, ``K`` weights and ``K (M - 1)`` interactions (``K M`` if the exponent is not 1), noise."""
        per_component = n_train_domains if self.exponent == 1.0 else n_train_domains + 1
        return 2 + self.n_components * per_component

    def constant_values(self, data: DataSummary) -> dict[str, np.ndarray]:
        """The reference mixture, and the exponent when it is fixed."""
        return mixing_constants(data, self.exponent)

    def evaluate(self, params: Mapping[str, Any], mixtures: Any, xp: Any = np) -> Any:
        """See :meth:`Law.evaluate`."""
        exponent = 1.0 if self.exponent == 1.0 else params.get("exponent", 1.0)
        features = centred_features(mixtures, params["reference_mixture"], exponent, xp)
        # (..., 1, mixture, train) @ (..., domain, train, component) -> (..., domain, mixture, component)
        exponent_term = xp.matmul(xp.expand_dims(features, -3), xp.swapaxes(params["t"], -1, -2))
        latent = xp.exp(xp.expand_dims(params["log_w"], -2) + exponent_term)
        total = xp.swapaxes(xp.sum(latent, axis=-1), -1, -2)
        return xp.expand_dims(params["b"], -2) + total

    def build_priors(self, data: DataSummary) -> dict[str, Any]:
        """See :meth:`Law.build_priors`.

        As for :class:`~bayesmix.laws.MixingLaw`, the sampler works in coordinates the data
        identify: the loss at the reference mixture (``level``), the reducible fraction of it
        (split over components by ordered shares) and each component's slope ``w_k t_k`` in units
        of the loss spread; ``b``, ``log_w`` and ``t`` are deterministic functions of them.
        """
        import pymc as pm
        import pytensor.tensor as pt
        from pymc.distributions.transforms import ordered

        n_domains, n_comp, n_train = len(data.domains), self.n_components, len(data.train_domains)
        spread = data.loss_sd
        level_z = pm.Normal("level_z", 0.0, 1.0, dims="domain")
        level = pm.Deterministic("level", data.loss_mean + 2.0 * spread * level_z, dims="domain")
        frac = pm.Normal("reducible_logit", -1.5, 1.5, dims="domain")
        reducible = level * pm.math.sigmoid(frac)
        if n_comp > 1:
            share_logits = pm.Normal(
                "share_logit",
                0.0,
                1.0,
                dims=("domain", "component"),
                transform=ordered,
                initval=np.tile(np.linspace(-0.5, 0.5, n_comp), (n_domains, 1)),
            )
            shares = pt.special.softmax(share_logits, axis=-1)
        else:
            shares = pt.ones((n_domains, 1))
        weights = reducible[:, None] * shares
        basis = zero_sum_basis(n_train)
        slope_sd = pm.HalfNormal("slope_sd", 3.0)
        coefficients = pm.Normal(
            "slope_coef", 0.0, slope_sd, dims=("domain", "component", contrast_dim(n_train))
        )
        slope = pt.dot(coefficients, basis.T)
        if self.exponent != 1.0:
            slope = slope + pm.Normal("slope_offset", 0.0, 3.0, dims=("domain", "component"))[:, :, None]
        slope = spread[:, None, None] * slope
        b = pm.Deterministic("b", level - reducible, dims="domain")
        log_w = pm.Deterministic("log_w", pt.log(weights), dims=("domain", "component"))
        t = pm.Deterministic("t", slope / weights[:, :, None], dims=("domain", "component", "train_domain"))
        params: dict[str, Any] = {"b": b, "log_w": log_w, "t": t}
        if self.exponent == "learn":
            params["exponent"] = pm.LogNormal("exponent", 0.0, 0.5)
        return params


class ExplicitAggregation:
    """Total loss of a validation set of known composition ``s``: ``L = sum_i s_i L_i``.

    Parameters
    ----------
    composition
        Mapping of validation domain to its share of the validation set, or a sequence in the
        order of ``domains``. Shares must be non-negative; they are normalised to sum to 1.
    domains
        The per-domain outputs the composition refers to.
    """

    def __init__(self, composition: Mapping[str, float] | Sequence[float], domains: Sequence[str]):
        domains = list(domains)
        if isinstance(composition, str) or composition is None:
            raise InputError(
                "composition",
                f"got {composition!r}",
                "give a mapping domain -> share or one share per domain",
            )
        try:
            weights = self._weights(composition, domains)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(
                "composition", f"has non-numeric shares ({exc})", "give numbers >= 0, e.g. {'web': 0.5}"
            ) from None
        if not np.all(np.isfinite(weights)) or (weights < 0).any() or weights.sum() <= 0:
            raise InputError("composition", "shares must be finite, >= 0 and not all 0", "fix the shares")
        self.domains = domains
        self.weights = weights / weights.sum()

    @staticmethod
    def _weights(composition: Mapping[str, float] | Sequence[float], domains: list[str]) -> np.ndarray:
        if isinstance(composition, Mapping):
            unknown = sorted(set(composition) - set(domains))
            if unknown:
                raise InputError(
                    "composition",
                    f"unknown domains {unknown}",
                    f"use names among the fitted domains {domains}",
                )
            weights = np.array([float(composition.get(d, 0.0)) for d in domains])
        else:
            weights = np.asarray(composition, dtype=float)
            if weights.shape != (len(domains),):
                raise InputError(
                    "composition",
                    f"has {weights.size} entries for {len(domains)} domains",
                    "give one share per fitted domain, or a mapping domain -> share",
                )
        return weights

    def __call__(self, per_domain: Any, xp: Any = np) -> Any:
        """Aggregate predictions of shape ``(..., domain)`` into ``(...)``."""
        return xp.sum(per_domain * self.weights, axis=-1)

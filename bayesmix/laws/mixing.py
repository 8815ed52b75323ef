r"""The per-domain data mixing law (Ye et al. 2024, Eq. 7, "M4") and its power-feature variant.

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

Sampling coordinates and hierarchy (see :meth:`MixingLaw.build_priors`): the sampler sees the loss
at the reference mixture (``level``), its gradient there (``slope = k t``) and the reducible
fraction ``k / level``; ``c``, ``log_k`` and ``t`` are deterministic. Slope rows are partially
pooled over validation domains: a shared column effect (how much training domain *j* helps every
domain), a shared "self" effect (training on domain *i* helps validating on *i*) and deviations
with a learned spread. The reducible fractions are pooled towards a learned mean with a fixed
spread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayesmix.errors import InputError
from bayesmix.laws.base import DataSummary, Law, ParameterSpec, register_law
from bayesmix.laws.features import centred_features


def zero_sum_basis(n: int) -> np.ndarray:
    """Orthonormal basis ``(n, n - 1)`` of the vectors of length ``n`` that sum to zero."""
    helmert = np.eye(n) - 1.0 / n
    basis, _ = np.linalg.qr(helmert[:, : n - 1])
    return basis


#: dim of slope coordinates in the orthonormal zero-sum basis of the training domains
#: (:func:`zero_sum_basis`): ``M - 1`` contrasts, labelled ``0 .. M - 2``
CONTRAST_DIM = "train_contrast"


def contrast_dim(n_train: int) -> str:
    """Add the :data:`CONTRAST_DIM` coordinate (``n_train - 1`` entries) to the model in context.

    Returns the dim's name, for the ``dims`` of the variables that live in the zero-sum basis.
    """
    import pymc as pm

    model = pm.modelcontext(None)
    if CONTRAST_DIM not in model.coords:
        model.add_coord(CONTRAST_DIM, list(range(n_train - 1)))
    return CONTRAST_DIM


def mixing_constants(data: DataSummary, exponent: float | str) -> dict[str, np.ndarray]:
    """Constants of the mixing laws: the reference mixture, and the exponent unless it is learned."""
    values = {"reference_mixture": np.asarray(data.mixture_mean, dtype=float)}
    if exponent != "learn":
        values["exponent"] = np.asarray(float(exponent))
    return values


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
    centred
        ``True`` (default): slope deviations are sampled around their pooled centre (best for
        NUTS when the runs pin the slopes down). ``False``: as standardised offsets scaled by
        their spread (non-centred); the same law and prior, but the joint density has a proper
        mode, which the Laplace approximation needs (the centred density grows without bound as
        the spread shrinks to 0). ``fit(method="laplace")`` switches to it.
    """

    name = "mixing"
    parameters = (
        ParameterSpec("c", ("domain",)),
        ParameterSpec("log_k", ("domain",)),
        ParameterSpec("t", ("domain", "train_domain")),
    )
    constants = (ParameterSpec("reference_mixture", ("train_domain",)),)
    symbolic_data = True
    #: the hierarchy's spreads, held at the mode by the Laplace approximation
    spread_parameters = ("slope_column_sd", "slope_deviation_sd", "slope_offset_sd")

    def __init__(self, exponent: float | str = 1.0, self_effect: bool = True, centred: bool = True):
        self.exponent = _check_exponent(exponent)
        self.self_effect = bool(self_effect)
        self.centred = bool(centred)

    def laplace_form(self) -> MixingLaw:
        """The non-centred form (see :meth:`Law.laplace_form`)."""
        return MixingLaw(exponent=self.exponent, self_effect=self.self_effect, centred=False)

    def options(self) -> dict[str, Any]:
        """See :meth:`Law.options` (``centred`` only when it is not the default)."""
        options: dict[str, Any] = {"exponent": self.exponent, "self_effect": self.self_effect}
        if not self.centred:
            options["centred"] = False
        return options

    @property
    def _power_is_one(self) -> bool:
        return self.exponent == 1.0

    def n_parameters(self, n_domains: int, n_train_domains: int) -> int:
        """``c``, ``k``, ``M - 1`` free entries of ``t`` (``M`` if the exponent is not 1), noise."""
        return n_train_domains + 2 + (0 if self._power_is_one else 1)

    def constant_values(self, data: DataSummary) -> dict[str, np.ndarray]:
        """The reference mixture (mean of the runs), and the exponent when it is fixed."""
        return mixing_constants(data, self.exponent)

    def derived_inputs(self, mixtures: np.ndarray, constants: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The runs' centred power features, when the exponent is fixed and not 1.

        Computing ``r^g`` inside the compiled model costs about as much as the rest of the log
        density on RegMix (512 runs x 17 domains); as data it is computed once.
        """
        if self.exponent == "learn" or self._power_is_one:
            return {}
        features = centred_features(mixtures, constants["reference_mixture"], float(self.exponent), np)
        return {"derived_features": np.asarray(features, dtype=float)}

    def evaluate(self, params: Mapping[str, Any], mixtures: Any, xp: Any = np) -> Any:
        """See :meth:`Law.evaluate`."""
        exponent = params.get("exponent", 1.0)
        if self._power_is_one:
            exponent = 1.0
        if "derived_features" in params:
            features = params["derived_features"]
        else:
            features = centred_features(mixtures, params["reference_mixture"], exponent, xp)
        exponent_term = xp.matmul(features, xp.swapaxes(params["t"], -1, -2))
        return xp.expand_dims(params["c"], -2) + xp.exp(xp.expand_dims(params["log_k"], -2) + exponent_term)

    def build_priors(self, data: DataSummary) -> dict[str, Any]:
        """See :meth:`Law.build_priors` and the module docstring for the hierarchy.

        The sampler works in coordinates the data identify well: the loss at the reference
        mixture (``level``), its gradient there (``slope = k t``, in units of each domain's loss
        spread) and the reducible fraction ``k / level`` (the curvature). ``c``, ``log_k`` and
        ``t`` are deterministic functions of them. Sampling ``c`` and ``k`` directly instead puts
        a 0.998 posterior correlation between them (``c + k`` is what the data pin down).
        """
        import pymc as pm
        import pytensor.tensor as pt

        n_domains, n_train = len(data.domains), len(data.train_domains)
        spread = data.loss_sd
        level_z = pm.Normal("level_z", 0.0, 1.0, dims="domain")
        level = pm.Deterministic("level", data.loss_mean + 2.0 * spread * level_z, dims="domain")
        # Reducible fraction k / level (the curvature), partially pooled on the logit scale
        # towards a learned common mean with a fixed spread: a learned spread makes a funnel
        # whenever the data pin the curvature down (many runs) or leave it loose (few runs).
        frac_mu = pm.Normal("reducible_logit_mu", -1.5, 1.5)
        frac = pm.Normal("reducible_logit", frac_mu, 1.0, dims="domain")
        k = level * pm.math.sigmoid(frac)
        # Slope rows live on the zero-sum subspace; they are sampled in an orthonormal basis of
        # it (``basis``), centred on a shared column effect plus a shared self effect: the data
        # pin the slopes down, so the centred form has no funnel.
        basis = zero_sum_basis(n_train)
        contrast = contrast_dim(n_train)
        column_sd = pm.HalfNormal("slope_column_sd", 3.0)
        column = column_sd * pm.Normal("slope_column_z", 0.0, 1.0, dims=contrast)
        centre = pt.broadcast_to(column[None, :], (n_domains, n_train - 1))
        has_self = data.self_index >= 0
        if self.self_effect and has_self.any():
            indicator = np.zeros((n_domains, n_train))
            indicator[np.flatnonzero(has_self), data.self_index[has_self]] = 1.0
            centre = centre + pm.Normal("slope_self", 0.0, 5.0) * (indicator @ basis)
        deviation_sd = pm.HalfNormal("slope_deviation_sd", 3.0)
        if self.centred:
            coefficients = pm.Normal("slope_coef", centre, deviation_sd, dims=("domain", contrast))
        else:
            offsets = pm.Normal("slope_coef_z", 0.0, 1.0, dims=("domain", contrast))
            coefficients = pm.Deterministic(
                "slope_coef", centre + deviation_sd * offsets, dims=("domain", contrast)
            )
        slope = pt.dot(coefficients, basis.T)
        if not self._power_is_one:
            offset_mu = pm.Normal("slope_offset_mu", 0.0, 3.0)
            offset_sd = pm.HalfNormal("slope_offset_sd", 3.0)
            offset = pm.Normal("slope_offset", offset_mu, offset_sd, dims="domain")
            slope = slope + offset[:, None]
        slope = spread[:, None] * slope
        c = pm.Deterministic("c", level - k, dims="domain")
        log_k = pm.Deterministic("log_k", pt.log(k), dims="domain")
        t = pm.Deterministic("t", slope / k[:, None], dims=("domain", "train_domain"))
        params: dict[str, Any] = {"c": c, "log_k": log_k, "t": t}
        if self.exponent == "learn":
            params["exponent"] = pm.LogNormal("exponent", 0.0, 0.5)
        return params

r"""The joint mixture x model-size law: the mixing law whose coefficients move with model size.

.. math::

    L_i(r, N) = c_i(z) + k_i(z) \exp\Big(\sum_j t_{ij}(z)\,(r_j - \bar r_j)\Big),
    \qquad z = \ln(N / N_{\mathrm{ref}}),

    c_i(z) = c_i + a_i z, \qquad \ln k_i(z) = \ln k_i + b_i z, \qquad t_{ij}(z) = t_{ij} + u_{ij} z.

At one model size (``z = 0``) this is the paper's M4 law (Ye et al. 2024, Eq. 7; see
:class:`~bayesmix.laws.MixingLaw`, whose priors and sampling coordinates it reuses for ``c``,
``k``, ``t``). Across sizes every coefficient moves linearly in ``ln N``: the loss level (``a``,
nats per e-fold of N), the reducible part (``b``) and, as in the laws where the mixing coefficients
depend on N (Shukor et al. 2025, "Scaling Laws for Optimal Data Mixtures"), the effect of each
training domain (``u``, zero-sum rows like ``t``). With two sizes a linear term is all the data can
identify; the scale effects are partially pooled over validation domains (non-centred, with
learned spreads) so that a size seen in a few runs borrows the slopes learnt at another. With
power features (``exponent`` other than 1) the rows of ``u`` also get a free offset, as ``t``'s do.

``N_ref`` is the geometric mean of the fitted model sizes, so ``c``, ``k`` and ``t`` are the law
in the middle of the data. :meth:`JointMixingLaw.at` gives the M4 coefficients at any size, which
is how a fit is turned into an ordinary mixing-law fit at a target size
(:func:`bayesmix.inference.joint.joint_at`) that ``predict`` and ``optimise`` take unchanged.

With ``available_tokens`` (the unique tokens ``U_j`` of limited training domains) the mixture
features are the *effective* shares of :mod:`bayesmix.laws.repetition` (Muennighoff et al. 2023):
a run of ``D`` tokens (the run table's ``tokens`` column) that passes over domain *j* more than
once gets ``r'_j <= r_j``, and the share it wasted, ``w = 1 - sum_j r'_j``, costs ``beta_i w``:

.. math::

    L_i(r, D, N) = c_i(z) + k_i(z) \exp\Big(\sum_j t_{ij}(z)\,(r'_j - \bar r_j) + \beta_i w\Big).

``R*_j`` and ``beta_i`` are pooled exactly as in :class:`~bayesmix.laws.RepetitionMixingLaw`
(the same priors, built by its code) and do not change with model size: repetition is priced by
the runs of every size at once, and :func:`~bayesmix.inference.joint.joint_at` then gives a
:class:`~bayesmix.laws.RepetitionMixingLaw` fit at the target size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayesmix.errors import InputError
from bayesmix.laws.base import DataSummary
from bayesmix.laws.features import centred_features
from bayesmix.laws.mixing import MixingLaw, contrast_dim, zero_sum_basis
from bayesmix.laws.repetition import (
    DEFAULT_R_STAR,
    DEFAULT_WASTE_COST,
    RepetitionMixingLaw,
    effective_terms,
)

#: the scale parameters (per e-fold of model size) and their dims
SCALE_PARAMETERS = {
    "level_per_efold": ("domain",),
    "log_k_per_efold": ("domain",),
    "t_per_efold": ("domain", "train_domain"),
}


class JointMixingLaw:
    """The mixing law with coefficients linear in ``ln N`` (see the module docstring).

    Parameters
    ----------
    self_effect
        Passed to the M4 law at the reference size (:class:`~bayesmix.laws.MixingLaw`).
    scale_sd
        Prior scale of the mean level change per e-fold of N (nats); the domains' changes are
        pooled around it.
    exponent
        Power of the mixture features, as in :class:`~bayesmix.laws.MixingLaw` (fixed: 1 is the
        paper's law). The change of ``t`` with size keeps zero-sum rows whatever the power.
    available_tokens
        Unique tokens ``U_j`` of each limited training domain (``domain -> tokens``; a domain
        left out has no limit). Given, the mixture features are the effective shares of
        :class:`~bayesmix.laws.RepetitionMixingLaw` and every run needs its training tokens ``D``
        (the run table's ``tokens`` column); ``None`` (the default) is the law on the shares
        themselves. Needs ``exponent`` 1.
    r_star, r_star_log_sd, r_star_spread, waste_cost, waste_cost_log_sd
        The priors of ``R*`` and ``beta``, as in :class:`~bayesmix.laws.RepetitionMixingLaw`
        (only with ``available_tokens``).

    Notes
    -----
    Parameters (posterior variables): ``c``, ``log_k`` ``(domain,)`` and ``t``
    ``(domain, train_domain)`` at ``N_ref``; ``level_per_efold`` (``a``), ``log_k_per_efold``
    (``b``) ``(domain,)`` and ``t_per_efold`` (``u``) ``(domain, train_domain)``. With
    ``available_tokens`` also ``r_star`` ``(train_domain,)`` (epochs) and ``waste_cost``
    ``(domain,)``, the same at every size, and the run input ``tokens`` (:attr:`run_inputs`).

    A fit on runs that repeat a domain at one model size still prices repetition at every size:
    ``R*`` and ``beta`` do not move with ``ln N``, which the runs can test only where they repeat
    at several sizes.
    """

    name = "joint_mixing"

    def __init__(
        self,
        self_effect: bool = True,
        scale_sd: float = 0.5,
        exponent: float = 1.0,
        available_tokens: Mapping[str, float] | None = None,
        r_star: float = DEFAULT_R_STAR,
        r_star_log_sd: float = 0.75,
        r_star_spread: float = 0.5,
        waste_cost: float = DEFAULT_WASTE_COST,
        waste_cost_log_sd: float = 1.0,
    ):
        if exponent == "learn":
            raise InputError("exponent", "cannot be learned in the joint law", "give a number, e.g. 1 or 0.5")
        self.self_effect = bool(self_effect)
        self.scale_sd = float(scale_sd)
        self.base = MixingLaw(exponent=exponent, self_effect=self.self_effect, centred=False)
        self.exponent = float(self.base.exponent)
        priors = {
            "r_star": r_star,
            "r_star_log_sd": r_star_log_sd,
            "r_star_spread": r_star_spread,
            "waste_cost": waste_cost,
            "waste_cost_log_sd": waste_cost_log_sd,
        }
        #: the repetition-aware law whose effective shares and ``R*`` / ``beta`` priors this law
        #: uses (``None`` without ``available_tokens``)
        self.repetition: RepetitionMixingLaw | None = None
        if available_tokens is None:
            # the repetition priors mean nothing without available tokens: refuse any that is set
            default = RepetitionMixingLaw().options()
            changed = sorted(k for k, v in RepetitionMixingLaw(**priors).options().items() if default[k] != v)
            if changed:
                raise InputError(
                    changed[0],
                    "is a prior of the repetition terms, which the law has only with available_tokens",
                    "pass available_tokens={domain: unique tokens}, or leave the option out",
                )
        else:
            if self.exponent != 1.0:
                raise InputError(
                    "exponent",
                    f"got {self.exponent} with available_tokens: effective shares enter the law linearly",
                    "use exponent=1 (the default) with available_tokens",
                )
            self.repetition = RepetitionMixingLaw(available_tokens, self_effect=self.self_effect, **priors)
        #: per-run inputs read from the run table (``("tokens",)`` with ``available_tokens``)
        self.run_inputs: tuple[str, ...] = () if self.repetition is None else ("tokens",)

    def options(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this law (the repetition options only with ``available_tokens``)."""
        options: dict[str, Any] = {
            "self_effect": self.self_effect,
            "scale_sd": self.scale_sd,
            "exponent": self.exponent,
        }
        if self.repetition is not None:
            repetition = self.repetition.options()
            options.update({k: v for k, v in repetition.items() if k not in ("self_effect", "centred")})
        return options

    def n_parameters(self, n_domains: int, n_train_domains: int) -> int:
        """Per validation domain: the mixing law's parameters (:meth:`MixingLaw.n_parameters`) and a scale term each."""
        return 2 * self.base.n_parameters(n_domains, n_train_domains) - 1

    @staticmethod
    def at(params: Mapping[str, Any], z: float) -> dict[str, Any]:
        """The M4 coefficients ``c``, ``log_k``, ``t`` at ``z = ln(N / N_ref)`` (a number).

        Numpy parameters may carry leading sample axes; the result has the same shapes.
        """
        z = float(z)
        return {
            "c": params["c"] + params["level_per_efold"] * z,
            "log_k": params["log_k"] + params["log_k_per_efold"] * z,
            "t": params["t"] + params["t_per_efold"] * z,
        }

    @staticmethod
    def evaluate(params: Mapping[str, Any], mixtures: Any, z: Any, xp: Any = np) -> Any:
        """Predicted loss ``(..., run, domain)`` of runs with mixtures ``(run, train_domain)`` at ``z`` ``(run,)``.

        Parameters may carry leading sample axes (numpy) or only their core dims (PyTensor).
        When ``params`` hold ``inverse_unique_tokens`` (the law with ``available_tokens``), the
        features are the effective shares (:func:`~bayesmix.laws.repetition.effective_terms`,
        which also reads ``tokens``, ``r_star`` and ``waste_cost``) and the waste term is added.

        Raises
        ------
        InputError
            Repetition parameters without ``tokens``.
        """
        waste = None
        if "inverse_unique_tokens" in params:
            features, waste = effective_terms(params, mixtures, xp)  # (..., run, M), (..., run, D)
        else:
            features = centred_features(
                mixtures, params["reference_mixture"], params.get("exponent", 1.0), xp
            )
        z_col = xp.expand_dims(z, -1)  # (run, 1)
        exponent = xp.matmul(features, xp.swapaxes(params["t"], -1, -2)) + z_col * xp.matmul(
            features, xp.swapaxes(params["t_per_efold"], -1, -2)
        )
        if waste is not None:
            exponent = exponent + waste
        c = xp.expand_dims(params["c"], -2) + z_col * xp.expand_dims(params["level_per_efold"], -2)
        log_k = xp.expand_dims(params["log_k"], -2) + z_col * xp.expand_dims(params["log_k_per_efold"], -2)
        return c + xp.exp(log_k + exponent)

    def build_priors(self, data: DataSummary) -> dict[str, Any]:
        """PyMC variables of the law (inside a model context), returned by name.

        The M4 part is :meth:`MixingLaw.build_priors` (non-centred). The scale terms are
        non-centred and pooled over domains: ``a_i = a_mu + a_sd z_i`` with ``a_mu ~ N(0,
        scale_sd)``, ``a_sd ~ HalfNormal(scale_sd / 2)``; ``b_i`` likewise with half the scale;
        ``u`` in the zero-sum basis, a shared column effect plus deviations with a learned spread.
        With ``available_tokens``, ``r_star`` and ``waste_cost`` follow
        (:meth:`RepetitionMixingLaw.repetition_priors <bayesmix.laws.RepetitionMixingLaw.repetition_priors>`).
        """
        import pymc as pm
        import pytensor.tensor as pt

        params = self.base.build_priors(data)
        n_domains, n_train = len(data.domains), len(data.train_domains)
        scale = self.scale_sd
        level_mu = pm.Normal("level_per_efold_mu", 0.0, scale)
        level_sd = pm.HalfNormal("level_per_efold_sd", scale / 2)
        level = level_mu + level_sd * pm.Normal("level_per_efold_z", 0.0, 1.0, dims="domain")
        reducible_mu = pm.Normal("log_k_per_efold_mu", 0.0, scale / 2)
        reducible_sd = pm.HalfNormal("log_k_per_efold_sd", scale / 4)
        reducible = reducible_mu + reducible_sd * pm.Normal("log_k_per_efold_z", 0.0, 1.0, dims="domain")
        basis = zero_sum_basis(n_train)
        contrast = contrast_dim(n_train)
        # t is per unit share (|t| of a few units on real runs): its change per e-fold gets a
        # wider prior than the level's
        column = pm.HalfNormal("t_per_efold_column_sd", 2 * scale) * pm.Normal(
            "t_per_efold_column_z", 0.0, 1.0, dims=contrast
        )
        deviation = pm.HalfNormal("t_per_efold_deviation_sd", 2 * scale) * pm.Normal(
            "t_per_efold_z", 0.0, 1.0, dims=("domain", contrast)
        )
        coefficients = pt.broadcast_to(column[None, :], (n_domains, n_train - 1)) + deviation
        change = pt.dot(coefficients, basis.T)
        if self.exponent != 1.0:
            # with power features the row sums of t are identified (MixingLaw's slope offset):
            # they may change with size too
            change = change + pm.Normal("t_per_efold_offset", 0.0, 2 * scale, dims="domain")[:, None]
        params["level_per_efold"] = pm.Deterministic("level_per_efold", level, dims="domain")
        params["log_k_per_efold"] = pm.Deterministic("log_k_per_efold", reducible, dims="domain")
        params["t_per_efold"] = pm.Deterministic("t_per_efold", change, dims=("domain", "train_domain"))
        if self.repetition is not None:
            params.update(self.repetition.repetition_priors())
        return params

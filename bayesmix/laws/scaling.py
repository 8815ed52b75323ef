r"""Scaling laws of training tokens and model size (Kaplan/Chinchilla forms), numpy and PyTensor.

.. math::

    L(D) = E + B / D^{\beta}, \qquad
    L(N) = E + A / N^{\alpha}, \qquad
    L(N, D) = E + A / N^{\alpha} + B / D^{\beta}

``D`` is the number of training tokens (steps x tokens per step) and ``N`` the number of
**non-embedding** parameters by default (the paper's and Kaplan et al.'s choice: embedding
parameters barely change the loss at a given compute, and counting them bends the size law at
small sizes). The law itself does not care which count is given: pass total parameters in the
``model_size`` input if that is what you want to model, and document it.

Input convention
----------------
A scaling law is a function of *scales*, not of mixtures, so it has its own small base class
(:class:`ScalingLaw`, not :class:`~bayesmix.laws.base.Law`): :meth:`ScalingLaw.evaluate` takes a
mapping ``{"model_size": N, "tokens": D}`` of positive arrays (only the keys in
:attr:`ScalingLaw.inputs` are read) and parameter arrays, and broadcasts elementwise: the caller
arranges parameters and inputs so that they broadcast (posterior draws on a leading axis, one
entry per curve or per observation). The canonical parameters are ``E``, ``log_A``/``log_B``
(log scale, because ``A`` and ``B`` are astronomically large numbers) and the exponents
``alpha``/``beta``.

Sampling coordinates
--------------------
Sampling ``(E, log_B, beta)`` directly puts NUTS in a narrow curved valley (the data pin down
the loss and its slope *inside* the data range, not ``E`` and ``B``). :meth:`ScalingLaw.build_priors`
therefore samples, per curve, the loss at a reference point inside the data (``level``; the
reference is the centre of the data in log size / log tokens), the slope of the loss in log
``x`` there (``slope = exponent x reducible loss at the reference``), and the exponent;
``E`` and ``log_A``/``log_B`` are deterministic functions of them. The exponents are pooled
across curves: ``log exponent = mu + sd_domain z_domain + sd_curve z_curve`` (non-centred), so
curves of the same validation domain share strength, and all curves share the population mean.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bayesmix.errors import InputError

#: scale inputs a law may read
SCALE_INPUTS = ("model_size", "tokens")
#: prior median of every exponent (Chinchilla fits give 0.28-0.34; Kaplan ~0.076-0.095 for L(N)
#: with embeddings excluded and no irreducible term, which this form does not target)
EXPONENT_PRIOR_MEDIAN = 0.3
#: prior sd of the population log-exponent
EXPONENT_PRIOR_LOG_SD = 0.5


@dataclass(frozen=True)
class ScalingTerm:
    """One power-law term ``exp(log_<scale> - <exponent> log x)`` of a scaling law.

    Attributes
    ----------
    input
        ``"model_size"`` or ``"tokens"``.
    scale
        Name of its log-scale parameter (``"log_A"``/``"log_B"``).
    exponent
        Name of its exponent (``"alpha"``/``"beta"``).
    """

    input: str
    scale: str
    exponent: str


@dataclass(frozen=True)
class ScalingSummary:
    """What the default priors of a scaling law may know about the data (one entry per curve).

    Attributes
    ----------
    curves
        Curve names (e.g. ``"mixture-3/web"``).
    domains
        Validation domain names; ``curve_domain[g]`` is the position of curve ``g``'s domain.
    curve_domain
        Integer array, one per curve.
    level, spread
        Mean and standard deviation (floored) of each curve's losses.
    log_reference
        Centre of the data in log input, per input name (``{"tokens": ..., "model_size": ...}``).
    log_span
        Range of the data in log input (floored at 0.1), per input name.
    """

    curves: tuple[str, ...]
    domains: tuple[str, ...]
    curve_domain: np.ndarray
    level: np.ndarray
    spread: np.ndarray
    log_reference: dict[str, float]
    log_span: dict[str, float]

    @classmethod
    def from_observations(
        cls,
        loss: np.ndarray,
        curve: np.ndarray,
        inputs: Mapping[str, np.ndarray],
        curves: Sequence[str],
        domains: Sequence[str],
        curve_domain: np.ndarray,
    ) -> ScalingSummary:
        """Summarise observations ``loss[o]`` of curve ``curve[o]`` at ``inputs[name][o]``."""
        n = len(curves)
        counts = np.bincount(curve, minlength=n)
        if (counts == 0).any():
            missing = [curves[g] for g in np.flatnonzero(counts == 0)]
            raise InputError("curves", f"curves without observations: {missing[:5]}", "drop them")
        level = np.bincount(curve, weights=loss, minlength=n) / counts
        sq = np.bincount(curve, weights=(loss - level[curve]) ** 2, minlength=n) / counts
        spread = np.maximum(np.sqrt(sq), 1e-3 * np.abs(level) + 1e-6)
        log_reference, log_span = {}, {}
        for name, values in inputs.items():
            logs = np.log(np.asarray(values, dtype=float))
            log_reference[name] = float(0.5 * (logs.min() + logs.max()))
            log_span[name] = float(max(logs.max() - logs.min(), 0.1))
        return cls(
            curves=tuple(str(c) for c in curves),
            domains=tuple(str(d) for d in domains),
            curve_domain=np.asarray(curve_domain, dtype=int),
            level=level,
            spread=spread,
            log_reference=log_reference,
            log_span=log_span,
        )


def check_scale_inputs(inputs: Mapping[str, Any], needed: Sequence[str]) -> None:
    """Raise :class:`InputError` unless every needed input is present, finite and positive (numpy)."""
    for name in needed:
        if name not in inputs:
            raise InputError("inputs", f"missing {name!r}", f"give a mapping with keys {list(needed)}")
        values = np.asarray(inputs[name], dtype=float)
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise InputError(name, "has non-positive or non-finite values", "give positive counts")


class ScalingLaw(ABC):
    """Base class of the scaling laws: a sum of power-law terms plus an irreducible loss ``E``.

    Subclasses set :attr:`name`, :attr:`terms` and thereby :attr:`inputs` and :attr:`parameters`.
    """

    name: ClassVar[str]
    terms: ClassVar[tuple[ScalingTerm, ...]]

    @property
    def inputs(self) -> tuple[str, ...]:
        """Scale inputs the law reads (keys of the ``inputs`` mapping)."""
        return tuple(term.input for term in self.terms)

    @property
    def parameters(self) -> tuple[str, ...]:
        """Canonical parameter names: ``E`` then each term's log-scale and exponent."""
        names = ["E"]
        for term in self.terms:
            names += [term.scale, term.exponent]
        return tuple(names)

    @property
    def exponents(self) -> tuple[str, ...]:
        """Names of the exponents."""
        return tuple(term.exponent for term in self.terms)

    def spec(self) -> dict[str, Any]:
        """Name and options (none): enough to rebuild the law with :func:`get_scaling_law`."""
        return {"name": self.name, "options": {}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ScalingLaw) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def evaluate(self, params: Mapping[str, Any], inputs: Mapping[str, Any], xp: Any = np) -> Any:
        """Loss ``E + sum_terms exp(log_scale - exponent * log x)``, broadcast elementwise.

        Parameters
        ----------
        params
            ``E``, ``log_A``/``log_B``, ``alpha``/``beta`` (see :attr:`parameters`).
        inputs
            ``{"model_size": N, "tokens": D}`` (only :attr:`inputs` are read), positive.
        xp
            ``numpy`` or ``pytensor.tensor``.
        """
        total = params["E"]
        for term in self.terms:
            total = total + xp.exp(params[term.scale] - params[term.exponent] * xp.log(inputs[term.input]))
        return total

    def reducible(self, params: Mapping[str, Any], inputs: Mapping[str, Any], xp: Any = np) -> Any:
        """The loss minus ``E`` (what more scale can still remove)."""
        return self.evaluate(params, inputs, xp) - params["E"]

    def build_priors(self, summary: ScalingSummary, dim: str = "curve", prefix: str = "") -> dict[str, Any]:
        """Create the PyMC variables (inside a model with coords ``dim`` and ``"domain"``).

        Per curve ``g`` and term ``T`` with input ``x_T``: ``level_g`` (loss at the reference
        point), ``slope_T,g = exponent_T,g * reducible_T,g`` (minus the derivative of the loss in
        ``log x_T`` there) and the exponent; the deterministic canonical parameters are
        ``reducible_T = slope_T / exponent_T``, ``E = level - sum_T reducible_T`` and
        ``log_scale_T = log(reducible_T) + exponent_T * log_reference_T``.

        Priors (scaled by the data): ``level ~ Normal(mean loss, 2 sd)``;
        ``log slope ~ Normal(log(sd / span_T), 1.5)``; ``log exponent = mu + sd_domain z_domain
        + sd_curve z_curve`` with ``mu ~ Normal(log 0.3, 0.5)``, ``sd_domain, sd_curve ~
        HalfNormal(0.25)``.

        Parameters
        ----------
        summary
            Data summary (one entry per curve, in the order of coords ``dim``).
        dim
            Name of the curve dim.
        prefix
            Prefix of every variable name (to put two laws in one model).

        Returns
        -------
        dict
            Canonical parameters by name (tensors with dims ``(dim,)``).
        """
        import pymc as pm
        import pytensor.tensor as pt

        p = prefix
        level_z = pm.Normal(f"{p}level_z", 0.0, 1.0, dims=dim)
        level = pm.Deterministic(f"{p}level", summary.level + 2.0 * summary.spread * level_z, dims=dim)
        params: dict[str, Any] = {}
        reducible_total = 0.0
        for term in self.terms:
            name = term.exponent
            mu = pm.Normal(f"{p}{name}_log_mu", np.log(EXPONENT_PRIOR_MEDIAN), EXPONENT_PRIOR_LOG_SD)
            sd_domain = pm.HalfNormal(f"{p}{name}_log_sd_domain", 0.25)
            sd_curve = pm.HalfNormal(f"{p}{name}_log_sd_curve", 0.25)
            z_domain = pm.Normal(f"{p}{name}_z_domain", 0.0, 1.0, dims="domain")
            z_curve = pm.Normal(f"{p}{name}_z_curve", 0.0, 1.0, dims=dim)
            log_exponent = mu + sd_domain * z_domain[summary.curve_domain] + sd_curve * z_curve
            exponent = pm.Deterministic(f"{p}{name}", pt.exp(log_exponent), dims=dim)
            slope_scale = summary.spread / summary.log_span[term.input]
            log_slope_z = pm.Normal(f"{p}{name}_log_slope_z", 0.0, 1.0, dims=dim)
            slope = pm.Deterministic(
                f"{p}slope_{term.input}", slope_scale * pt.exp(1.5 * log_slope_z), dims=dim
            )
            reducible = slope / exponent
            reducible_total = reducible_total + reducible
            params[term.scale] = pm.Deterministic(
                f"{p}{term.scale}",
                pt.log(reducible) + exponent * summary.log_reference[term.input],
                dims=dim,
            )
            params[name] = exponent
        params["E"] = pm.Deterministic(f"{p}E", level - reducible_total, dims=dim)
        return params


class StepLaw(ScalingLaw):
    """Law of training tokens ``L(D) = E + B / D^beta`` (``D`` = steps x tokens per step)."""

    name = "step"
    terms = (ScalingTerm("tokens", "log_B", "beta"),)


class SizeLaw(ScalingLaw):
    """Law of model size ``L(N) = E + A / N^alpha`` (``N`` = non-embedding parameters by default)."""

    name = "size"
    terms = (ScalingTerm("model_size", "log_A", "alpha"),)


class JointScalingLaw(ScalingLaw):
    """Chinchilla's joint law ``L(N, D) = E + A / N^alpha + B / D^beta``."""

    name = "joint"
    terms = (ScalingTerm("model_size", "log_A", "alpha"), ScalingTerm("tokens", "log_B", "beta"))


_SCALING_LAWS: dict[str, type[ScalingLaw]] = {cls.name: cls for cls in (StepLaw, SizeLaw, JointScalingLaw)}


def get_scaling_law(name: str) -> ScalingLaw:
    """The scaling law of that name (``"step"``, ``"size"`` or ``"joint"``).

    Raises
    ------
    InputError
        For an unknown name.
    """
    try:
        return _SCALING_LAWS[name]()
    except KeyError:
        raise InputError(
            "scaling law", f"unknown scaling law {name!r}", f"use one of {sorted(_SCALING_LAWS)}"
        ) from None

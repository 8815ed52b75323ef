"""Thinned posterior draws of a fitted law, evaluated (with their mixture gradients) at mixtures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bayesmix.inference import _arviz
from bayesmix.inference.predict import fitted_spec, posterior_draws
from bayesmix.laws.base import Law
from bayesmix.models.discrepancy import DiscrepancyDraws
from bayesmix.optimise.gradients import law_jacobian

#: discrepancy sample paths drawn for a point fit (MAP, paper protocol) when no ``max_draws`` is given
POINT_FIT_DRAWS = 1000


@dataclass
class LawDraws:
    """A fitted law's parameters on a fixed set of posterior draws (the sample-average approximation).

    Attributes
    ----------
    law
        The fitted law.
    params
        Parameter arrays with a leading ``sample`` axis, plus the law's constants.
    domains, train_domains
        Names of the law's outputs and inputs.
    reference_mixture
        The fit's reference mixture (the mean mixture of its runs), or ``None``.
    discrepancy
        The fit's discrepancy draws as functions of the mixture (added to the law's loss and
        gradient), or ``None`` when the fit has no discrepancy term.
    """

    law: Law
    params: dict[str, Any]
    domains: tuple[str, ...]
    train_domains: tuple[str, ...]
    reference_mixture: np.ndarray | None
    discrepancy: DiscrepancyDraws | None = None

    @classmethod
    def from_idata(
        cls,
        idata: _arviz.InferenceData,
        max_draws: int | None = 1000,
        seed: int = 0,
        *,
        tokens: Mapping[str, float] | None = None,
        target_tokens: float | None = None,
    ) -> LawDraws:
        """Read the law and (at most ``max_draws``, chosen under ``seed``) posterior draws of a fit.

        A law that reads per-run inputs (:attr:`~bayesmix.laws.Law.run_inputs`, e.g. each run's
        tokens) gets them for the planned run from :meth:`~bayesmix.laws.Law.plan_inputs` with
        ``tokens`` (unique tokens per training domain) and ``target_tokens`` (the run's tokens);
        other laws ignore both.
        """
        spec = fitted_spec(idata)
        law = spec.build_law()
        names = [p.name for p in law.parameters] + ["exponent"]
        raw = posterior_draws(idata, names, max_draws=max_draws, seed=seed)
        # contiguous float64 copies: stacked posterior views make every einsum several times slower
        params: dict[str, Any] = {k: np.ascontiguousarray(v, dtype=float) for k, v in raw.items()}
        constants = idata.constant_data if "constant_data" in idata.groups() else {}
        for constant in law.constants:
            params[constant.name] = np.asarray(constants[constant.name], dtype=float)
        if "exponent" not in params and "exponent" in constants:
            params["exponent"] = float(np.asarray(constants["exponent"]).reshape(-1)[0])
        if law.run_inputs:
            params.update(law.plan_inputs(spec.train_domains, tokens=tokens, target_tokens=target_tokens))
        reference = None
        if "reference_mixture" in constants:
            reference = np.asarray(constants["reference_mixture"], dtype=float)
        draws = cls(law, params, tuple(spec.domains), tuple(spec.train_domains), reference)
        if "discrepancy" in spec.extra:
            if draws.n_draws == 1:  # a point fit: its uncertainty is the discrepancy's
                draws = draws.pick(np.zeros(max_draws or POINT_FIT_DRAWS, dtype=int))
            draws.discrepancy = DiscrepancyDraws.from_idata(idata, spec.extra["discrepancy"], draws.n_draws, seed)
        return draws

    def subset(self, n: int, seed: int = 0) -> LawDraws:
        """The same law on at most ``n`` of these draws (a random subset under ``seed``)."""
        if n >= self.n_draws:
            return self
        return self.pick(np.sort(np.random.default_rng(seed).choice(self.n_draws, size=n, replace=False)))

    def pick(self, index: np.ndarray) -> LawDraws:
        """The same law on the draws at positions ``index``."""
        index = np.asarray(index)
        sampled = {p.name for p in self.law.parameters} | {"exponent"}
        params = {
            k: (v[index] if k in sampled and np.ndim(v) >= 1 else v) for k, v in self.params.items()
        }
        discrepancy = None if self.discrepancy is None else self.discrepancy.subset(index)
        return replace(self, params=params, discrepancy=discrepancy)

    @property
    def n_draws(self) -> int:
        """Number of posterior draws held."""
        first = next(p.name for p in self.law.parameters)
        return int(np.shape(self.params[first])[0])

    def losses(self, mixtures: np.ndarray) -> np.ndarray:
        """Expected loss per draw, shape ``(sample, mixture, domain)``, for mixtures ``(mixture, train_domain)``."""
        mixtures = np.atleast_2d(mixtures)
        losses = np.asarray(self.law.evaluate(self.params, mixtures, xp=np))
        if self.discrepancy is not None:
            losses = losses + self.discrepancy.values(mixtures)
        return losses

    def value_and_jacobian(self, mixture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Loss ``(sample, domain)`` at one mixture and its gradient ``(sample, domain, train_domain)``."""
        mixture = np.asarray(mixture, dtype=float)
        value, jacobian = law_jacobian(self.law, self.params, mixture)
        if self.discrepancy is not None:
            extra, extra_jacobian = self.discrepancy.value_and_jacobian(mixture)
            value, jacobian = value + extra, jacobian + extra_jacobian
        return value, jacobian

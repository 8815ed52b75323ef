r"""The phase law: the mixing law of a multi-phase schedule, with later phases weighted by recency.

A run trained on mixture :math:`r^{(1)}` and then, from a fraction :math:`s` of its tokens on,
on :math:`r^{(2)}` (mid-training, annealing) has seen the average mixture
:math:`(1 - F) r^{(1)} + F r^{(2)}`, with :math:`F = 1 - s` the share of tokens in the last phase.
What its final loss on validation domain *i* remembers is not that average: late data, trained on
at a decaying learning rate and not overwritten afterwards, counts more. The phase law gives each
validation domain its *effective mixture*

.. math::

    \tilde r_i = \sum_p w_{ip}\, r^{(p)}, \qquad
    w_{ip} = F_p^{\rho_i} - F_{p+1}^{\rho_i}, \qquad F_p = \text{share of tokens from phase } p
    \text{ to the end}

(``F_1 = 1``, ``F_{k+1} = 0``), and predicts with the paper's M4 law (Ye et al. 2024, Eq. 7; see
:class:`~bayesmix.laws.MixingLaw`) on it:

.. math::

    L_i = c_i + k_i \exp\Big(\sum_j t_{ij} (\tilde r_{ij} - \bar r_j)\Big).

``rho_i = 1`` gives the token-weighted average mixture, so the single-phase law on the average
mixture is the special case ``rho = 1``; ``rho_i < 1`` weights the later phases more (recency),
``rho_i > 1`` less. The recencies are partially pooled over validation domains on the log scale:
``ln rho_i = mu + tau z_i`` with ``mu ~ Normal(0, recency_sd)``, ``tau ~ HalfNormal(recency_sd / 2)``
(default ``recency_sd = 1``: from a quarter to four times the average's weight is within two
prior standard deviations). Because each domain has its own ``rho_i``, a schedule can give two
validation domains different effective mixtures: that, and only that, is how a schedule can beat
every single-phase mixture under this law.

The recency form is a bayesmix model, not a published law: it is what
``benchmarks/schedules.py`` tests on two-phase runs trained with bayesmix's own trainer, against
the single-phase law on the average mixture.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayesmix.errors import InputError
from bayesmix.laws.base import DataSummary
from bayesmix.laws.mixing import MixingLaw

#: the smallest phase tail share: ``F ** rho`` and its gradient stay finite at a padded phase
MIN_TAIL = 1e-6


class PhaseMixingLaw:
    """The M4 law on a recency-weighted mixture of the phases (see the module docstring).

    Parameters
    ----------
    self_effect
        Passed to the M4 law (:class:`~bayesmix.laws.MixingLaw`).
    recency_sd
        Prior scale of the mean log recency ``mu`` (the domains' spread gets half of it).

    Notes
    -----
    Parameters (posterior variables): ``c``, ``log_k`` ``(domain,)``, ``t``
    ``(domain, train_domain)`` as in the M4 law, and ``recency`` (``rho``) ``(domain,)``.
    Inputs: phase mixtures ``(run, phase, train_domain)`` and phase tails ``F`` ``(run, phase)``.
    """

    name = "phase_mixing"

    def __init__(self, self_effect: bool = True, recency_sd: float = 1.0):
        try:
            recency_sd = float(recency_sd)
        except (TypeError, ValueError):
            raise InputError("recency_sd", f"got {recency_sd!r}", "give a positive number, e.g. 1.0") from None
        if not np.isfinite(recency_sd) or recency_sd <= 0:
            raise InputError("recency_sd", f"got {recency_sd!r}", "give a positive number, e.g. 1.0")
        self.self_effect = bool(self_effect)
        self.recency_sd = recency_sd
        self.base = MixingLaw(self_effect=self.self_effect, centred=False)

    def options(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this law."""
        return {"self_effect": self.self_effect, "recency_sd": self.recency_sd}

    def n_parameters(self, n_domains: int, n_train_domains: int) -> int:
        """Per validation domain: the M4 law's parameters and a recency."""
        return self.base.n_parameters(n_domains, n_train_domains) + 1

    @staticmethod
    def phase_weights(tails: Any, recency: Any, xp: Any = np) -> Any:
        """Weights ``w_ip`` of the phases, shape ``(..., run, domain, phase)``, summing to 1 over phases.

        Parameters
        ----------
        tails
            ``F`` ``(run, phase)``: the share of the run's tokens from each phase's start to the end
            (1 for the first phase, decreasing; at least :data:`MIN_TAIL`).
        recency
            ``rho`` ``(..., domain)``, positive.
        xp
            ``numpy`` or ``pytensor.tensor``.
        """
        log_tails = xp.expand_dims(xp.log(tails), -2)  # (run, 1, phase)
        rho = xp.expand_dims(xp.expand_dims(recency, -1), -3)  # (..., 1, domain, 1)
        cumulative = xp.exp(rho * log_tails)  # (..., run, domain, phase)
        following = xp.concatenate([cumulative[..., 1:], xp.zeros_like(cumulative[..., :1])], axis=-1)
        return cumulative - following

    @classmethod
    def effective_mixtures(cls, phase_mixtures: Any, tails: Any, recency: Any, xp: Any = np) -> Any:
        """Each validation domain's effective mixture, shape ``(..., run, domain, train_domain)``.

        ``phase_mixtures`` is ``(run, phase, train_domain)``; see :meth:`phase_weights` for the rest.
        """
        return xp.matmul(cls.phase_weights(tails, recency, xp), phase_mixtures)

    @classmethod
    def evaluate(cls, params: Mapping[str, Any], phase_mixtures: Any, tails: Any, xp: Any = np) -> Any:
        """Predicted final loss ``(..., run, domain)`` (nats/token) of the schedules.

        Parameters
        ----------
        params
            ``c``, ``log_k``, ``t``, ``recency`` and the constant ``reference_mixture``; numpy
            arrays may carry leading sample axes.
        phase_mixtures, tails
            See :meth:`effective_mixtures`.
        xp
            ``numpy`` or ``pytensor.tensor``.
        """
        effective = cls.effective_mixtures(phase_mixtures, tails, params["recency"], xp)
        centred = effective - params["reference_mixture"]
        exponent = xp.sum(centred * xp.expand_dims(params["t"], -3), axis=-1)  # (..., run, domain)
        return xp.expand_dims(params["c"], -2) + xp.exp(xp.expand_dims(params["log_k"], -2) + exponent)

    def build_priors(self, data: DataSummary) -> dict[str, Any]:
        """PyMC variables of the law (inside a model context), returned by name.

        The M4 part is :meth:`MixingLaw.build_priors` (non-centred); the recencies are
        ``exp(mu + tau z)`` with ``mu ~ Normal(0, recency_sd)``, ``tau ~ HalfNormal(recency_sd / 2)``.
        """
        import pymc as pm
        import pytensor.tensor as pt

        params = self.base.build_priors(data)
        mu = pm.Normal("recency_log_mu", 0.0, self.recency_sd)
        tau = pm.HalfNormal("recency_log_sd", self.recency_sd / 2)
        z = pm.Normal("recency_z", 0.0, 1.0, dims="domain")
        params["recency"] = pm.Deterministic("recency", pt.exp(mu + tau * z), dims="domain")
        return params

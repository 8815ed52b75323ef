r"""The repetition-aware mixing law: repeated data is worth less than fresh data.

A training domain *j* with :math:`U_j` unique tokens, sampled at share :math:`r_j` by a run of
:math:`D` tokens, is seen :math:`e_j = r_j D / U_j` times (epochs). Muennighoff et al. (2023,
"Scaling Data-Constrained Language Models", arXiv 2305.16264, Eq. 5: the effective data
:math:`D' = U_D + U_D R^*_D (1 - e^{-R_D / R^*_D})` with :math:`R_D` repetitions beyond the
first epoch) give the domain's *effective* tokens

.. math::

    D'_j = \begin{cases} r_j D & e_j \le 1 \\
                         U_j \big(1 + R^*_j (1 - e^{-(e_j - 1)/R^*_j})\big) & e_j > 1 \end{cases}

and so its effective share :math:`r'_j = D'_j / D \le r_j` (equal for :math:`e_j \le 1`). The
mixing law of Ye et al. (2024, "Data Mixing Laws", arXiv 2403.16952, Eq. 7, "M4";
:class:`~bayesmix.laws.MixingLaw`) is then applied to the effective shares:

.. math::

    L_i(r) = c_i + k_i \exp\Big(\sum_j t_{ij} (r'_j - \bar r_j) + \beta_i w\Big),
    \qquad w = 1 - \sum_j r'_j \ge 0.

:math:`w` is the share of the run's tokens that repetition wasted. Here, as in
:class:`~bayesmix.laws.MixingLaw`, the rows of :math:`t` sum to zero (on the simplex a row's mean
only rescales :math:`k_i`), so without the :math:`\beta_i w` term a wasted share would count as
a share of fresh tokens spread evenly over the domains: on the simulated study of
``benchmarks/repetition.py`` the study's law with the term removed has its optimum at 0.93 of the run on
the smallest domain (53 epochs), against 0.19 (11 epochs) with it.
:math:`\beta_i \ge 0` (``waste_cost``, per unit share in the exponent) is what a wasted share
costs against a share of the reference mixture; equivalently, this is the paper's law on
:math:`r'` with unconstrained coefficients :math:`t_{ij} - \beta_i`. Losing an effective share
:math:`\delta` of domain *j* moves the exponent of loss *i* by :math:`-(t_{ij} - \beta_i)\delta`.
On mixtures that repeat nothing the law is :class:`~bayesmix.laws.MixingLaw`'s exactly;
:math:`R^*` and :math:`\beta` are learned only from runs that repeat a domain.

:math:`D'_j` is continuously differentiable in :math:`r_j` (its derivative is
:math:`\exp(-(e_j - 1)_+ / R^*_j)`, 1 up to the first epoch: C1 at :math:`e_j = 1`, with a jump
of :math:`-1/R^*_j` in the second derivative), which NUTS and the optimiser's gradients need;
the code evaluates the one closed form
:math:`r'_j = r_j - r_j \, \phi((e_j - 1)_+) / \max(e_j, 1)`,
:math:`\phi(x) = x + R^* \operatorname{expm1}(-x / R^*) \ge 0`, which is exactly the cases above.

:math:`R^*_j` (epochs; the number of repetitions after which repeated tokens are worth
:math:`1/e` of fresh ones; the paper fitted 15.4 for data) is learned per training domain and
pooled across them: :math:`\log R^*_j = \mu + \sigma z_j`, :math:`z_j \sim N(0, 1)`,
:math:`\mu \sim N(\log 15, 0.75)`, :math:`\sigma \sim \mathrm{HalfNormal}(0.5)` (defaults,
options ``r_star``, ``r_star_log_sd``, ``r_star_spread``). A domain repeated in few runs borrows
from the others; where no run repeats any domain, the data say nothing about :math:`R^*` and the
posterior of ``r_star`` and of ``waste_cost`` is their prior (for ``r_star``: median 15 epochs,
a 90% interval of about 3.5 to 65 epochs). ``waste_cost`` is pooled the same way across
validation domains: :math:`\log \beta_i = \mu_\beta + \sigma_\beta z_i`,
:math:`\mu_\beta \sim N(\log 0.5, 1)`, :math:`\sigma_\beta \sim \mathrm{HalfNormal}(0.5)`
(options ``waste_cost``, ``waste_cost_log_sd``): a wasted share costs about as much as the data
scaling of a ~1B model makes losing a share of fresh tokens cost (a reducible loss ``B / D^0.3``
grows by ``0.3 w`` in the exponent), with wide uncertainty.

Inputs besides the mixture: each run's tokens :math:`D` (the run table's ``tokens`` column,
:attr:`RepetitionMixingLaw.run_inputs`; ``predict(..., tokens=D)`` for new mixtures and
``optimise(..., target_tokens=D)`` for the planned run) and each domain's unique tokens
:math:`U_j` (the law's ``available_tokens`` option; a domain left out has no limit;
``optimise(..., tokens=...)`` may give other values for the planned run).

The law holds the scale fixed: a run's tokens enter only through how often it repeats each
domain. Fit it on runs of one model size whose losses differ by mixture and repetition; runs of
very different token counts also differ by how much they learned, which this law does not model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bayesmix.errors import InputError
from bayesmix.laws.base import DataSummary, Law, ParameterSpec, register_law
from bayesmix.laws.mixing import MixingLaw, mixing_constants

#: prior median of the population's repetition scale ``R*`` (epochs): Muennighoff et al. 2023
#: fitted 15.4 for data
DEFAULT_R_STAR = 15.0
#: prior median of the cost of a wasted share, ``beta`` (exponent per unit share)
DEFAULT_WASTE_COST = 0.5


def epochs(mixtures: Any, tokens: Any, inverse_unique_tokens: Any, xp: Any = np) -> Any:
    """Passes over each domain's unique tokens, ``e_j = r_j D / U_j``: shape ``(mixture, train_domain)``.

    Parameters
    ----------
    mixtures
        Shares ``(mixture, train_domain)``.
    tokens
        Training tokens ``D`` of each mixture's run ``(mixture,)``, or one number for all.
    inverse_unique_tokens
        ``1 / U_j`` per training domain ``(train_domain,)``, in 1/tokens; 0 for a domain without a
        limit (it is never repeated).
    xp
        ``numpy`` or ``pytensor.tensor``.
    """
    return mixtures * xp.expand_dims(tokens, -1) * inverse_unique_tokens


def effective_shares(
    mixtures: Any, tokens: Any, inverse_unique_tokens: Any, r_star: Any, xp: Any = np
) -> Any:
    """Effective shares ``r'_j = D'_j / D`` (Muennighoff et al. 2023), ``<= r_j``.

    Parameters
    ----------
    mixtures, tokens, inverse_unique_tokens
        As in :func:`epochs`.
    r_star
        Repetition scale ``R*_j`` in epochs, shape ``(..., train_domain)``; numpy arrays may carry
        leading sample axes.
    xp
        ``numpy`` or ``pytensor.tensor``.

    Returns
    -------
    array
        Shape ``(..., mixture, train_domain)``: equal to ``mixtures`` where ``e_j <= 1``,
        ``U_j (1 + R*_j (1 - exp(-(e_j - 1) / R*_j))) / D`` beyond.
    """
    e = epochs(mixtures, tokens, inverse_unique_tokens, xp)
    scale = xp.expand_dims(r_star, -2)
    excess = xp.maximum(e - 1.0, 0.0)
    lost = excess + scale * xp.expm1(-excess / scale)  # epochs' worth of tokens lost to repetition
    return mixtures - mixtures * lost / xp.maximum(e, 1.0)


def effective_terms(params: Mapping[str, Any], mixtures: Any, xp: Any = np) -> tuple[Any, Any]:
    """The repetition-aware law's mixture features and waste term, before the mixing coefficients.

    Parameters
    ----------
    params
        ``tokens`` (each mixture's run's ``D``, ``(mixture,)`` or ``(1,)``),
        ``inverse_unique_tokens``, ``r_star``, ``waste_cost`` and ``reference_mixture``; numpy
        arrays may carry leading sample axes.
    mixtures
        Shares ``(mixture, train_domain)``.
    xp
        ``numpy`` or ``pytensor.tensor``.

    Returns
    -------
    tuple
        The centred effective shares ``r' - r_bar`` ``(..., mixture, train_domain)`` and the waste
        term ``beta_i w`` ``(..., mixture, domain)`` of the exponent.

    Raises
    ------
    InputError
        ``params`` has no ``tokens``.
    """
    if "tokens" not in params:
        raise InputError(
            "tokens",
            "the repetition-aware law needs the training tokens D of the run each mixture is for",
            "pass predict(..., tokens=D) or optimise(..., target_tokens=D)",
        )
    shares = effective_shares(mixtures, params["tokens"], params["inverse_unique_tokens"], params["r_star"], xp)
    features = shares - xp.expand_dims(params["reference_mixture"], -2)
    wasted = 1.0 - xp.sum(shares, axis=-1, keepdims=True)  # (..., mixture, 1)
    return features, wasted * xp.expand_dims(params["waste_cost"], -2)


def _check_available(available: Mapping[str, float] | None) -> dict[str, float]:
    if available is None:
        return {}
    if not isinstance(available, Mapping):
        raise InputError(
            "available_tokens",
            f"got a {type(available).__name__}",
            "give a mapping training domain -> unique tokens, e.g. {'papers': 2e9}",
        )
    out: dict[str, float] = {}
    for name, value in available.items():
        number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
        if not (number and np.isfinite(value) and value > 0):
            raise InputError(
                "available_tokens",
                f"{name!r} -> {value!r}",
                "give each limited domain's unique tokens as a positive number; leave unlimited domains out",
            )
        out[str(name)] = float(value)
    return dict(sorted(out.items()))


def inverse_tokens(
    train_domains: Sequence[str], available: Mapping[str, float], field: str = "available_tokens"
) -> np.ndarray:
    """``1 / U_j`` in the order of ``train_domains`` (0 for domains without a limit).

    Raises
    ------
    InputError
        A name that is not a training domain.
    """
    unknown = sorted(set(available) - set(train_domains))
    if unknown:
        raise InputError(
            field, f"unknown training domain(s) {unknown}", f"use names among {list(train_domains)}"
        )
    return np.array([1.0 / available[d] if d in available else 0.0 for d in train_domains], dtype=float)


@register_law
class RepetitionMixingLaw(Law):
    """The mixing law on effective shares: repeating a small domain has diminishing returns.

    See the module docstring for the equations (Muennighoff et al. 2023; Ye et al. 2024).

    Parameters
    ----------
    available_tokens
        Unique tokens ``U_j`` of each limited training domain (``domain -> tokens``); a domain
        left out has no limit. Stored with the fit (``constant_data["inverse_unique_tokens"]``,
        ``1 / U_j``).
    self_effect, centred
        Passed to :class:`~bayesmix.laws.MixingLaw`, whose priors and sampling coordinates give
        ``c``, ``log_k`` and ``t``.
    r_star
        Prior median of the population's repetition scale ``R*`` (epochs).
    r_star_log_sd
        Prior sd of the population's ``log R*`` mean.
    r_star_spread
        Scale of the HalfNormal prior of the spread of ``log R*_j`` across training domains.
    waste_cost
        Prior median of the population's ``beta`` (the cost of a wasted share, in the exponent
        per unit share).
    waste_cost_log_sd
        Prior sd of the population's ``log beta`` mean (its spread across validation domains
        has a HalfNormal(0.5) prior).

    Notes
    -----
    Parameters (posterior variables): ``c``, ``log_k`` ``(domain,)``, ``t``
    ``(domain, train_domain)`` (zero-sum rows) as in :class:`~bayesmix.laws.MixingLaw`;
    ``r_star`` ``(train_domain,)`` in epochs, with ``log_r_star_mu``, ``log_r_star_sd`` and
    ``log_r_star_z``; ``waste_cost`` ``(domain,)``, with ``log_waste_cost_mu``,
    ``log_waste_cost_sd`` and ``log_waste_cost_z``. Run input: ``tokens`` (each run's training
    tokens ``D``), read from the run table's ``tokens`` column.
    """

    name = "repetition_mixing"
    parameters = (
        ParameterSpec("c", ("domain",)),
        ParameterSpec("log_k", ("domain",)),
        ParameterSpec("t", ("domain", "train_domain")),
        ParameterSpec("r_star", ("train_domain",)),
        ParameterSpec("waste_cost", ("domain",)),
    )
    constants = (
        ParameterSpec("reference_mixture", ("train_domain",)),
        ParameterSpec("inverse_unique_tokens", ("train_domain",)),
    )
    run_inputs = ("tokens",)
    symbolic_data = True
    spread_parameters = (*MixingLaw.spread_parameters, "log_r_star_sd", "log_waste_cost_sd")

    def __init__(
        self,
        available_tokens: Mapping[str, float] | None = None,
        self_effect: bool = True,
        centred: bool = True,
        r_star: float = DEFAULT_R_STAR,
        r_star_log_sd: float = 0.75,
        r_star_spread: float = 0.5,
        waste_cost: float = DEFAULT_WASTE_COST,
        waste_cost_log_sd: float = 1.0,
    ):
        self.available_tokens = _check_available(available_tokens)
        for field, value in (
            ("r_star", r_star),
            ("r_star_log_sd", r_star_log_sd),
            ("r_star_spread", r_star_spread),
            ("waste_cost", waste_cost),
            ("waste_cost_log_sd", waste_cost_log_sd),
        ):
            number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
            if not (number and np.isfinite(value) and value > 0):
                raise InputError(field, f"got {value!r}", "give a positive number")
        self.r_star = float(r_star)
        self.r_star_log_sd = float(r_star_log_sd)
        self.r_star_spread = float(r_star_spread)
        self.waste_cost = float(waste_cost)
        self.waste_cost_log_sd = float(waste_cost_log_sd)
        self.base = MixingLaw(exponent=1.0, self_effect=self_effect, centred=centred)

    def options(self) -> dict[str, Any]:
        """See :meth:`Law.options` (``centred`` only when it is not the default)."""
        options: dict[str, Any] = {
            "available_tokens": dict(self.available_tokens),
            "self_effect": self.base.self_effect,
            "r_star": self.r_star,
            "r_star_log_sd": self.r_star_log_sd,
            "r_star_spread": self.r_star_spread,
            "waste_cost": self.waste_cost,
            "waste_cost_log_sd": self.waste_cost_log_sd,
        }
        if not self.base.centred:
            options["centred"] = False
        return options

    def laplace_form(self) -> RepetitionMixingLaw:
        """The non-centred form (see :meth:`Law.laplace_form`)."""
        return RepetitionMixingLaw(**{**self.options(), "centred": False})

    def n_parameters(self, n_domains: int, n_train_domains: int) -> int:
        """As :meth:`MixingLaw.n_parameters`: ``R*`` is shared by the validation domains."""
        return self.base.n_parameters(n_domains, n_train_domains)

    def constant_values(self, data: DataSummary) -> dict[str, np.ndarray]:
        """The reference mixture and ``1 / U_j`` (0 for unlimited domains)."""
        values = mixing_constants(data, 1.0)
        values.pop("exponent", None)
        values["inverse_unique_tokens"] = inverse_tokens(data.train_domains, self.available_tokens)
        return values

    def plan_inputs(
        self,
        train_domains: Sequence[str],
        *,
        tokens: Mapping[str, float] | None = None,
        target_tokens: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Inputs of :meth:`evaluate` for one planned run of ``target_tokens`` tokens.

        Parameters
        ----------
        train_domains
            The fitted training domains, in order.
        tokens
            Unique tokens available to the planned run per domain; they replace the law's
            ``available_tokens`` for the domains named (0: none, the domain's share must be 0).
        target_tokens
            The planned run's training tokens ``D``.

        Returns
        -------
        dict
            ``tokens`` ``(1,)`` and ``inverse_unique_tokens`` ``(train_domain,)``.

        Raises
        ------
        InputError
            No or a bad ``target_tokens``; unknown domains or bad counts in ``tokens``.
        """
        number = isinstance(target_tokens, int | float | np.integer | np.floating) and not isinstance(
            target_tokens, bool
        )
        if not (number and np.isfinite(target_tokens) and target_tokens > 0):
            raise InputError(
                "target_tokens",
                f"got {target_tokens!r}; the repetition-aware law prices repetition by the planned run's "
                "training tokens",
                "pass target_tokens=<the planned run's total tokens D>, e.g. target_tokens=1e11",
            )
        available = dict(self.available_tokens)
        limited_zero = []
        for name, value in (tokens or {}).items():
            number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
            if not (number and np.isfinite(value) and value >= 0):
                raise InputError(
                    "tokens", f"{name!r} -> {value!r}", "give each domain's unique tokens (>= 0)"
                )
            if value == 0:
                limited_zero.append(str(name))
                available.pop(str(name), None)
            else:
                available[str(name)] = float(value)
        inverse = inverse_tokens(train_domains, available, field="tokens")
        unknown = sorted(set(limited_zero) - set(train_domains))
        if unknown:
            raise InputError(
                "tokens", f"unknown training domain(s) {unknown}", f"use names among {list(train_domains)}"
            )
        return {"tokens": np.array([float(target_tokens)]), "inverse_unique_tokens": inverse}

    def evaluate(self, params: Mapping[str, Any], mixtures: Any, xp: Any = np) -> Any:
        """See :meth:`Law.evaluate`; ``params["tokens"]``: each mixture's ``D``, ``(mixture,)`` or ``(1,)``.

        Raises
        ------
        InputError
            ``params`` has no ``tokens``.
        """
        features, waste = effective_terms(params, mixtures, xp)
        exponent_term = xp.matmul(features, xp.swapaxes(params["t"], -1, -2)) + waste
        return xp.expand_dims(params["c"], -2) + xp.exp(xp.expand_dims(params["log_k"], -2) + exponent_term)

    def value_and_jacobian(self, params: Mapping[str, Any], r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Loss ``(sample, domain)`` at one mixture ``r`` and its gradient ``(sample, domain, train_domain)``.

        ``dL_i/dr_j = (L_i - c_i) (t_ij - beta_i) exp(-(e_j - 1)_+ / R*_j)`` (numpy, parameters
        with a leading sample axis).
        """
        r = np.asarray(r, dtype=float)
        tokens = np.asarray(params["tokens"], dtype=float).reshape(-1)[:1]
        inverse = np.asarray(params["inverse_unique_tokens"], dtype=float)
        r_star = np.asarray(params["r_star"], dtype=float)  # (S, M)
        shares = effective_shares(r[None, :], tokens, inverse, r_star, np)[..., 0, :]  # (S, M)
        excess = np.maximum(epochs(r[None, :], tokens, inverse, np)[0] - 1.0, 0.0)  # (M,)
        slope = np.exp(-excess / r_star)  # d r'_j / d r_j, (S, M)
        t = np.asarray(params["t"], dtype=float)  # (S, D, M)
        features = shares - np.asarray(params["reference_mixture"], dtype=float)
        beta = np.asarray(params["waste_cost"], dtype=float)  # (S, D)
        wasted = 1.0 - shares.sum(axis=-1)  # (S,)
        reducible = np.exp(params["log_k"] + np.einsum("sdm,sm->sd", t, features) + beta * wasted[:, None])
        value = params["c"] + reducible
        return value, reducible[:, :, None] * (t - beta[:, :, None]) * slope[:, None, :]

    def build_priors(self, data: DataSummary) -> dict[str, Any]:
        """:meth:`MixingLaw.build_priors` for ``c``, ``log_k``, ``t``; pooled ``R*_j`` and ``beta_i``.

        Both non-centred: ``log R*_j = log_r_star_mu + log_r_star_sd * log_r_star_z_j`` with
        ``log_r_star_mu ~ N(log r_star, r_star_log_sd)``,
        ``log_r_star_sd ~ HalfNormal(r_star_spread)``, ``log_r_star_z_j ~ N(0, 1)``; and
        ``log beta_i = log_waste_cost_mu + log_waste_cost_sd * log_waste_cost_z_i`` with
        ``log_waste_cost_mu ~ N(log waste_cost, waste_cost_log_sd)``,
        ``log_waste_cost_sd ~ HalfNormal(0.5)``, ``log_waste_cost_z_i ~ N(0, 1)``.
        """
        params = self.base.build_priors(data)
        params.update(self.repetition_priors())
        return params

    def repetition_priors(self) -> dict[str, Any]:
        """The pooled ``r_star`` ``(train_domain,)`` and ``waste_cost`` ``(domain,)`` (inside a model context).

        The priors of :meth:`build_priors` without the mixing law's; the joint mixture x size law
        (:class:`~bayesmix.laws.joint.JointMixingLaw` with ``available_tokens``) builds them here too.
        """
        import pymc as pm
        import pytensor.tensor as pt

        params: dict[str, Any] = {}
        mu = pm.Normal("log_r_star_mu", math.log(self.r_star), self.r_star_log_sd)
        spread = pm.HalfNormal("log_r_star_sd", self.r_star_spread)
        z = pm.Normal("log_r_star_z", 0.0, 1.0, dims="train_domain")
        params["r_star"] = pm.Deterministic("r_star", pt.exp(mu + spread * z), dims="train_domain")
        waste_mu = pm.Normal("log_waste_cost_mu", math.log(self.waste_cost), self.waste_cost_log_sd)
        waste_spread = pm.HalfNormal("log_waste_cost_sd", 0.5)
        waste_z = pm.Normal("log_waste_cost_z", 0.0, 1.0, dims="domain")
        params["waste_cost"] = pm.Deterministic(
            "waste_cost", pt.exp(waste_mu + waste_spread * waste_z), dims="domain"
        )
        return params

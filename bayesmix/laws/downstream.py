r"""The two laws of downstream prediction: task loss from scale, accuracy from task loss.

Bhagia et al. (2024), "Establishing Task Scaling Laws via Compute-Efficient Model Ladders"
(arXiv 2412.04403), predict a large model's accuracy on a benchmark task in two steps, each fitted
on a ladder of small models:

.. math::

    \text{step 1:}\quad L(N, D) = E + \frac{A}{N^{\alpha}} + \frac{B}{D^{\beta}},

    \text{step 2:}\quad \mathrm{Acc}(L) = \frac{a}{1 + e^{-k (L - L_0)}} + b,

with ``N`` the non-embedding parameters, ``D`` the training tokens and ``L`` the *task loss*: the
bits per byte (BPB) of the correct answer under the model. Chaining them, ``Acc(L(N, D))``,
predicts accuracy from scale. The paper's sign convention (its repository, ``sigmoid`` with
bounds ``a`` in ``[-1, 0]``, ``b`` in ``[0, 1]``) is kept: ``a <= 0``, so accuracy falls as the
loss grows; ``b`` is the ceiling (the accuracy as the loss falls far below ``L_0``; about the accuracy at
``L = 0`` when ``k L_0`` is large), ``a + b`` the floor (the
accuracy of a model that knows nothing, about the task's chance level), ``L_0`` the midpoint and
``k > 0`` the steepness (per unit of loss).

Step 2 works as well with a *validation-domain* loss in place of the task loss (the paper's
"C4 loss" variant of step 2): that is the loss a data mixing law predicts, so it is the link the
mixture optimiser chains (:class:`~bayesmix.optimise.downstream.DownstreamTarget`).

Both laws follow the package's convention (:mod:`bayesmix.laws.base`): one ``evaluate`` for
``xp=numpy`` (parameters may carry leading sample axes) and ``xp=pytensor.tensor`` (core dims
only), and ``build_priors`` that creates the hierarchical PyMC variables over tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

#: prior median of the step-1 exponents (Chinchilla-type fits give 0.2-0.5)
EXPONENT_PRIOR_MEDIAN = 0.3
#: prior sd of the population log exponent
EXPONENT_PRIOR_LOG_SD = 0.5
#: prior median of the ceiling's share of the room above the floor, ``(b - floor) / (1 - floor)``
#: (the paper pins ``Acc(0) = 1`` with a helper point; a ceiling a little below 1 allows for label
#: noise and ambiguous items)
CEILING_PRIOR_MEDIAN = 0.9
#: prior sd of the pooled logit of that share, and of its spread over tasks
CEILING_PRIOR_LOGIT_SD = 1.0
#: prior sd of the floor ``a + b`` around the task's chance level (accuracy units)
FLOOR_PRIOR_SD = 0.03


def _core(value: Any, xp: Any) -> Any:
    """A parameter ``(..., task)`` with a point axis inserted: ``(..., 1, task)``."""
    return xp.expand_dims(value, -2)


@dataclass(frozen=True)
class TaskLossSummary:
    """What the default priors of :class:`TaskLossLaw` may know about the data (per task).

    Attributes
    ----------
    tasks
        Task names (the ``task`` dim).
    level
        Geometric mean of each task's observed loss (BPB), shape ``(task,)``.
    log_reference
        ``{"model_size": ln N_ref, "tokens": ln D_ref}``: the centre of the fitted runs.
    """

    tasks: tuple[str, ...]
    level: np.ndarray
    log_reference: dict[str, float]


@dataclass(frozen=True)
class AccuracySummary:
    """What the default priors of :class:`AccuracyLaw` may know about the data (per task).

    Attributes
    ----------
    tasks
        Task names (the ``task`` dim).
    chance
        Chance accuracy of each task (prior centre of the floor ``a + b``), shape ``(task,)``.
    x_median, x_spread
        Median and standard deviation (floored) of the loss the link reads, per task.
    """

    tasks: tuple[str, ...]
    chance: np.ndarray
    x_median: np.ndarray
    x_spread: np.ndarray


class TaskLossLaw:
    r"""Step 1: the task loss ``L(N, D) = E + A / N^alpha + B / D^beta`` (Bhagia et al. 2024, step 1).

    Parameters (posterior variables, each ``(task,)``): ``E`` (irreducible task loss, BPB),
    ``log_A``, ``log_B`` (natural logs of ``A`` and ``B``), ``alpha``, ``beta``.

    Notes
    -----
    The exponents are partially pooled over tasks (``log alpha_t = mu + sd z_t``), as the paper's
    per-task point fits scatter far more than the tasks' scaling plausibly differs.
    """

    name: ClassVar[str] = "task_loss"
    parameters: ClassVar[tuple[str, ...]] = ("E", "log_A", "log_B", "alpha", "beta")

    def spec(self) -> dict[str, Any]:
        """Name and options (none)."""
        return {"name": self.name, "options": {}}

    def __repr__(self) -> str:
        return "TaskLossLaw()"

    @staticmethod
    def evaluate(params: Mapping[str, Any], model_size: Any, tokens: Any, xp: Any = np) -> Any:
        """Task loss (BPB), shape ``(..., point, task)``.

        Parameters
        ----------
        params
            ``E``, ``log_A``, ``log_B``, ``alpha``, ``beta``, each ``(..., task)`` (numpy: any
            leading sample axes; PyTensor: ``(task,)``).
        model_size, tokens
            ``N`` (non-embedding parameters) and ``D`` (training tokens) of each point, ``(point,)``,
            positive.
        xp
            ``numpy`` or ``pytensor.tensor``.
        """
        log_n = xp.expand_dims(xp.log(model_size), -1)  # (point, 1)
        log_d = xp.expand_dims(xp.log(tokens), -1)
        size_term = xp.exp(_core(params["log_A"], xp) - _core(params["alpha"], xp) * log_n)
        token_term = xp.exp(_core(params["log_B"], xp) - _core(params["beta"], xp) * log_d)
        return _core(params["E"], xp) + size_term + token_term

    @staticmethod
    def build_priors(summary: TaskLossSummary, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        r"""PyMC variables of the law (inside a model with a ``task`` dim), returned by name.

        Sampled in the coordinates the data identify (as :class:`~bayesmix.laws.scaling.ScalingLaw`
        does): per task ``t``, at the reference point ``(N_ref, D_ref)`` (the centre of the runs
        in log scale), the loss there ``level_t`` (log-normal around the task's observed level,
        sd 0.5 in log), its relative slopes ``s_N = -d ln L / d ln N`` and ``s_D`` (log-normal,
        median 0.05, sd 1.5 in log) and the exponents, partially pooled over tasks (``log
        alpha_t = mu_alpha + sd_alpha z_t``, ``mu_alpha ~ Normal(log 0.3, 0.5)``, ``sd_alpha ~
        HalfNormal(0.3)``; ``beta`` alike). Then ``A N_ref^-alpha = s_N level / alpha``, ``B
        D_ref^-beta = s_D level / beta`` and ``E = level - A N_ref^-alpha - B D_ref^-beta``; a
        soft penalty (a half-normal of scale 2% of the level below 0) keeps ``E >= 0``, as a
        loss cannot fall below zero however large the model.

        Parameters
        ----------
        summary
            Data summary.
        data
            Optional tensors ``level`` (``(task,)``), ``log_n_ref`` and ``log_d_ref`` (scalars) to use
            instead of the summary's values (``pm.Data`` keeps the compiled model reusable across
            data).
        """
        import pymc as pm
        import pytensor.tensor as pt

        data = dict(data or {})
        observed_level = data.get("level", summary.level)
        level = pt.exp(pt.log(observed_level) + 0.5 * pm.Normal("level_z", 0.0, 1.0, dims="task"))

        def pooled(name: str) -> Any:
            mu = pm.Normal(f"{name}_log_mu", np.log(EXPONENT_PRIOR_MEDIAN), EXPONENT_PRIOR_LOG_SD)
            sd = pm.HalfNormal(f"{name}_log_sd", 0.3)
            return pt.exp(mu + sd * pm.Normal(f"{name}_log_z", 0.0, 1.0, dims="task"))

        alpha = pooled("alpha")
        beta = pooled("beta")
        size_slope = pt.exp(np.log(0.05) + 1.5 * pm.Normal("size_slope_z", 0.0, 1.0, dims="task"))
        token_slope = pt.exp(np.log(0.05) + 1.5 * pm.Normal("token_slope_z", 0.0, 1.0, dims="task"))
        size_part = size_slope * level / alpha
        token_part = token_slope * level / beta
        irreducible = level - size_part - token_part
        pm.Potential("E_nonnegative", -0.5 * pt.sum(pt.square(pt.minimum(irreducible, 0.0) / (0.02 * level))))
        log_n_ref = data.get("log_n_ref", summary.log_reference["model_size"])
        log_d_ref = data.get("log_d_ref", summary.log_reference["tokens"])
        return {
            "E": pm.Deterministic("E", irreducible, dims="task"),
            "log_A": pm.Deterministic("log_A", pt.log(size_part) + alpha * log_n_ref, dims="task"),
            "log_B": pm.Deterministic("log_B", pt.log(token_part) + beta * log_d_ref, dims="task"),
            "alpha": pm.Deterministic("alpha", alpha, dims="task"),
            "beta": pm.Deterministic("beta", beta, dims="task"),
        }


class AccuracyLaw:
    r"""Step 2: accuracy ``a / (1 + exp(-k (L - L0))) + b`` of a loss ``L`` (Bhagia et al. 2024, step 2).

    Parameters (posterior variables, each ``(task,)``): ``a`` (``<= 0``: floor minus ceiling),
    ``b`` (ceiling), ``k`` (``> 0``, per unit of loss) and ``L0`` (midpoint, loss units); the
    floor ``a + b`` is stored too, as ``floor``.

    The loss ``L`` is the task's BPB in the paper's chain, or a validation-domain loss (nats per
    token) for the link a mixing law feeds (:func:`~bayesmix.inference.downstream.fit_downstream_link`).
    """

    name: ClassVar[str] = "task_accuracy"
    parameters: ClassVar[tuple[str, ...]] = ("a", "L0", "k", "b")

    def spec(self) -> dict[str, Any]:
        """Name and options (none)."""
        return {"name": self.name, "options": {}}

    def __repr__(self) -> str:
        return "AccuracyLaw()"

    @staticmethod
    def evaluate(params: Mapping[str, Any], loss: Any, xp: Any = np) -> Any:
        """Accuracy (a fraction), shape ``(..., point, task)``.

        Parameters
        ----------
        params
            ``a``, ``L0``, ``k``, ``b``, each ``(..., task)``.
        loss
            The loss of each point for each task, ``(..., point, task)``, or ``(..., point, 1)``
            when one loss (a validation domain's) feeds every task.
        xp
            ``numpy`` or ``pytensor.tensor``.
        """
        k = _core(params["k"], xp)
        midpoint = _core(params["L0"], xp)
        # a / (1 + exp(-z)) written with tanh: finite for any z in both namespaces
        return _core(params["a"], xp) * 0.5 * (1.0 + xp.tanh(0.5 * k * (loss - midpoint))) + _core(params["b"], xp)

    @staticmethod
    def slope(params: Mapping[str, Any], loss: Any, xp: Any = np) -> Any:
        """Derivative of the accuracy in the loss (``<= 0``), same shape as :meth:`evaluate`."""
        k = _core(params["k"], xp)
        s = 0.5 * (1.0 + xp.tanh(0.5 * k * (loss - _core(params["L0"], xp))))
        return _core(params["a"], xp) * k * s * (1.0 - s)

    @staticmethod
    def build_priors(summary: AccuracySummary, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        r"""PyMC variables of the law (inside a model with a ``task`` dim), returned by name.

        Sampled in the coordinates the data identify, per task ``t``: the accuracy at the task's
        median loss ``m_t = floor + (1 - floor) v_t`` (``logit v_t ~ Normal(0, 1.5)``) and the
        slope there ``s_t = -dAcc/dL`` (``s_t spread_t / (1 - floor) = exp(mu + sd z_t)``,
        pooled over tasks, ``mu ~ Normal(log 0.3, 1)``, ``sd ~ HalfNormal(0.5)``); then the
        asymptotes, which the ladder sees least: the floor ``a + b ~ Normal(chance_t, 0.03)``
        and the ceiling ``b = m_t + (1 - m_t) w_t`` with ``logit w_t`` pooled over tasks
        (``mu ~ Normal(logit 0.9, 1)``, ``sd ~ HalfNormal(1)``). ``k`` and ``L0`` follow: with
        ``p = (b - m) / (b - floor)``, ``k = s / ((b - floor) p (1 - p))`` and ``L0 = median -
        logit(p) / k``.

        Parameters
        ----------
        summary
            Data summary.
        data
            Optional tensors ``chance``, ``x_median``, ``x_spread`` (``(task,)``) to use instead of
            the summary's arrays (``pm.Data`` keeps the compiled model reusable across data).
        """
        import pymc as pm
        import pytensor.tensor as pt

        data = dict(data or {})
        chance = data.get("chance", summary.chance)
        median = data.get("x_median", summary.x_median)
        spread = data.get("x_spread", summary.x_spread)
        floor = chance + FLOOR_PRIOR_SD * pm.Normal("floor_z", 0.0, 1.0, dims="task")
        at_median = floor + (1.0 - floor) * pm.math.sigmoid(1.5 * pm.Normal("acc_at_median_z", 0.0, 1.0, dims="task"))
        slope_mu = pm.Normal("slope_log_mu", float(np.log(0.3)), 1.0)
        slope_sd = pm.HalfNormal("slope_log_sd", 0.5)
        # centred: each task's slope is pinned by its own data, where a non-centred hierarchy mixes badly
        slope = pt.exp(pm.Normal("slope_log", slope_mu, slope_sd, dims="task")) * (1.0 - floor) / spread
        centre = float(np.log(CEILING_PRIOR_MEDIAN / (1 - CEILING_PRIOR_MEDIAN)))
        logit_mu = pm.Normal("ceiling_logit_mu", centre, CEILING_PRIOR_LOGIT_SD)
        logit_sd = pm.HalfNormal("ceiling_logit_sd", CEILING_PRIOR_LOGIT_SD)
        share = pm.math.sigmoid(logit_mu + logit_sd * pm.Normal("ceiling_logit_z", 0.0, 1.0, dims="task"))
        ceiling = at_median + (1.0 - at_median) * share
        width = ceiling - floor
        p = (ceiling - at_median) / width
        k = slope / (width * p * (1.0 - p))
        return {
            "a": pm.Deterministic("a", floor - ceiling, dims="task"),
            "L0": pm.Deterministic("L0", median - (pt.log(p) - pt.log1p(-p)) / k, dims="task"),
            "k": pm.Deterministic("k", k, dims="task"),
            "b": pm.Deterministic("b", ceiling, dims="task"),
        }

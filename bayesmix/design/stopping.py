"""When to stop buying runs: how much the optimum still moves, and what one more batch is worth.

After each refit the designer records a :class:`Snapshot` of the recommended mixture (lowest
posterior-mean loss among the candidates and finished runs), its posterior mean and sd, the
posterior probability that it is the best candidate, and the *value of the proposed batch*: the
expected reduction of the recommended loss if the batch were run,
``E_s[max(0, L_s(rec) - min_{b in batch} L_s(b))]``. :func:`stopping_report` compares the last
two snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


def batch_value(draws: np.ndarray, recommended: int, batch: Sequence[int]) -> float:
    """Expected loss reduction of the recommendation if ``batch`` (candidate indices) were run.

    Parameters
    ----------
    draws
        ``(sample, candidate)`` posterior target losses.
    recommended
        Index of the current recommendation.
    batch
        Indices of the proposed runs.

    Returns
    -------
    float
        ``mean_s max(0, draws[s, recommended] - min_b draws[s, b])`` (0 for an empty batch).
    """
    draws = np.asarray(draws, dtype=float)
    if len(batch) == 0:
        return 0.0
    gain = draws[:, recommended] - draws[:, list(batch)].min(axis=1)
    return float(np.maximum(gain, 0.0).mean())


@dataclass(frozen=True)
class Snapshot:
    """The optimum's posterior after one refit (JSON-able through :func:`dataclasses.asdict`)."""

    n_finished: int
    mixture: list[float]
    loss_mean: float
    loss_sd: float
    prob_best: float
    batch_value: float


@dataclass(frozen=True)
class StoppingReport:
    """How much the optimum still moves between the last two refits.

    Attributes
    ----------
    n_finished
        Finished runs at the last refit.
    loss_mean, loss_sd
        Posterior mean and sd of the recommended mixture's target loss.
    loss_shift
        Change of ``loss_mean`` since the previous refit (``nan`` with one refit).
    location_shift
        Total-variation distance ``0.5 |r_now - r_before|_1`` between the two recommendations.
    prob_best
        Posterior probability that the recommendation is the best candidate.
    value_next_batch
        Expected loss reduction from running the proposed batch (see :func:`batch_value`).
    stop
        Whether all of ``|loss_shift|``, ``value_next_batch`` are below ``loss_tol`` and
        ``location_shift`` is below ``location_tol``.
    """

    n_finished: int
    loss_mean: float
    loss_sd: float
    loss_shift: float
    location_shift: float
    prob_best: float
    value_next_batch: float
    stop: bool

    def to_dict(self) -> dict[str, float | int | bool]:
        """As a plain dict."""
        return asdict(self)


def stopping_report(
    history: Sequence[Snapshot], loss_tol: float = 1e-3, location_tol: float = 0.05
) -> StoppingReport | None:
    """Compare the last two snapshots; ``None`` before the first refit.

    Parameters
    ----------
    history
        Snapshots in refit order.
    loss_tol
        Loss change (target-loss units) below which the optimum's loss counts as settled.
    location_tol
        Total-variation distance below which its location counts as settled.

    Returns
    -------
    StoppingReport or None
    """
    if not history:
        return None
    last = history[-1]
    if len(history) > 1:
        before = history[-2]
        loss_shift = last.loss_mean - before.loss_mean
        location_shift = 0.5 * float(np.abs(np.subtract(last.mixture, before.mixture)).sum())
    else:
        loss_shift = location_shift = float("nan")
    stop = bool(
        abs(loss_shift) < loss_tol and location_shift < location_tol and last.batch_value < loss_tol
    )
    return StoppingReport(
        last.n_finished,
        last.loss_mean,
        last.loss_sd,
        float(loss_shift),
        float(location_shift),
        last.prob_best,
        last.batch_value,
        stop,
    )

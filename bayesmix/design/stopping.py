"""When to stop buying runs: how much the optimum still moves, and what one more batch is worth.

After each refit the designer records a :class:`Snapshot` of the recommended mixture (lowest
posterior-mean loss among the candidates and finished runs), its posterior mean and sd, the
posterior probability that it is the best candidate, and the *value of the proposed batch*: the
expected reduction of the recommended loss if the batch were run,
``E_s[max(0, L_s(rec) - min_{b in batch} L_s(b))]``. :func:`stopping_report` compares the last
two snapshots, and says whether the next batch is worth its compute: its value per unit of
compute (nats of the recommended loss per FLOP of ``6 N D``, or per run when every run costs the
same) against a threshold the team sets from what a nat is worth to it.
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
    #: compute of the proposed batch (``6 N D`` summed over its runs; the number of runs when
    #: every run costs the same); ``nan`` in snapshots saved before it was recorded
    batch_cost: float = float("nan")


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
    value_per_compute
        ``value_next_batch`` per unit of the batch's compute (``nan`` when unknown).
    worth_next_batch
        Whether ``value_per_compute`` reaches the threshold given to :func:`stopping_report`
        (``None`` without a threshold).
    stop
        Whether the optimum has settled (``|loss_shift|`` and ``value_next_batch`` below
        ``loss_tol``, ``location_shift`` below ``location_tol``), or the next batch is not worth
        its compute.
    """

    n_finished: int
    loss_mean: float
    loss_sd: float
    loss_shift: float
    location_shift: float
    prob_best: float
    value_next_batch: float
    stop: bool
    value_per_compute: float = float("nan")
    worth_next_batch: bool | None = None

    def to_dict(self) -> dict[str, float | int | bool]:
        """As a plain dict."""
        return asdict(self)


def stopping_report(
    history: Sequence[Snapshot],
    loss_tol: float = 1e-3,
    location_tol: float = 0.05,
    min_value_per_compute: float | None = None,
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
    min_value_per_compute
        Expected loss reduction per unit of compute below which one more batch is not worth
        running (e.g. ``1e-3 / 6e15``: a thousandth of a nat for the compute of a 100M-parameter
        run on 10B tokens); ``None``: not judged.

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
    settled = abs(loss_shift) < loss_tol and location_shift < location_tol and last.batch_value < loss_tol
    cost = float(last.batch_cost)
    per_compute = last.batch_value / cost if np.isfinite(cost) and cost > 0 else float("nan")
    worth = None
    if min_value_per_compute is not None and np.isfinite(per_compute):
        worth = bool(per_compute >= min_value_per_compute)
    return StoppingReport(
        last.n_finished,
        last.loss_mean,
        last.loss_sd,
        float(loss_shift),
        float(location_shift),
        last.prob_best,
        last.batch_value,
        bool(settled or worth is False),
        float(per_compute),
        worth,
    )

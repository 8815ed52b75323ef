"""Learning-rate schedules: linear warmup then cosine decay, or constant after warmup."""

from __future__ import annotations

import math

from bayesmix.errors import InputError

SCHEDULES = ("cosine", "constant")


def learning_rate(
    step: int,
    total_steps: int,
    peak: float,
    warmup_steps: int,
    schedule: str = "cosine",
    min_ratio: float = 0.1,
) -> float:
    """Return the learning rate for optimizer step ``step`` (0-based).

    Parameters
    ----------
    step
        Step about to be taken.
    total_steps
        Steps in the run.
    peak
        Learning rate at the end of warmup.
    warmup_steps
        Linear warmup from ``peak / warmup_steps`` to ``peak``.
    schedule
        ``"cosine"`` (decay to ``min_ratio * peak`` at the last step) or ``"constant"``.
    min_ratio
        Final fraction of the peak for the cosine schedule.

    Returns
    -------
    float
        The learning rate.
    """
    if schedule not in SCHEDULES:
        raise InputError("schedule", f"is {schedule!r}", f"use one of {SCHEDULES}")
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if schedule == "constant":
        return peak
    span = max(1, total_steps - warmup_steps - 1)
    progress = min(1.0, (step - warmup_steps) / span)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

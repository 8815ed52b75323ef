"""What a designer records of a run, and the checks on it.

A designer keeps one record per run, ``run_id -> {"mixture", "status", "losses", "scale"}``
(plus ``"target"``, the target loss, once the run is done), where ``status`` is one of
:data:`STATUSES`. :func:`mixture_row` and :func:`target_loss` check what a user reports (by
:meth:`~bayesmix.design.Designer.add` and :meth:`~bayesmix.design.Designer.tell`) and what a state
file holds, with the same rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bayesmix.errors import InputError

#: the states of a run: asked for (or running), finished with losses, failed
STATUSES = ("pending", "done", "failed")


def mixture_row(
    domains: Sequence[str], run_id: str, mixture: Mapping[str, float] | Sequence[float]
) -> list[float]:
    """The shares of ``mixture`` in the order of ``domains``, checked to lie on the simplex.

    Parameters
    ----------
    domains
        The designer's training domains.
    run_id
        The run, for error messages.
    mixture
        ``domain -> share`` (missing domains get 0) or shares in the order of ``domains``.

    Raises
    ------
    InputError
        Unknown domains, non-numbers, or shares that are negative or do not sum to 1 (within 1e-3).
    """
    if isinstance(mixture, Mapping):
        unknown = [k for k in mixture if k not in domains]
        if unknown:
            raise InputError("mixture", f"run {run_id!r}: unknown domains {unknown}", f"use {domains}")
        values = [mixture.get(d, 0.0) for d in domains]
    else:
        values = list(mixture)
    try:
        row = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InputError("mixture", f"run {run_id!r}: {values!r}", "give numbers") from None
    if len(row) != len(domains) or not all(math.isfinite(v) for v in row) or (
        abs(sum(row) - 1) > 1e-3 or min(row) < 0
    ):
        raise InputError("mixture", f"run {run_id!r}: {row} is not on the simplex of {domains}",
                         "give shares >= 0 summing to 1, one per training domain")
    return row


def target_loss(target: Mapping[str, float], run_id: str, losses: Any) -> tuple[float, dict[str, float]]:
    """The target loss of a run and its losses as ``domain -> float``.

    Parameters
    ----------
    target
        ``domain -> weight``; the target loss is the weighted sum.
    run_id
        The run, for error messages.
    losses
        ``domain -> loss`` over validation domains (every target domain included), or one
        number when the target is a single domain.

    Raises
    ------
    InputError
        Missing target domains, a bare number for a weighted target, or losses that are not
        finite positive numbers.
    """
    if isinstance(losses, Mapping):
        clean = {}
        for name, value in losses.items():
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise InputError("losses", f"run {run_id!r}: {name!r} -> {value!r}", "give numbers") from None
            clean[str(name)] = value
        missing = [d for d in target if d not in clean]
        if missing:
            raise InputError("losses", f"run {run_id!r} lacks target domains {missing}", "report them")
    elif len(target) == 1:
        try:
            clean = {next(iter(target)): float(losses)}
        except (TypeError, ValueError):
            raise InputError("losses", f"run {run_id!r}: got {losses!r}", "give a number or a dict") from None
    else:
        raise InputError("losses", f"run {run_id!r}: a bare number", f"give a dict with {list(target)}")
    bad = {k: v for k, v in clean.items() if not (np.isfinite(v) and v > 0)}
    if bad:
        raise InputError("losses", f"run {run_id!r}: non-finite or non-positive {bad}", "give losses > 0")
    return sum(w * clean[d] for d, w in target.items()), clean

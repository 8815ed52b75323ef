"""The shares of a chosen mixture as they are exported: checked, rounded, summing to 1."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import pandas as pd

from bayesmix.errors import InputError

#: how far the shares a user gives may sum from 1 before they are refused rather than renormalised
SUM_TOLERANCE = 0.01


def mixture_dict(mixture: pd.Series | Mapping[str, float], digits: int = 6) -> dict[str, float]:
    """``domain -> share`` rounded to ``digits``, renormalised so that the rounded shares sum to 1.

    The rounding remainder goes to the largest share, so the exported numbers sum to 1 exactly
    (to ``digits`` decimals) and can be fed to samplers that insist on it.
    """
    series = pd.Series(dict(mixture), dtype=float).clip(lower=0.0)
    series = series / series.sum()
    rounded = series.round(digits)
    rounded[rounded.idxmax()] = round(rounded.max() + 1.0 - rounded.sum(), digits)
    return {str(k): float(v) for k, v in rounded.items()}


def check_mixture(mixture: pd.Series | Mapping[str, float], field: str = "mixture") -> dict[str, float]:
    """The mixture as ``domain -> share`` after checking it is one.

    Parameters
    ----------
    mixture
        Shares per domain (a mapping, a Series, or an object with a ``mixture`` attribute such as
        :class:`~bayesmix.optimise.OptimisationResult`).
    field
        The name used in errors.

    Returns
    -------
    dict
        ``domain -> share``, renormalised when the shares sum to within
        :data:`SUM_TOLERANCE` of 1.

    Raises
    ------
    InputError
        When the mixture is empty, a share is not a finite number >= 0, or the shares do not sum
        to 1 (within :data:`SUM_TOLERANCE`).
    """
    if hasattr(mixture, "mixture") and not isinstance(mixture, Mapping | pd.Series):
        mixture = mixture.mixture
    try:
        items = dict(mixture).items()
    except (TypeError, ValueError):
        raise InputError(field, f"{mixture!r} is not domain -> share", "give e.g. web=0.6,code=0.4") from None
    if not items:
        raise InputError(field, "is empty", "give at least one domain with a share, e.g. web=1")
    shares: dict[str, float] = {}
    for name, value in items:
        try:
            share = float(value)
        except (TypeError, ValueError):
            share = math.nan
        if not math.isfinite(share) or share < 0:
            raise InputError(field, f"the share of {name!r} is {value!r}", "give shares between 0 and 1")
        shares[str(name)] = share
    total = sum(shares.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise InputError(
            field, f"the shares sum to {total:.4g}, not 1", "give shares that sum to 1, e.g. web=0.6,code=0.4"
        )
    return {name: share / total for name, share in shares.items()}


def export_shares(
    mixture: pd.Series | Mapping[str, float], digits: int = 6, field: str = "mixture"
) -> dict[str, float]:
    """The domains that are trained on and their shares, as every writer exports them.

    The shares are checked (:func:`check_mixture`), rounded to ``digits`` decimals so that they sum
    to 1 exactly (:func:`mixture_dict`), and the domains whose rounded share is 0 are left out:
    a framework would otherwise open a dataset it never samples from.

    Returns
    -------
    dict
        ``domain -> share``, every share > 0, summing to 1 to ``digits`` decimals.
    """
    shares = mixture_dict(check_mixture(mixture, field), digits)
    kept = {name: share for name, share in shares.items() if share > 0}
    return kept if len(kept) == len(shares) else mixture_dict(kept, digits)


def number(value: float, digits: int = 6) -> str:
    """``value`` in fixed-point notation without trailing zeros (``0.6``, ``1.0``, ``0.000001``).

    Unlike ``repr``, it never writes ``1e-06``: YAML 1.1 readers (PyYAML) take that for a string.
    """
    text = f"{float(value):.{digits}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def to_json(mixture: pd.Series | Mapping[str, float], digits: int = 6) -> str:
    """The mixture as a JSON object ``{"domain": share, ...}``."""
    return json.dumps(mixture_dict(mixture, digits), indent=2)


def to_yaml(mixture: pd.Series | Mapping[str, float], digits: int = 6) -> str:
    """The mixture as a YAML mapping under a ``mixture:`` key."""
    lines = ["mixture:"]
    lines += [f"  {json.dumps(k)}: {number(v, digits)}" for k, v in mixture_dict(mixture, digits).items()]
    return "\n".join(lines) + "\n"

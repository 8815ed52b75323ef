"""Run scales of a multi-scale designer: model size and tokens, their cost, their limits.

A :class:`RunScale` is a model name with its non-embedding parameters ``N`` and training tokens
``D``; its cost is the training compute ``6 N D``. :func:`parse_scales` reads the forms a user
gives, :func:`resolve_scales` picks the target scale (default the largest ``6 N D``) and the scale
of the space-filling runs (default the cheapest when cost-aware, else the target scale), and
:func:`scale_boxes` applies the constraints' token caps per scale, each within the target
scale's limits, so that every mixture drawn is feasible at the target scale.
:func:`acquisition_name` reads the ``"_per_cost"`` suffix that asks for cost-aware acquisition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesmix.design.acquisition import ACQUISITIONS, compute_cost
from bayesmix.errors import InputError
from bayesmix.optimise.constraints import TOL, Box, build_box

#: suffix of an acquisition name that asks for the cost-aware variant
PER_COST = "_per_cost"


@dataclass(frozen=True)
class RunScale:
    """A run scale: model name, non-embedding parameters ``N`` and training tokens ``D``."""

    name: str
    model_size: float
    tokens: float

    @property
    def cost(self) -> float:
        """Training compute ``6 N D`` FLOPs."""
        return float(compute_cost(self.model_size, self.tokens))

    def to_dict(self) -> dict[str, Any]:
        """``{"model", "model_size", "tokens"}`` (what :func:`parse_scales` reads)."""
        return {"model": self.name, "model_size": self.model_size, "tokens": self.tokens}


def parse_scales(scales: Sequence[Any]) -> list[RunScale]:
    """Read scales given as :class:`RunScale`, ``{"model", "model_size", "tokens"}`` or ``(N, D)``.

    Raises
    ------
    InputError
        Not a sequence, an entry of another form, non-positive sizes, or repeated names.
    """
    if isinstance(scales, str | bytes | Mapping) or not isinstance(scales, Sequence):
        raise InputError("scales", f"got {scales!r}", "give a list of {'model', 'model_size', 'tokens'} or (N, D)")
    out = []
    for i, entry in enumerate(scales):
        if isinstance(entry, RunScale):
            name, size, tokens = entry.name, entry.model_size, entry.tokens
        elif isinstance(entry, Mapping):
            unknown = set(entry) - {"model", "name", "model_size", "tokens"}
            if unknown or "model_size" not in entry or "tokens" not in entry:
                raise InputError(f"scales[{i}]", f"keys {sorted(entry)}", "give 'model', 'model_size' and 'tokens'")
            size, tokens = entry["model_size"], entry["tokens"]
            name = entry.get("model", entry.get("name"))
        elif isinstance(entry, Sequence) and not isinstance(entry, str) and len(entry) == 2:
            size, tokens = entry
            name = None
        else:
            raise InputError(f"scales[{i}]", f"got {entry!r}", "give {'model', 'model_size', 'tokens'} or (N, D)")
        try:
            size, tokens = float(size), float(tokens)
        except (TypeError, ValueError):
            raise InputError(f"scales[{i}]", f"sizes {size!r}, {tokens!r}", "give numbers") from None
        if not (math.isfinite(size) and size > 0 and math.isfinite(tokens) and tokens > 0):
            raise InputError(f"scales[{i}]", f"model_size {size!r}, tokens {tokens!r}", "give positive sizes")
        name = f"N{size:.3g}-D{tokens:.3g}" if name is None else str(name)
        out.append(RunScale(name, size, tokens))
    names = [s.name for s in out]
    if len(set(names)) != len(names) or not out:
        raise InputError("scales", f"names {names}", "give at least one scale, each with its own name")
    return out


def acquisition_name(acquisition: str, cost_aware: bool) -> tuple[str, bool]:
    """The acquisition's name without :data:`PER_COST`, and whether acquisition is cost-aware.

    Raises
    ------
    InputError
        The name (less the suffix) is not one of :data:`~bayesmix.design.acquisition.ACQUISITIONS`.
    """
    name = str(acquisition)
    if name.endswith(PER_COST):
        name, cost_aware = name[: -len(PER_COST)], True
    if name not in ACQUISITIONS:
        raise InputError(
            "acquisition", f"unknown {acquisition!r}", f"use one of {ACQUISITIONS}, optionally + {PER_COST!r}"
        )
    return name, bool(cost_aware)


def scale_index(
    scales: Sequence[RunScale], scale: str | int | None, default: int | None, field: str = "scale"
) -> int:
    """Index in ``scales`` of a scale given by name or index (``None``: ``default``).

    Raises
    ------
    InputError
        An unknown name or index, or ``None`` without a default.
    """
    if scale is None:
        if default is None:
            raise InputError(field, "no scale given", "name a scale")
        return default
    names = [s.name for s in scales]
    if isinstance(scale, int | np.integer) and not isinstance(scale, bool):
        if 0 <= scale < len(scales):
            return int(scale)
    elif isinstance(scale, str) and scale in names:
        return names.index(scale)
    raise InputError(field, f"unknown scale {scale!r}", f"use one of {names} or an index")


def resolve_scales(
    scales: Sequence[RunScale],
    target_scale: str | int | None,
    initial_scale: str | int | None,
    cost_aware: bool,
) -> tuple[int | None, int | None]:
    """Indices of the target scale and of the space-filling runs' scale (``None`` without scales).

    Defaults: the target scale is the one of largest ``6 N D``; the initial scale is the cheapest
    when ``cost_aware``, else the target scale.

    Raises
    ------
    InputError
        ``target_scale`` or ``initial_scale`` given without scales, or not among them.
    """
    for field, given in (("target_scale", target_scale), ("initial_scale", initial_scale)):
        if given is not None and not scales:
            raise InputError(field, f"got {given!r} without scales", "give scales too, or drop it")
    if not scales:
        return None, None
    costs = [s.cost for s in scales]
    target = int(np.argmax(costs))
    if target_scale is not None:
        target = scale_index(scales, target_scale, target, "target_scale")
    if initial_scale is not None:
        initial = scale_index(scales, initial_scale, target, "initial_scale")
    else:
        initial = int(np.argmin(costs)) if cost_aware else target
    return target, initial


def scale_boxes(
    domains: Sequence[str],
    constraints: Mapping[str, Any],
    scales: Sequence[RunScale],
    target_scale: int | None,
) -> tuple[Box, list[Box]]:
    """The target scale's box and one box per scale (its own token caps within the target's).

    Without scales, the box of ``constraints`` and a list holding it once.

    Raises
    ------
    InputError
        Constraints that no mixture satisfies, ``target_tokens`` with scales (each scale's tokens
        set its token caps), or a scale whose limits leave no mixture feasible at the target scale.
    """
    if not scales:
        box = build_box(domains, **constraints)
        return box, [box]
    if "target_tokens" in constraints:
        raise InputError("constraints", "target_tokens with scales",
                         "drop target_tokens: each scale's tokens set its token caps")
    per_tokens = "tokens" in constraints
    own = [
        build_box(domains, **constraints, **({"target_tokens": s.tokens} if per_tokens else {}))
        for s in scales
    ]
    box = own[target_scale]
    return box, [_intersect(b, box, f"scale {s.name!r}") for b, s in zip(own, scales, strict=True)]


def _intersect(a: Box, b: Box, what: str) -> Box:
    """The limits of both boxes; InputError if no mixture satisfies them."""
    lower, upper = np.maximum(a.lower, b.lower), np.minimum(a.upper, b.upper)
    if np.any(lower > upper + TOL) or upper.sum() < 1 - TOL or lower.sum() > 1 + TOL:
        raise InputError("constraints", f"no mixture satisfies the limits at {what} and at the target scale",
                         "relax the token caps or drop that scale")
    pick = lambda x, y, take_y: tuple(yy if t else xx for xx, yy, t in zip(x, y, take_y, strict=True))  # noqa: E731
    return Box(a.domains, lower, upper, pick(a.lower_reason, b.lower_reason, b.lower > a.lower),
               pick(a.upper_reason, b.upper_reason, b.upper < a.upper))

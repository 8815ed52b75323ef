"""Constraints on the mixture: per-domain box limits and probabilistic loss constraints.

Box limits come from bounds, fixed shares, exclusions and token budgets; loss constraints are
``P(L_i(r) <= threshold) >= prob``.

All linear constraints here reduce to ``lower_j <= r_j <= upper_j`` on the simplex; each limit
remembers which user input set it, so an infeasible set of constraints is reported by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bayesmix.errors import InputError

#: tolerance of the feasibility checks on the simplex
TOL = 1e-9


@dataclass(frozen=True)
class LossConstraint:
    """``P(L_domain(r) <= threshold) >= prob`` under the posterior.

    Parameters
    ----------
    domain
        A fitted validation domain.
    threshold
        Loss the domain must not exceed (in the fit's loss units).
    prob
        Required posterior probability, in (0, 1).
    """

    domain: str
    threshold: float
    prob: float = 0.9

    def describe(self) -> str:
        """Short human-readable form."""
        return f"P({self.domain} <= {self.threshold:g}) >= {self.prob:g}"


@dataclass(frozen=True)
class Box:
    """Per-domain limits ``lower <= r <= upper`` and what set each of them."""

    domains: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    lower_reason: tuple[str, ...]
    upper_reason: tuple[str, ...]

    @property
    def free(self) -> np.ndarray:
        """Indices of the domains whose share is not pinned (``lower < upper``)."""
        return np.flatnonzero(self.upper - self.lower > TOL)

    def contains(self, mixtures: np.ndarray, tol: float = 1e-7) -> np.ndarray:
        """Whether each row of ``mixtures`` is within the limits and sums to 1."""
        mixtures = np.atleast_2d(mixtures)
        inside = np.all((mixtures >= self.lower - tol) & (mixtures <= self.upper + tol), axis=1)
        return inside & (np.abs(mixtures.sum(axis=1) - 1) <= 1e-6)

    def project(self, point: np.ndarray) -> np.ndarray:
        """Euclidean projection of ``point`` onto ``{sum r = 1, lower <= r <= upper}`` (bisection)."""
        lo, hi = float(np.min(point - self.upper)) - 1.0, float(np.max(point - self.lower)) + 1.0
        for _ in range(200):
            shift = 0.5 * (lo + hi)
            total = np.clip(point - shift, self.lower, self.upper).sum()
            lo, hi = (shift, hi) if total > 1 else (lo, shift)
        r = np.clip(point - 0.5 * (lo + hi), self.lower, self.upper)
        return _fix_sum(r, self.lower, self.upper)


def _fix_sum(r: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Spread the rounding error of a nearly feasible point over domains with slack."""
    gap = 1.0 - r.sum()
    room = (upper - r) if gap > 0 else (r - lower)
    if room.sum() > 0:
        r = r + gap * room / room.sum()
    return np.clip(r, lower, upper)


def build_box(
    domains: Sequence[str],
    *,
    bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
    fixed: Mapping[str, float] | None = None,
    exclude: Sequence[str] = (),
    tokens: Mapping[str, float] | None = None,
    max_epochs: float | Mapping[str, float] | None = 1.0,
    target_tokens: float | None = None,
    tokens_sd: float | Mapping[str, float] | None = None,
    epochs_prob: float = 0.9,
) -> Box:
    """Collect the per-domain limits and check that some mixture satisfies all of them.

    Parameters
    ----------
    domains
        The training domains, in order.
    bounds
        ``domain -> (lower, upper)``; ``None`` leaves a side open.
    fixed
        ``domain -> share`` pinned exactly.
    exclude
        Domains that get share 0.
    tokens
        ``domain -> tokens available``; with ``target_tokens`` (``D_target``, the tokens of the
        run being planned) this caps ``r_j <= max_epochs_j * tokens_j / target_tokens``.
    max_epochs
        Maximum passes over each domain's data: one number or ``domain -> epochs``; ``None``: no
        cap (a domain with 0 tokens still gets share 0), for laws that price repetition in the
        loss.
    target_tokens
        Total training tokens of the planned run; required with ``tokens``.
    tokens_sd, epochs_prob
        Uncertain token counts: the relative uncertainty of each domain's ``tokens`` (the sd of
        its logarithm; one number or ``domain -> sd``), and the probability with which the epoch
        cap must hold. With ``U_j ~ LogNormal(ln tokens_j, sd_j)`` the chance constraint
        ``P(r_j D / U_j <= max_epochs_j) >= epochs_prob`` is the cap
        ``r_j <= max_epochs_j tokens_j exp(-sd_j z) / D`` with ``z`` the standard normal
        ``epochs_prob`` quantile (a 20% sd at 0.9 caps 23% lower).

    Raises
    ------
    InputError
        Unknown domains, bad numbers, or limits that no mixture satisfies (the message names the
        binding limits and which input set them).
    """
    domains = tuple(domains)
    m = len(domains)
    lower, upper = np.zeros(m), np.ones(m)
    lower_reason, upper_reason = ["non-negative"] * m, ["at most 1"] * m

    def index(field: str, name: str) -> int:
        if name not in domains:
            raise InputError(field, f"unknown training domain {name!r}", f"use names among {list(domains)}")
        return domains.index(name)

    def tighten(j: int, lo: float | None, hi: float | None, reason: str) -> None:
        if lo is not None and lo > lower[j]:
            lower[j], lower_reason[j] = lo, reason
        if hi is not None and hi < upper[j]:
            upper[j], upper_reason[j] = hi, reason

    for name, pair in (bounds or {}).items():
        try:
            lo, hi = pair
        except (TypeError, ValueError):
            raise InputError("bounds", f"{name!r} -> {pair!r}", "give (lower, upper), None for an open side") from None
        for value in (lo, hi):
            if value is not None and not (np.isfinite(value) and 0 <= value <= 1):
                raise InputError("bounds", f"{name!r} has limit {value!r}", "use shares in [0, 1]")
        tighten(index("bounds", name), lo, hi, f"bounds[{name!r}]")
    for name in exclude:
        tighten(index("exclude", name), None, 0.0, f"exclude {name!r}")
    if tokens_sd is not None:
        if tokens is None:
            raise InputError("tokens_sd", "is given without tokens", "give the tokens each domain has too")
        if max_epochs is None:
            raise InputError(
                "tokens_sd",
                "tightens an epoch cap, and no cap is set (a repetition-aware law prices repetition instead)",
                "give max_epochs too, e.g. max_epochs=4",
            )
        if not (isinstance(epochs_prob, int | float) and 0.5 <= epochs_prob < 1):
            raise InputError("epochs_prob", f"got {epochs_prob!r}", "give a probability in [0.5, 1), e.g. 0.9")
        sds = tokens_sd if isinstance(tokens_sd, Mapping) else dict.fromkeys(tokens, tokens_sd)
        for name, sd in sds.items():
            index("tokens_sd", name)
            if not (isinstance(sd, int | float) and not isinstance(sd, bool) and np.isfinite(sd) and sd >= 0):
                raise InputError("tokens_sd", f"{name!r}: {sd!r}", "give a relative uncertainty >= 0, e.g. 0.2")
        from scipy.stats import norm

        z = float(norm.ppf(epochs_prob))
        tokens = {name: available * float(np.exp(-float(sds.get(name, 0.0)) * z)) for name, available in tokens.items()}
    if tokens is not None:
        if target_tokens is None or not target_tokens > 0:
            raise InputError("target_tokens", f"got {target_tokens!r}", "give the planned run's total tokens (> 0)")
        for name, available in tokens.items():
            j = index("tokens", name)
            if max_epochs is None:
                if not available >= 0:
                    raise InputError("tokens", f"{name!r}: {available!r} tokens", "use >= 0")
                if available == 0:
                    tighten(j, None, 0.0, f"tokens[{name!r}] (none available)")
                continue
            epochs = max_epochs.get(name, 1.0) if isinstance(max_epochs, Mapping) else max_epochs
            if not (available >= 0 and epochs > 0):
                raise InputError("tokens", f"{name!r}: {available!r} tokens, {epochs!r} epochs", "use >= 0 and > 0")
            cap = epochs * available / target_tokens
            tighten(j, None, cap, f"tokens[{name!r}] ({epochs:g} epochs x {available:g} / {target_tokens:g})")
    for name, share in (fixed or {}).items():
        j = index("fixed", name)
        numeric = isinstance(share, int | float | np.integer | np.floating) and not isinstance(share, bool)
        if not (numeric and np.isfinite(share) and 0 <= share <= 1):
            raise InputError("fixed", f"{name!r} -> {share!r}", "use a share in [0, 1]")
        if share < lower[j] - TOL or share > upper[j] + TOL:
            raise InputError(
                "fixed",
                f"{name!r} is fixed at {share:g} outside [{lower[j]:g}, {upper[j]:g}] set by "
                f"{lower_reason[j]} / {upper_reason[j]}",
                "make the fixed share and the other limits agree",
            )
        lower[j], upper[j] = share, share
        lower_reason[j] = upper_reason[j] = f"fixed[{name!r}]"
    crossed = [f"{domains[j]} ({lower_reason[j]} > {upper_reason[j]})" for j in range(m) if lower[j] > upper[j] + TOL]
    if crossed:
        raise InputError("constraints", f"lower limit above upper limit for {crossed}", "relax one of them")
    if upper.sum() < 1 - TOL:
        binding = [f"{domains[j]} <= {upper[j]:g} ({upper_reason[j]})" for j in range(m) if upper[j] < 1]
        raise InputError(
            "constraints",
            f"infeasible: the upper limits sum to {upper.sum():g} < 1; binding: {binding}",
            "raise an upper bound, allow more epochs or tokens, or include an excluded domain",
        )
    if lower.sum() > 1 + TOL:
        binding = [f"{domains[j]} >= {lower[j]:g} ({lower_reason[j]})" for j in range(m) if lower[j] > 0]
        raise InputError(
            "constraints",
            f"infeasible: the lower limits sum to {lower.sum():g} > 1; binding: {binding}",
            "lower a lower bound or a fixed share",
        )
    return Box(domains, lower, np.minimum(upper, 1.0), tuple(lower_reason), tuple(upper_reason))


def with_trust_region(box: Box, lower: np.ndarray, upper: np.ndarray, what: str) -> tuple[Box, bool]:
    """``box`` narrowed to the trust region ``lower <= r <= upper`` where the two agree.

    The user's limits win: a domain whose own limits lie outside the trust region keeps them,
    and when the narrowed box admits no mixture the trust region is dropped. Returns the box and
    whether any limit of the trust region was applied.
    """
    lo, hi = box.lower.copy(), box.upper.copy()
    lo_reason, hi_reason = list(box.lower_reason), list(box.upper_reason)
    applied = False
    for j in range(len(box.domains)):
        if hi[j] - lo[j] <= TOL:  # pinned (fixed or excluded) by the user
            continue
        new_lo, new_hi = max(lo[j], lower[j]), min(hi[j], upper[j])
        if new_lo > new_hi + TOL:  # the user's limits lie outside the runs: they win
            continue
        if new_lo > lo[j] + TOL:
            lo[j], lo_reason[j], applied = new_lo, what, True
        if new_hi < hi[j] - TOL:
            hi[j], hi_reason[j], applied = new_hi, what, True
    if not applied or hi.sum() < 1 - TOL or lo.sum() > 1 + TOL:
        return box, False
    return Box(box.domains, lo, hi, tuple(lo_reason), tuple(hi_reason)), True


def check_loss_constraints(constraints: Sequence[LossConstraint], domains: Sequence[str]) -> None:
    """Raise :class:`InputError` if a loss constraint names an unknown domain or a bad probability."""
    for c in constraints:
        if c.domain not in domains:
            raise InputError("loss_constraints", f"unknown domain {c.domain!r}", f"use one of {list(domains)}")
        if not 0 < c.prob < 1:
            raise InputError("loss_constraints", f"{c.describe()}: prob {c.prob}", "give a probability in (0, 1)")
        if not np.isfinite(c.threshold):
            raise InputError("loss_constraints", f"{c.describe()}: threshold", "give a finite loss threshold")

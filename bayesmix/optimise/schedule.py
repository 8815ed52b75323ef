"""The best two-phase schedule under a phase-law fit, and whether it beats one mixture throughout.

Sample-average approximation as in :func:`~bayesmix.optimise.optimise`: the posterior is at most
``max_draws`` draws; the objective is the posterior mean of the target loss (the law's loss, no
run noise); SLSQP searches the phase mixtures and the switch point from several starts. By default
every share stays within the range the fitted runs' phases cover and the switch within the fitted
switch points (the law is trusted where it was fitted), and the best single-phase mixture is found
by the same fit, so ``prob_beats_single`` compares like with like on every draw.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from bayesmix.errors import InputError
from bayesmix.inference import _arviz
from bayesmix.inference.schedule import posterior_params, schedule_info
from bayesmix.laws.schedule import MIN_TAIL, PhaseMixingLaw
from bayesmix.optimise.targets import resolve_target


@dataclass
class ScheduleOptimum:
    """A recommended schedule and the best single-phase mixture under the same fit.

    Attributes
    ----------
    phases
        ``[(start, mixture), ...]``: the fraction of the run's tokens before each phase (0 first)
        and its mixture ``{domain: share}``.
    expected_loss, interval
        Posterior mean and central ``level`` interval of the target loss (nats/token) of the
        schedule (the law's loss: no run noise).
    single_mixture, single_expected_loss, single_interval
        The same for the best single-phase mixture.
    prob_beats_single
        Posterior probability that the schedule's target loss is below the single mixture's.
    gain, gain_interval
        Single-phase minus schedule target loss (nats/token): mean and interval.
    target, level
        The target's label and the interval's probability.
    """

    phases: list[tuple[float, dict[str, float]]]
    expected_loss: float
    interval: tuple[float, float]
    single_mixture: dict[str, float]
    single_expected_loss: float
    single_interval: tuple[float, float]
    prob_beats_single: float
    gain: float
    gain_interval: tuple[float, float]
    target: str
    level: float
    details: dict[str, object] = field(default_factory=dict)

    def schedule(self) -> list[tuple[float, dict[str, float]]]:
        """The phases, as :func:`~bayesmix.predict_schedule` and plan files take them."""
        return [(start, dict(mix)) for start, mix in self.phases]


def optimise_schedule(
    idata: _arviz.InferenceData,
    target: str | Mapping[str, float] | Sequence[float] | Callable[[np.ndarray], np.ndarray] = "mean",
    *,
    switch: float | None = None,
    switch_range: tuple[float, float] | None = None,
    trust_region: bool = True,
    level: float = 0.9,
    max_draws: int | None = 500,
    n_starts: int = 8,
    seed: int = 0,
) -> ScheduleOptimum:
    """The two-phase schedule that minimises the posterior expected target loss.

    Parameters
    ----------
    idata
        A fit of :func:`~bayesmix.fit_schedule`.
    target
        As in :func:`~bayesmix.optimise.optimise`: a fitted domain, ``"mean"``, a mapping
        ``domain -> weight`` or a function of the per-domain losses.
    switch
        Fix the switch point (fraction of the run's tokens before the second phase); default:
        optimise it within ``switch_range``.
    switch_range
        Where the switch may lie; default the fitted runs' switch points (``trust_region``) or
        (0.05, 0.95).
    trust_region
        Keep every phase share within the range the fitted runs' phases cover.
    level
        Probability of the intervals.
    max_draws, n_starts, seed
        Posterior draws used (chosen under ``seed``), SLSQP starts.

    Returns
    -------
    ScheduleOptimum

    Raises
    ------
    InputError
        Not a phase-law fit; bad ``switch``, ``switch_range`` or ``level``; an unknown target.
    """
    info = schedule_info(idata)
    if not 0 < float(level) < 1:
        raise InputError("level", f"got {level!r}", "give a probability in (0, 1), e.g. 0.9")
    domains, train = info["domains"], info["train_domains"]
    goal = resolve_target(target, domains)
    params = posterior_params(idata, max_draws, seed)
    m = len(train)
    if trust_region:
        low, high = (np.asarray(v, dtype=float) for v in info["share_range"])
    else:
        low, high = np.zeros(m), np.ones(m)
    if switch is not None:
        if not 0 < float(switch) < 1:
            raise InputError("switch", f"got {switch!r}", "give the fraction of tokens before the second phase, e.g. 0.8")
        span = (float(switch), float(switch))
    elif switch_range is not None:
        span = (float(switch_range[0]), float(switch_range[1]))
        if not 0 < span[0] <= span[1] < 1:
            raise InputError("switch_range", f"got {switch_range!r}", "give (low, high) with 0 < low <= high < 1")
    elif trust_region and info["start_range"]:
        span = tuple(info["start_range"])
    else:
        span = (0.05, 0.95)

    def losses(first: np.ndarray, second: np.ndarray, start: float) -> np.ndarray:
        mixtures = np.stack([first, second])[None]  # (1, 2, M)
        tails = np.array([[1.0, max(1.0 - start, MIN_TAIL)]])
        return goal(PhaseMixingLaw.evaluate(params, mixtures, tails, np)[:, 0, :])  # (sample,)

    def clean(x: np.ndarray) -> np.ndarray:
        x = np.clip(x, 0.0, None)
        return x / x.sum()

    rng = np.random.default_rng(seed)

    def search(n_vars: int, objective: Callable[[np.ndarray], float], bounds: list, constraints: list) -> np.ndarray:
        best, best_value = None, np.inf
        for k in range(n_starts):
            start = np.concatenate(
                [_feasible_start(low, high, rng if k else None) for _ in range(n_vars // m)]
                + ([np.array([np.mean(span)])] if n_vars % m else [])
            )
            result = minimize(objective, start, method="SLSQP", bounds=bounds, constraints=constraints, options={"maxiter": 300, "ftol": 1e-10})
            value = objective(result.x)
            if np.isfinite(value) and value < best_value:
                best, best_value = result.x, value
        return best

    share_bounds = list(zip(low, high, strict=True))
    single_x = search(
        m,
        lambda x: float(losses(clean(x), clean(x), 0.5).mean()),
        share_bounds,
        [{"type": "eq", "fun": lambda x: x.sum() - 1.0}],
    )
    single = clean(single_x)
    pair_x = search(
        2 * m + 1,
        lambda x: float(losses(clean(x[:m]), clean(x[m : 2 * m]), x[-1]).mean()),
        share_bounds * 2 + [span],
        [{"type": "eq", "fun": lambda x: x[:m].sum() - 1.0}, {"type": "eq", "fun": lambda x: x[m : 2 * m].sum() - 1.0}],
    )
    first, second, start = clean(pair_x[:m]), clean(pair_x[m : 2 * m]), float(np.clip(pair_x[-1], *span))
    scheduled = losses(first, second, start)
    flat = losses(single, single, 0.5)
    if scheduled.mean() > flat.mean():  # the single mixture is itself a schedule
        first, second, scheduled = single, single, flat
    q = [(1 - level) / 2, (1 + level) / 2]
    gain = flat - scheduled
    return ScheduleOptimum(
        phases=[(0.0, _named(first, train)), (round(start, 4), _named(second, train))],
        expected_loss=float(scheduled.mean()),
        interval=tuple(float(v) for v in np.quantile(scheduled, q)),
        single_mixture=_named(single, train),
        single_expected_loss=float(flat.mean()),
        single_interval=tuple(float(v) for v in np.quantile(flat, q)),
        prob_beats_single=float(np.mean(gain > 0)),
        gain=float(gain.mean()),
        gain_interval=tuple(float(v) for v in np.quantile(gain, q)),
        target=goal.name,
        level=float(level),
        details={"switch_range": list(span), "share_low": low.tolist(), "share_high": high.tolist(), "draws": len(flat)},
    )


def _feasible_start(low: np.ndarray, high: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """A mixture within ``[low, high]`` (the middle of the box projected, or a random point)."""
    base = (low + high) / 2 if rng is None else low + rng.random(len(low)) * (high - low)
    slack = 1.0 - base.sum()
    room = np.where(slack > 0, high - base, base - low)
    if room.sum() > 0:
        base = base + slack * room / room.sum()
    return np.clip(base, low, high)


def _named(shares: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    return {name: round(float(v), 6) for name, v in zip(names, shares, strict=True)}

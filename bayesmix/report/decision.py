"""The decision on the report's first screen: switch to the chosen mixture, not yet, or do not switch.

:func:`decide` is the rule. Its inputs are gathered from the study by
:func:`sampler_status` (is every fitted stage the optimum rests on a healthy posterior?) and
:func:`extrapolation_caveats` (does the answer rest on the law's form beyond the runs?)::

    status = sampler_status([("mixing-law fit", bm.health(idata))])
    decision = decide(best.p_beats_reference, sampler=status,
                      caveats=extrapolation_caveats(best), suggestions=["next-1", "next-2"])
    decision.verdict, decision.line          # "not_yet", "Not yet: ... Run these next: next-1, next-2 ..."
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bayesmix.errors import InputError
from bayesmix.inference.diagnostics import SamplerHealth
from bayesmix.inference.nested import (
    WARN_EFOLDS_MODEL_SIZE,
    WARN_EFOLDS_TOKENS,
    NestedFit,
    target_extrapolation,
)
from bayesmix.optimise.report import OptimisationResult
from bayesmix.optimise.support import describe_support
from bayesmix.report.uncertainty import POSTERIOR_METHODS, UNDECIDED

#: switch only when the chosen mixture beats the reference with at least this probability
SWITCH_AT = 0.9
#: at or below this probability of beating the reference, keep the reference
DO_NOT_SWITCH_AT = UNDECIDED[0]
#: verdicts of :func:`decide`
VERDICTS = ("switch", "not_yet", "do_not_switch", "no_optimum")
#: at most this many suggested runs are named in the verdict line
MAX_NAMED_RUNS = 5


@dataclass(frozen=True)
class SamplerStatus:
    """Sampler health of the fitted stages a decision rests on.

    Attributes
    ----------
    label
        ``"OK"``, ``"NOT OK"`` (a stage reports sampler problems), ``"point fit"`` (a stage has
        no posterior: MAP or the paper protocol) or ``"unknown"`` (no stage stored its health).
    text
        The label with its reason: which stages, which problems.
    """

    label: str
    text: str

    @property
    def ok(self) -> bool:
        """Whether every stage is a posterior without sampler problems."""
        return self.label == "OK"


@dataclass(frozen=True)
class Caveat:
    """A reason not to trust the optimum yet, beyond the posterior's own uncertainty.

    Attributes
    ----------
    kind
        ``"mixture"`` (the chosen mixture lies beyond the runs) or ``"scale"`` (the target scale
        lies far beyond the fitted runs).
    text
        The caveat in words, with its numbers.
    """

    kind: str
    text: str


@dataclass(frozen=True)
class Decision:
    """The verdict of :func:`decide`.

    Attributes
    ----------
    verdict
        One of :data:`VERDICTS`.
    line
        The verdict in one sentence, with its reasons and what to do next.
    reasons
        Why the verdict is not ``"switch"`` (empty when it is).
    """

    verdict: str
    line: str
    reasons: tuple[str, ...] = ()


def sampler_status(stages: Sequence[tuple[str, SamplerHealth | None]]) -> SamplerStatus:
    """The worst sampler health over ``stages`` (name, health; ``None``: none stored).

    Parameters
    ----------
    stages
        The fitted stages the decision rests on, e.g. ``[("mixing-law fit", bm.health(idata))]``.

    Returns
    -------
    SamplerStatus
        ``"NOT OK"`` when any posterior stage reports problems (they are named), else
        ``"point fit"`` when any stage has no posterior, else ``"unknown"`` when any stage
        stored no health (or there is none), else ``"OK"``.
    """
    bad = [
        f"{name} ({'; '.join(h.problems)})"
        for name, h in stages
        if h is not None and h.method in POSTERIOR_METHODS and not h.ok
    ]
    points = [
        f"{name} ({h.method})" for name, h in stages if h is not None and h.method not in POSTERIOR_METHODS
    ]
    missing = [name for name, h in stages if h is None]
    if bad:
        return SamplerStatus("NOT OK", "NOT OK: " + "; ".join(bad))
    if points:
        return SamplerStatus(
            "point fit",
            f"point fit: {', '.join(points)} has no posterior uncertainty, so P(beats reference) is 0 or 1",
        )
    if missing or not stages:
        what = ", ".join(missing) if missing else "no fitted stage"
        return SamplerStatus("unknown", f"unknown: {what} stored no sampler diagnostics")
    methods = sorted({h.method for _, h in stages if h is not None})
    return SamplerStatus(
        "OK", f"OK: {', '.join(name for name, _ in stages)} ({'/'.join(methods)}) report no sampler problem"
    )


def extrapolation_caveats(
    optimum: OptimisationResult | None,
    nested: NestedFit | None = None,
    target_scale: tuple[float, float] | None = None,
) -> list[Caveat]:
    """What the optimum rests on beyond the runs: its mixture, or a far target scale.

    Parameters
    ----------
    optimum
        The optimiser's answer; its ``support`` says whether ``r*`` lies beyond the runs
        (``optimum.extrapolation``, see :mod:`bayesmix.optimise.support`).
    nested, target_scale
        A nested fit and the target ``(N*, D*)``: the scale is *far* when it lies more than
        :data:`~bayesmix.inference.nested.WARN_EFOLDS_MODEL_SIZE` (model size) or
        :data:`~bayesmix.inference.nested.WARN_EFOLDS_TOKENS` (tokens) e-folds beyond the
        largest fitted value (:func:`~bayesmix.inference.nested.target_extrapolation`), the
        distance past which :func:`bayesmix.predict_target` warns.

    Returns
    -------
    list of Caveat
        Empty when the answer stays within the runs.
    """
    caveats = []
    if optimum is not None and optimum.extrapolation:
        caveats.append(Caveat("mixture", "chosen mixture: " + describe_support(optimum.support)))
    if nested is not None and target_scale is not None:
        try:
            info = target_extrapolation(nested, *target_scale)
        except InputError:  # a target below one token or parameter: nothing to compare
            return caveats
        far = []
        for key, label, limit in (
            ("model_size", "model size", WARN_EFOLDS_MODEL_SIZE),
            ("tokens", "tokens", WARN_EFOLDS_TOKENS),
        ):
            efolds = info[f"extrapolation_efolds_{key}"]
            if efolds > limit:
                far.append(
                    f"{label} {info[key]:.3g} is {np.exp(efolds):.3g}x the largest fitted "
                    f"({info[f'fitted_{key}_max']:.3g}; {efolds:.1f} e-folds > {limit:g})"
                )
        if far:
            text = (
                "target scale far beyond the runs: " + "; ".join(far) + "; there the scaling law's form, "
                "not the data, decides the predicted loss"
            )
            caveats.append(Caveat("scale", text))
    return caveats


def _names(suggestions: Sequence[str]) -> str:
    named = [str(s) for s in suggestions[:MAX_NAMED_RUNS]]
    more = f" and {len(suggestions) - MAX_NAMED_RUNS} more" if len(suggestions) > MAX_NAMED_RUNS else ""
    return ", ".join(named) + more


def decide(
    p_beats: float | None,
    *,
    sampler: SamplerStatus,
    caveats: Sequence[Caveat] = (),
    suggestions: Sequence[str] = (),
) -> Decision:
    """Switch to the chosen mixture, not yet, or do not switch: the report's verdict.

    The rule, first match wins (``p`` is P(beats reference): the posterior probability that
    the target loss at ``r*`` is below that at the reference, paired draw by draw):

    1. ``"no_optimum"``: no optimum was given (``p_beats`` is ``None``).
    2. ``"do_not_switch"``: ``p <= DO_NOT_SWITCH_AT`` (0.2): the reference is at least as likely
       to be better. Keeping the reference needs no more evidence, so this holds whatever the
       sampler or the extrapolation say.
    3. ``"switch"``: ``p >= SWITCH_AT`` (0.9), the sampler is ``"OK"`` on every stage the
       optimum rests on (a point fit or unknown health is not OK: its ``p`` is no posterior
       probability), and there is no extrapolation caveat (``r*`` inside the runs' support,
       target scale within the warning distance of the fitted runs).
    4. ``"not_yet"``: everything else: ``p`` between the two thresholds, or a sampler problem,
       or a caveat. The line names each reason and what to do: the suggested next runs when
       given (by name), refitting when the sampler is the problem.

    Parameters
    ----------
    p_beats
        P(beats reference) of the optimum, or ``None`` without one.
    sampler
        :func:`sampler_status` of the stages the optimum rests on.
    caveats
        :func:`extrapolation_caveats` of the optimum.
    suggestions
        Names of the suggested next runs (empty when there are none).

    Returns
    -------
    Decision
    """
    if not isinstance(sampler, SamplerStatus):
        raise InputError("sampler", f"got {type(sampler).__name__}", "pass sampler_status(...)")
    if p_beats is None:
        return Decision(
            "no_optimum",
            "No decision: no optimum was given (bayesmix optimise chooses the mixture).",
            ("no optimum",),
        )
    p = float(p_beats)
    if not 0.0 <= p <= 1.0:
        raise InputError("p_beats", f"got {p_beats!r}", "give a probability in [0, 1]")
    if p <= DO_NOT_SWITCH_AT:
        reason = f"P(beats reference) = {p:.3f} <= {DO_NOT_SWITCH_AT:g}"
        return Decision(
            "do_not_switch",
            f"Do not switch: keep the reference mixture; the chosen mixture is unlikely to beat it ({reason}).",
            (reason,),
        )
    reasons = []
    actions = []
    if p < SWITCH_AT:
        reasons.append(f"P(beats reference) = {p:.3f} < {SWITCH_AT:g}")
    if not sampler.ok:
        label, action = {
            "NOT OK": (
                "sampler NOT OK",
                "refit with more draws and tuning (or a higher target_accept) until the sampler is OK",
            ),
            "point fit": ("a point fit (no posterior uncertainty)", "fit with NUTS to know how sure to be"),
            "unknown": (
                "sampler health unknown",
                "refit with bayesmix so the sampler diagnostics are recorded",
            ),
        }.get(sampler.label, (f"sampler {sampler.label}", "check the sampler"))
        reasons.append(label)
        actions.append(action)
    kinds = {c.kind for c in caveats}
    if "mixture" in kinds:
        reasons.append("the chosen mixture lies beyond the runs")
    if "scale" in kinds:
        reasons.append("the target scale lies far beyond the runs")
    if not reasons:
        return Decision(
            "switch",
            f"Switch to this mixture: P(beats reference) = {p:.3f} >= {SWITCH_AT:g}, sampler OK, and no "
            "extrapolation beyond the runs.",
        )
    if suggestions:
        actions.append(f"run these next: {_names(suggestions)} (see Suggested next runs)")
    elif p < SWITCH_AT or kinds:
        where = []
        if "mixture" in kinds:
            where.append("near the chosen mixture")
        if "scale" in kinds:
            where.append("nearer the target scale")
        place = f" {' and '.join(where)}" if where else ""
        actions.append(f"train more runs{place} (bayesmix suggest proposes them) and refit")
    if p < SWITCH_AT:
        why = "; ".join(reasons)
    else:
        why = f"P(beats reference) = {p:.3f}, but " + "; ".join(reasons)
    line = f"Not yet: {why}. Next: {'; '.join(actions)}."
    return Decision("not_yet", line, tuple(reasons))

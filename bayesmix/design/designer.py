"""The ask/tell designer: proposes the next batch of proxy runs and records their results.

::

    from bayesmix.design import Designer
    designer = Designer(domains, target="pile_cc", acquisition="ei", seed=0,
                        constraints={"exclude": ["github"]})
    for proposal in designer.ask(8):
        ...                                   # train proposal.mixture
        designer.tell(proposal.run_id, {"pile_cc": 3.41})   # or designer.failed(proposal.run_id)
    designer.save("design.json"); designer = Designer.load("design.json")

Until ``n_initial`` runs have finished, batches are space-filling (:mod:`bayesmix.design.initial`).
After that every ``ask`` refits the surrogate (:mod:`bayesmix.design.surrogate`) on the finished
runs, scores candidates (a fixed ``pool`` of mixtures, or ``n_candidates`` random feasible ones
plus local moves around the current recommendation) with the acquisition, and fills the batch
greedily: after each pick, the draws are conditioned on a fantasy observation there
(:func:`bayesmix.design.fantasy.condition_on`), and candidates within ``min_distance`` of a
finished, pending or already-picked run are excluded. Pending runs from earlier asks are fantasised
the same way before the first pick. When every score is zero (e.g. EI with no improving draw) the
pick falls back to the feasible candidate farthest from all runs.

Model size and tokens
---------------------
With ``scales`` (e.g. ``[{"model": "cpu-xs", "model_size": 1.3e5, "tokens": 3e5},
{"model": "cpu-s", "model_size": 4.4e5, "tokens": 3e5}]``) a proposal is a (mixture, scale) pair
and carries ``model``, ``model_size`` and ``tokens``; ``target_scale`` (default: the scale of
largest compute ``6 N D``) is the scale whose optimum is sought. The surrogate then fits one
mixing law per scale, pooled towards the target scale's law (offset ``delta_s`` free, deviations
of ``log_k`` and ``t`` under Gaussian priors: :mod:`bayesmix.design.surrogate`), so runs at every
scale inform the target-scale optimum as far as the scales agree. Candidates are all feasible
(mixture, scale) pairs; an acquisition values a pair by what it teaches about the target-scale
optimum (:func:`bayesmix.design.acquisition.score_pairs`). With ``cost_aware=True`` (or an
acquisition name ending in ``"_per_cost"``, e.g. ``"ei_per_cost"``) that value is divided by the
pair's compute ``6 N D``, so a cheap small run is bought when it is informative enough; without
it, a proxy run never scores above the same mixture at the target scale. The space-filling phase
runs at ``initial_scale`` (default: the cheapest scale when cost-aware, else the target scale).
Token caps of the constraints (``tokens=``) are applied per scale with that scale's tokens.
Mixtures are always drawn inside the target scale's limits, so every recommendation is feasible
at the target scale. A duplicate is a run at the same scale within ``min_distance``.

Determinism: the randomness of the k-th ``ask`` comes from ``numpy.random.default_rng([seed, k])``
and the surrogate refit is seeded the same way, so a designer saved after any number of asks and
loaded again proposes exactly what the original would have.

State file: JSON with ``kind``, ``version`` (:data:`STATE_VERSION`; version-1 files of the
single-scale designer are read too) and a ``sha256`` of the rest. :meth:`Designer.load` refuses a
damaged, foreign, newer or edited file (:class:`~bayesmix.errors.IncompatibleFileError` naming
the problem and the fix) and checks every field (mixtures on the simplex, known domains and
scales, told losses that give the recorded target); ``verify=False`` accepts a file edited by
hand, whose fields are still checked. :meth:`Designer.from_ledger` rebuilds a designer from the
SQLite run ledger of :mod:`bayesmix.data.ledger`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bayesmix.data.runs import RunTable
from bayesmix.design.acquisition import ACQUISITIONS, compute_cost, optimum_probability, score, score_pairs
from bayesmix.design.fantasy import condition_on
from bayesmix.design.initial import feasible_candidates, maximin_select, project_rows, space_filling
from bayesmix.design.stopping import Snapshot, StoppingReport, batch_value, stopping_report
from bayesmix.design.surrogate import BootstrapLaw, LawFit, surrogate_from_dict
from bayesmix.errors import IncompatibleFileError, InputError
from bayesmix.inference.engine import one_blas_thread
from bayesmix.optimise.constraints import TOL, Box, build_box

#: version of the state file written by :meth:`Designer.save`
STATE_VERSION = 2
#: the ``kind`` field of a designer state file
STATE_KIND = "bayesmix.design.Designer"
#: suffix of an acquisition name that asks for the cost-aware variant
PER_COST = "_per_cost"
_STATUSES = ("pending", "done", "failed")
_REBUILD = "restore the file from a backup, or rebuild the designer with Designer.from_ledger or Designer.from_runs"


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


def _intersect(a: Box, b: Box, what: str) -> Box:
    """The limits of both boxes; InputError if no mixture satisfies them."""
    lower, upper = np.maximum(a.lower, b.lower), np.minimum(a.upper, b.upper)
    if np.any(lower > upper + TOL) or upper.sum() < 1 - TOL or lower.sum() > 1 + TOL:
        raise InputError("constraints", f"no mixture satisfies the limits at {what} and at the target scale",
                         "relax the token caps or drop that scale")
    pick = lambda x, y, take_y: tuple(yy if t else xx for xx, yy, t in zip(x, y, take_y, strict=True))  # noqa: E731
    return Box(a.domains, lower, upper, pick(a.lower_reason, b.lower_reason, b.lower > a.lower),
               pick(a.upper_reason, b.upper_reason, b.upper < a.upper))


@dataclass(frozen=True)
class Proposal:
    """One proposed run: its id (pass it to ``tell``/``failed``) and its mixture.

    With scales, also its model name, non-embedding parameters and training tokens (``None``
    without scales).
    """

    run_id: str
    mixture: dict[str, float]
    model: str | None = None
    model_size: float | None = None
    tokens: float | None = None


class Designer:
    """Ask/tell active learning of the training mixture (see the module docstring).

    Parameters
    ----------
    domains
        Training domains, in order.
    target
        The loss to minimise: a validation-domain name, or ``domain -> weight`` (weighted sum).
    acquisition
        ``"thompson"``, ``"ei"``, ``"ivr"`` (integrated variance near the optimum) or ``"random"``;
        any of them with the suffix ``"_per_cost"`` (e.g. ``"ei_per_cost"``) sets ``cost_aware``.
    seed
        Seed of everything random.
    constraints
        Keyword arguments of :func:`bayesmix.optimise.build_box` (``bounds``, ``fixed``,
        ``exclude``, ``tokens``, ``max_epochs``, ``target_tokens``); proposals always satisfy them.
        With ``scales``, token caps use each scale's tokens (do not give ``target_tokens``).
    pool
        Optional ``(C, M)`` fixed candidate mixtures (pool-based design); default random candidates.
    n_initial
        Finished runs before the first refit; batches before that are space-filling.
    n_candidates
        Random candidates per ask when there is no pool.
    min_distance
        Euclidean distance under which a candidate counts as a duplicate of a run (at the same scale).
    zero_weight
        Down-weighting of mixtures that zero out a domain in the space-filling phase (1 = none).
    surrogate
        :class:`~bayesmix.design.surrogate.BootstrapLaw` (default) or
        :class:`~bayesmix.design.surrogate.LawFit` (single scale only).
    scales
        Run scales proposals may use: :class:`RunScale`, ``{"model", "model_size", "tokens"}``
        or ``(model_size, tokens)`` pairs; ``None`` (default): mixtures only.
    target_scale
        Name or index of the scale whose optimum is sought; default the largest ``6 N D``.
    cost_aware
        Divide each candidate's acquisition value by its compute ``6 N D`` (needs ``scales``).
    initial_scale
        Name or index of the scale of the space-filling runs; default the cheapest scale when
        ``cost_aware``, else the target scale.
    explore
        Share of the picks after the space-filling phase that are space-filling too (the last
        picks of a batch, at ``initial_scale``: the feasible candidate farthest from every run), a
        hedge against a surrogate law that is confidently wrong away from the runs; 0 = none.

    Raises
    ------
    InputError
        Unknown acquisition, bad target, scales or constraints, ``cost_aware`` without scales,
        or a pool that does not fit the domains.
    """

    def __init__(
        self,
        domains: Sequence[str],
        target: str | Mapping[str, float],
        *,
        acquisition: str = "thompson",
        seed: int = 0,
        constraints: Mapping[str, Any] | None = None,
        pool: np.ndarray | None = None,
        n_initial: int = 16,
        n_candidates: int = 2000,
        min_distance: float = 1e-3,
        zero_weight: float = 1.0,
        surrogate: BootstrapLaw | LawFit | None = None,
        scales: Sequence[Any] | None = None,
        target_scale: str | int | None = None,
        cost_aware: bool = False,
        initial_scale: str | int | None = None,
        explore: float = 0.0,
    ):
        name = str(acquisition)
        if name.endswith(PER_COST):
            name, cost_aware = name[: -len(PER_COST)], True
        if name not in ACQUISITIONS:
            raise InputError(
                "acquisition", f"unknown {acquisition!r}", f"use one of {ACQUISITIONS}, optionally + {PER_COST!r}"
            )
        self.domains = [str(d) for d in domains]
        if not self.domains or len(set(self.domains)) != len(self.domains):
            raise InputError("domains", f"got {self.domains}", "give distinct training-domain names")
        self.target = {target: 1.0} if isinstance(target, str) else {str(k): float(v) for k, v in target.items()}
        if not self.target or not all(np.isfinite(v) for v in self.target.values()):
            raise InputError("target", f"got {target!r}", "give a domain name or domain -> finite weight")
        self.acquisition = name
        self.cost_aware = bool(cost_aware)
        self.seed = int(seed)
        self.constraints = dict(constraints or {})
        self.scales = [] if scales is None else parse_scales(scales)
        if self.cost_aware and not self.scales:
            raise InputError("cost_aware", "without scales every run costs the same",
                             "give scales=[{'model', 'model_size', 'tokens'}, ...] or drop cost_aware")
        self.surrogate = surrogate or BootstrapLaw()
        if self.scales and not isinstance(self.surrogate, BootstrapLaw):
            raise InputError("surrogate", "LawFit models one scale", "use BootstrapLaw with several scales")
        for field, given in (("target_scale", target_scale), ("initial_scale", initial_scale)):
            if given is not None and not self.scales:
                raise InputError(field, f"got {given!r} without scales", "give scales too, or drop it")
        self.target_scale: int | None = None
        self.initial_scale: int | None = None
        if self.scales:
            costs = [s.cost for s in self.scales]
            self.target_scale = int(np.argmax(costs))  # the default, and what _scale_index(None) gives
            if target_scale is not None:
                self.target_scale = self._scale_index(target_scale, "target_scale")
            if initial_scale is not None:
                self.initial_scale = self._scale_index(initial_scale, "initial_scale")
            else:
                self.initial_scale = int(np.argmin(costs)) if self.cost_aware else self.target_scale
        self.box, self.scale_boxes = self._boxes()
        self.pool = None if pool is None else np.asarray(pool, dtype=float)
        if self.pool is not None:
            if self.pool.ndim != 2 or self.pool.shape[1] != len(self.domains):
                raise InputError("pool", f"shape {self.pool.shape}", f"give (C, {len(self.domains)}) mixtures")
            self.pool = self.pool[self.box.contains(self.pool)]
            if not len(self.pool):
                raise InputError("pool", "no pool mixture satisfies the constraints", "relax them")
        self.n_initial = int(n_initial)
        self.n_candidates = int(n_candidates)
        self.min_distance = float(min_distance)
        self.zero_weight = float(zero_weight)
        try:
            self.explore = float(explore)
        except (TypeError, ValueError):
            self.explore = float("nan")
        if not 0 <= self.explore <= 1:
            raise InputError("explore", f"got {explore!r}", "give a share of each batch in [0, 1]")
        self.runs: dict[str, dict[str, Any]] = {}
        self.n_asks = 0
        self.history: list[Snapshot] = []

    # ------------------------------------------------------------------ scales
    def _scale_index(self, scale: str | int | None, field: str = "scale") -> int:
        """Index of a scale given by name or index (``None``: the target scale)."""
        if scale is None:
            if self.target_scale is None:
                raise InputError(field, "no scale given", "name a scale")
            return self.target_scale
        names = [s.name for s in self.scales]
        if isinstance(scale, int | np.integer) and not isinstance(scale, bool):
            if 0 <= scale < len(self.scales):
                return int(scale)
        elif isinstance(scale, str) and scale in names:
            return names.index(scale)
        raise InputError(field, f"unknown scale {scale!r}", f"use one of {names} or an index")

    def _boxes(self) -> tuple[Box, list[Box]]:
        """The target scale's box and one box per scale (its own token caps within the target's)."""
        if not self.scales:
            box = build_box(self.domains, **self.constraints)
            return box, [box]
        if "target_tokens" in self.constraints:
            raise InputError("constraints", "target_tokens with scales",
                             "drop target_tokens: each scale's tokens set its token caps")
        per_tokens = "tokens" in self.constraints
        own = [
            build_box(self.domains, **self.constraints, **({"target_tokens": s.tokens} if per_tokens else {}))
            for s in self.scales
        ]
        box = own[self.target_scale]
        return box, [_intersect(b, box, f"scale {s.name!r}") for b, s in zip(own, self.scales, strict=True)]

    def _scale_of(self, record: Mapping[str, Any]) -> int:
        return 0 if not self.scales else self._scale_index(record.get("scale"))

    # ------------------------------------------------------------------ records
    def _records(self, status: str) -> tuple[np.ndarray, np.ndarray]:
        """Mixtures ``(n, M)`` and scale indices ``(n,)`` of the runs with ``status``."""
        chosen = [r for r in self.runs.values() if r["status"] == status]
        rows = np.asarray([r["mixture"] for r in chosen], dtype=float).reshape(-1, len(self.domains))
        return rows, np.asarray([self._scale_of(r) for r in chosen], dtype=int)

    def _mixtures(self, status: str) -> np.ndarray:
        return self._records(status)[0]

    def _target_loss(self, run_id: str, losses: float | Mapping[str, float]) -> tuple[float, dict[str, float]]:
        if isinstance(losses, Mapping):
            clean = {}
            for name, value in losses.items():
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise InputError("losses", f"run {run_id!r}: {name!r} -> {value!r}", "give numbers") from None
                clean[str(name)] = value
            missing = [d for d in self.target if d not in clean]
            if missing:
                raise InputError("losses", f"run {run_id!r} lacks target domains {missing}", "report them")
        elif len(self.target) == 1:
            try:
                clean = {next(iter(self.target)): float(losses)}
            except (TypeError, ValueError):
                raise InputError("losses", f"run {run_id!r}: got {losses!r}", "give a number or a dict") from None
        else:
            raise InputError("losses", f"run {run_id!r}: a bare number", f"give a dict with {list(self.target)}")
        bad = {k: v for k, v in clean.items() if not (np.isfinite(v) and v > 0)}
        if bad:
            raise InputError("losses", f"run {run_id!r}: non-finite or non-positive {bad}", "give losses > 0")
        return sum(w * clean[d] for d, w in self.target.items()), clean

    def _mixture_row(self, run_id: str, mixture: Mapping[str, float] | Sequence[float]) -> list[float]:
        if isinstance(mixture, Mapping):
            unknown = [k for k in mixture if k not in self.domains]
            if unknown:
                raise InputError("mixture", f"run {run_id!r}: unknown domains {unknown}", f"use {self.domains}")
            values = [mixture.get(d, 0.0) for d in self.domains]
        else:
            values = list(mixture)
        try:
            row = [float(v) for v in values]
        except (TypeError, ValueError):
            raise InputError("mixture", f"run {run_id!r}: {values!r}", "give numbers") from None
        if len(row) != len(self.domains) or not all(math.isfinite(v) for v in row) or (
            abs(sum(row) - 1) > 1e-3 or min(row) < 0
        ):
            raise InputError("mixture", f"run {run_id!r}: {row} is not on the simplex of {self.domains}",
                             "give shares >= 0 summing to 1, one per training domain")
        return row

    def add(
        self,
        run_id: str,
        mixture: Mapping[str, float] | Sequence[float],
        losses: Any = None,
        *,
        scale: str | int | None = None,
        status: str = "done",
    ) -> None:
        """Record a run made outside the designer.

        Parameters
        ----------
        run_id
            A new id.
        mixture
            ``domain -> share`` or shares in the order of ``domains``.
        losses
            For ``status="done"``: as in :meth:`tell`; ignored otherwise.
        scale
            Its scale (name or index; default the target scale); only with ``scales``.
        status
            ``"done"`` (finished, with losses), ``"pending"`` (running or planned: later asks
            will not duplicate it, and it can be told) or ``"failed"``.

        Raises
        ------
        InputError
            A known id, a mixture off the simplex, bad losses, an unknown scale or status.
        """
        run_id = str(run_id)
        if run_id in self.runs:
            raise InputError("run_id", f"{run_id!r} is already recorded", "give a new id")
        if status not in _STATUSES:
            raise InputError("status", f"got {status!r}", f"use one of {_STATUSES}")
        row = self._mixture_row(run_id, mixture)
        if scale is not None and not self.scales:
            raise InputError("scale", f"got {scale!r} but the designer has no scales", "leave scale=None")
        scale_name = self.scales[self._scale_index(scale)].name if self.scales else None
        record: dict[str, Any] = {"mixture": row, "status": status, "losses": None, "scale": scale_name}
        if status == "done":
            target, clean = self._target_loss(run_id, losses)
            record.update(losses=clean, target=target)
        self.runs[run_id] = record

    def _pending_run(self, run_id: str, action: str) -> dict[str, Any]:
        if run_id not in self.runs:
            raise InputError("run_id", f"unknown run {run_id!r}", f"{action} only ids returned by ask()")
        record = self.runs[run_id]
        if record["status"] != "pending":
            raise InputError("run_id", f"run {run_id!r} is already {record['status']}", "each run is told once")
        return record

    def tell(self, run_id: str, losses: float | Mapping[str, float]) -> None:
        """Record the losses of a pending run (a dict over validation domains, or one number).

        Raises
        ------
        InputError
            Unknown id, a run already told or failed, missing target domains, or losses that are
            not finite positive numbers (nothing is recorded then).
        """
        record = self._pending_run(run_id, "tell")
        target, clean = self._target_loss(run_id, losses)
        record.update(status="done", losses=clean, target=target)

    def failed(self, run_id: str) -> None:
        """Mark a pending run failed: it is no longer pending and never fitted."""
        self._pending_run(run_id, "fail")["status"] = "failed"

    @property
    def pending(self) -> list[str]:
        """Ids of the runs asked for and not yet told or failed."""
        return [k for k, r in self.runs.items() if r["status"] == "pending"]

    # ------------------------------------------------------------------ ask
    def _candidates(self, rng: np.random.Generator, centre: np.ndarray | None) -> np.ndarray:
        if self.pool is not None:
            return self.pool
        cands = feasible_candidates(self.box, self.n_candidates, rng)
        if centre is not None:  # local moves around the recommendation
            k = self.n_candidates // 4
            step = rng.uniform(0.02, 0.3, size=(k, 1))
            local = (1 - step) * centre + step * feasible_candidates(self.box, k, rng)
            cands = np.vstack([cands, project_rows(self.box, local)])
        return cands

    def _far_enough(self, cands: np.ndarray, taken: np.ndarray) -> np.ndarray:
        if not len(taken):
            return np.ones(len(cands), dtype=bool)
        dist = np.sqrt(((cands[:, None, :] - taken[None, :, :]) ** 2).sum(-1)).min(axis=1)
        return dist >= self.min_distance

    def _farthest(
        self,
        cands: np.ndarray,
        pair_mixture: np.ndarray,
        chosen: list[int],
        allowed: np.ndarray,
        cost: np.ndarray | None = None,
    ) -> int | None:
        """The allowed pair whose mixture is farthest from every run and pick (per unit cost)."""
        if not allowed.any():
            return None
        taken = np.vstack([self._taken(), cands[pair_mixture[chosen]]])
        far = np.sqrt(((cands[:, None, :] - taken[None, :, :]) ** 2).sum(-1)).min(axis=1)[pair_mixture]
        far = far / cost if cost is not None else far
        return int(np.argmax(np.where(allowed, far, -np.inf)))

    def _new_id(self) -> str:
        k = len(self.runs)
        while f"run-{k:05d}" in self.runs:  # ids recorded from a ledger or by add() may take the name
            k += 1
        return f"run-{k:05d}"

    def ask(self, n: int = 1) -> list[Proposal]:
        """Propose ``n`` new runs (pending until told or failed); see the module docstring.

        Raises
        ------
        InputError
            ``n`` is not a positive integer, or fewer than ``n`` unused feasible candidates remain.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise InputError("n", f"got {n!r}", "ask for at least 1 run (an integer)")
        rng = np.random.default_rng([self.seed, self.n_asks])
        done, done_scale = self._records("done")
        if len(done) < max(self.n_initial, 2):
            picks = self._initial(int(n), rng)
        else:
            picks = self._acquire(int(n), rng, done, done_scale)
        self.n_asks += 1
        proposals = []
        for row, s in picks:
            run_id = self._new_id()
            scale = self.scales[s] if self.scales else None
            self.runs[run_id] = {
                "mixture": [float(v) for v in row], "status": "pending", "losses": None,
                "scale": None if scale is None else scale.name,
            }
            mixture = dict(zip(self.domains, map(float, row), strict=True))
            if scale is None:
                proposals.append(Proposal(run_id, mixture))
            else:
                proposals.append(Proposal(run_id, mixture, scale.name, scale.model_size, scale.tokens))
        return proposals

    def _taken(self, scale: int | None = None) -> np.ndarray:
        """Mixtures of the finished and pending runs (at ``scale`` only, with scales)."""
        rows = []
        for status in ("done", "pending"):
            mix, sc = self._records(status)
            rows.append(mix if scale is None or not self.scales else mix[sc == scale])
        return np.vstack(rows)

    def _initial(self, n: int, rng: np.random.Generator) -> list[tuple[np.ndarray, int]]:
        s = 0 if self.initial_scale is None else self.initial_scale
        taken = self._taken(s)
        box = self.scale_boxes[s]
        if self.pool is None:
            rows = space_filling(n, box, rng, existing=taken, zero_weight=self.zero_weight)
            return [(row, s) for row in rows]
        free = self.pool[self._far_enough(self.pool, taken) & box.contains(self.pool)]
        if len(free) < n:
            raise InputError("n", f"{n} runs but {len(free)} unused pool mixtures", "ask for fewer")
        order = rng.permutation(len(free))  # random start, then maximin
        rows = free[order][maximin_select(free[order], n, taken if len(taken) else None)]
        return [(row, s) for row in rows]

    def _acquire(
        self, n: int, rng: np.random.Generator, done: np.ndarray, done_scale: np.ndarray
    ) -> list[tuple[np.ndarray, int]]:
        y = np.array([r["target"] for r in self.runs.values() if r["status"] == "done"])
        seed = self.seed * 100_003 + self.n_asks
        with one_blas_thread():
            if self.scales:
                posterior = self.surrogate.fit(done, y, seed=seed, scales=done_scale, n_scales=len(self.scales),
                                               target_scale=self.target_scale)
            else:
                posterior = self.surrogate.fit(done, y, seed=seed)
        pending, pending_scale = self._records("pending")
        done_target = posterior.predict(done)
        centre = None if self.pool is not None else done[int(np.argmin(done_target.mean(axis=0)))]
        cands = self._candidates(rng, centre)
        n_c = len(cands)
        # candidate pairs: the target scale's block first (ties go to the target scale)
        order = [0] if not self.scales else [self.target_scale] + [
            s for s in range(len(self.scales)) if s != self.target_scale
        ]
        allowed = np.concatenate([
            self._far_enough(cands, self._taken(s)) & self.scale_boxes[s].contains(cands) for s in order
        ])
        if allowed.sum() < n:
            raise InputError("n", f"{n} runs but {int(allowed.sum())} unused candidates", "ask for fewer")
        pair_scale = np.repeat(order, n_c)
        pair_mixture = np.tile(np.arange(n_c), len(order))
        if self.scales:
            blocks = [posterior.predict(cands, scale=s) for s in order]
            blocks += [posterior.predict(pending, scale=pending_scale)] if len(pending) else []
        else:
            blocks = [posterior.predict(np.vstack([cands, pending]))]
        draws = np.hstack([*blocks, done_target])
        n_pairs, n_p = len(pair_scale), len(pending)
        mean = draws.mean(axis=0)
        at_target = np.zeros(draws.shape[1], bool)
        at_target[:n_c] = True
        at_target[n_pairs + n_p :] = True
        rec = int(np.argmin(np.where(at_target, mean, np.inf)))
        rec_mixture = cands[rec] if rec < n_c else done[rec - n_pairs - n_p]
        best = float(mean[n_pairs + n_p :].min())
        first = draws.copy()  # the unconditioned posterior, for the snapshot
        for j in range(n_p):  # fantasise the pending runs
            draws = condition_on(draws, n_pairs + j, posterior.noise_var, rng)
        cost = np.array([self.scales[s].cost for s in pair_scale]) if self.cost_aware else None
        n_explore = 0
        if self.explore > 0:  # stochastic rounding: a share `explore` of the picks in the long run
            expected = self.explore * n
            n_explore = int(expected) + int(rng.random() < expected - int(expected))
        explore_scale = pair_scale == (0 if self.initial_scale is None else self.initial_scale)
        chosen: list[int] = []
        for i in range(n):
            pick = None
            if i >= n - n_explore:  # the batch's last picks fill the space (a hedge against a wrong law)
                pick = self._farthest(cands, pair_mixture, chosen, allowed & explore_scale)
            if pick is None:
                if self.scales:
                    values = score_pairs(self.acquisition, draws[:, :n_pairs], draws[:, :n_c], pair_mixture,
                                         rng=rng, best=best, noise_var=posterior.noise_var, cost=cost)
                else:
                    values = score(self.acquisition, draws[:, :n_c], rng=rng, best=best,
                                   noise_var=posterior.noise_var)
                values = np.where(allowed, values, -np.inf)
                pick = int(np.argmax(values))
                if not values[pick] > 0 and self.acquisition != "thompson":  # nothing to gain: explore
                    pick = self._farthest(cands, pair_mixture, chosen, allowed, cost)
            chosen.append(pick)
            same = (pair_scale == pair_scale[pick]) & (
                np.sqrt(((cands[pair_mixture] - cands[pair_mixture[pick]]) ** 2).sum(-1)) < self.min_distance
            )
            allowed &= ~same
            draws = condition_on(draws, pick, posterior.noise_var, rng)
        self.history.append(
            Snapshot(
                n_finished=len(done),
                mixture=[float(v) for v in rec_mixture],
                loss_mean=float(first[:, rec].mean()),
                loss_sd=float(first[:, rec].std()),
                prob_best=float(optimum_probability(first[:, at_target])[int(at_target[:rec].sum())]),
                batch_value=batch_value(first, rec, [int(pair_mixture[c]) for c in chosen]),
            )
        )
        return [(cands[pair_mixture[c]], int(pair_scale[c])) for c in chosen]

    # ------------------------------------------------------------------ results
    def recommendation(self) -> dict[str, float] | None:
        """The mixture with the lowest posterior-mean target loss at the last refit (or ``None``)."""
        if not self.history:
            return None
        return dict(zip(self.domains, self.history[-1].mixture, strict=True))

    def report(self, loss_tol: float = 1e-3, location_tol: float = 0.05) -> StoppingReport | None:
        """The stopping report (:func:`bayesmix.design.stopping.stopping_report`)."""
        return stopping_report(self.history, loss_tol, location_tol)

    def compute_spent(self, status: str | tuple[str, ...] = ("done", "failed")) -> float:
        """Sum of ``6 N D`` over the runs with ``status`` (finished and failed by default).

        Raises
        ------
        InputError
            Without scales (runs have no size).
        """
        if not self.scales:
            raise InputError("scales", "the designer has no scales", "give scales to count compute")
        statuses = (status,) if isinstance(status, str) else tuple(status)
        return float(sum(self.scales[self._scale_of(r)].cost for r in self.runs.values() if r["status"] in statuses))

    def finished_table(self, scale: str | int | None = None) -> RunTable:
        """The finished runs as a :class:`~bayesmix.data.runs.RunTable` (losses as told).

        With scales, only the runs at ``scale`` (default the target scale).
        """
        import pandas as pd

        keep = None if not self.scales else self._scale_index(scale)
        done = {k: r for k, r in self.runs.items() if r["status"] == "done" and (
            keep is None or self._scale_of(r) == keep)}
        if not done:
            raise InputError("runs", "no finished runs" + ("" if keep is None else " at that scale"),
                             "tell some runs first")
        index = pd.Index(list(done), name="run")
        mix = pd.DataFrame([r["mixture"] for r in done.values()], index=index, columns=self.domains)
        losses = pd.DataFrame([r["losses"] for r in done.values()], index=index)
        return RunTable(mix, losses)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """The whole state as JSON-able data (:meth:`from_dict` reads it back)."""
        return {
            "kind": STATE_KIND,
            "version": STATE_VERSION,
            "domains": self.domains,
            "target": self.target,
            "acquisition": self.acquisition,
            "cost_aware": self.cost_aware,
            "seed": self.seed,
            "constraints": self.constraints,
            "pool": None if self.pool is None else self.pool.tolist(),
            "n_initial": self.n_initial,
            "n_candidates": self.n_candidates,
            "min_distance": self.min_distance,
            "zero_weight": self.zero_weight,
            "surrogate": self.surrogate.to_dict(),
            "scales": [s.to_dict() for s in self.scales] or None,
            "target_scale": None if self.target_scale is None else self.scales[self.target_scale].name,
            "initial_scale": None if self.initial_scale is None else self.scales[self.initial_scale].name,
            "explore": self.explore,
            "runs": self.runs,
            "n_asks": self.n_asks,
            "history": [asdict(s) for s in self.history],
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state to a JSON file with a sha256 of its content.

        Atomic: a temporary file, then a rename.
        """
        path = Path(path)
        state = self.to_dict()
        state["sha256"] = _digest(state)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, path)

    @classmethod
    def from_dict(cls, state: Any, source: str = "designer state") -> Designer:
        """Rebuild a designer from :meth:`to_dict` (or a version-1 state), checking every field.

        Parameters
        ----------
        state
            The parsed state.
        source
            What to call it in error messages (the file name).

        Raises
        ------
        IncompatibleFileError
            Not a designer state, another version, or a field that is missing, of the wrong type
            or inconsistent (the message names it and the fix).
        """
        if not isinstance(state, Mapping):
            raise _corrupt(source, "file", f"holds a JSON {type(state).__name__}, not a designer state",
                           "give a file written by Designer.save")
        kind, version = state.get("kind"), state.get("version")
        if kind != STATE_KIND and not (kind is None and version == 1):
            raise _corrupt(source, "kind", f"is {kind!r}, not {STATE_KIND!r}: this is not a designer state file",
                           "give a file written by Designer.save")
        if version not in (1, STATE_VERSION) or isinstance(version, bool):
            raise _corrupt(source, "version", f"is {version!r}; this bayesmix reads designer states 1 and "
                           f"{STATE_VERSION}", "open it with the bayesmix version that wrote it, or "
                           "rebuild the designer with Designer.from_ledger or Designer.from_runs")
        fields = _FIELDS_V1 if version == 1 else _FIELDS_V2
        for name, types in fields.items():
            if name not in state:
                raise _corrupt(source, name, "is missing", _REBUILD)
            value = state[name]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise _corrupt(source, name, f"has type {type(value).__name__}", _REBUILD)
        extra = set(state) - set(fields) - {"kind", "version", "sha256"}
        if extra:
            raise _corrupt(source, "file", f"unknown fields {sorted(extra)}", _REBUILD)
        try:
            designer = cls(
                state["domains"],
                state["target"],
                acquisition=state["acquisition"],
                seed=state["seed"],
                constraints=state["constraints"],
                pool=None if state["pool"] is None else np.asarray(state["pool"], dtype=float),
                n_initial=state["n_initial"],
                n_candidates=state["n_candidates"],
                min_distance=state["min_distance"],
                zero_weight=state["zero_weight"],
                surrogate=surrogate_from_dict(state["surrogate"]),
                scales=state.get("scales"),
                target_scale=state.get("target_scale"),
                cost_aware=state.get("cost_aware", False),
                initial_scale=state.get("initial_scale"),
                explore=state.get("explore", 0.0),
            )
        except InputError as exc:
            raise _corrupt(source, exc.field, exc.problem, exc.fix) from None
        except (TypeError, ValueError) as exc:
            raise _corrupt(source, "settings", str(exc), _REBUILD) from None
        designer.runs = {str(k): designer._checked_run(str(k), v, source) for k, v in state["runs"].items()}
        if state["n_asks"] < 0:
            raise _corrupt(source, "n_asks", f"is {state['n_asks']}", _REBUILD)
        designer.n_asks = int(state["n_asks"])
        designer.history = [designer._checked_snapshot(i, s, source) for i, s in enumerate(state["history"])]
        return designer

    def _checked_run(self, run_id: str, record: Any, source: str) -> dict[str, Any]:
        """One run of a state file, checked (see :meth:`from_dict`)."""
        field = f"runs[{run_id!r}]"
        if not isinstance(record, Mapping):
            raise _corrupt(source, field, f"is a {type(record).__name__}", _REBUILD)
        unknown = set(record) - {"mixture", "status", "losses", "target", "scale"}
        if unknown:
            raise _corrupt(source, field, f"unknown keys {sorted(unknown)}", _REBUILD)
        status = record.get("status")
        if status not in _STATUSES:
            raise _corrupt(source, f"{field}.status", f"is {status!r}, not one of {_STATUSES}", _REBUILD)
        mixture = record.get("mixture")
        try:
            if not isinstance(mixture, list):
                raise InputError("mixture", "not a list", "")
            row = self._mixture_row(run_id, mixture)
        except InputError:
            raise _corrupt(source, f"{field}.mixture", f"{mixture!r} is not a mixture on the simplex of "
                           f"{len(self.domains)} domains {self.domains}", _REBUILD) from None
        scale = record.get("scale")
        if self.scales:
            names = [s.name for s in self.scales]
            if scale not in names:
                raise _corrupt(source, f"{field}.scale", f"unknown scale {scale!r} (scales: {names})", _REBUILD)
        elif scale is not None:
            raise _corrupt(source, f"{field}.scale", f"is {scale!r} but the designer has no scales", _REBUILD)
        out: dict[str, Any] = {"mixture": row, "status": status, "losses": None, "scale": scale}
        if status == "done":
            losses = record.get("losses")
            if not isinstance(losses, Mapping):
                raise _corrupt(source, f"{field}.losses", f"is {losses!r}", _REBUILD)
            try:
                target, clean = self._target_loss(run_id, losses)
            except InputError as exc:
                raise _corrupt(source, f"{field}.losses", exc.problem, _REBUILD) from None
            told = record.get("target")
            if not isinstance(told, int | float) or not math.isclose(told, target, rel_tol=1e-9, abs_tol=1e-12):
                raise _corrupt(source, f"{field}.target", f"is {told!r}, but its losses give {target!r}", _REBUILD)
            out.update(losses=clean, target=float(told))
        return out

    def _checked_snapshot(self, i: int, snap: Any, source: str) -> Snapshot:
        field = f"history[{i}]"
        try:
            snapshot = Snapshot(**snap)
        except TypeError:
            raise _corrupt(source, field, f"is {snap!r}", _REBUILD) from None
        if not isinstance(snapshot.mixture, list) or len(snapshot.mixture) != len(self.domains):
            raise _corrupt(source, f"{field}.mixture", f"{snapshot.mixture!r}", _REBUILD)
        return snapshot

    @classmethod
    def load(cls, path: str | os.PathLike[str], verify: bool = True) -> Designer:
        """Read a state file written by :meth:`save`.

        Parameters
        ----------
        path
            The file.
        verify
            Check the file's sha256 (a file edited after saving is refused). ``False`` loads a
            file edited by hand; its fields are checked either way.

        Raises
        ------
        InputError
            The file does not exist or is not a file.
        IncompatibleFileError
            Damaged (not JSON, truncated), not a designer state, another state version, edited
            (sha256 mismatch, with ``verify``) or with an inconsistent field.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError("path", f"{str(path)!r} does not exist", "give a file written by save()") from None
        except IsADirectoryError:
            raise InputError("path", f"{str(path)!r} is a directory", "give a file written by save()") from None
        except UnicodeDecodeError:
            raise _corrupt(str(path), "file", "is binary, not JSON", "give a file written by Designer.save") from None
        try:
            state = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _corrupt(str(path), "file", f"is not valid JSON, it may be truncated ({exc})", _REBUILD) from None
        if verify and isinstance(state, Mapping) and state.get("version") != 1 and state.get("kind") == STATE_KIND:
            if "sha256" not in state:
                raise _corrupt(str(path), "sha256", "is missing", "pass verify=False to load a file written by hand")
            if state["sha256"] != _digest(state):
                raise _corrupt(str(path), "sha256", "does not match the content: the file was changed after it "
                               "was saved", f"{_REBUILD}; pass verify=False if you edited it on purpose")
        return cls.from_dict(state, source=str(path))

    @classmethod
    def from_runs(
        cls, runs: RunTable, target: str | Mapping[str, float], *, scale: str | int | None = None, **options: Any
    ) -> Designer:
        """A designer that already knows the finished runs of ``runs``.

        ``options`` are the constructor's keyword arguments; with ``scales`` among them, every run
        is recorded at ``scale`` (default the target scale). To rebuild from the run ledger (with
        pending and failed runs and several scales) use :meth:`from_ledger`.
        """
        designer = cls(runs.train_domains, target, **options)
        mixtures, losses = runs.mixtures.to_numpy(), runs.losses
        for i, run_id in enumerate(runs.mixtures.index):
            designer.add(str(run_id), mixtures[i], losses.loc[run_id].to_dict(), scale=scale)
        return designer

    @classmethod
    def from_ledger(cls, ledger: Any, target: str | Mapping[str, float], **options: Any) -> Designer:
        """A designer rebuilt from the SQLite run ledger (:class:`bayesmix.data.ledger.Ledger`).

        * ``finished`` runs are told their losses at their last evaluated checkpoint (the
          ledger's losses of the target domains at the run's largest step);
        * ``planned`` and ``running`` runs become pending (asks do not duplicate them, and
          :meth:`tell` / :meth:`failed` take their ledger ids);
        * ``failed`` runs are recorded as failed.

        Parameters
        ----------
        ledger
            A :class:`~bayesmix.data.ledger.Ledger` or the path of its ``.sqlite`` file.
        target
            As in the constructor (validation-domain names of the ledger's evaluations).
        **options
            The constructor's keyword arguments; ``domains`` (default: every domain of the runs'
            mixtures, sorted). ``scales`` default: one per model of the ledger when it has
            several (name = model name, ``model_size`` = non-embedding parameters, ``tokens`` =
            median tokens of its runs); a run's scale is its model name.

        Raises
        ------
        InputError
            A missing ledger file, a finished run without a loss of a target domain, a run whose
            model is not among ``scales``, or a mixture domain outside ``domains``.
        """
        from bayesmix.data.ledger import Ledger

        if not isinstance(ledger, Ledger):
            path = Path(ledger)
            if not path.is_file():
                raise InputError("ledger", f"{str(path)!r} is not a file", "give the study's .sqlite ledger")
            ledger = Ledger(path)
        records = ledger.runs()
        domains = options.pop("domains", None)
        if domains is None:
            domains = sorted({d for r in records for d in r.mixture})
        if not domains:
            raise InputError("ledger", f"{ledger.path} has no runs", "add runs, or start a Designer directly")
        models = sorted({r.model_name for r in records})
        if options.get("scales") is None and len(models) > 1:
            options["scales"] = [
                {"model": m, "model_size": float(np.median([r.params_non_embedding for r in records
                                                             if r.model_name == m])),
                 "tokens": float(np.median([r.tokens for r in records if r.model_name == m]))}
                for m in models
            ]
        designer = cls(domains, target, **options)
        evals = ledger.evals()
        last = evals.sort_values("step").groupby(["run", "domain"]).tail(1)
        final = {run: dict(zip(g["domain"], g["loss"], strict=True)) for run, g in last.groupby("run")}
        names = [s.name for s in designer.scales]
        incomplete = []
        for r in records:
            scale = None
            if designer.scales:
                if r.model_name not in names:
                    raise InputError("scales", f"run {r.id!r} uses model {r.model_name!r}, not among {names}",
                                     f"add a scale named {r.model_name!r}")
                scale = r.model_name
            status = {"finished": "done", "failed": "failed"}.get(r.status, "pending")
            losses = final.get(r.id, {})
            if status == "done" and any(d not in losses for d in designer.target):
                incomplete.append(r.id)
                continue
            designer.add(r.id, r.mixture, losses, scale=scale, status=status)
        if incomplete:
            raise InputError("ledger", f"finished runs {incomplete} have no evaluation of the target domains "
                             f"{list(designer.target)}", "record their evaluations, mark them failed "
                             "(Ledger.set_status), or choose a target they were evaluated on")
        return designer


def _digest(state: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``state`` without its ``sha256`` field."""
    body = {k: v for k, v in state.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _corrupt(source: str, field: str, problem: str, fix: str) -> IncompatibleFileError:
    return IncompatibleFileError(f"{source}: {field}: {problem}. Fix: {fix}")


_NUMBER = (int, float)
_FIELDS_V1: dict[str, tuple[type, ...]] = {
    "domains": (list,),
    "target": (dict,),
    "acquisition": (str,),
    "seed": (int,),
    "constraints": (dict,),
    "pool": (list, type(None)),
    "n_initial": (int,),
    "n_candidates": (int,),
    "min_distance": _NUMBER,
    "zero_weight": _NUMBER,
    "surrogate": (dict,),
    "runs": (dict,),
    "n_asks": (int,),
    "history": (list,),
}
_FIELDS_V2: dict[str, tuple[type, ...]] = {
    **_FIELDS_V1,
    "cost_aware": (bool,),
    "scales": (list, type(None)),
    "target_scale": (str, type(None)),
    "initial_scale": (str, type(None)),
    "explore": _NUMBER,
}

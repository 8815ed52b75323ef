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
After that every ``ask`` refits the surrogate (:mod:`bayesmix.design.surrogate`; with one scale by
default the NUTS posterior of the mixing law, whose refits reuse the compiled model) on the finished
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

State file: JSON with ``kind``, ``version`` (:data:`~bayesmix.design.state.STATE_VERSION`;
version-1 files of the single-scale designer are read too) and a ``sha256`` of the rest.
:meth:`Designer.load` refuses a damaged, foreign, newer or edited file
(:class:`~bayesmix.errors.IncompatibleFileError` naming the problem and the fix) and checks every
field (mixtures on the simplex, known domains and scales, told losses that give the recorded
target); ``verify=False`` accepts a file edited by hand, whose fields are still checked.
:meth:`Designer.from_ledger` rebuilds a designer from the SQLite run ledger of
:mod:`bayesmix.data.ledger`.

This module holds the :class:`Designer` and its ask/tell loop; the parts it builds on live
beside it: run scales and their limits (:mod:`bayesmix.design.scales`), the checks on a run's
mixture and losses (:mod:`bayesmix.design.records`), candidate mixtures and space-filling picks
(:mod:`bayesmix.design.candidates`), the state file (:mod:`bayesmix.design.state`) and the
rebuild from a run ledger (:mod:`bayesmix.design.rebuild`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bayesmix.data.runs import RunTable
from bayesmix.design.acquisition import optimum_probability, score, score_pairs
from bayesmix.design.candidates import candidates, far_enough, farthest, initial_batch
from bayesmix.design.fantasy import condition_on
from bayesmix.design.rebuild import add_ledger_runs, ledger_settings, open_ledger
from bayesmix.design.records import STATUSES, mixture_row, target_loss
from bayesmix.design.scales import (
    PER_COST,
    RunScale,
    acquisition_name,
    parse_scales,
    resolve_scales,
    scale_boxes,
    scale_index,
)
from bayesmix.design.state import (
    REBUILD,
    STATE_KIND,
    STATE_VERSION,
    check_state,
    checked_run,
    checked_snapshot,
    corrupt,
    read_state,
    state_settings,
    write_state,
)
from bayesmix.design.stopping import Snapshot, StoppingReport, batch_value, stopping_report
from bayesmix.design.surrogate import BootstrapLaw, JointLawFit, LawFit, on_columns
from bayesmix.errors import InputError
from bayesmix.inference.engine import one_blas_thread

__all__ = ["PER_COST", "STATE_KIND", "STATE_VERSION", "Designer", "Proposal", "RunScale", "parse_scales"]


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
        ``"thompson"``, ``"ei"``, ``"ivr"`` (integrated variance near the optimum), ``"kg"``
        (knowledge gradient: value of a run for the final choice) or ``"random"``;
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
        :class:`~bayesmix.design.surrogate.LawFit` (the Bayesian posterior of the mixing law,
        refitted warm: the default with one scale) or
        :class:`~bayesmix.design.surrogate.BootstrapLaw` (the default with ``scales``) or
        :class:`~bayesmix.design.surrogate.JointLawFit` (the joint mixture x size law, with
        ``scales`` of distinct model sizes).
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
        surrogate: BootstrapLaw | LawFit | JointLawFit | None = None,
        scales: Sequence[Any] | None = None,
        target_scale: str | int | None = None,
        cost_aware: bool = False,
        initial_scale: str | int | None = None,
        explore: float = 0.0,
    ):
        name, cost_aware = acquisition_name(acquisition, cost_aware)
        self.domains = [str(d) for d in domains]
        if not self.domains or len(set(self.domains)) != len(self.domains):
            raise InputError("domains", f"got {self.domains}", "give distinct training-domain names")
        self.target = {target: 1.0} if isinstance(target, str) else {str(k): float(v) for k, v in target.items()}
        if not self.target or not all(np.isfinite(v) for v in self.target.values()):
            raise InputError("target", f"got {target!r}", "give a domain name or domain -> finite weight")
        self.acquisition = name
        self.cost_aware = cost_aware
        self.seed = int(seed)
        self.constraints = dict(constraints or {})
        self.scales: list[RunScale] = [] if scales is None else parse_scales(scales)
        if self.cost_aware and not self.scales:
            raise InputError("cost_aware", "without scales every run costs the same",
                             "give scales=[{'model', 'model_size', 'tokens'}, ...] or drop cost_aware")
        self.surrogate = surrogate or (BootstrapLaw() if self.scales else LawFit())
        if self.scales and isinstance(self.surrogate, LawFit):
            raise InputError("surrogate", "LawFit models one scale",
                             "use JointLawFit (the joint mixture x size law) or BootstrapLaw with several scales")
        if len(self.scales) < 2 and isinstance(self.surrogate, JointLawFit):
            raise InputError("surrogate", "JointLawFit models runs at several model sizes",
                             "give two or more scales (scales=[...]), or use LawFit for runs of one scale")
        if isinstance(self.surrogate, JointLawFit):
            sizes = [s.model_size for s in self.scales]
            if len(set(sizes)) != len(sizes):
                raise InputError("scales", f"model sizes {sizes} repeat",
                                 "give JointLawFit scales of distinct model sizes, or use BootstrapLaw")
        self.target_scale, self.initial_scale = resolve_scales(
            self.scales, target_scale, initial_scale, self.cost_aware
        )
        self.box, self.scale_boxes = scale_boxes(self.domains, self.constraints, self.scales, self.target_scale)
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

    # ------------------------------------------------------------------ runs
    def _scale_index(self, scale: str | int | None, field: str = "scale") -> int:
        """Index of a scale given by name or index (``None``: the target scale)."""
        return scale_index(self.scales, scale, self.target_scale, field)

    def _scale_of(self, record: Mapping[str, Any]) -> int:
        return 0 if not self.scales else self._scale_index(record.get("scale"))

    def _records(self, status: str) -> tuple[np.ndarray, np.ndarray]:
        """Mixtures ``(n, M)`` and scale indices ``(n,)`` of the runs with ``status``."""
        chosen = [r for r in self.runs.values() if r["status"] == status]
        rows = np.asarray([r["mixture"] for r in chosen], dtype=float).reshape(-1, len(self.domains))
        return rows, np.asarray([self._scale_of(r) for r in chosen], dtype=int)

    def _taken(self, scale: int | None = None) -> np.ndarray:
        """Mixtures of the finished and pending runs (at ``scale`` only, with scales)."""
        rows = []
        for status in ("done", "pending"):
            mix, sc = self._records(status)
            rows.append(mix if scale is None or not self.scales else mix[sc == scale])
        return np.vstack(rows)

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
        if status not in STATUSES:
            raise InputError("status", f"got {status!r}", f"use one of {STATUSES}")
        row = mixture_row(self.domains, run_id, mixture)
        if scale is not None and not self.scales:
            raise InputError("scale", f"got {scale!r} but the designer has no scales", "leave scale=None")
        scale_name = self.scales[self._scale_index(scale)].name if self.scales else None
        record: dict[str, Any] = {"mixture": row, "status": status, "losses": None, "scale": scale_name}
        if status == "done":
            target, clean = target_loss(self.target, run_id, losses)
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
        target, clean = target_loss(self.target, run_id, losses)
        record.update(status="done", losses=clean, target=target)

    def failed(self, run_id: str) -> None:
        """Mark a pending run failed: it is no longer pending and never fitted."""
        self._pending_run(run_id, "fail")["status"] = "failed"

    @property
    def pending(self) -> list[str]:
        """Ids of the runs asked for and not yet told or failed."""
        return [k for k, r in self.runs.items() if r["status"] == "pending"]

    # ------------------------------------------------------------------ ask
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

    def _initial(self, n: int, rng: np.random.Generator) -> list[tuple[np.ndarray, int]]:
        s = 0 if self.initial_scale is None else self.initial_scale
        rows = initial_batch(n, self.scale_boxes[s], self._taken(s), rng, pool=self.pool,
                             min_distance=self.min_distance, zero_weight=self.zero_weight)
        return [(row, s) for row in rows]

    def _acquire(
        self, n: int, rng: np.random.Generator, done: np.ndarray, done_scale: np.ndarray
    ) -> list[tuple[np.ndarray, int]]:
        y = np.array([r["target"] for r in self.runs.values() if r["status"] == "done"])
        seed = self.seed * 100_003 + self.n_asks
        # domains no run may train on (excluded, or capped at 0 at every scale) are left out of the
        # fit: a law cannot learn the effect of a share that is 0 in every run
        allowed = np.any([box.upper > 0 for box in self.scale_boxes], axis=0)
        pending, pending_scale = self._records("pending")
        free = np.flatnonzero(allowed | np.any(np.vstack([done, pending]) > 0, axis=0))
        fitted = done[:, free]
        with one_blas_thread():
            if self.scales:
                posterior = self.surrogate.fit(fitted, y, seed=seed, scales=done_scale, n_scales=len(self.scales),
                                               target_scale=self.target_scale,
                                               model_sizes=[s.model_size for s in self.scales])
            else:
                posterior = self.surrogate.fit(fitted, y, seed=seed)
        if len(free) < len(self.domains):
            posterior = on_columns(posterior, free)
        done_target = posterior.predict(done)
        centre = None if self.pool is not None else done[int(np.argmin(done_target.mean(axis=0)))]
        cands = candidates(self.box, self.pool, self.n_candidates, rng, centre)
        n_c = len(cands)
        # candidate pairs: the target scale's block first (ties go to the target scale)
        order = [0] if not self.scales else [self.target_scale] + [
            s for s in range(len(self.scales)) if s != self.target_scale
        ]
        allowed = np.concatenate([
            far_enough(cands, self._taken(s), self.min_distance) & self.scale_boxes[s].contains(cands)
            for s in order
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
        taken = self._taken()
        chosen: list[int] = []
        for i in range(n):
            pick = None
            if i >= n - n_explore:  # the batch's last picks fill the space (a hedge against a wrong law)
                pick = farthest(cands, taken, pair_mixture, chosen, allowed & explore_scale)
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
                    pick = farthest(cands, taken, pair_mixture, chosen, allowed, cost)
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
                batch_cost=float(sum(self.scales[pair_scale[c]].cost for c in chosen)) if self.scales else float(n),
            )
        )
        return [(cands[pair_mixture[c]], int(pair_scale[c])) for c in chosen]

    # ------------------------------------------------------------------ results
    def recommendation(self) -> dict[str, float] | None:
        """The mixture with the lowest posterior-mean target loss at the last refit (or ``None``)."""
        if not self.history:
            return None
        return dict(zip(self.domains, self.history[-1].mixture, strict=True))

    def report(
        self, loss_tol: float = 1e-3, location_tol: float = 0.05, min_value_per_compute: float | None = None
    ) -> StoppingReport | None:
        """The stopping report (:func:`bayesmix.design.stopping.stopping_report`).

        ``min_value_per_compute``: the expected reduction of the recommended loss per unit of
        compute (``6 N D`` with scales, else per run) below which the next batch is not worth it.
        """
        return stopping_report(self.history, loss_tol, location_tol, min_value_per_compute)

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
        write_state(self.to_dict(), path)

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
        check_state(state, source)
        try:
            designer = cls(**state_settings(state))
        except InputError as exc:
            raise corrupt(source, exc.field, exc.problem, exc.fix) from None
        except (TypeError, ValueError) as exc:
            raise corrupt(source, "settings", str(exc), REBUILD) from None
        names = [s.name for s in designer.scales]
        designer.runs = {
            str(k): checked_run(str(k), v, source, designer.domains, designer.target, names)
            for k, v in state["runs"].items()
        }
        if state["n_asks"] < 0:
            raise corrupt(source, "n_asks", f"is {state['n_asks']}", REBUILD)
        designer.n_asks = int(state["n_asks"])
        designer.history = [
            checked_snapshot(i, s, source, len(designer.domains)) for i, s in enumerate(state["history"])
        ]
        return designer

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
        return cls.from_dict(read_state(path, verify), source=str(path))

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
        ledger = open_ledger(ledger)
        records = ledger.runs()
        domains, options = ledger_settings(ledger, records, options)
        designer = cls(domains, target, **options)
        add_ledger_runs(designer.add, ledger, records, designer.target, [s.name for s in designer.scales])
        return designer

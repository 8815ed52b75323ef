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

Determinism: the randomness of the k-th ``ask`` comes from ``numpy.random.default_rng([seed, k])``
and the surrogate refit is seeded the same way, so a designer saved after any number of asks and
loaded again proposes exactly what the original would have. The state file is JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bayesmix.data.runs import RunTable
from bayesmix.design.acquisition import ACQUISITIONS, optimum_probability, score
from bayesmix.design.fantasy import condition_on
from bayesmix.design.initial import feasible_candidates, maximin_select, project_rows, space_filling
from bayesmix.design.stopping import Snapshot, StoppingReport, batch_value, stopping_report
from bayesmix.design.surrogate import BootstrapLaw, LawFit, surrogate_from_dict
from bayesmix.errors import IncompatibleFileError, InputError
from bayesmix.optimise.constraints import Box, build_box

STATE_VERSION = 1


@dataclass(frozen=True)
class Proposal:
    """One proposed run: its id (pass it to ``tell``/``failed``) and its mixture."""

    run_id: str
    mixture: dict[str, float]


class Designer:
    """Ask/tell active learning of the training mixture (see the module docstring).

    Parameters
    ----------
    domains
        Training domains, in order.
    target
        The loss to minimise: a validation-domain name, or ``domain -> weight`` (weighted sum).
    acquisition
        ``"thompson"``, ``"ei"``, ``"ivr"`` (integrated variance near the optimum) or ``"random"``.
    seed
        Seed of everything random.
    constraints
        Keyword arguments of :func:`bayesmix.optimise.build_box` (``bounds``, ``fixed``,
        ``exclude``, ``tokens``, ``max_epochs``, ``target_tokens``); proposals always satisfy them.
    pool
        Optional ``(C, M)`` fixed candidate mixtures (pool-based design); default random candidates.
    n_initial
        Finished runs before the first refit; batches before that are space-filling.
    n_candidates
        Random candidates per ask when there is no pool.
    min_distance
        Euclidean distance under which a candidate counts as a duplicate of a run.
    zero_weight
        Down-weighting of mixtures that zero out a domain in the space-filling phase (1 = none).
    surrogate
        :class:`~bayesmix.design.surrogate.BootstrapLaw` (default) or
        :class:`~bayesmix.design.surrogate.LawFit`.
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
    ):
        if acquisition not in ACQUISITIONS:
            raise InputError("acquisition", f"unknown {acquisition!r}", f"use one of {ACQUISITIONS}")
        self.domains = [str(d) for d in domains]
        self.target = {target: 1.0} if isinstance(target, str) else {str(k): float(v) for k, v in target.items()}
        if not self.target or not all(np.isfinite(v) for v in self.target.values()):
            raise InputError("target", f"got {target!r}", "give a domain name or domain -> finite weight")
        self.acquisition = acquisition
        self.seed = int(seed)
        self.constraints = dict(constraints or {})
        self.box: Box = build_box(self.domains, **self.constraints)
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
        self.surrogate = surrogate or BootstrapLaw()
        self.runs: dict[str, dict[str, Any]] = {}
        self.n_asks = 0
        self.history: list[Snapshot] = []

    # ------------------------------------------------------------------ records
    def _mixtures(self, status: str | tuple[str, ...]) -> np.ndarray:
        statuses = (status,) if isinstance(status, str) else status
        rows = [r["mixture"] for r in self.runs.values() if r["status"] in statuses]
        return np.asarray(rows, dtype=float).reshape(-1, len(self.domains))

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

    def add(self, run_id: str, mixture: Mapping[str, float] | Sequence[float], losses: Any) -> None:
        """Record a run made outside the designer (finished, with its losses)."""
        if run_id in self.runs:
            raise InputError("run_id", f"{run_id!r} is already recorded", "give a new id")
        if isinstance(mixture, Mapping):
            unknown = [k for k in mixture if k not in self.domains]
            if unknown:
                raise InputError("mixture", f"unknown domains {unknown}", f"use {self.domains}")
            row = [float(mixture.get(d, 0.0)) for d in self.domains]
        else:
            row = [float(v) for v in mixture]
        if len(row) != len(self.domains) or abs(sum(row) - 1) > 1e-3 or min(row) < 0:
            raise InputError("mixture", f"run {run_id!r}: {row}", "give shares >= 0 summing to 1")
        target, clean = self._target_loss(run_id, losses)
        self.runs[str(run_id)] = {"mixture": row, "status": "done", "losses": clean, "target": target}

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

    def ask(self, n: int = 1) -> list[Proposal]:
        """Propose ``n`` new runs (pending until told or failed); see the module docstring."""
        if int(n) != n or n < 1:
            raise InputError("n", f"got {n!r}", "ask for at least 1 run")
        rng = np.random.default_rng([self.seed, self.n_asks])
        done, pending = self._mixtures("done"), self._mixtures("pending")
        taken = np.vstack([done, pending])
        if len(done) < max(self.n_initial, 2):
            picks = self._initial(int(n), rng, taken)
        else:
            picks = self._acquire(int(n), rng, done, pending, taken)
        self.n_asks += 1
        proposals = []
        for row in picks:
            run_id = f"run-{len(self.runs):05d}"
            self.runs[run_id] = {"mixture": [float(v) for v in row], "status": "pending", "losses": None}
            proposals.append(Proposal(run_id, dict(zip(self.domains, map(float, row), strict=True))))
        return proposals

    def _initial(self, n: int, rng: np.random.Generator, taken: np.ndarray) -> np.ndarray:
        if self.pool is None:
            return space_filling(n, self.box, rng, existing=taken, zero_weight=self.zero_weight)
        free = self.pool[self._far_enough(self.pool, taken)]
        if len(free) < n:
            raise InputError("n", f"{n} runs but {len(free)} unused pool mixtures", "ask for fewer")
        order = rng.permutation(len(free))  # random start, then maximin
        return free[order][maximin_select(free[order], n, taken if len(taken) else None)]

    def _acquire(self, n: int, rng, done: np.ndarray, pending: np.ndarray, taken: np.ndarray) -> np.ndarray:
        y = np.array([r["target"] for r in self.runs.values() if r["status"] == "done"])
        posterior = self.surrogate.fit(done, y, seed=self.seed * 100_003 + self.n_asks)
        centre = None
        if self.pool is None:
            centre = done[int(np.argmin(posterior.predict(done).mean(axis=0)))]
        cands = self._candidates(rng, centre)
        allowed = self._far_enough(cands, taken)
        if allowed.sum() < n:
            raise InputError("n", f"{n} runs but {int(allowed.sum())} unused candidates", "ask for fewer")
        points = np.vstack([cands, pending, done])
        draws = posterior.predict(points)
        n_c, n_p = len(cands), len(pending)
        mean = draws.mean(axis=0)
        not_pending = np.r_[np.ones(n_c, bool), np.zeros(n_p, bool), np.ones(len(done), bool)]
        rec = int(np.argmin(np.where(not_pending, mean, np.inf)))
        best = float(mean[n_c + n_p :].min())
        first = draws.copy()  # the unconditioned posterior, for the snapshot
        for j in range(n_p):  # fantasise the pending runs
            draws = condition_on(draws, n_c + j, posterior.noise_var, rng)
        chosen: list[int] = []
        for _ in range(n):
            values = score(self.acquisition, draws[:, :n_c], rng=rng, best=best, noise_var=posterior.noise_var)
            values = np.where(allowed, values, -np.inf)
            pick = int(np.argmax(values))
            if not values[pick] > 0 and self.acquisition != "thompson":
                picked = np.vstack([taken, cands[chosen]]) if chosen else taken
                far = np.sqrt(((cands[:, None, :] - picked[None, :, :]) ** 2).sum(-1)).min(axis=1)
                pick = int(np.argmax(np.where(allowed, far, -np.inf)))
            chosen.append(pick)
            allowed &= np.sqrt(((cands - cands[pick]) ** 2).sum(-1)) >= self.min_distance
            draws = condition_on(draws, pick, posterior.noise_var, rng)
        self.history.append(
            Snapshot(
                n_finished=len(done),
                mixture=[float(v) for v in points[rec]],
                loss_mean=float(first[:, rec].mean()),
                loss_sd=float(first[:, rec].std()),
                prob_best=float(optimum_probability(first)[rec]),
                batch_value=batch_value(first, rec, chosen),
            )
        )
        return cands[chosen]

    # ------------------------------------------------------------------ results
    def recommendation(self) -> dict[str, float] | None:
        """The mixture with the lowest posterior-mean target loss at the last refit (or ``None``)."""
        if not self.history:
            return None
        return dict(zip(self.domains, self.history[-1].mixture, strict=True))

    def report(self, loss_tol: float = 1e-3, location_tol: float = 0.05) -> StoppingReport | None:
        """The stopping report (:func:`bayesmix.design.stopping.stopping_report`)."""
        return stopping_report(self.history, loss_tol, location_tol)

    def finished_table(self) -> RunTable:
        """The finished runs as a :class:`~bayesmix.data.runs.RunTable` (losses as told)."""
        import pandas as pd

        done = {k: r for k, r in self.runs.items() if r["status"] == "done"}
        index = pd.Index(list(done), name="run")
        mix = pd.DataFrame([r["mixture"] for r in done.values()], index=index, columns=self.domains)
        losses = pd.DataFrame([r["losses"] for r in done.values()], index=index)
        return RunTable(mix, losses)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """The whole state as JSON-able data."""
        return {
            "version": STATE_VERSION,
            "domains": self.domains,
            "target": self.target,
            "acquisition": self.acquisition,
            "seed": self.seed,
            "constraints": self.constraints,
            "pool": None if self.pool is None else self.pool.tolist(),
            "n_initial": self.n_initial,
            "n_candidates": self.n_candidates,
            "min_distance": self.min_distance,
            "zero_weight": self.zero_weight,
            "surrogate": self.surrogate.to_dict(),
            "runs": self.runs,
            "n_asks": self.n_asks,
            "history": [asdict(s) for s in self.history],
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state to a JSON file (atomically: a temporary file, then a rename)."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        os.replace(tmp, path)

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> Designer:
        """Rebuild a designer from :meth:`to_dict`."""
        if state.get("version") != STATE_VERSION:
            raise IncompatibleFileError(f"designer state version {state.get('version')!r} != {STATE_VERSION}")
        designer = cls(
            state["domains"],
            state["target"],
            acquisition=state["acquisition"],
            seed=state["seed"],
            constraints=state["constraints"],
            pool=None if state["pool"] is None else np.asarray(state["pool"]),
            n_initial=state["n_initial"],
            n_candidates=state["n_candidates"],
            min_distance=state["min_distance"],
            zero_weight=state["zero_weight"],
            surrogate=surrogate_from_dict(state["surrogate"]),
        )
        designer.runs = {str(k): dict(v) for k, v in state["runs"].items()}
        designer.n_asks = int(state["n_asks"])
        designer.history = [Snapshot(**s) for s in state["history"]]
        return designer

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Designer:
        """Read a state file written by :meth:`save`."""
        try:
            state = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise InputError("path", f"{str(path)!r} does not exist", "give a file written by save()") from None
        except json.JSONDecodeError as exc:
            raise IncompatibleFileError(f"{path}: not a designer state file ({exc})") from None
        return cls.from_dict(state)

    @classmethod
    def from_runs(cls, runs: RunTable, target: str | Mapping[str, float], **options: Any) -> Designer:
        """A designer that already knows the finished runs of ``runs``.

        Rebuild from the run ledger with ``RunTable.from_long(Ledger(path).to_long_table())``;
        ``options`` are the constructor's keyword arguments.
        """
        designer = cls(runs.train_domains, target, **options)
        mixtures, losses = runs.mixtures.to_numpy(), runs.losses
        for i, run_id in enumerate(runs.mixtures.index):
            designer.add(str(run_id), mixtures[i], losses.loc[run_id].to_dict())
        return designer

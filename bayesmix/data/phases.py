"""Runs trained on a schedule of mixtures: one mixture per phase, and where each phase starts.

A :class:`PhaseTable` holds what the phase law (:class:`~bayesmix.laws.schedule.PhaseMixingLaw`)
reads: each run's phase mixtures ``(run, phase, train_domain)``, the share of its tokens from each
phase's start to the end (the phase *tails*, ``(run, phase)``), and its final losses. Its ``runs``
is an ordinary :class:`~bayesmix.RunTable` of the runs' token-weighted *average* mixtures, which
is what a single-phase law sees. Single-phase runs may sit beside multi-phase ones: their missing
phases repeat their mixture, so the phase weights do not matter for them.

Build one from a study's ledger (:meth:`PhaseTable.from_ledger`) or from two tables of runs
trained elsewhere (:meth:`PhaseTable.from_phases`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmix.data.runs import RunTable, looks_like_bookkeeping, table_frame, validate_mixtures
from bayesmix.errors import InputError
from bayesmix.laws.schedule import MIN_TAIL

if TYPE_CHECKING:
    from bayesmix.data.ledger import Ledger


def phase_tails(starts: Sequence[float]) -> np.ndarray:
    """Tails ``F_p = 1 - start_p`` of phases starting at these fractions of the run's tokens."""
    return np.maximum(1.0 - np.asarray(starts, dtype=float), MIN_TAIL)


def check_starts(starts: Sequence[float], where: str) -> list[float]:
    """Validated phase starts (fractions of the run's tokens): 0 first, increasing, below 1.

    Raises
    ------
    InputError
        Starts that are not numbers, do not begin at 0, do not increase or reach 1.
    """
    try:
        values = [float(s) for s in starts]
    except (TypeError, ValueError):
        raise InputError(where, f"phase starts {list(starts)!r} are not numbers", "give fractions, e.g. [0, 0.8]") from None
    ok = (
        values
        and all(np.isfinite(values))
        and values[0] == 0.0
        and all(b > a for a, b in itertools.pairwise(values))
        and values[-1] < 1.0
    )
    if not ok:
        raise InputError(
            where,
            f"phase starts {values} are not 0 followed by increasing fractions below 1",
            "give each phase's start as the fraction of the run's tokens before it, e.g. 0 and 0.8",
        )
    return values


def phase_mixture_rows(mixtures: Sequence[Any], train_domains: Sequence[str], where: str) -> np.ndarray:
    """Validated phase mixtures ``(phase, train_domain)``; a domain a mapping leaves out is 0.

    Raises
    ------
    InputError
        Not mappings, unknown domains, negative or non-finite shares, rows not summing to 1.
    """
    rows = []
    for mixture in mixtures:
        if not isinstance(mixture, Mapping):
            raise InputError(where, f"phase mixture {mixture!r} is not a mapping", "give {domain: share, ...}")
        rows.append({**dict.fromkeys(train_domains, 0.0), **dict(mixture)})
    return validate_mixtures(
        pd.DataFrame(rows), train_domains, field_name=where, sum_fix="give each phase shares that sum to 1"
    ).to_numpy()


@dataclass(frozen=True)
class PhaseTable:
    """Validated multi-phase runs (see the module docstring).

    Attributes
    ----------
    runs
        Average mixtures ``(run, train_domain)`` and final losses ``(run, domain)`` (nats/token).
    phase_mixtures
        ``(run, phase, train_domain)``; rows on the simplex; a run with fewer phases repeats its
        last mixture.
    tails
        ``(run, phase)``: share of the run's tokens from the phase's start to the end (1 for the
        first phase; :data:`~bayesmix.laws.schedule.MIN_TAIL` for padded phases).
    """

    runs: RunTable
    phase_mixtures: np.ndarray
    tails: np.ndarray

    def __post_init__(self) -> None:
        n, m = self.runs.n_runs, len(self.runs.train_domains)
        mixtures = np.asarray(self.phase_mixtures, dtype=float)
        tails = np.asarray(self.tails, dtype=float)
        if mixtures.ndim != 3 or mixtures.shape[0] != n or mixtures.shape[2] != m:
            raise InputError(
                "phase_mixtures",
                f"has shape {mixtures.shape}, not (run={n}, phase, train_domain={m})",
                "give one mixture per run and phase over the run table's training domains",
            )
        if tails.shape != mixtures.shape[:2]:
            raise InputError("tails", f"has shape {tails.shape}, not {mixtures.shape[:2]}", "give one tail per run and phase")
        if not (np.all(np.isfinite(mixtures)) and np.all(mixtures >= 0) and np.allclose(mixtures.sum(-1), 1.0, atol=1e-6)):
            raise InputError("phase_mixtures", "has rows that are not mixtures", "give non-negative shares summing to 1")
        if not (np.all(tails[:, 0] == 1.0) and np.all(np.diff(tails, axis=1) <= 0) and np.all(tails >= MIN_TAIL)):
            raise InputError("tails", "are not 1 for the first phase and decreasing after", "build them with phase_tails")
        object.__setattr__(self, "phase_mixtures", mixtures)
        object.__setattr__(self, "tails", tails)

    @property
    def n_phases(self) -> int:
        """Largest number of phases of a run."""
        return int(self.tails.shape[1])

    def subset(self, positions: Sequence[int] | np.ndarray) -> PhaseTable:
        """The runs at these positions."""
        index = np.asarray(positions, dtype=int)
        return PhaseTable(self.runs.subset(index), self.phase_mixtures[index], self.tails[index])

    @classmethod
    def from_schedules(
        cls,
        schedules: Sequence[Sequence[tuple[float, Any]]],
        losses: pd.DataFrame,
        train_domains: Sequence[str] | None = None,
    ) -> PhaseTable:
        """Build from per-run schedules ``[[(start fraction, mixture), ...], ...]`` and a loss table.

        Parameters
        ----------
        schedules
            One list per run (in the order of ``losses``' rows) of ``(start, mixture)``: the
            fraction of the run's tokens before the phase (0 for the first) and its mixture
            (a mapping ``domain -> share``).
        losses
            Final losses, one row per run (index = run ids), one column per validation domain.
        train_domains
            The training domains (default: every domain named in a mixture, sorted).
        """
        if len(schedules) != len(losses):
            raise InputError(
                "schedules", f"{len(schedules)} schedules for {len(losses)} loss rows", "give one schedule per run"
            )
        if train_domains is None:
            names: set[str] = set()
            for schedule in schedules:
                for _, mixture in schedule:
                    names |= set(dict(mixture))
            train_domains = sorted(names)
        n_phases = max(len(s) for s in schedules) if len(schedules) else 1
        mixtures = np.zeros((len(schedules), n_phases, len(train_domains)))
        tails = np.full((len(schedules), n_phases), MIN_TAIL)
        for i, (run, schedule) in enumerate(zip(losses.index, schedules, strict=True)):
            if not len(schedule):
                raise InputError(f"run {run}", "has no phases", "give at least one (start, mixture)")
            starts = check_starts([s for s, _ in schedule], f"run {run}")
            rows = phase_mixture_rows([m for _, m in schedule], train_domains, f"run {run} phases")
            mixtures[i, : len(schedule)] = rows
            mixtures[i, len(schedule) :] = rows[-1]
            tails[i, : len(schedule)] = phase_tails(starts)
        average = _average(mixtures, tails)
        runs = RunTable(pd.DataFrame(average, index=losses.index, columns=list(train_domains)), losses)
        return cls(runs, mixtures, tails)

    @classmethod
    def from_phases(
        cls,
        phases: pd.DataFrame,
        losses: pd.DataFrame,
        *,
        run_column: str = "run",
        start_column: str = "start",
        mixture_prefix: str = "mix_",
    ) -> PhaseTable:
        """Build from runs trained elsewhere: a phase table and a loss table.

        Parameters
        ----------
        phases
            One row per run and phase: the run id (``run_column``), the fraction of the run's
            tokens before the phase (``start_column``; 0 for the first) and one
            ``<mixture_prefix><domain>`` column per training domain.
        losses
            One row per run: the run id (``run_column``) and one final-loss column per validation
            domain (nats/token).

        Raises
        ------
        InputError
            Missing columns, runs in one table and not the other, bad starts or mixtures.
        """
        # the run tables' reading rules: headers without padding, each once; a case-insensitive prefix;
        # numeric bookkeeping columns (seed, step, ids) are not losses
        phases, losses = table_frame(phases, "phases"), table_frame(losses, "losses")
        for name, frame, needed in (("phases", phases, [run_column, start_column]), ("losses", losses, [run_column])):
            missing = [c for c in needed if c not in frame.columns]
            if missing:
                raise InputError(name, f"has no column {missing[0]!r}", f"add it, or name it with {'run_column' if missing[0] == run_column else 'start_column'}=")
        prefix = mixture_prefix.lower()
        mix_columns = [c for c in phases.columns if c.lower().startswith(prefix)]
        if not mix_columns:
            raise InputError("phases", f"has no {mixture_prefix}<domain> columns", "add one share column per training domain")
        if losses[run_column].duplicated().any():
            twice = sorted(set(losses.loc[losses[run_column].duplicated(), run_column].astype(str)))
            raise InputError("losses", f"gives runs {twice[:5]} more than once", "give one row of final losses per run")
        kept = [c for c in losses.columns if c != run_column]
        bookkeeping = [c for c in kept if looks_like_bookkeeping(c, losses[c])]
        if bookkeeping:
            raise InputError(
                "losses",
                f"columns {bookkeeping} look like bookkeeping (ids, seeds, steps), not losses",
                "drop them, e.g. losses.drop(columns=" + repr(bookkeeping) + ")",
            )
        loss_table = losses.set_index(run_column)
        unknown = sorted(set(phases[run_column].astype(str)) ^ set(loss_table.index.astype(str)))
        if unknown:
            raise InputError("run", f"runs {unknown[:5]} are in one table only", "give every run its phases and its losses")
        loss_table.index = loss_table.index.astype(str)
        grouped = {str(run): frame.sort_values(start_column) for run, frame in phases.groupby(run_column, sort=False)}
        schedules = [
            [
                (row[start_column], {c[len(prefix) :]: row[c] for c in mix_columns})
                for _, row in grouped[run].iterrows()
            ]
            for run in loss_table.index
        ]
        return cls.from_schedules(schedules, loss_table, [c[len(prefix) :] for c in mix_columns])

    @classmethod
    def from_ledger(
        cls,
        ledger: Ledger | str | os.PathLike[str],
        domains: Sequence[str] | None = None,
        *,
        model: str | None = None,
        steps: int | None = None,
    ) -> PhaseTable:
        """The finished runs of a study's ledger at their last evaluation.

        Parameters
        ----------
        ledger
            The study's ledger (or its ``ledger.sqlite`` path); multi-phase runs carry their
            phases (:attr:`RunRecord.phases`).
        domains
            Validation domains to keep (default: every evaluated domain).
        model, steps
            Keep only the runs of this ladder entry and of this many steps. Runs of several
            models or lengths are refused without them: the phase law has no model size or
            training length, so it would read their differences as mixture effects.

        Raises
        ------
        InputError
            No finished runs (after the filters), runs of several models or lengths, unknown
            domains, or runs evaluated on different domains.
        """
        from bayesmix.data.ledger import Ledger

        if not isinstance(ledger, Ledger):
            if not isinstance(ledger, (str, os.PathLike)) or not os.path.isfile(ledger):
                raise InputError("ledger", f"got {ledger!r}", "give a Ledger or the path of a study's ledger.sqlite")
            ledger = Ledger(ledger)
        records = [
            r
            for r in ledger.runs("finished")
            if (model is None or r.model_name == model) and (steps is None or int(r.train_config["steps"]) == steps)
        ]
        if not records:
            raise InputError("ledger", "has no finished runs (with these filters)", "train runs first (bayesmix sweep)")
        kinds = sorted({(r.model_name, int(r.train_config["steps"])) for r in records})
        if len(kinds) > 1:
            raise InputError(
                "ledger",
                f"holds runs of several models or lengths {kinds}",
                f"choose one with model= and steps=, e.g. model={kinds[0][0]!r}, steps={kinds[0][1]}",
            )
        evals = ledger.evals()
        last = evals[evals.step == evals.groupby("run").step.transform("max")]
        losses = last.pivot(index="run", columns="domain", values="loss").loc[[r.id for r in records]]
        if domains is not None:
            unknown = [d for d in domains if d not in losses.columns]
            if unknown:
                raise InputError("domains", f"{unknown} were not evaluated", f"use some of {list(losses.columns)}")
            losses = losses[list(domains)]
        if losses.isna().any().any():
            raise InputError("ledger", "runs were evaluated on different domains", "pass domains= evaluated in every run")
        schedules = []
        for record in records:
            steps = int(record.train_config["steps"])
            phases = record.phases or [(0, record.mixture)]
            schedules.append([(start / steps, mixture) for start, mixture in phases])
        losses.columns.name = None
        return cls.from_schedules(schedules, losses)


def _average(mixtures: np.ndarray, tails: np.ndarray) -> np.ndarray:
    """Token-weighted average mixtures ``(run, train_domain)``."""
    following = np.concatenate([tails[:, 1:], np.zeros_like(tails[:, :1])], axis=1)
    weights = np.where(tails <= MIN_TAIL, 0.0, tails - following)
    weights = weights / weights.sum(axis=1, keepdims=True)
    return np.einsum("rp,rpm->rm", weights, mixtures)

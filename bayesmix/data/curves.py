"""Loss curves: checkpoints of runs over training, for the scaling laws and the nested pipeline.

A :class:`CurveTable` is the tidy long table that the nested scaling-law models fit: one row per
(run, validation domain, checkpoint) with columns

* ``run`` (id), ``domain`` (validation domain), ``loss`` (nats per token, > 0),
* ``tokens`` (training tokens seen at the checkpoint), or ``step`` plus a ``tokens_per_step``
  argument,
* ``model_size`` (non-embedding parameters by default; see :mod:`bayesmix.laws.scaling`),
* the run's training mixture as ``mix_<train_domain>`` columns (repeated on every row).

It is validated on entry; each run must keep one mixture and one model size, and the table must
hold enough data for the nested stages (at least 3 checkpoints per run and domain, at least 2
model sizes), otherwise :class:`~bayesmix.errors.NotEnoughDataError` says what is missing.
Runs with the same mixture share a ``mixture`` id (``m0``, ``m1``, ... in order of first
appearance). Mixtures at different model sizes are matched within :data:`MIXTURE_TOLERANCE` per
share, so a mixture written ``0.333, 0.667`` at one model size and ``0.3333333, 0.6666667`` at
another is one mixture; mixtures that cannot be matched unambiguously are refused (see
:meth:`CurveTable.from_long`).
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesmix.data.runs import MIX_PREFIX, is_mixture_column, table_frame, validate_mixtures
from bayesmix.errors import InputError, NotEnoughDataError

MIN_CHECKPOINTS = 3
MIN_SIZES = 2
#: largest difference in any share (after each run's mixture is divided by its sum) between the
#: mixtures of runs at different model sizes that are taken for one mixture: covers shares rounded
#: to 3 decimals (error <= 5e-4, and <= 1e-3 more from renormalising) with room, and stays far
#: below the spacing of real designs (the Data Mixing Laws 5-domain design: 0.05)
MIXTURE_TOLERANCE = 5e-3

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CurveTable:
    """Validated loss curves (see the module docstring).

    Attributes
    ----------
    frame
        One row per (run, domain, checkpoint): ``run``, ``domain``, ``loss``, ``tokens``,
        ``model_size``, ``mixture`` (id), sorted by run, domain and tokens.
    mixtures
        One row per mixture id, one column per training domain (rows on the simplex).
    runs
        One row per run (index ``run``): ``mixture`` and ``model_size``.
    min_checkpoints, min_sizes
        The minimums this table was accepted with (:meth:`from_long`); the fits on it use the
        same ones, so a table of final losses (``min_checkpoints=1``) is fitted, not refused.
    """

    frame: pd.DataFrame
    mixtures: pd.DataFrame
    runs: pd.DataFrame
    domain_order: tuple[str, ...] = ()
    min_checkpoints: int = MIN_CHECKPOINTS
    min_sizes: int = MIN_SIZES

    @property
    def domains(self) -> list[str]:
        """Validation domains, in order of first appearance in the input table."""
        present = set(self.frame["domain"])
        order = [d for d in self.domain_order if d in present]
        return order + sorted(present - set(order))

    @property
    def train_domains(self) -> list[str]:
        """Training domains (mixture columns)."""
        return [str(c) for c in self.mixtures.columns]

    @property
    def model_sizes(self) -> np.ndarray:
        """Distinct model sizes, ascending."""
        return np.unique(self.runs["model_size"].to_numpy())

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def from_long(
        cls,
        table: pd.DataFrame | str | os.PathLike[str],
        *,
        tokens_per_step: float | None = None,
        mixture_columns: Sequence[str] | None = None,
        min_checkpoints: int = MIN_CHECKPOINTS,
        min_sizes: int = MIN_SIZES,
        renormalise: bool = False,
        mixture_tolerance: float = MIXTURE_TOLERANCE,
    ) -> CurveTable:
        """Validate a long table (DataFrame or CSV/Parquet path).

        Parameters
        ----------
        table
            Columns ``run``, ``domain``, ``loss``, ``model_size``, ``tokens`` (or ``step``) and
            ``mix_<train_domain>``.
        tokens_per_step
            Tokens per optimiser step; needed when the table has ``step`` but no ``tokens``.
        mixture_columns
            Mixture columns; default every column that starts with ``mix_``.
        min_checkpoints, min_sizes
            Data needed per (run, domain) and in all.
        renormalise
            Divide each run's mixture by its sum instead of refusing mixtures whose shares do
            not sum to 1 (within ``bayesmix.data.runs.SUM_TOLERANCE``).
        mixture_tolerance
            Runs whose mixtures differ by at most this much in every share (after dividing by
            the sum) are the same mixture; default :data:`MIXTURE_TOLERANCE`. ``0`` matches
            exactly written mixtures only (to 1e-9).

        Notes
        -----
        Rows may come in any order: each run's checkpoints are sorted by tokens (a run's losses
        need not fall monotonically; noise is modelled). Numbers written as text (``"1e7"``, as
        CSV readers give them) are read as numbers; true/false values, other text, NaN, inf and
        values <= 0 in ``loss``, ``tokens`` (``step``) or ``model_size`` are refused, and so are
        rows without a run or domain.

        Mixtures written differently (``0.333`` at one model size, ``0.3333333`` at another)
        are one mixture when they differ by at most ``mixture_tolerance`` in every share and
        are never trained at the same model size: two mixtures at one size are two mixtures of
        the design, however close. A matched mixture takes the shares written with the most
        decimals (the first on a tie); each match is logged (logger ``bayesmix.data.curves``).
        The matching is refused as ambiguous when a mixture is within the tolerance of two
        mixtures trained at one size, or when a chain of matches links mixtures that differ by
        more than the tolerance.

        Raises
        ------
        InputError
            Missing or repeated columns, bad values, a run whose mixture or model size changes
            mid-run, two losses for one run, domain and checkpoint, mixtures not summing to 1
            (unless ``renormalise``), mixtures that match ambiguously.
        NotEnoughDataError
            Fewer than ``min_checkpoints`` checkpoints for a run and domain, or fewer than
            ``min_sizes`` model sizes.
        """
        for name, value in (("min_checkpoints", min_checkpoints), ("min_sizes", min_sizes)):
            if not _is_count(value) or value < 1:
                raise InputError(name, f"got {value!r}", "give a positive integer")
        if not _is_real(mixture_tolerance) or not np.isfinite(mixture_tolerance) or mixture_tolerance < 0:
            raise InputError(
                "mixture_tolerance",
                f"got {mixture_tolerance!r}",
                f"give a share difference >= 0 (default {MIXTURE_TOLERANCE}; 0 matches exactly)",
            )
        frame = table_frame(table)
        _require(frame, ["run", "domain", "loss", "model_size"])
        if len(frame) == 0:
            raise NotEnoughDataError("table", "has no rows", "give one row per run, domain and checkpoint")
        for column in ("run", "domain"):
            missing = frame[column].isna().to_numpy()
            if missing.any():
                raise InputError(
                    column,
                    f"{int(missing.sum())} rows have no {column} (first at row {int(np.flatnonzero(missing)[0])})",
                    f"give every row a {column}, or drop those rows",
                )
        if "tokens" not in frame.columns:
            if "step" not in frame.columns:
                raise InputError(
                    "tokens", "the table has neither 'tokens' nor 'step'", "add a tokens column (or step)"
                )
            if not _is_real(tokens_per_step) or not np.isfinite(tokens_per_step) or tokens_per_step <= 0:
                raise InputError(
                    "tokens_per_step",
                    f"the table has 'step' but no 'tokens', and tokens_per_step={tokens_per_step!r}",
                    "pass tokens_per_step=<tokens per optimiser step> or add a tokens column",
                )
            frame["tokens"] = _numeric(frame, "step") * float(tokens_per_step)
        if mixture_columns is None:
            mixture_columns = [c for c in frame.columns if is_mixture_column(c)]
        elif isinstance(mixture_columns, str) or not isinstance(mixture_columns, Sequence):
            raise InputError(
                "mixture_columns", f"got {mixture_columns!r}", "give a list of column names, e.g. ['mix_web']"
            )
        mixture_columns = [str(c) for c in mixture_columns]
        if not mixture_columns:
            raise InputError(
                "mixture_columns",
                f"no column starts with {MIX_PREFIX!r}",
                "add the run's mixture as mix_<domain> columns (a single-mixture study: mix_all = 1)",
            )
        _require(frame, list(mixture_columns))
        for column in ("loss", "tokens", "model_size"):
            frame[column] = _numeric(frame, column)
            values = frame[column].to_numpy()
            bad = ~np.isfinite(values) | (values <= 0)
            if bad.any():
                row = frame.iloc[int(np.flatnonzero(bad)[0])]
                raise InputError(
                    column,
                    f"{int(bad.sum())} values are not finite and positive "
                    f"(run {row['run']!r}, domain {row['domain']!r}: {row[column]!r})",
                    "drop or fix those rows",
                )
        for column in mixture_columns:
            frame[column] = _numeric(frame, column)
            values = frame[column].to_numpy()
            bad = ~np.isfinite(values) | (values < 0)
            if bad.any():
                row = frame.iloc[int(np.flatnonzero(bad)[0])]
                raise InputError(
                    column,
                    f"{int(bad.sum())} values are not finite and >= 0 (run {row['run']!r}: {row[column]!r})",
                    "give each run's mixture share on every one of its rows",
                )
        frame["run"] = frame["run"].astype(str)
        frame["domain"] = frame["domain"].astype(str)
        domain_order = tuple(pd.unique(frame["domain"]))
        if frame.duplicated(subset=["run", "domain", "tokens"]).any():
            dup = frame[frame.duplicated(subset=["run", "domain", "tokens"])].iloc[0]
            # name the checkpoint in the table's own units: its step when the table has steps
            where = f"step {dup['step']:.6g}" if "step" in frame.columns else f"{dup['tokens']:.6g} tokens"
            raise InputError(
                "table",
                f"several losses for run {dup['run']!r}, domain {dup['domain']!r} at {where} (a resumed "
                "run evaluated twice?)",
                "keep one row per run, domain and checkpoint (e.g. the last evaluation of a resumed run)",
            )
        per_run = frame.groupby("run", sort=False)
        for column in [*mixture_columns, "model_size"]:
            if (per_run[column].nunique() > 1).any():
                run = per_run[column].nunique().gt(1).idxmax()
                values = ", ".join(f"{v:.6g}" for v in sorted(per_run[column].unique()[run])[:3])
                raise InputError(
                    column,
                    f"run {run!r} has several values (it changes mid-run: {values}, ...)",
                    "give each run one value on all its rows (a new mixture or size is a new run)",
                )
        run_mix = per_run[list(mixture_columns)].first()
        run_mix.columns = [c[len(MIX_PREFIX) :] if is_mixture_column(c) else c for c in mixture_columns]
        written = run_mix.copy()
        run_mix = validate_mixtures(run_mix, renormalise=renormalise, field_name="mixture columns")
        run_size = per_run["model_size"].first()
        run_mixture, mixtures = _match_mixtures(run_mix, written, run_size, float(mixture_tolerance))
        runs = pd.DataFrame(
            {"mixture": run_mixture, "model_size": run_size.to_numpy()},
            index=pd.Index(run_mix.index, name="run"),
        )
        frame = frame[["run", "domain", "loss", "tokens", "model_size"]].copy()
        frame["mixture"] = runs.loc[frame["run"], "mixture"].to_numpy()
        frame = frame.sort_values(["run", "domain", "tokens"], kind="stable").reset_index(drop=True)
        table = cls(
            frame=frame,
            mixtures=mixtures,
            runs=runs,
            domain_order=domain_order,
            min_checkpoints=int(min_checkpoints),
            min_sizes=int(min_sizes),
        )
        table.check_enough()
        return table

    @property
    def final_losses_only(self) -> bool:
        """Whether every run has a single checkpoint (a table of final losses, no curves)."""
        return bool(self.frame.groupby(["run", "domain"]).size().max() == 1)

    def check_enough(self, min_checkpoints: int | None = None, min_sizes: int | None = None) -> None:
        """Raise :class:`NotEnoughDataError` when a stage of the nested pipeline lacks data.

        The minimums default to the ones the table was accepted with.
        """
        min_checkpoints = self.min_checkpoints if min_checkpoints is None else min_checkpoints
        min_sizes = self.min_sizes if min_sizes is None else min_sizes
        counts = self.frame.groupby(["run", "domain"]).size()
        if (counts < min_checkpoints).any():
            (run, domain), n = counts.idxmin(), int(counts.min())
            raise NotEnoughDataError(
                "checkpoints",
                f"run {run!r} has {n} checkpoints for domain {domain!r}; the step law needs "
                f"at least {min_checkpoints}",
                "evaluate more checkpoints of that run, or drop it; for a table of final losses (one "
                "per run, the runs varying in tokens) pass min_checkpoints=1 to CurveTable.from_long",
            )
        n_sizes = len(self.model_sizes)
        if n_sizes < min_sizes:
            raise NotEnoughDataError(
                "model_size",
                f"{n_sizes} model size(s) ({', '.join(f'{n:.4g}' for n in self.model_sizes)}); "
                f"the size law needs at least {min_sizes}",
                "train the mixtures at more model sizes (3 or more make the size exponent identifiable)",
            )

    def select(self, *, max_tokens: float | None = None, max_model_size: float | None = None) -> CurveTable:
        """The checkpoints with ``tokens <= max_tokens`` of runs with ``model_size <= max_model_size``."""
        for name, value in (("max_tokens", max_tokens), ("max_model_size", max_model_size)):
            if value is not None and (not _is_real(value) or np.isnan(value)):
                raise InputError(name, f"got {value!r}", "give a number, or None for no limit")
        keep = np.ones(len(self.frame), dtype=bool)
        if max_tokens is not None:
            keep &= self.frame["tokens"].to_numpy() <= max_tokens
        if max_model_size is not None:
            keep &= self.frame["model_size"].to_numpy() <= max_model_size
        frame = self.frame[keep].reset_index(drop=True)
        runs = self.runs.loc[pd.unique(frame["run"])]
        mixtures = self.mixtures.loc[pd.unique(runs["mixture"])]
        table = dataclasses.replace(self, frame=frame, mixtures=mixtures, runs=runs)
        if len(frame) == 0:
            raise NotEnoughDataError("table", "no checkpoint left after the selection", "select less")
        table.check_enough()
        return table


def _match_mixtures(
    shares: pd.DataFrame, written: pd.DataFrame, sizes: pd.Series, tolerance: float
) -> tuple[list[str], pd.DataFrame]:
    """Mixture ids per run, and one row of shares per id, matching mixtures within ``tolerance``.

    ``shares`` are the runs' mixtures on the simplex, ``written`` the same as given (for the
    decimals), ``sizes`` the runs' model sizes. See :meth:`CurveTable.from_long`.
    """
    values = shares.to_numpy()
    # the distinct written mixtures ("versions"), in order of first appearance
    keys = [tuple(np.round(row, 9)) for row in values]
    version_of: dict[tuple, int] = {}
    run_version = np.array([version_of.setdefault(key, len(version_of)) for key in keys])
    first_run = [int(np.flatnonzero(run_version == v)[0]) for v in range(len(version_of))]
    versions = values[first_run]
    size_values = sizes.to_numpy()
    size_sets = [set(size_values[run_version == v]) for v in range(len(versions))]
    # versions within the tolerance and never at one model size are linked (two versions at one
    # size are two mixtures of the design); linked groups (connected components) are mixtures
    parent = list(range(len(versions)))

    def root(v: int) -> int:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for v in range(len(versions) - 1):
        close = np.flatnonzero(np.abs(versions[v + 1 :] - versions[v]).max(axis=1) <= tolerance) + v + 1
        for w in close:
            if not size_sets[v] & size_sets[int(w)]:
                parent[root(int(w))] = root(v)
    groups: dict[int, list[int]] = {}
    for v in range(len(versions)):
        groups.setdefault(root(v), []).append(v)
    run_names = list(shares.index)

    def describe(v: int) -> str:
        row = written.iloc[first_run[v]]
        return f"run {run_names[first_run[v]]!r} ({', '.join(f'{c} {x:.10g}' for c, x in row.items())})"

    def refuse(problem: str) -> InputError:
        return InputError(
            "mixture columns",
            f"{problem}: which runs share a mixture is ambiguous",
            "write each mixture's shares the same way on all its runs, or pass mixture_tolerance=0 to "
            "match only exactly equal mixtures (or a tolerance below the differences)",
        )

    group_of = np.empty(len(versions), dtype=int)
    representative = []
    for number, members in enumerate(groups.values()):
        group_of[members] = number
        if len(members) > 1:
            for a, v in enumerate(members):
                for w in members[a + 1 :]:
                    both = size_sets[v] & size_sets[w]
                    if both:
                        bridge = next(u for u in members if u not in (v, w))
                        raise refuse(
                            f"{describe(bridge)} is within the matching tolerance {tolerance:g} of "
                            f"{describe(v)} and of {describe(w)}, two mixtures trained at model size "
                            f"{min(both):.4g}"
                        )
            block = versions[members]
            spread = np.abs(block[:, None, :] - block[None, :, :]).max(axis=2)
            if spread.max() > tolerance:
                i, j = np.unravel_index(int(spread.argmax()), spread.shape)
                raise refuse(
                    f"{describe(members[i])} and {describe(members[j])} differ by {spread.max():.3g} "
                    f"in a share, more than the matching tolerance {tolerance:g}, yet are linked "
                    "through mixtures within it of both"
                )
            best = max(members, key=lambda v: (_decimals(written.iloc[first_run[v]].to_numpy()), -v))
            logger.info(
                "mixtures written differently taken as one (%s): %s",
                f"m{number}",
                "; ".join(describe(v) for v in members),
            )
        else:
            best = members[0]
        representative.append(best)
    # groups are numbered in order of their first version, that is of their first run
    run_mixture = [f"m{group_of[v]}" for v in run_version]
    mixtures = pd.DataFrame(
        versions[representative],
        index=pd.Index([f"m{g}" for g in range(len(representative))], name="mixture"),
        columns=shares.columns,
    )
    return run_mixture, mixtures


def _decimals(values: np.ndarray) -> int:
    """The most decimals any of ``values`` is written with (shortest round-trip form)."""
    digits = 0
    for value in values:
        text = np.format_float_positional(float(value), unique=True, trim="-")
        digits = max(digits, len(text.partition(".")[2]))
    return digits


def _is_real(value: object) -> bool:
    """True for real numbers (Python or numpy), never for bools or text."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_count(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    """``frame[column]`` as floats; numbers written as text (CSV) are read, bools and other text refused."""
    series = frame[column]
    if pd.api.types.is_bool_dtype(series) or (
        series.dtype == object and any(isinstance(v, (bool, np.bool_)) for v in series)
    ):
        raise InputError(column, "has true/false values", "give numbers")
    try:
        return series.astype(float)
    except (TypeError, ValueError):
        raise InputError(column, "has non-numeric values", "give numbers") from None


def _require(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            "table", f"missing columns {missing}", f"the table has {list(frame.columns)}; add or rename them"
        )

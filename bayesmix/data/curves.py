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
Runs with the same mixture (to 1e-9) share a ``mixture`` id (``m0``, ``m1``, ... in order of
first appearance).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesmix.data.runs import MIX_PREFIX, read_table, validate_mixtures
from bayesmix.errors import InputError, NotEnoughDataError

MIN_CHECKPOINTS = 3
MIN_SIZES = 2


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
    """

    frame: pd.DataFrame
    mixtures: pd.DataFrame
    runs: pd.DataFrame
    domain_order: tuple[str, ...] = ()

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

        Notes
        -----
        Rows may come in any order: each run's checkpoints are sorted by tokens (a run's losses
        need not fall monotonically; noise is modelled). Numbers written as text (``"1e7"``, as
        CSV readers give them) are read as numbers; true/false values, other text, NaN, inf and
        values <= 0 in ``loss``, ``tokens`` (``step``) or ``model_size`` are refused, and so are
        rows without a run or domain.

        Raises
        ------
        InputError
            Missing or repeated columns, bad values, a run whose mixture or model size changes
            mid-run, two losses for one run, domain and checkpoint.
        NotEnoughDataError
            Fewer than ``min_checkpoints`` checkpoints for a run and domain, or fewer than
            ``min_sizes`` model sizes.
        """
        for name, value in (("min_checkpoints", min_checkpoints), ("min_sizes", min_sizes)):
            if not _is_count(value) or value < 1:
                raise InputError(name, f"got {value!r}", "give a positive integer")
        frame = read_table(table, "table") if not isinstance(table, pd.DataFrame) else table.copy()
        frame.columns = [str(c) for c in frame.columns]
        if frame.columns.has_duplicates:
            dupes = sorted(set(frame.columns[frame.columns.duplicated()]))
            raise InputError("table", f"repeats columns {dupes}", "give every column a unique name")
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
            mixture_columns = [c for c in frame.columns if c.startswith(MIX_PREFIX)]
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
            raise InputError(
                "table",
                f"several losses for run {dup['run']!r}, domain {dup['domain']!r} at {dup['tokens']:.6g} tokens",
                "keep one row per run, domain and checkpoint",
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
        run_mix.columns = [c[len(MIX_PREFIX) :] if c.startswith(MIX_PREFIX) else c for c in mixture_columns]
        run_mix = validate_mixtures(run_mix, field_name="mixture columns")
        keys = [tuple(np.round(row, 9)) for row in run_mix.to_numpy()]
        ids: dict[tuple, str] = {}
        run_mixture = [ids.setdefault(key, f"m{len(ids)}") for key in keys]
        mixtures = run_mix.groupby(pd.Index(run_mixture, name="mixture"), sort=False).first()
        runs = pd.DataFrame(
            {"mixture": run_mixture, "model_size": per_run["model_size"].first().to_numpy()},
            index=pd.Index(run_mix.index, name="run"),
        )
        frame = frame[["run", "domain", "loss", "tokens", "model_size"]].copy()
        frame["mixture"] = runs.loc[frame["run"], "mixture"].to_numpy()
        frame = frame.sort_values(["run", "domain", "tokens"], kind="stable").reset_index(drop=True)
        table = cls(frame=frame, mixtures=mixtures, runs=runs, domain_order=domain_order)
        table.check_enough(min_checkpoints=min_checkpoints, min_sizes=min_sizes)
        return table

    def check_enough(self, min_checkpoints: int = MIN_CHECKPOINTS, min_sizes: int = MIN_SIZES) -> None:
        """Raise :class:`NotEnoughDataError` when a stage of the nested pipeline lacks data."""
        counts = self.frame.groupby(["run", "domain"]).size()
        if (counts < min_checkpoints).any():
            (run, domain), n = counts.idxmin(), int(counts.min())
            raise NotEnoughDataError(
                "checkpoints",
                f"run {run!r} has {n} checkpoints for domain {domain!r}; the step law needs "
                f"at least {min_checkpoints}",
                "evaluate more checkpoints of that run, or drop it",
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
        table = CurveTable(frame=frame, mixtures=mixtures, runs=runs, domain_order=self.domain_order)
        if len(frame) == 0:
            raise NotEnoughDataError("table", "no checkpoint left after the selection", "select less")
        table.check_enough()
        return table


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

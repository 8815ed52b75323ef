"""Run tables: one row per proxy run, its training mixture and its validation losses.

Everything the law engine fits goes through :class:`RunTable`, which validates on entry: rows of
the mixture must lie on the simplex (or be renormalised when asked), losses must be finite and
positive, names must be unique and known. Three layouts can be imported:

* **wide** (:meth:`RunTable.from_wide`): one row per run, mixture columns and loss columns;
* **long** (:meth:`RunTable.from_long`): one row per (run, domain) with ``run``, ``domain``,
  ``loss`` and the mixture as ``mix_<domain>`` columns (the format the run ledger exports);
* **joined** (:meth:`RunTable.from_joined`): a mixture table and a loss table joined on a key
  (the layout of the RegMix release).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.errors import InputError, NotEnoughDataError

#: how far a mixture row's sum may be from 1 before it is rejected (unless renormalising)
SUM_TOLERANCE = 1e-3
logger = logging.getLogger(__name__)
#: runs needed beyond the law's parameters per validation domain: with exactly as many runs as
#: parameters the fit interpolates the runs and cannot tell the law from the noise
RUNS_MARGIN = 1
#: characters that delimit the parts of a column name; affix stripping removes whole parts only
SEPARATORS = "_-/.: "
MIX_PREFIX = "mix_"
META_COLUMNS = ("model_size", "model_size_total", "tokens", "step")
#: column names (lower case, separators removed) that hold bookkeeping, never a validation loss
BOOKKEEPING_NAMES = frozenset(
    {
        "seed", "id", "runid", "runname", "index", "idx", "step", "steps", "iteration", "iter", "epoch",
        "epochs", "tokens", "flops", "time", "seconds", "job", "jobid", "trial", "rank", "row", "count",
    }
)  # fmt: skip


def table_frame(table: pd.DataFrame | str | os.PathLike[str], what: str = "table") -> pd.DataFrame:
    """A copy of ``table`` (a DataFrame, or read from a file) with clean, unique column names.

    Names become text without the spaces around them (spreadsheets pad headers); a name that
    then appears twice is refused.
    """
    frame = read_table(table, what) if not isinstance(table, pd.DataFrame) else table.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.columns.has_duplicates:
        dupes = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise InputError(what, f"repeats columns {dupes}", "give every column a unique name")
    return frame


def is_mixture_column(name: str) -> bool:
    """Whether a column holds a mixture share by the naming rule: ``mix_<domain>``, any case."""
    return name[: len(MIX_PREFIX)].lower() == MIX_PREFIX


def looks_like_bookkeeping(name: str, values: pd.Series) -> bool:
    """Whether a column the reader would take as a loss holds bookkeeping instead.

    True for a name in :data:`BOOKKEEPING_NAMES` (case, ``_ - . /`` and spaces ignored), a name
    ending in ``_id`` or starting with ``Unnamed`` (a saved pandas index), or a column of
    non-negative whole numbers only (losses in nats per token are never all integers; negative
    values are refused later as losses).
    """
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    if key in BOOKKEEPING_NAMES or name.lower().endswith("_id") or name.lower().startswith("unnamed"):
        return True
    numbers = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    numbers = numbers[np.isfinite(numbers)]
    return len(numbers) > 1 and bool(np.all(numbers >= 0) and np.all(np.mod(numbers, 1.0) == 0))


def read_table(path: str | os.PathLike[str], what: str = "path") -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame, with a clear error when that fails."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(
            what,
            f"got a {type(path).__name__}, not a path or a DataFrame",
            "give a pandas DataFrame or the path of a CSV or Parquet file",
        )
    path = Path(path)
    if not path.exists():
        raise InputError(what, f"file {str(path)!r} does not exist", "give the path of a CSV or Parquet file")
    dialect: dict[str, str] = {}
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        dialect = csv_dialect(path)
        if dialect:
            logger.info("reading %s with separator %r and decimal mark %r", path, dialect["sep"], dialect["decimal"])
        return pd.read_csv(path, **dialect)
    except Exception as exc:  # the parsers raise many types; all mean "not a readable table"
        how = f" (read with separator {dialect['sep']!r}, decimal mark {dialect['decimal']!r})" if dialect else ""
        raise InputError(
            what,
            f"could not read {str(path)!r} as a table{how} ({type(exc).__name__}: {exc})",
            "give a valid CSV (a header row; separator , ; tab or |) or Parquet file",
        ) from None


def csv_dialect(path: Path) -> dict[str, str]:
    """Separator and decimal mark of a CSV that is not comma separated (``{}`` for a plain CSV).

    Spreadsheet exports in many locales write ``;`` between fields and ``,`` as the decimal
    mark (``0,25``). A header row without commas that splits on ``;``, a tab or ``|`` sets the
    separator; with a separator other than the comma, digits around a comma in the data rows
    set the decimal mark to ``,``.
    """
    import re

    with open(path, encoding="utf-8", errors="replace") as handle:
        head = handle.read(1 << 16)
    lines = [line for line in head.splitlines() if line.strip()]
    if not lines or "," in lines[0]:
        return {}
    for sep in (";", "\t", "|"):
        if sep in lines[0]:
            body = "\n".join(lines[1:20])
            return {"sep": sep, "decimal": "," if re.search(r"\d,\d", body) else "."}
    return {}


def _delimited_prefix(prefix: str) -> str:
    """``prefix`` cut back to its last separator (kept): only whole name parts are a prefix."""
    cut = max(prefix.rfind(sep) for sep in SEPARATORS)
    return prefix[: cut + 1]


def _delimited_suffix(suffix: str) -> str:
    """``suffix`` cut forward to its first separator (kept): only whole name parts are a suffix."""
    cuts = [i for i in (suffix.find(sep) for sep in SEPARATORS) if i >= 0]
    return suffix[min(cuts) :] if cuts else ""


def _common_affixes(names: Sequence[str]) -> tuple[str, str]:
    """The separator-delimited prefix and suffix that every name has, never a whole name.

    ``train_python, train_php`` share ``train_`` (not ``train_p``); when stripping both affixes
    would leave a name empty, only one of them (or neither) is returned.
    """
    if len(names) < 2:
        return "", ""
    prefix = _delimited_prefix(os.path.commonprefix(list(names)))  # noqa: RUF071 (strings, not paths)
    suffix = _delimited_suffix(os.path.commonprefix([n[::-1] for n in names])[::-1])  # noqa: RUF071
    for pre, suf in ((prefix, suffix), (prefix, ""), ("", suffix)):
        if all(len(n) > len(pre) + len(suf) for n in names):
            return pre, suf
    return "", ""


def strip_common_affixes(names: Sequence[str]) -> list[str]:
    """Remove the prefix and suffix that all names share (``metric/the_pile_X_val_loss`` -> ``X``).

    Only whole parts between separators (``_ - / . :`` and space) are removed, so
    ``train_python, train_php, train_perl`` become ``python, php, perl``; a name is never
    stripped to nothing.
    """
    prefix, suffix = _common_affixes(names)
    return [n[len(prefix) : len(n) - len(suffix)] for n in names]


def _strip_affix(name: str, prefix: str, suffix: str) -> str:
    """``name`` without as much of ``prefix`` and ``suffix`` (whole parts) as it has."""
    pre = _delimited_prefix(os.path.commonprefix([name, prefix]))  # noqa: RUF071
    suf = _delimited_suffix(os.path.commonprefix([name[::-1], suffix[::-1]])[::-1])  # noqa: RUF071
    for p, s in ((pre, suf), (pre, ""), ("", suf)):
        if len(name) > len(p) + len(s):
            return name[len(p) : len(name) - len(s)]
    return name


def _affix_towards(names: Sequence[str], targets: Sequence[str]) -> tuple[str, str] | None:
    """The separator-delimited (prefix, suffix) that turns the most ``names`` into ``targets``."""
    counts: dict[tuple[str, str], int] = {}
    for name in names:
        found: set[tuple[str, str]] = set()
        for target in targets:
            start = name.find(target) if target else -1
            while start >= 0:
                prefix, suffix = name[:start], name[start + len(target) :]
                if (not prefix or prefix[-1] in SEPARATORS) and (not suffix or suffix[0] in SEPARATORS):
                    found.add((prefix, suffix))
                start = name.find(target, start + 1)
        for affix in found:
            counts[affix] = counts.get(affix, 0) + 1
    if not counts:
        return None
    # most names matched; among ties the shortest affixes (longest names), then a fixed order
    return max(counts, key=lambda affix: (counts[affix], -len(affix[0]) - len(affix[1]), affix))


def match_affixes(train_names: Sequence[str], loss_names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Strip the affixes of mixture and loss column names so that the same domain gets one name.

    Each side first loses the affixes that all its names share (:func:`strip_common_affixes`).
    When the two sides then name fewer domains alike than they would with one side's affixes
    fitted to the other side's names (say the loss table has one validation set more, which
    changes what all loss columns share), the better-matching affixes are used; names on that
    side without the affix lose what part of it they have. Validation-only and training-only
    domains are fine (RegMix: 17 training domains, 13 validation sets).

    Returns
    -------
    tuple of list of str
        The training-domain names and the validation-domain names, in the input order.
    """
    train, loss = strip_common_affixes(train_names), strip_common_affixes(loss_names)
    options = [(train, loss)]
    for side in ("losses", "mixtures"):
        raw, other = (loss_names, train) if side == "losses" else (train_names, loss)
        affix = _affix_towards(raw, other)
        if affix is None:
            continue
        names = [_strip_affix(n, *affix) for n in raw]
        if len(set(names)) == len(names):
            options.append((train, names) if side == "losses" else (names, loss))
    # most domains named alike on both sides; among ties the shortest names (the first on a tie)
    best = max(options, key=lambda o: (len(set(o[0]) & set(o[1])), -sum(map(len, o[0] + o[1]))))
    return list(best[0]), list(best[1])


def _renames(
    columns: Sequence[str], after: Sequence[str], before: Sequence[str] | None = None
) -> dict[str, str]:
    """``{column: new name}`` for the columns whose name (``before``, default the column) changed."""
    before = columns if before is None else before
    return {c: a for c, b, a in zip(columns, before, after, strict=True) if b != a}


def validate_mixtures(
    mixtures: Any,
    train_domains: Sequence[str] | None = None,
    *,
    renormalise: bool = False,
    field_name: str = "mixtures",
    sum_fix: str | None = None,
) -> pd.DataFrame:
    """Check (and optionally renormalise) mixtures; return a DataFrame with one column per domain.

    Parameters
    ----------
    mixtures
        DataFrame with domain columns, a mapping ``domain -> proportion`` (one mixture), a list of
        such mappings, or an array ``(n, M)`` in the order of ``train_domains``.
    train_domains
        The known training domains. DataFrame or mapping columns must all be among them; domains
        missing from the input are taken as 0.
    renormalise
        Divide each row by its sum instead of rejecting rows whose sum is not 1.
    field_name
        Name used in error messages.
    sum_fix
        The fix printed for rows that do not sum to 1; the default advises ``renormalise=True``,
        so callers without that argument give their own.

    Raises
    ------
    InputError
        Unknown domains, wrong shape, negative or non-finite proportions, rows not summing to 1.
    """
    if isinstance(mixtures, dict):
        mixtures = pd.DataFrame([mixtures])
    elif isinstance(mixtures, list) and mixtures and isinstance(mixtures[0], dict):
        if not all(isinstance(m, dict) for m in mixtures):
            raise InputError(
                field_name, "mixes dicts with other items", "give a list of dicts domain -> proportion"
            )
        mixtures = pd.DataFrame(mixtures)
    if isinstance(mixtures, pd.DataFrame):
        frame = mixtures.copy()
        frame.columns = [str(c) for c in frame.columns]
        if frame.columns.has_duplicates:
            dup = sorted(set(frame.columns[frame.columns.duplicated()]))
            raise InputError(field_name, f"has duplicate domain columns {dup}", "give each domain once")
        if train_domains is not None:
            unknown = [c for c in frame.columns if c not in train_domains]
            if unknown:
                raise InputError(
                    field_name, f"unknown training domains {unknown}", f"use only {list(train_domains)}"
                )
            frame = frame.reindex(columns=list(train_domains), fill_value=0.0)
        try:
            frame = frame.astype(float)
        except (TypeError, ValueError):
            raise InputError(
                field_name, "contains non-numeric proportions", "give numbers in [0, 1]"
            ) from None
    else:
        try:
            values = np.asarray(mixtures, dtype=float)
        except (TypeError, ValueError):
            raise InputError(
                field_name, "is not numeric", "give an array (n, M), a DataFrame or a dict"
            ) from None
        if values.ndim == 1:
            values = values[None, :]
        if values.ndim != 2:
            raise InputError(
                field_name, f"has {values.ndim} dimensions", "give a 2-D array (mixture, domain)"
            )
        if train_domains is None:
            train_domains = [f"d{j}" for j in range(values.shape[1])]
        if values.shape[1] != len(train_domains):
            raise InputError(
                field_name,
                f"has {values.shape[1]} columns for {len(train_domains)} training domains",
                f"give one column per training domain, in the order {list(train_domains)}",
            )
        frame = pd.DataFrame(values, columns=list(train_domains))
    if frame.shape[0] == 0:
        raise InputError(field_name, "is empty", "give at least one mixture")
    if frame.shape[1] == 0:
        raise InputError(field_name, "has no domain columns", "give one column per training domain")
    values = frame.to_numpy()
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise InputError(
            field_name, f"row {frame.index[row]!r} has NaN or infinite proportions", "give finite proportions"
        )
    if (values < 0).any():
        row, col = np.argwhere(values < 0)[0]
        raise InputError(
            field_name,
            f"row {frame.index[row]!r} has a negative proportion for {frame.columns[col]!r}",
            "proportions must be >= 0",
        )
    sums = values.sum(axis=1)
    if (sums <= 0).any():
        row = int(np.flatnonzero(sums <= 0)[0])
        raise InputError(
            field_name, f"row {frame.index[row]!r} is all zeros", "give a mixture with a positive part"
        )
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if off.any() and not renormalise:
        row = int(np.flatnonzero(off)[0])
        raise InputError(
            field_name,
            f"{int(off.sum())} rows do not sum to 1 (row {frame.index[row]!r} sums to {sums[row]:.6g})",
            sum_fix or "fix the proportions, or pass renormalise=True to divide each row by its sum",
        )
    return frame.div(sums, axis=0)


def _validate_losses(losses: pd.DataFrame) -> pd.DataFrame:
    flags = [str(c) for c in losses.columns if pd.api.types.is_bool_dtype(losses[c])]
    if flags:
        raise InputError(
            f"losses[{flags[0]!r}]",
            "holds True/False values, not losses",
            "give losses as numbers (nats per token)",
        )
    try:
        losses = losses.astype(float)
    except (TypeError, ValueError):
        raise InputError(
            "losses", "contain non-numeric values", "give losses as numbers (nats per token)"
        ) from None
    values = losses.to_numpy()
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(
            f"losses[{losses.columns[col]!r}]",
            f"run {losses.index[row]!r} has a NaN or infinite loss ({bad.sum()} such values in all)",
            "drop or re-evaluate those runs",
        )
    if (values <= 0).any():
        row, col = np.argwhere(values <= 0)[0]
        raise InputError(
            f"losses[{losses.columns[col]!r}]",
            f"run {losses.index[row]!r} has a loss <= 0 ({values[row, col]})",
            "give cross-entropy losses in nats per token (always positive)",
        )
    return losses


@dataclass(frozen=True)
class RunTable:
    """Validated proxy runs: ``mixtures`` (run x train_domain), ``losses`` (run x domain), ``meta``.

    Build one with :meth:`from_wide`, :meth:`from_long`, :meth:`from_joined` or :meth:`read`;
    the constructor validates too (mixture rows must sum to 1: it does not renormalise).

    Attributes
    ----------
    renamed
        The columns whose names the importer shortened (``strip_affixes``), as
        ``{"mixtures": {column: name}, "losses": {column: name}}`` with the column as named in
        the file, e.g. ``{"mixtures": {"train_python": "python"}, "losses": {...}}``; empty
        when nothing was renamed. The importers also log it (logger ``bayesmix.data.runs``).
    """

    mixtures: pd.DataFrame
    losses: pd.DataFrame
    meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    renamed: dict[str, dict[str, str]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for what, frame in (("mixtures", self.mixtures), ("losses", self.losses), ("meta", self.meta)):
            if not isinstance(frame, pd.DataFrame):
                raise InputError(
                    what,
                    f"got a {type(frame).__name__}",
                    "give a pandas DataFrame (or use RunTable.from_wide)",
                )
        if self.mixtures.index.hasnans:
            raise InputError("run", "some run ids are missing (NaN)", "give every run an id")
        if not self.mixtures.index.equals(self.losses.index):
            raise InputError(
                "run", "mixtures and losses have different run ids", "give one row per run in both"
            )
        if self.mixtures.index.has_duplicates:
            dup = self.mixtures.index[self.mixtures.index.duplicated()][0]
            raise InputError("run", f"run id {dup!r} appears more than once", "give each run a unique id")
        for what, cols in (("mixture columns", self.mixtures.columns), ("loss columns", self.losses.columns)):
            if cols.has_duplicates:
                raise InputError(what, f"duplicate names {list(cols[cols.duplicated()])}", "rename them")
        if self.losses.shape[1] == 0:
            raise InputError("losses", "no loss columns", "give at least one validation-domain loss column")
        object.__setattr__(
            self,
            "mixtures",
            validate_mixtures(
                self.mixtures,
                field_name="mixtures",
                sum_fix="fix the proportions, or divide each row by its sum before building the RunTable "
                "(mixtures.div(mixtures.sum(axis=1), axis=0)), or import the table with "
                "RunTable.from_wide(..., renormalise=True)",
            ),
        )
        object.__setattr__(self, "losses", _validate_losses(self.losses))
        self.mixtures.index.name = self.losses.index.name = "run"

    # ------------------------------------------------------------------ properties
    @property
    def train_domains(self) -> list[str]:
        """Names of the training domains (mixture columns)."""
        return [str(c) for c in self.mixtures.columns]

    @property
    def domains(self) -> list[str]:
        """Names of the validation domains (loss columns)."""
        return [str(c) for c in self.losses.columns]

    @property
    def n_runs(self) -> int:
        """Number of runs."""
        return int(self.mixtures.shape[0])

    def __len__(self) -> int:
        return self.n_runs

    def subset(self, runs: Sequence[Any] | slice | np.ndarray) -> RunTable:
        """The runs at these positions (slice / integer array) or ids (sequence of labels)."""
        if isinstance(runs, slice) or (isinstance(runs, np.ndarray) and runs.dtype.kind in "iub"):
            pick = lambda frame: frame.iloc[runs]  # noqa: E731
        else:
            pick = lambda frame: frame.loc[list(runs)]  # noqa: E731
        meta = pick(self.meta) if len(self.meta) else self.meta
        return RunTable(pick(self.mixtures), pick(self.losses), meta, renamed=self.renamed)

    def select_domains(self, domains: Sequence[str]) -> RunTable:
        """Keep only these validation domains."""
        unknown = [d for d in domains if d not in self.domains]
        if unknown:
            raise InputError(
                "domains", f"unknown validation domains {unknown}", f"use some of {self.domains}"
            )
        return RunTable(self.mixtures, self.losses[list(domains)], self.meta, renamed=self.renamed)

    def check_enough_runs(self, n_parameters: int, what: str = "the model") -> None:
        """Raise :class:`NotEnoughDataError` unless there are ``n_parameters + RUNS_MARGIN`` runs.

        ``n_parameters`` is the count per validation domain (``law.n_parameters``). With only as
        many runs as parameters the fit passes through every run and cannot separate the law
        from the noise, so :data:`RUNS_MARGIN` more runs are required.
        """
        needed = n_parameters + RUNS_MARGIN
        if self.n_runs < needed:
            raise NotEnoughDataError(
                "runs",
                f"{self.n_runs} runs for {what}, which has {n_parameters} parameters per validation "
                f"domain and needs at least {needed} runs ({RUNS_MARGIN} more than its parameters)",
                f"add {needed - self.n_runs} or more runs, merge rare training domains, or choose a law "
                "with fewer parameters",
            )

    def to_wide(self) -> pd.DataFrame:
        """One row per run: mixture columns ``mix_<domain>``, loss columns named by domain, meta."""
        mix = self.mixtures.add_prefix(MIX_PREFIX)
        return pd.concat([mix, self.losses, self.meta], axis=1).reset_index()

    # ------------------------------------------------------------------ importers
    @classmethod
    def from_wide(
        cls,
        table: pd.DataFrame | str | os.PathLike[str],
        *,
        mixture_columns: Sequence[str] | None = None,
        loss_columns: Sequence[str] | None = None,
        run_column: str | None = "run",
        renormalise: bool = False,
        strip_affixes: bool = False,
    ) -> RunTable:
        """Import a wide table (one row per run).

        Parameters
        ----------
        table
            DataFrame, or path of a CSV / Parquet file.
        mixture_columns
            Mixture columns; default: every column starting with ``mix_`` (prefix removed).
        loss_columns
            Loss columns; default: every other numeric column that is not a meta column
            (``model_size``, ``model_size_total``, ``tokens``, ``step``) or the run column.
        run_column
            Column with run ids; if absent the row number is used.
        renormalise
            Divide mixture rows by their sum instead of rejecting those that do not sum to 1.
        strip_affixes
            Remove the prefix/suffix shared by all mixture (and all loss) column names, whole
            parts between separators only, matched so that a domain gets one name on both
            sides (see :func:`match_affixes`); the renaming is kept in :attr:`renamed`.
        """
        mixture_columns = _column_list(mixture_columns, "mixture_columns")
        loss_columns = _column_list(loss_columns, "loss_columns")
        frame = table_frame(table)
        if run_column and run_column in frame.columns:
            frame = frame.set_index(run_column)
        if mixture_columns is None:
            mixture_columns = [c for c in frame.columns if is_mixture_column(c)]
            names = [c[len(MIX_PREFIX) :] for c in mixture_columns]
            if not mixture_columns:
                raise InputError(
                    "mixture_columns",
                    f"no column starts with {MIX_PREFIX!r} in {list(frame.columns)}",
                    "name the mixture columns with mixture_columns=[...] or prefix them with 'mix_'",
                )
        else:
            names = list(mixture_columns)
        _require_columns(frame, mixture_columns, "mixture_columns")
        if loss_columns is None:
            taken = set(mixture_columns) | set(META_COLUMNS)
            loss_columns = [c for c in frame.columns if c not in taken]
            text = [c for c in loss_columns if not pd.api.types.is_numeric_dtype(frame[c])]
            if text:
                raise InputError(
                    f"losses[{text[0]!r}]",
                    f"non-numeric column(s) {text} would be read as losses",
                    "give numeric losses, or name the loss columns with loss_columns=[...]",
                )
            bookkeeping = [c for c in loss_columns if looks_like_bookkeeping(c, frame[c])]
            if bookkeeping:
                raise InputError(
                    f"losses[{bookkeeping[0]!r}]",
                    f"column(s) {bookkeeping} look like bookkeeping (a name such as seed, id or step, or "
                    "whole numbers only), not validation losses, and would be fitted as domains",
                    f"name the loss columns with loss_columns=[...] (e.g. every column but {bookkeeping}), "
                    "or drop those columns",
                )
        _require_columns(frame, loss_columns, "loss_columns")
        both = sorted(set(mixture_columns) & set(loss_columns))
        if both:
            raise InputError(
                "loss_columns", f"{both} are mixture columns too", "name each column as a mixture or a loss"
            )
        mixtures = frame[list(mixture_columns)].set_axis(names, axis=1)
        losses = frame[list(loss_columns)]
        renamed: dict[str, dict[str, str]] = {}
        if strip_affixes:
            train, valid = match_affixes(list(mixtures.columns), list(losses.columns))
            renamed = _record_renames(
                _renames(list(mixture_columns), train, list(mixtures.columns)),
                _renames(list(losses.columns), valid),
            )
            mixtures.columns, losses.columns = train, valid
        meta = frame[[c for c in META_COLUMNS if c in frame.columns]]
        mixtures = validate_mixtures(mixtures, renormalise=renormalise, field_name="mixture columns")
        return cls(mixtures, losses, meta, renamed=renamed)

    @classmethod
    def from_long(
        cls,
        table: pd.DataFrame | str | os.PathLike[str],
        *,
        run: str = "run",
        domain: str = "domain",
        loss: str = "loss",
        mixture_columns: Sequence[str] | None = None,
        step: str | int | None = None,
        tokens: float | None = None,
        renormalise: bool = False,
    ) -> RunTable:
        """Import a long table: one row per (run, domain) with the run's mixture repeated.

        When the table holds several checkpoints per run (a ``step`` column), choose one
        checkpoint per run: ``step=<number>`` or ``tokens=<number>`` reads every run at that
        checkpoint (a run without it is refused), ``step="last"`` each run's last checkpoint,
        which is accepted only when every run ends at the same step: runs trained for different
        lengths differ in loss from training length alone (on the paper's released 70M curves
        0.15-0.20 nats, more than the spread between mixtures), and the error names the
        largest step every run reached. Or select the rows first; this mixing-law table has one
        loss per run and domain.
        """
        mixture_columns = _column_list(mixture_columns, "mixture_columns")
        numeric = isinstance(step, int | float | np.integer | np.floating) and not isinstance(step, bool)
        if step not in (None, "last") and not numeric:
            raise InputError("step", f"got {step!r}", "pass step=<a checkpoint's step>, step='last', or leave it out")
        if tokens is not None and (step is not None or not isinstance(tokens, int | float | np.integer | np.floating)):
            raise InputError("tokens", f"got {tokens!r} (with step={step!r})", "pass tokens=<a checkpoint's tokens> alone")
        frame = table_frame(table)
        _require_columns(frame, [run, domain, loss], "long table columns")
        for name in (run, domain):
            if frame[name].isna().any():
                raise InputError(
                    name,
                    f"{int(frame[name].isna().sum())} rows have no {name} (NaN)",
                    "fill or drop those rows",
                )
        if mixture_columns is None:
            mixture_columns = [c for c in frame.columns if is_mixture_column(c)]
            if not mixture_columns:
                raise InputError(
                    "mixture_columns", f"no column starts with {MIX_PREFIX!r}", "pass mixture_columns=[...]"
                )
        _require_columns(frame, mixture_columns, "mixture_columns")
        frame = _one_checkpoint(frame, run, step, tokens)
        keys = [run, domain] + (["step"] if "step" in frame.columns else [])
        if frame.duplicated(subset=keys).any():
            raise InputError(
                "long table",
                "several losses for the same (run, domain)"
                + (" and step" if "step" in frame.columns else ""),
                "keep one row per run and domain (pass step='last' to keep each run's last checkpoint)",
            )
        if "step" in frame.columns and frame.groupby(run)["step"].nunique().max() > 1:
            raise InputError(
                "step", "runs have several checkpoints", "pass step='last' or select one checkpoint per run"
            )
        losses = frame.pivot(index=run, columns=domain, values=loss)
        per_run = frame.groupby(run)
        mixtures = per_run[list(mixture_columns)].first()
        if (per_run[list(mixture_columns)].nunique() > 1).any().any():
            raise InputError(
                "mixture_columns", "a run has different mixtures on different rows", "fix the table"
            )
        mixtures.columns = [c[len(MIX_PREFIX) :] if is_mixture_column(c) else c for c in mixture_columns]
        meta_cols = [c for c in META_COLUMNS if c in frame.columns]
        meta = per_run[meta_cols].first() if meta_cols else pd.DataFrame(index=mixtures.index)
        if losses.isna().any().any():
            missing = losses.isna().sum()
            raise InputError(
                "long table",
                f"some runs lack a loss for some domains ({dict(missing[missing > 0])})",
                "give every run a loss for every domain, or drop those runs/domains",
            )
        losses = losses.loc[mixtures.index]
        mixtures = validate_mixtures(mixtures, renormalise=renormalise, field_name="mixture_columns")
        return cls(mixtures, losses, meta.loc[mixtures.index] if len(meta.columns) else meta)

    @classmethod
    def from_joined(
        cls,
        mixtures: pd.DataFrame | str | os.PathLike[str],
        losses: pd.DataFrame | str | os.PathLike[str],
        *,
        key: str = "index",
        renormalise: bool = False,
        strip_affixes: bool = True,
    ) -> RunTable:
        """Import a mixture table and a loss table joined on ``key`` (the RegMix layout).

        Runs present in only one of the two tables are an error (nothing is dropped silently).
        With ``strip_affixes`` the prefix/suffix shared by all column names of each table is
        removed (whole parts between separators ``_ - / . :`` and space), so
        ``train_the_pile_arxiv`` and ``metric/the_pile_arxiv_val_loss`` both become ``arxiv``;
        a validation set without a training domain (or the reverse) does not stop the others
        from matching (:func:`match_affixes`). The renaming is kept in :attr:`renamed` and logged.
        """
        mix, loss = table_frame(mixtures, "mixtures"), table_frame(losses, "losses")
        for what, frame in (("mixtures", mix), ("losses", loss)):
            if key not in frame.columns:
                raise InputError(key, f"the {what} table has no key column {key!r}", "pass key='<column>'")
        for what, frame in (("mixtures", mix), ("losses", loss)):
            if frame[key].isna().any():
                raise InputError(
                    key, f"the {what} table has rows without a key (NaN)", "fill or drop those rows"
                )
            if frame[key].duplicated().any():
                raise InputError(key, f"the {what} table repeats keys", "give each run one row per table")
        mix, loss = mix.set_index(key), loss.set_index(key)
        only_mix = mix.index.difference(loss.index)
        only_loss = loss.index.difference(mix.index)
        if len(only_mix) or len(only_loss):
            raise InputError(
                key,
                f"{len(only_mix)} runs only in the mixture table, {len(only_loss)} only in the loss table",
                "give both tables the same runs",
            )
        loss = loss.loc[mix.index]
        renamed: dict[str, dict[str, str]] = {}
        if strip_affixes:
            raw_train, raw_loss = [str(c) for c in mix.columns], [str(c) for c in loss.columns]
            train, valid = match_affixes(raw_train, raw_loss)
            renamed = _record_renames(_renames(raw_train, train), _renames(raw_loss, valid))
            mix.columns, loss.columns = train, valid
        mix = validate_mixtures(mix, renormalise=renormalise, field_name="mixtures")
        return cls(mix, loss, renamed=renamed)

    @classmethod
    def read(cls, path: str | os.PathLike[str], layout: str = "wide", **kwargs: Any) -> RunTable:
        """Read a CSV/Parquet file in the ``"wide"`` or ``"long"`` layout (see the importers)."""
        if layout == "wide":
            return cls.from_wide(path, **kwargs)
        if layout == "long":
            return cls.from_long(path, **kwargs)
        raise InputError("layout", f"unknown layout {layout!r}", "use 'wide' or 'long'")


def _record_renames(mixtures: dict[str, str], losses: dict[str, str]) -> dict[str, dict[str, str]]:
    """The renaming by affix stripping, as :attr:`RunTable.renamed`; logged when not empty."""
    renamed = {"mixtures": mixtures, "losses": losses}
    for side, names in renamed.items():
        if names:
            logger.info(
                "%s columns renamed: %s", side, ", ".join(f"{old} -> {new}" for old, new in names.items())
            )
    return renamed if any(renamed.values()) else {}


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(what, f"missing columns {missing}", f"the table has {list(frame.columns)}")
    if not columns:
        raise InputError(what, "no columns given", "name at least one column")


def _column_list(columns: Any, what: str) -> list[str] | None:
    """``None`` or a list of column names; a bare string or a non-sequence is an :class:`InputError`."""
    if columns is None:
        return None
    if isinstance(columns, str) or not isinstance(columns, Sequence | pd.Index | np.ndarray):
        raise InputError(
            what, f"got {columns!r}", "give a list of column names, e.g. ['mix_web', 'mix_code']"
        )
    return [str(c) for c in columns]


def _one_checkpoint(frame: pd.DataFrame, run: str, step: Any, tokens: Any) -> pd.DataFrame:
    """The rows of one checkpoint per run (see :meth:`RunTable.from_long`), or the frame as it is."""
    if tokens is not None:
        column, value = "tokens", tokens
    elif step is not None:
        column, value = "step", step
    else:
        return frame
    if column not in frame.columns:
        if step == "last":
            return frame
        raise InputError(column, f"the table has no {column!r} column", f"leave {column}= out, or add the column")
    ends = frame.groupby(run)[column].max()
    if value == "last":
        if ends.nunique() > 1:
            counts = ends.value_counts().sort_index()
            where = ", ".join(f"{n} runs at {s:g}" for s, n in counts.items())
            return _refuse_lengths(frame, run, column, f"runs end at different {column}s ({where})")
        return frame[frame[column] == frame.groupby(run)[column].transform("max")]
    picked = frame[np.isclose(frame[column].astype(float), float(value), rtol=1e-9, atol=0.0)]
    missing = sorted(set(frame[run]) - set(picked[run]))
    if missing:
        return _refuse_lengths(
            frame, run, column, f"{len(missing)} runs have no checkpoint at {column} {value:g} (e.g. {missing[:3]})"
        )
    return picked


def _refuse_lengths(frame: pd.DataFrame, run: str, column: str, problem: str) -> pd.DataFrame:
    """Raise the error of runs read at different checkpoints, naming a checkpoint every run has."""
    shared = set.intersection(*(set(group[column]) for _, group in frame.groupby(run)))
    fix = (
        f"read every run at one checkpoint: pass {column}={max(shared):g} (the largest {column} every run has)"
        if shared
        else f"no {column} is shared by every run: select one comparable checkpoint per run yourself"
    )
    raise InputError(
        column,
        f"{problem}; a run trained longer has a lower loss from training length alone, so their "
        "last losses are not comparable",
        fix,
    )

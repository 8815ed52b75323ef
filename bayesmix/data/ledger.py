"""The run ledger: one SQLite file per study, the only link between training and fitting.

Tables
    ``runs``: one row per run - id, mixture (JSON), model name and config (JSON), train config
    (JSON), non-embedding and total parameters, FLOPs per token, tokens, seed, corpus and tokenizer
    fingerprints, package versions (JSON), status (``planned``, ``running``, ``finished``,
    ``failed``), error text and timestamps.
    ``evals``: one row per (run, step, domain) - tokens seen, loss (nats/token), bits per byte.

The file is opened in WAL mode, so one process can write while others read, and every write is a
transaction. :meth:`Ledger.to_long_table` exports the tidy table the law engine reads.
"""

from __future__ import annotations

import json
import platform
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from bayesmix.data.files import write_failure
from bayesmix.errors import IncompatibleFileError, InputError

SCHEMA_VERSION = 1
STATUSES = ("planned", "running", "finished", "failed")
_BUSY_TIMEOUT = 60.0  # seconds a ledger write waits for another process's transaction
UNKNOWN_BPB = -1.0  # bits per byte of an evaluation that did not measure them (imported runs)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    mixture TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_config TEXT NOT NULL,
    train_config TEXT NOT NULL,
    params_non_embedding INTEGER NOT NULL,
    params_total INTEGER NOT NULL,
    flops_per_token REAL NOT NULL,
    tokens INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    corpus TEXT NOT NULL,
    tokenizer TEXT NOT NULL,
    versions TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('planned', 'running', 'finished', 'failed')),
    error TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS evals (
    run_id TEXT NOT NULL REFERENCES runs(id),
    step INTEGER NOT NULL,
    domain TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    loss REAL NOT NULL,
    bits_per_byte REAL NOT NULL,
    PRIMARY KEY (run_id, step, domain)
);
"""


def package_versions() -> dict[str, str]:
    """Return the versions of Python and of the packages that affect training results."""
    out = {"python": platform.python_version()}
    for pkg in ("bayesmix", "torch", "transformers", "tokenizers", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


@dataclass
class RunRecord:
    """Everything the ledger stores about one run (besides its evaluations).

    Parameters
    ----------
    id
        Unique run id within the study.
    mixture
        Training mixture ``{domain: proportion}``, proportions summing to 1 (for a multi-phase
        run, the token-weighted average of its phases; see :attr:`phases`).
    model_name
        Name of the ladder entry (e.g. ``"cpu-s"``).
    model_config
        The model's architecture as a JSON-able dict.
    train_config
        Optimiser, schedule, batch and evaluation settings.
    params_non_embedding, params_total
        Parameter counts.
    flops_per_token
        Training FLOPs per token (6N plus attention).
    tokens
        Training tokens planned (``planned``/``running``) or seen (``finished``).
    seed
        Seed of model initialisation and data order.
    corpus, tokenizer
        Fingerprints (or names) of the corpus and tokenizer.
    versions
        Package versions (:func:`package_versions`).
    status
        One of ``planned``, ``running``, ``finished``, ``failed``.
    error
        Error text of a failed run.
    """

    id: str
    mixture: dict[str, float]
    model_name: str
    model_config: dict[str, Any]
    train_config: dict[str, Any]
    params_non_embedding: int
    params_total: int
    flops_per_token: float
    tokens: int
    seed: int
    corpus: str
    tokenizer: str
    versions: dict[str, str] = field(default_factory=package_versions)
    status: str = "planned"
    error: str | None = None

    @property
    def phases(self) -> list[tuple[int, dict[str, float]]]:
        """``[(start step, mixture), ...]`` of a multi-phase run (from ``train_config``), else ``[]``."""
        return [(int(p["start"]), dict(p["mixture"])) for p in self.train_config.get("phases", [])]


_JSON_FIELDS = ("mixture", "model_config", "train_config", "versions")


class Ledger:
    """A study's SQLite run ledger.

    Parameters
    ----------
    path
        The ``.sqlite`` file; created (with its folder) if missing.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._use_wal()
        with self._connect() as con:
            con.executescript(_SCHEMA)
            # one statement, so that two processes creating the ledger together do not both insert
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if int(row[0]) != SCHEMA_VERSION:
                raise IncompatibleFileError(
                    f"ledger {self.path} has schema version {row[0]}, this bayesmix reads {SCHEMA_VERSION}"
                )

    def _use_wal(self) -> None:
        """Put the ledger in write-ahead-log mode (stored in the file, so done once per file).

        Switching the journal mode needs the file to itself, and SQLite answers "database is
        locked" at once, without waiting, when another process holds it at that moment (two sweep
        workers opening a new ledger together): the switch is retried for up to the busy timeout.
        Other errors are those of :meth:`_connect`.
        """
        deadline = time.monotonic() + _BUSY_TIMEOUT
        while True:
            try:
                with self._connect() as con:
                    if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        con.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """Open a connection, run one transaction, commit (or roll back) and close."""
        con = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT)
        try:
            con.execute("PRAGMA foreign_keys=ON")
            with con:
                yield con
        except sqlite3.DatabaseError as exc:
            if "file is not a database" in str(exc):
                raise IncompatibleFileError(f"{self.path} is not a bayesmix ledger: {exc}") from exc
            if any(text in str(exc) for text in ("disk is full", "disk I/O error", "too large")):
                # the transaction was rolled back: the ledger holds what it held before
                raise write_failure(exc, self.path, "the ledger") from None
            raise
        finally:
            con.close()

    def add_run(self, run: RunRecord) -> bool:
        """Add a planned run; an identical existing run is left as it is.

        Parameters
        ----------
        run
            The run.

        Returns
        -------
        bool
            True if the run was added, False if it was already there.

        Raises
        ------
        InputError
            If a run with the same id but another mixture, model, seed or config exists.
        """
        _check_mixture(run.mixture)
        if run.status not in STATUSES:
            raise InputError("status", f"is {run.status!r}", f"use one of {STATUSES}")
        now = time.time()
        row = asdict(run)
        for key in _JSON_FIELDS:
            row[key] = json.dumps(row[key], sort_keys=True)
        cols = [*row, "created", "updated"]
        with self._connect() as con:
            # INSERT OR IGNORE first: one statement, so two workers adding the same run never race
            cur = con.execute(
                f"INSERT OR IGNORE INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                (*row.values(), now, now),
            )
            if cur.rowcount == 1:
                return True
            old = con.execute(
                "SELECT mixture, model_name, model_config, train_config, seed, corpus, tokenizer FROM runs "
                "WHERE id = ?",
                (run.id,),
            ).fetchone()
        new = (
            row["mixture"],
            row["model_name"],
            row["model_config"],
            row["train_config"],
            row["seed"],
            row["corpus"],
            row["tokenizer"],
        )
        if tuple(old) != new:
            raise InputError(
                f"run {run.id!r}",
                "already exists in the ledger with other settings",
                "give the new run another id, or use a new ledger for a new study",
            )
        return False

    def set_status(
        self, run_id: str, status: str, error: str | None = None, tokens: int | None = None
    ) -> None:
        """Change a run's status (and optionally its error text and token count)."""
        if status not in STATUSES:
            raise InputError("status", f"is {status!r}", f"use one of {STATUSES}")
        with self._connect() as con:
            cur = con.execute(
                "UPDATE runs SET status = ?, error = ?, tokens = COALESCE(?, tokens), updated = ? "
                "WHERE id = ?",
                (status, error, tokens, time.time(), run_id),
            )
            if cur.rowcount == 0:
                raise InputError("run_id", f"{run_id!r} is not in the ledger", "add the run first")

    def record_eval(
        self, run_id: str, step: int, tokens: int, results: Mapping[str, tuple[float, float]]
    ) -> None:
        """Record one evaluation: ``{domain: (loss, bits_per_byte)}`` at ``step`` (replaces a re-run).

        ``bits_per_byte = UNKNOWN_BPB`` (-1) records that they were not measured (imported runs);
        :meth:`to_long_table` exports them as NaN.

        Raises
        ------
        InputError
            If the run is not in the ledger (add it with :meth:`add_run` first).
        """
        with self._connect() as con:
            if con.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise InputError(
                    "run_id", f"{run_id!r} is not in the ledger", "add the run with Ledger.add_run before its evaluations"
                )
            con.executemany(
                "INSERT OR REPLACE INTO evals VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (run_id, int(step), d, int(tokens), float(loss), float(bpb))
                    for d, (loss, bpb) in results.items()
                ],
            )

    def get_run(self, run_id: str) -> RunRecord:
        """Return a run's record.

        Raises
        ------
        InputError
            If the run is not in the ledger.
        """
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise InputError("run_id", f"{run_id!r} is not in the ledger", "check the id (see Ledger.runs())")
        return _to_record(dict(row))

    def runs(self, status: str | None = None) -> list[RunRecord]:
        """Return all runs (or those with one status), in id order."""
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            if status is None:
                rows = con.execute("SELECT * FROM runs ORDER BY id").fetchall()
            else:
                rows = con.execute("SELECT * FROM runs WHERE status = ? ORDER BY id", (status,)).fetchall()
        return [_to_record(dict(r)) for r in rows]

    def evals(self, run_id: str | None = None) -> pd.DataFrame:
        """Return evaluation rows (``run, step, domain, tokens, loss, bits_per_byte``)."""
        query = "SELECT run_id AS run, step, domain, tokens, loss, bits_per_byte FROM evals"
        args: tuple = ()
        if run_id is not None:
            query += " WHERE run_id = ?"
            args = (run_id,)
        with self._connect() as con:
            return pd.read_sql_query(query + " ORDER BY run_id, step, domain", con, params=args)

    def to_long_table(self, include_unfinished: bool = False) -> pd.DataFrame:
        """Export the tidy long table the law engine reads.

        Parameters
        ----------
        include_unfinished
            Also export evaluations of runs that are not ``finished``.

        Returns
        -------
        pandas.DataFrame
            One row per (run, step, domain) with columns ``run``, ``domain``, ``loss`` (nats/token),
            ``step``, ``tokens``, ``model_size`` (non-embedding parameters), ``model_size_total``,
            ``bits_per_byte`` and one ``mix_<domain>`` column per training domain (proportions of
            the run's mixture, summing to 1; 0 for domains a run does not train on).
        """
        runs = [r for r in self.runs() if include_unfinished or r.status == "finished"]
        evals = self.evals()
        train_domains = sorted({d for r in runs for d in r.mixture})
        columns = [
            "run",
            "domain",
            "loss",
            "step",
            "tokens",
            "model_size",
            "model_size_total",
            "bits_per_byte",
        ]
        columns += [f"mix_{d}" for d in train_domains]
        if not runs:
            return pd.DataFrame(columns=columns)
        meta = pd.DataFrame(
            {
                "run": [r.id for r in runs],
                "model_size": [r.params_non_embedding for r in runs],
                "model_size_total": [r.params_total for r in runs],
                **{f"mix_{d}": [float(r.mixture.get(d, 0.0)) for r in runs] for d in train_domains},
            }
        )
        table = evals.merge(meta, on="run", how="inner")
        table["bits_per_byte"] = table["bits_per_byte"].where(table["bits_per_byte"] >= 0)  # unknown -> NaN
        table = table.astype(
            {"step": "int64", "tokens": "int64", "model_size": "int64", "model_size_total": "int64"}
        )
        return table[columns].sort_values(["run", "step", "domain"]).reset_index(drop=True)


def _check_mixture(mixture: Mapping[str, float]) -> None:
    if not mixture:
        raise InputError("mixture", "is empty", "give {domain: proportion} with proportions summing to 1")
    values = list(mixture.values())
    if any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
        raise InputError(
            "mixture",
            f"proportions {mixture} are negative or do not sum to 1",
            "give non-negative proportions that sum to 1",
        )


def _to_record(row: dict[str, Any]) -> RunRecord:
    row.pop("created", None)
    row.pop("updated", None)
    for key in _JSON_FIELDS:
        row[key] = json.loads(row[key])
    return RunRecord(**row)

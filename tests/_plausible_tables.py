"""Plausible but wrong run tables and loss curves, each with an oracle: read right, or refused with a named field.

A generator of the perturbations people make to a valid run table (renamed, padded or reordered
headers; extra numeric columns; ids in other columns; rounded, percent or relative-weight
mixtures; runs of different lengths; duplicated or resumed checkpoints; step vs tokens; other
separators; the two-file joined layout; loss curves with rounded mixtures or steps) and :func:`judge`, which reads each with the public readers and classifies the
outcome. A *silent misreading* is a table that was read without error into other mixtures or
losses than the truth: the count that must be 0. Used by ``tests/test_plausible_tables.py`` and
``benchmarks/reliability.py``.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.data.runs import RunTable
from bayesmix.data.simulate import random_law, simulate_runs
from bayesmix.errors import BayesmixError

DOMAINS = ("web", "code", "papers", "books", "wiki")


@dataclass
class Case:
    """One plausible table: how to read it, and the truth it should give."""

    kind: str
    read: Callable[[], RunTable]
    mixtures: pd.DataFrame  # truth, rows = runs, columns = training domains
    losses: pd.DataFrame  # truth, columns = validation domains
    mixture_atol: float = 1e-9
    notes: dict[str, Any] = field(default_factory=dict)
    #: the oracle for what ``read`` returns when it is not a RunTable (default: compare with the truth)
    check: Callable[[Any], bool] | None = None


def _base(rng: np.random.Generator) -> RunTable:
    m = int(rng.integers(2, 6))
    law = random_law(m, seed=int(rng.integers(1 << 30)), noise_sd=0.01)
    return simulate_runs(law, int(rng.integers(m + 8, 40)), seed=int(rng.integers(1 << 30)))


def long_table(runs: RunTable) -> pd.DataFrame:
    """``runs`` in the long layout: one row per run and domain, the run's mixture repeated."""
    wide = runs.to_wide()
    mix = [c for c in wide.columns if c.startswith("mix_")]
    return wide.melt(id_vars=["run", *mix], value_vars=runs.domains, var_name="domain", value_name="loss")


def _wide_cases(runs: RunTable, rng: np.random.Generator, folder: Path) -> Iterator[Case]:
    wide = runs.to_wide()
    truth = (runs.mixtures, runs.losses)
    mix_cols = [c for c in wide.columns if c.startswith("mix_")]

    def case(kind: str, frame: pd.DataFrame, atol: float = 1e-9, **kwargs: Any) -> Case:
        return Case(kind, lambda: RunTable.from_wide(frame, **kwargs), *truth, mixture_atol=atol)

    yield case("reordered columns", wide[list(rng.permutation(wide.columns))])
    yield case("padded headers", wide.rename(columns=lambda c: f" {c} " if rng.random() < 0.5 else c))
    yield case("upper-case prefix", wide.rename(columns=lambda c: c.replace("mix_", "MIX_")))
    extra = str(rng.choice(["seed", "step", "run_id", "Unnamed: 0", "job", "trial", "index", "epoch"]))
    values = rng.integers(0, 1000, size=len(wide)).astype(rng.choice([int, float]))
    yield case(f"extra column {extra}", wide.assign(**{extra: values}))
    yield case("id in another column", wide.rename(columns={"run": "name"}))
    yield case("numeric ids in another column", wide.assign(run=np.arange(len(wide)) + 100).rename(columns={"run": "id"}))
    yield case("percent mixtures", wide.assign(**{c: wide[c] * 100 for c in mix_cols}))
    yield case("percent mixtures, renormalised", wide.assign(**{c: wide[c] * 100 for c in mix_cols}), renormalise=True)
    scale = rng.uniform(0.5, 20, size=len(wide))
    weights = wide.assign(**{c: wide[c] * scale for c in mix_cols})
    yield case("relative weights", weights)
    yield case("relative weights, renormalised", weights, renormalise=True)
    decimals = int(rng.integers(2, 4))
    rounded = wide.assign(**{c: wide[c].round(decimals) for c in mix_cols})
    yield case(f"mixtures rounded to {decimals} decimals", rounded, atol=10.0 ** -decimals * len(mix_cols))
    yield case(
        f"mixtures rounded to {decimals} decimals, renormalised", rounded, atol=10.0 ** -decimals * len(mix_cols),
        renormalise=True,
    )
    row = int(rng.integers(len(wide)))
    yield case("a resumed run written twice", pd.concat([wide, wide.iloc[[row]]], ignore_index=True))
    changed = wide.copy()
    changed.loc[len(changed)] = changed.iloc[row]
    changed.loc[len(changed) - 1, runs.domains[0]] -= 0.05
    yield case("a run written twice with other losses", changed)
    sep, dec = (";", ",") if rng.random() < 0.5 else ("\t", ".")
    path = folder / f"t{rng.integers(1 << 30)}.csv"
    wide.to_csv(path, index=False, sep=sep, decimal=dec)
    yield Case(f"separator {sep!r} decimal {dec!r}", lambda: RunTable.from_wide(path), *truth)


def _long_cases(runs: RunTable, rng: np.random.Generator) -> Iterator[Case]:
    long = long_table(runs)
    truth = (runs.mixtures, runs.losses)
    yield Case("long table", lambda: RunTable.from_long(long), *truth)
    yield Case(
        "long table, reordered rows",
        lambda: RunTable.from_long(long.sample(frac=1.0, random_state=int(rng.integers(1 << 30)))),
        *truth,
    )
    early = long.assign(step=1000, tokens=1000 * 4096, loss=long["loss"] + 0.3)
    late = long.assign(step=3000, tokens=3000 * 4096)
    both = pd.concat([early, late], ignore_index=True)
    yield Case("checkpoints, last step", lambda: RunTable.from_long(both, step="last"), *truth)
    yield Case("checkpoints, common step", lambda: RunTable.from_long(both, step=3000), *truth)
    yield Case("checkpoints, common tokens", lambda: RunTable.from_long(both, tokens=3000 * 4096), *truth)
    yield Case("checkpoints, no step chosen", lambda: RunTable.from_long(both), *truth)
    short = set(rng.choice(runs.mixtures.index, size=max(1, runs.n_runs // 4), replace=False))
    uneven = both[~(both["run"].isin(short) & (both["step"] == 3000))]
    yield Case("runs of different lengths, last step", lambda: RunTable.from_long(uneven, step="last"), *truth)
    resumed = pd.concat([both, late.iloc[[int(rng.integers(len(late)))]].assign(loss=lambda f: f["loss"] + 0.02)])
    yield Case("resumed checkpoint written twice", lambda: RunTable.from_long(resumed, step="last"), *truth)
    stepless = both.drop(columns=["step"])
    yield Case("tokens only, last", lambda: RunTable.from_long(stepless, tokens=3000 * 4096), *truth)


def _joined_cases(runs: RunTable, rng: np.random.Generator) -> Iterator[Case]:
    """The RegMix / Olmix layout: a mixture table and a loss table joined on a key column."""
    key = pd.RangeIndex(runs.n_runs, name="index")
    mix = runs.mixtures.set_axis(key).rename(columns=lambda d: f"train_{d}").reset_index()
    loss = runs.losses.set_axis(key).rename(columns=lambda d: f"metric/val_{d}_loss").reset_index()
    truth = (runs.mixtures, runs.losses)

    def case(kind: str, mixtures: pd.DataFrame, losses: pd.DataFrame, *expected: pd.DataFrame) -> Case:
        return Case(kind, lambda: RunTable.from_joined(mixtures, losses), *(expected or truth))

    yield case("joined, prefixed names", mix, loss)
    yield case("joined, runs in another order", mix, loss.sample(frac=1.0, random_state=int(rng.integers(1 << 30))))
    extra = rng.uniform(2.0, 4.0, size=runs.n_runs)
    yield case(
        "joined, one extra validation set",
        mix,
        loss.assign(**{"metric/val_c4_loss": extra}),
        runs.mixtures,
        runs.losses.assign(c4=extra),
    )
    yield case("joined, padded headers", mix.rename(columns=lambda c: f" {c} "), loss.rename(columns=lambda c: f"{c} "))
    yield case("joined, a run missing from the losses", mix, loss.iloc[1:])


def _curve_cases(rng: np.random.Generator) -> Iterator[Case]:
    """Loss curves (``CurveTable.from_long``) of a few mixtures at two model sizes."""
    from bayesmix.data.curves import CurveTable
    from bayesmix.data.simulate_curves import random_nested_truth, simulate_curves

    truth = random_nested_truth(int(rng.integers(2, 4)), seed=int(rng.integers(1 << 30)))
    frame, mixtures = simulate_curves(
        truth, n_mixtures=int(rng.integers(3, 6)), model_sizes=(2e7, 5e7), tokens=(4096 * 2.5e5, 4096 * 5e5, 4096 * 1e6),
        seed=int(rng.integers(1 << 30)),
    )  # fmt: skip
    mix_cols = [c for c in frame.columns if c.startswith("mix_")]
    losses = frame.set_index(["run", "domain", "tokens"])["loss"].sort_index()
    run_mix = frame.groupby("run")[mix_cols].first().rename(columns=lambda c: c[4:])

    def check(table: Any) -> bool:
        got = table.frame.set_index(["run", "domain", "tokens"])["loss"].sort_index()
        shares = table.mixtures.loc[table.runs["mixture"]].set_axis(table.runs.index)[list(run_mix.columns)]
        return (
            got.index.equals(losses.index)
            and np.allclose(got.to_numpy(), losses.to_numpy(), rtol=0, atol=1e-9)
            and len(table.mixtures) == len(np.unique(np.round(mixtures, 9), axis=0))  # distinct mixtures
            and np.allclose(shares.loc[run_mix.index].to_numpy(), run_mix.to_numpy(), rtol=0, atol=5e-3)
        )

    def case(kind: str, table: pd.DataFrame, **kwargs: Any) -> Case:
        return Case(kind, lambda: CurveTable.from_long(table, **kwargs), pd.DataFrame(), pd.DataFrame(), check=check)

    yield case("curves", frame)
    yield case("curves, shuffled rows", frame.sample(frac=1.0, random_state=int(rng.integers(1 << 30))))
    yield case("curves, padded headers", frame.rename(columns=lambda c: f" {c}"))
    large = frame["model_size"] == frame["model_size"].max()
    rounded = frame.copy()
    rounded.loc[large, mix_cols] = rounded.loc[large, mix_cols].round(3)
    yield case("curves, mixtures rounded at one size", rounded)
    steps = frame.assign(step=(frame["tokens"] / 4096).round().astype(int)).drop(columns=["tokens"])
    yield case("curves, steps instead of tokens", steps, tokens_per_step=4096)
    resumed = pd.concat([frame, frame.iloc[[int(rng.integers(len(frame)))]].assign(loss=lambda f: f["loss"] + 0.01)])
    yield case("curves, a checkpoint written twice", resumed)


def cases(n_bases: int, seed: int = 0) -> Iterator[Case]:
    """Every perturbation of ``n_bases`` valid simulated tables (about 36 per table)."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(n_bases):
            runs = _base(rng)
            yield from _wide_cases(runs, rng, Path(tmp))
            yield from _long_cases(runs, rng)
            yield from _joined_cases(runs, rng)
            yield from _curve_cases(rng)


def _same(case: Case, table: RunTable) -> bool:
    """Whether ``table`` holds the truth (mixtures to ``mixture_atol``, losses exactly, by name)."""
    mixtures, losses = case.mixtures, case.losses
    if sorted(table.train_domains) != sorted(mixtures.columns) or sorted(table.domains) != sorted(losses.columns):
        return False
    if table.n_runs != len(mixtures):
        return False
    got_mix = table.mixtures[list(mixtures.columns)].to_numpy()
    got_loss = table.losses[list(losses.columns)].to_numpy()
    # runs may be re-indexed (row numbers) or reordered: align on the losses, which identify a run
    order = np.lexsort(losses.to_numpy().T[::-1])
    got = np.lexsort(got_loss.T[::-1])
    return bool(
        np.allclose(got_loss[got], losses.to_numpy()[order], rtol=0, atol=1e-9)
        and np.allclose(got_mix[got], mixtures.to_numpy()[order], rtol=0, atol=case.mixture_atol)
    )


def judge(case: Case) -> str:
    """``"right"``, ``"refused"`` (a BayesmixError naming a field), ``"misread"`` or ``"raw"``."""
    try:
        table = case.read()
    except BayesmixError as err:
        return "refused" if getattr(err, "field", None) or str(err) else "raw"
    except Exception:  # anything else is a raw traceback
        return "raw"
    same = case.check(table) if case.check is not None else _same(case, table)
    return "right" if same else "misread"


def tally(n_bases: int, seed: int = 0) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """Outcomes overall and per (perturbation, outcome)."""
    total: Counter[str] = Counter()
    per_kind: Counter[tuple[str, str]] = Counter()
    for case in cases(n_bases, seed):
        outcome = judge(case)
        total[outcome] += 1
        per_kind[case.kind.split(" (")[0], outcome] += 1
    return total, per_kind

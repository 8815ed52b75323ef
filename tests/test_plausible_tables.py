"""A family of plausible but wrong run tables: every one is read right or refused, none misread."""

from __future__ import annotations

from _plausible_tables import cases, judge, tally


def test_no_plausible_table_is_misread():
    total, per_kind = tally(n_bases=12, seed=0)
    misread = sorted(kind for (kind, outcome), n in per_kind.items() if outcome in ("misread", "raw"))
    assert total["misread"] == 0 and total["raw"] == 0, misread
    assert sum(total.values()) >= 250
    # the valid re-encodings are read, not merely refused
    for kind in ("reordered columns", "padded headers", "upper-case prefix", "long table",
                 "checkpoints, last step", "checkpoints, common step", "percent mixtures, renormalised",
                 "joined, prefixed names", "joined, one extra validation set", "joined, padded headers",
                 "curves", "curves, padded headers", "curves, steps instead of tokens"):
        assert per_kind[kind, "right"] == 12, (kind, per_kind[kind, "refused"])
    # the ambiguous ones are refused, never guessed
    for kind in ("percent mixtures", "relative weights", "a run written twice with other losses",
                 "runs of different lengths, last step", "resumed checkpoint written twice",
                 "checkpoints, no step chosen", "joined, a run missing from the losses",
                 "curves, a checkpoint written twice"):
        assert per_kind[kind, "refused"] == 12, (kind, per_kind[kind, "right"])


def test_the_oracle_catches_a_misreading():
    case = next(iter(cases(1, seed=3)))
    original = case.read
    case.read = lambda: _shift(original())
    assert judge(case) == "misread"


def _shift(table):
    table.losses.iloc[0, 0] += 0.1
    return table

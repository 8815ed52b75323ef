"""Per-domain tokens and epochs of a mixture for a token budget.

A mixture gives token shares; a training run has a token budget and each domain a finite amount
of data. ``token_plan`` splits the budget into whole tokens per domain and, given the tokens each
domain has, how many epochs of it the run will see (more than 1 means repeated data).
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bayesmix.errors import InputError
from bayesmix.optimise.export.shares import export_shares

#: token-count suffixes: 300B = 300e9 tokens (G is taken as B)
SUFFIXES = {"k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}


class RepetitionWarning(UserWarning):
    """A domain's tokens for the budget exceed the tokens it has: its data is seen more than once."""


def parse_tokens(value: str | float | int, field: str = "budget", minimum: int = 1) -> int:
    """A token count from ``300B``, ``2T``, ``1.5e12``, ``1_000_000`` or a number.

    Parameters
    ----------
    value
        The count; a string may end in ``k``, ``M``, ``B`` (or ``G``) or ``T`` (powers of 1000).
    field
        The name used in errors.
    minimum
        The smallest count accepted (1 for a budget, 0 for the tokens a domain has).

    Returns
    -------
    int
        Tokens, rounded to a whole number.

    Raises
    ------
    InputError
        When ``value`` is not a number of tokens, or is below ``minimum``.
    """
    fix = "write a token count such as 300B, 2T or 1e12"
    if isinstance(value, bool):
        raise InputError(field, f"got {value!r}", fix)
    if isinstance(value, int):
        tokens = float(value)
        count = value
    else:
        text = str(value).strip().replace("_", "").replace(",", "")
        scale = 1
        if text and text[-1].lower() in SUFFIXES:
            scale, text = SUFFIXES[text[-1].lower()], text[:-1]
        try:
            tokens = float(text) * scale
        except ValueError:
            raise InputError(field, f"{value!r} is not a token count", fix) from None
        count = round(tokens) if math.isfinite(tokens) else 0
    if not math.isfinite(tokens) or count < minimum:
        raise InputError(field, f"got {value!r}", f"{fix} (at least {minimum})")
    return int(count)


def read_available(value: str | Path | Mapping[str, Any], field: str = "available") -> dict[str, int]:
    """The tokens each domain has, from a mapping, a file or ``web=2T,code=300B``.

    Parameters
    ----------
    value
        A mapping ``domain -> tokens``; a CSV file with columns ``domain,tokens`` (a header row
        is optional); a JSON or YAML file holding a mapping or a list of
        ``{"domain": ..., "tokens": ...}``; or inline ``domain=tokens`` pairs separated by commas.
        Counts may use suffixes (:func:`parse_tokens`).
    field
        The name used in errors.

    Returns
    -------
    dict
        ``domain -> tokens`` (whole tokens, >= 0).

    Raises
    ------
    InputError
        When the file cannot be read, a row is not a domain and a count, or a domain is named twice.
    """
    if isinstance(value, Mapping):
        pairs = [(str(k), v) for k, v in value.items()]
    else:
        pairs = _available_pairs(value, field)
    counts: dict[str, int] = {}
    for name, count in pairs:
        name = name.strip()
        if not name:
            raise InputError(field, "a row has no domain name", "write domain,tokens rows, e.g. web,2T")
        if name in counts:
            raise InputError(field, f"names {name!r} twice", "give each domain once")
        counts[name] = parse_tokens(count, field, minimum=0)
    if not counts:
        raise InputError(field, "names no domain", "give domain,tokens rows, e.g. web,2T")
    return counts


def _available_pairs(value: str | Path, field: str) -> list[tuple[str, Any]]:
    path = Path(value)
    text = str(value)
    if not path.is_file():
        if "=" not in text:
            raise InputError(
                field,
                f"{text!r} is neither a file nor domain=tokens pairs",
                "give a CSV/JSON file of domain,tokens, or e.g. web=2T,code=300B",
            )
        pairs = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, count = part.partition("=")
            if not sep:
                raise InputError(field, f"{part!r} is not domain=tokens", "write e.g. web=2T,code=300B")
            pairs.append((name, count))
        return pairs
    try:
        content = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".json", ".yaml", ".yml"):
            data = json.loads(content) if path.suffix.lower() == ".json" else yaml.safe_load(content)
            if isinstance(data, Mapping):
                return [(str(k), v) for k, v in data.items()]
            if isinstance(data, list) and all(isinstance(r, Mapping) for r in data):
                return [(str(r.get("domain", "")), r.get("tokens")) for r in data]
            raise InputError(
                field,
                f"{path} holds neither a mapping nor a list of rows",
                'write {"web": "2T", "code": "300B"}',
            )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(field, f"cannot read {path} ({exc})", "give a CSV, JSON or YAML file") from None
    rows = [row for row in csv.reader(io.StringIO(content)) if any(cell.strip() for cell in row)]
    if rows and rows[0] and rows[0][0].strip().lower() == "domain":
        header = [cell.strip().lower() for cell in rows[0]]
        if "tokens" not in header:
            raise InputError(field, f"{path} has no tokens column", "write a header domain,tokens")
        at = header.index("tokens")
        return [(row[0], row[at] if at < len(row) else "") for row in rows[1:]]
    for row in rows:
        if len(row) != 2:
            raise InputError(field, f"row {row} of {path} is not domain,tokens", "write rows such as web,2T")
    return [(row[0], row[1]) for row in rows]


@dataclass(frozen=True)
class TokenPlan:
    """How a token budget is split over the domains of a mixture.

    Attributes
    ----------
    budget
        Training tokens in all.
    shares
        ``domain -> share`` of the trained domains (every share > 0, summing to 1).
    tokens
        ``domain -> tokens`` assigned: whole tokens summing to ``budget`` exactly.
    available
        ``domain -> tokens`` each domain has, or ``None`` when not given.
    """

    budget: int
    shares: dict[str, float]
    tokens: dict[str, int]
    available: dict[str, int] | None = None

    @property
    def epochs(self) -> dict[str, float] | None:
        """``domain -> tokens assigned / tokens available`` (``None`` without ``available``)."""
        if self.available is None:
            return None
        return {d: self.tokens[d] / self.available[d] for d in self.tokens}

    @property
    def repeated(self) -> dict[str, float]:
        """The domains seen for more than one epoch, with their epochs."""
        return {d: e for d, e in (self.epochs or {}).items() if e > 1.0}

    def to_dict(self, digits: int = 6) -> dict[str, Any]:
        """JSON-ready: budget, tokens, available, epochs (rounded to ``digits``), repeated domains."""
        epochs = self.epochs
        return {
            "budget": self.budget,
            "tokens": dict(self.tokens),
            "available": None if self.available is None else {d: self.available[d] for d in self.tokens},
            "epochs": None if epochs is None else {d: round(e, digits) for d, e in epochs.items()},
            "repeated": sorted(self.repeated),
        }

    def table(self) -> pd.DataFrame:
        """One row per domain: share, tokens, available and epochs (the last two NaN when unknown)."""
        epochs = self.epochs or {}
        return pd.DataFrame(
            {
                "share": self.shares,
                "tokens": self.tokens,
                "available": {d: (self.available or {}).get(d, math.nan) for d in self.tokens},
                "epochs": {d: epochs.get(d, math.nan) for d in self.tokens},
            }
        ).rename_axis("domain")

    def lines(self) -> list[str]:
        """One human-readable line per domain: share, tokens and, when known, epochs."""
        epochs = self.epochs or {}
        out = []
        for domain, tokens in self.tokens.items():
            line = f"{domain}: share {self.shares[domain]:.4f}, {tokens:,} tokens"
            if domain in epochs:
                line += f" of {self.available[domain]:,} available ({epochs[domain]:.2f} epochs)"  # type: ignore[index]
            out.append(line)
        return out


def split_budget(shares: Mapping[str, float], budget: int, digits: int = 6) -> dict[str, int]:
    """Whole tokens per domain, proportional to ``shares`` and summing to ``budget`` exactly.

    Each share is taken to ``digits`` decimals (as exported) and the budget is divided in exact
    integer arithmetic; the tokens left by rounding down go to the largest remainders (Hamilton).
    """
    scale = 10**digits
    units = {d: round(s * scale) for d, s in shares.items()}
    biggest = max(units, key=units.__getitem__)
    units[biggest] += scale - sum(units.values())
    tokens = {d: budget * u // scale for d, u in units.items()}
    left = budget - sum(tokens.values())
    for domain in sorted(units, key=lambda d: (budget * units[d]) % scale, reverse=True)[:left]:
        tokens[domain] += 1
    return tokens


def token_plan(
    mixture: pd.Series | Mapping[str, float],
    budget: str | float | int,
    available: str | Path | Mapping[str, Any] | None = None,
    *,
    max_epochs: float | None = None,
    digits: int = 6,
    warn: bool = True,
) -> TokenPlan:
    """Per-domain tokens and epochs of ``mixture`` for a token ``budget``.

    Parameters
    ----------
    mixture
        ``domain -> share`` (or an :class:`~bayesmix.optimise.OptimisationResult`); domains with a
        share of 0 (to ``digits`` decimals) are left out.
    budget
        Training tokens: a number or a string such as ``300B`` (:func:`parse_tokens`).
    available
        Tokens each domain has (:func:`read_available`), for epochs; domains not in the mixture
        are ignored.
    max_epochs
        When given (with ``available``), a domain seen for more epochs than this is an error.
    digits
        Decimals of the exported shares the tokens are computed from.
    warn
        Issue a :class:`RepetitionWarning` when a domain is seen for more than one epoch.

    Returns
    -------
    TokenPlan
        Tokens (summing to the budget) and, with ``available``, epochs per domain.

    Raises
    ------
    InputError
        On a bad mixture or budget; when a domain with a positive share has no token count in
        ``available`` or has 0 tokens (no data); when a domain exceeds ``max_epochs``.
    """
    shares = export_shares(mixture, digits)
    count = parse_tokens(budget, "budget")
    tokens = split_budget(shares, count, digits)
    have = None
    if available is not None:
        counts = read_available(available)
        missing = [d for d in shares if d not in counts]
        if missing:
            raise InputError(
                "available",
                f"no token count for {missing}",
                "give every domain with a positive share its tokens, e.g. "
                + ",".join(f"{d}=300B" for d in missing),
            )
        empty = [d for d in shares if counts[d] == 0]
        if empty:
            raise InputError(
                "available",
                ", ".join(empty)
                + (" has" if len(empty) == 1 else " have")
                + " no data (0 tokens) but a positive share: "
                + ", ".join(f"{d}={shares[d]:g}" for d in empty),
                "optimise again without "
                + ("it" if len(empty) == 1 else "them")
                + " (bayesmix optimise --exclude "
                + " --exclude ".join(empty)
                + "), or give the tokens "
                + ("it has" if len(empty) == 1 else "they have"),
            )
        have = {d: counts[d] for d in shares}
    plan = TokenPlan(budget=count, shares=shares, tokens=tokens, available=have)
    over = plan.repeated
    if max_epochs is not None:
        if not max_epochs > 0:
            raise InputError("max_epochs", f"got {max_epochs}", "give a positive number of epochs, e.g. 4")
        if plan.epochs is None:
            raise InputError(
                "max_epochs", "epochs need the tokens each domain has", "give them too, e.g. web=2T,code=300B"
            )
        beyond = {d: e for d, e in plan.epochs.items() if e > max_epochs}
        if beyond:
            raise InputError(
                "max_epochs",
                "repeated beyond the limit of "
                + f"{max_epochs:g} epochs: "
                + ", ".join(f"{d} {e:.2f} epochs" for d, e in beyond.items()),
                "lower their shares when optimising (bayesmix optimise --bound "
                + " --bound ".join(f"{d}=0:{plan.available[d] * max_epochs / count:.3g}" for d in beyond)  # type: ignore[index]
                + "), give more data, or allow more epochs",
            )
    if over and warn:
        warnings.warn(
            "data repeated: " + ", ".join(f"{d} {e:.2f} epochs" for d, e in over.items()),
            RepetitionWarning,
            stacklevel=2,
        )
    return plan

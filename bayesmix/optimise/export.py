"""Export of a chosen mixture: JSON, YAML, and a ``datasets.interleave_datasets`` snippet."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pandas as pd


def mixture_dict(mixture: pd.Series | Mapping[str, float], digits: int = 6) -> dict[str, float]:
    """``domain -> share`` rounded to ``digits``, renormalised so that the rounded shares sum to 1.

    The rounding remainder goes to the largest share, so the exported numbers sum to 1 exactly
    (to ``digits`` decimals) and can be fed to samplers that insist on it.
    """
    series = pd.Series(dict(mixture), dtype=float).clip(lower=0.0)
    series = series / series.sum()
    rounded = series.round(digits)
    rounded[rounded.idxmax()] = round(rounded.max() + 1.0 - rounded.sum(), digits)
    return {str(k): float(v) for k, v in rounded.items()}


def to_json(mixture: pd.Series | Mapping[str, float], digits: int = 6) -> str:
    """The mixture as a JSON object ``{"domain": share, ...}``."""
    return json.dumps(mixture_dict(mixture, digits), indent=2)


def to_yaml(mixture: pd.Series | Mapping[str, float], digits: int = 6) -> str:
    """The mixture as a YAML mapping under a ``mixture:`` key."""
    lines = ["mixture:"]
    lines += [f"  {json.dumps(k)}: {v}" for k, v in mixture_dict(mixture, digits).items()]
    return "\n".join(lines) + "\n"


def interleave_snippet(
    mixture: pd.Series | Mapping[str, float], seed: int = 0, digits: int = 6, drop_zero: bool = True
) -> str:
    """Python code that builds the mixture with ``datasets.interleave_datasets(probabilities=...)``.

    Domains with share 0 are left out when ``drop_zero`` (``interleave_datasets`` accepts zero
    probabilities, but loading a dataset that is never sampled is wasted work). The user fills in
    how each domain's dataset is loaded (``load_domain``).
    """
    shares = mixture_dict(mixture, digits)
    if drop_zero:
        shares = {k: v for k, v in shares.items() if v > 0}
        total = sum(shares.values())
        shares = mixture_dict({k: v / total for k, v in shares.items()}, digits)
    names = list(shares)
    probabilities = [shares[n] for n in names]
    return (
        "from datasets import interleave_datasets\n\n"
        f"domains = {json.dumps(names)}\n"
        f"probabilities = {json.dumps(probabilities)}\n"
        "datasets = [load_domain(name) for name in domains]  # your loader: one dataset per domain\n"
        "mixed = interleave_datasets(\n"
        f"    datasets, probabilities=probabilities, seed={int(seed)}, stopping_strategy=\"all_exhausted\"\n"
        ")\n"
    )

"""``export_mixture``: a chosen mixture in one of the formats pretraining teams train with."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bayesmix.data.files import atomic_path
from bayesmix.errors import InputError
from bayesmix.optimise.export import frameworks as fw
from bayesmix.optimise.export.shares import export_shares
from bayesmix.optimise.export.tokens import RepetitionWarning, TokenPlan, parse_tokens, token_plan

#: format -> what it writes
FORMATS: dict[str, str] = {
    "json": "JSON: the mixture, and with a budget its tokens and epochs per domain",
    "yaml": "YAML: the same as json",
    "megatron": "Megatron-LM: the --data-path w1 prefix1 w2 prefix2 ... argument",
    "megatron-args": "Megatron-LM: the file for --data-args-path (weight prefix per line)",
    "megatron-split": "Megatron-LM: the JSON file for --per-split-data-args-path (train blend)",
    "nemo": "NeMo: model.data.data_prefix [w, prefix, ...] (YAML)",
    "olmo-core": "olmo-core: SourceMixtureDatasetConfig with one SourceMixtureConfig per domain (YAML)",
    "litgpt": "LitGPT: litdata CombinedStreamingDataset(datasets, weights) (Python)",
    "torchtitan": "torchtitan: a registered dataset interleaving the domains (Python + TOML line)",
    "nanotron": "nanotron: data_stages with a Nanoset blend, dataset_folder + dataset_weights (YAML)",
    "hf": "Hugging Face datasets: interleave_datasets(probabilities=...) (Python)",
}
#: formats that need a data path per domain
NEEDS_PATHS = frozenset(
    {"megatron", "megatron-args", "megatron-split", "nemo", "olmo-core", "litgpt", "nanotron"}
)
#: formats that need a token budget
NEEDS_BUDGET = frozenset({"olmo-core"})


@dataclass(frozen=True)
class Export:
    """A mixture rendered in one format.

    Attributes
    ----------
    format
        One of :data:`FORMATS`.
    text
        What the framework reads (a file's content, or an argument line for ``megatron``).
    shares
        ``domain -> share`` exported: the trained domains, each share > 0, summing to 1.
    plan
        Tokens and epochs per domain for the budget, or ``None`` without a budget.
    paths
        ``domain -> data path`` used, or ``None`` when the format was written without paths.
    """

    format: str
    text: str
    shares: dict[str, float]
    plan: TokenPlan | None = None
    paths: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: format, mixture, budget, tokens, available, epochs, repeated, paths and text."""
        plan = (
            self.plan.to_dict()
            if self.plan is not None
            else dict.fromkeys(("budget", "tokens", "available", "epochs")) | {"repeated": []}
        )
        return {
            "format": self.format,
            "mixture": dict(self.shares),
            **plan,
            "paths": self.paths,
            "text": self.text,
        }

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write :attr:`text` to ``path`` atomically (:func:`write_atomic`)."""
        return write_atomic(path, self.text)


def export_mixture(
    mixture: pd.Series | Mapping[str, float] | Any,
    fmt: str = "json",
    *,
    budget: str | float | int | None = None,
    available: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    paths: str | Mapping[str, str] | None = None,
    seed: int = 0,
    global_batch_size: str | int | None = None,
    max_epochs: float | None = None,
    digits: int = 6,
) -> Export:
    """The chosen mixture in a framework's format, with tokens and epochs for a budget.

    Parameters
    ----------
    mixture
        ``domain -> share``, or an :class:`~bayesmix.optimise.OptimisationResult`.
    fmt
        One of :data:`FORMATS`.
    budget
        Training tokens (``300B``, ``2T``, ``1e12``); required by ``olmo-core``.
    available
        Tokens each domain has (a mapping, a CSV/JSON/YAML file, or ``web=2T,code=300B``); gives
        epochs and flags data repeated for more than one epoch (a
        :class:`~bayesmix.optimise.export.tokens.RepetitionWarning`).
    paths
        Data path (or Megatron prefix) per domain: a template with ``{domain}``, a mapping, or
        ``web=/data/web,...``; required by the formats in :data:`NEEDS_PATHS`, used by ``hf``
        and ``torchtitan`` to load each domain when given.
    seed
        Sampling seed written into the formats that take one.
    global_batch_size
        Tokens per optimizer step, for ``olmo-core``.
    max_epochs
        Refuse (instead of warn) when a domain would be seen for more epochs than this.
    digits
        Decimals of the exported shares.

    Returns
    -------
    Export
        The text, the exported shares, the token plan and the paths.

    Raises
    ------
    InputError
        On an unknown format, a bad mixture, budget, available tokens or paths; when the format
        needs paths or a budget that was not given; when a domain with a positive share has no
        data or exceeds ``max_epochs``.
    """
    if fmt not in FORMATS:
        raise InputError("format", f"unknown format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    shares = export_shares(mixture, digits)
    if budget is None:
        if fmt in NEEDS_BUDGET:
            raise InputError("budget", f"{fmt} needs the training tokens", "give a token budget such as 300B")
        if available is not None:
            raise InputError("available", "epochs need a token budget", "give the budget too, e.g. 300B")
        plan = None
    else:
        plan = token_plan(shares, budget, available, max_epochs=max_epochs, digits=digits, warn=False)
        if plan.repeated:
            warnings.warn(
                "data repeated: " + ", ".join(f"{d} {e:.2f} epochs" for d, e in plan.repeated.items()),
                RepetitionWarning,
                stacklevel=2,
            )
    if paths is None:
        if fmt in NEEDS_PATHS:
            raise InputError(
                "paths", f"{fmt} needs a data path per domain", "give a template such as /data/{domain}"
            )
        resolved = None
    else:
        resolved = fw.resolve_paths(list(shares), paths)
    batch = None if global_batch_size is None else parse_tokens(global_batch_size, "global_batch_size")
    text = _render(fmt, shares, resolved, plan, seed, batch, digits)
    return Export(format=fmt, text=text, shares=shares, plan=plan, paths=resolved)


def _render(
    fmt: str,
    shares: dict[str, float],
    paths: dict[str, str] | None,
    plan: TokenPlan | None,
    seed: int,
    global_batch_size: int | None,
    digits: int,
) -> str:
    if fmt in ("json", "yaml"):
        record: dict[str, Any] = {"mixture": shares}
        if plan is not None:
            extra = plan.to_dict()
            if plan.available is None:
                extra = {"budget": extra["budget"], "tokens": extra["tokens"]}
            record.update(extra)
        if paths is not None:
            record["paths"] = paths
        if fmt == "json":
            return json.dumps(record, indent=2) + "\n"
        return yaml.safe_dump(record, sort_keys=False, default_flow_style=False)
    if fmt == "hf":
        return fw.interleave_snippet(shares, seed=seed, digits=digits, paths=paths, plan=plan)
    if fmt == "torchtitan":
        return fw.torchtitan_snippet(shares, paths, seed=seed, plan=plan, digits=digits)
    assert paths is not None  # NEEDS_PATHS
    if fmt == "megatron":
        return fw.megatron_data_path(shares, paths, digits)
    if fmt == "megatron-args":
        return fw.megatron_data_args(shares, paths, digits)
    if fmt == "megatron-split":
        return fw.megatron_per_split(shares, paths, digits=digits)
    if fmt == "nemo":
        return fw.nemo_config(shares, paths, plan, digits)
    if fmt == "olmo-core":
        assert plan is not None  # NEEDS_BUDGET
        return fw.olmo_core_config(shares, paths, plan, global_batch_size, digits)
    if fmt == "litgpt":
        return fw.litgpt_snippet(shares, paths, seed=seed, plan=plan, digits=digits)
    return fw.nanotron_config(shares, paths, seed=seed, plan=plan, digits=digits)


def read_mixture(path: str | os.PathLike[str]) -> tuple[dict[str, float], dict[str, Any]]:
    """The mixture in a file written by ``bayesmix optimise`` (or a plain ``domain -> share`` JSON).

    Parameters
    ----------
    path
        ``optimum.json`` (:meth:`~bayesmix.optimise.OptimisationResult.to_dict`, under
        ``"mixture"``), a folder holding one (a project), or a JSON object of shares.

    Returns
    -------
    tuple
        ``(domain -> share, the whole record)``; a project's record also holds the target
        ``tokens`` it was optimised for.

    Raises
    ------
    InputError
        When the file is missing, not JSON, or holds no mixture.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "optimum.json").is_file():
            raise InputError(str(path), "has no optimum.json", f"run `bayesmix optimise {path}` first")
        path = path / "optimum.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            str(path), "does not exist", "give the JSON written by `bayesmix optimise`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            str(path), f"is not readable JSON ({exc})", "give the JSON written by `bayesmix optimise`"
        ) from None
    if isinstance(record, dict) and isinstance(record.get("mixture"), dict):
        return dict(record["mixture"]), record
    if (
        isinstance(record, dict)
        and record
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in record.values())
    ):
        return dict(record), {"mixture": record}
    raise InputError(
        str(path), "holds no mixture", 'give the JSON written by `bayesmix optimise` (its "mixture" key)'
    )


def write_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A reader never sees a half-written file, and a failed write leaves an existing file as it was.

    Raises
    ------
    InputError
        When the file cannot be written.
    """
    path = Path(path)
    try:
        with atomic_path(path) as temporary:
            temporary.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError("out", f"cannot write {path} ({exc})", "give a writable file path") from None
    return path

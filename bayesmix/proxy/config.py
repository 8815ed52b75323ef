"""Model size ladders (YAML) and Llama-style ``transformers`` configs built from them.

A ladder file has ``ladder`` (its name), ``defaults`` (``seq_len``, ``tie_word_embeddings``) and
``models`` (name -> ``hidden_size``, ``num_layers``, ``num_heads``, ``intermediate_size`` and
optionally ``num_kv_heads``). The ladders shipped with bayesmix are ``models/cpu.yaml`` and
``models/gpu.yaml``.

Parameter counts: *non-embedding* parameters are all weights except the token embedding and the
output projection (per layer ``2 d (d + d_kv) + 3 d f + 2 d``, plus the final norm ``d``);
*total* adds ``V d`` (tied) or ``2 V d`` (untied). FLOPs per training token follow Kaplan et
al. (2020): ``6 (N + V d) + 6 L T d`` - forward and backward through every weight matrix
(including the output projection) plus attention scores over a context of ``T`` tokens.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from bayesmix.errors import InputError

LADDER_DIR = Path(__file__).resolve().parents[1] / "ladders"
"""Folder of the shipped ladders: ``models/`` of the source tree, installed as package data
(``bayesmix/ladders`` links to it, so a checkout and an installed wheel read the same files)."""


@dataclass(frozen=True)
class ModelSpec:
    """One rung of a size ladder.

    Parameters
    ----------
    name
        Ladder entry name (``"cpu-s"``).
    hidden_size
        Model width ``d``.
    num_layers
        Number of decoder layers ``L``.
    num_heads
        Attention heads (``hidden_size`` must be divisible by it).
    intermediate_size
        SwiGLU width ``f``.
    num_kv_heads
        Key/value heads (grouped-query attention); defaults to ``num_heads``.
    seq_len
        Training context length ``T``.
    tie_word_embeddings
        Share the input embedding and the output projection.
    """

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    num_kv_heads: int | None = None
    seq_len: int = 128
    tie_word_embeddings: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError("model name", f"is {self.name!r}", "name every ladder entry, e.g. cpu-s")
        for key in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "seq_len", "num_kv_heads"):
            value = getattr(self, key)
            if key == "num_kv_heads" and value is None:
                continue
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
                raise InputError(f"model {self.name!r}: {key}", f"is {value!r}", "use a positive integer")
        if not isinstance(self.tie_word_embeddings, bool):
            raise InputError(
                f"model {self.name!r}: tie_word_embeddings",
                f"is {self.tie_word_embeddings!r}",
                "use true or false",
            )
        if self.hidden_size % self.num_heads:
            raise InputError(
                f"model {self.name!r}: num_heads",
                f"{self.num_heads} does not divide {self.hidden_size}",
                "choose num_heads dividing hidden_size",
            )
        if self.num_heads % self.kv_heads:
            raise InputError(
                f"model {self.name!r}: num_kv_heads",
                f"{self.kv_heads} does not divide {self.num_heads}",
                "choose num_kv_heads dividing num_heads",
            )

    @property
    def kv_heads(self) -> int:
        """Number of key/value heads."""
        return self.num_kv_heads or self.num_heads

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as a JSON-able dict."""
        return asdict(self)


def load_ladder(path: str | Path) -> dict[str, ModelSpec]:
    """Read a ladder YAML file.

    Parameters
    ----------
    path
        A ladder file, or the name of a shipped ladder (``"cpu"``, ``"gpu"``).

    Returns
    -------
    dict
        ``{name: ModelSpec}`` in file order.
    """
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise InputError("ladder", f"is {path!r}", "give a ladder YAML path, 'cpu' or 'gpu'")
    p = Path(path)
    if not p.is_file() and (LADDER_DIR / f"{path}.yaml").is_file():
        p = LADDER_DIR / f"{path}.yaml"
    if not p.is_file():
        raise InputError(
            "ladder", f"{path} is not a file or a shipped ladder", "give a YAML path, 'cpu' or 'gpu'"
        )
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(
            str(p), f"is not valid YAML ({type(exc).__name__})", "fix the file's syntax"
        ) from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict) or not models:
        raise InputError(str(p), "has no 'models' mapping", "add models: {name: {hidden_size: ..., ...}}")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise InputError(f"{p}: defaults", f"is {defaults!r}", "write defaults: {seq_len: ...}")
    allowed = [f.name for f in fields(ModelSpec) if f.name != "name"]
    out = {}
    for name, entry in models.items():
        if not isinstance(entry, dict):
            raise InputError(
                f"{p}: model {name!r}", f"is {entry!r}", "write {hidden_size: ..., num_layers: ...}"
            )
        unknown = sorted(str(k) for k in {**defaults, **entry} if k not in allowed)
        if unknown:
            raise InputError(f"{p}: model {name!r}", f"has unknown keys {unknown}", f"use {allowed}")
        merged = {**defaults, **entry}
        missing = [
            k for k in ("hidden_size", "num_layers", "num_heads", "intermediate_size") if k not in merged
        ]
        if missing:
            raise InputError(f"{p}: model {name!r}", f"lacks {missing}", "give them for every model")
        out[str(name)] = ModelSpec(name=str(name), **merged)
    return out


def count_params(spec: ModelSpec, vocab_size: int) -> tuple[int, int]:
    """Return (non-embedding, total) parameter counts of a spec with a vocabulary.

    Parameters
    ----------
    spec
        The model.
    vocab_size
        Tokenizer vocabulary size ``V``.

    Returns
    -------
    tuple of int
        Non-embedding and total parameters (matches the built model exactly).
    """
    d, f = spec.hidden_size, spec.intermediate_size
    d_kv = d // spec.num_heads * spec.kv_heads
    per_layer = 2 * d * d + 2 * d * d_kv + 3 * d * f + 2 * d
    non_embedding = spec.num_layers * per_layer + d
    embedding = vocab_size * d * (1 if spec.tie_word_embeddings else 2)
    return non_embedding, non_embedding + embedding


def flops_per_token(spec: ModelSpec, vocab_size: int) -> float:
    """Return training FLOPs per token, ``6 (N + V d) + 6 L T d`` (see the module docstring)."""
    non_embedding, _ = count_params(spec, vocab_size)
    d = spec.hidden_size
    return 6.0 * (non_embedding + vocab_size * d) + 6.0 * spec.num_layers * spec.seq_len * d


def llama_config(spec: ModelSpec, vocab_size: int, eos_id: int) -> Any:
    """Return the ``transformers.LlamaConfig`` of a spec (no dropout, no biases)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=spec.seq_len,
        tie_word_embeddings=spec.tie_word_embeddings,
        attention_dropout=0.0,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=None,
        use_cache=False,
    )


def build_model(spec: ModelSpec, vocab_size: int, eos_id: int, seed: int) -> Any:
    """Build a freshly initialised ``LlamaForCausalLM`` (initialisation seeded by ``seed``).

    Parameters
    ----------
    spec
        The model.
    vocab_size, eos_id
        From the tokenizer.
    seed
        Seed of the initial weights.

    Returns
    -------
    transformers.LlamaForCausalLM
        In float32 on the CPU.
    """
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(llama_config(spec, vocab_size, eos_id))

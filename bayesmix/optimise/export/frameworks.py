"""Writers of a mixture in the shapes pretraining frameworks read.

Every writer takes the exported shares (:func:`~bayesmix.optimise.export.shares.export_shares`:
trained domains only, each share > 0, summing to 1) and, where the framework needs them, one data
path per domain given by the user (:func:`resolve_paths`); none invents a path. The shares are
token shares: frameworks that sample fixed-length sequences (Megatron-LM, NeMo, nanotron's
Nanosets, litdata's ``TokensLoader``) and olmo-core (tokens per source) train on them as such;
those that sample documents (``datasets.interleave_datasets``, torchtitan) do only when the
domains' documents have similar lengths in tokens, which their docstrings say.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bayesmix.errors import InputError
from bayesmix.optimise.export.shares import mixture_dict, number
from bayesmix.optimise.export.tokens import TokenPlan


def resolve_paths(
    domains: Sequence[str], paths: str | Mapping[str, str] | Path, field: str = "paths"
) -> dict[str, str]:
    """One data path (or prefix) per domain, from a template, a mapping or a JSON/YAML file of one.

    Parameters
    ----------
    domains
        The domains that need a path (those with a positive share).
    paths
        A template containing ``{domain}`` (``/data/{domain}_text_document``); a mapping
        ``domain -> path``; inline ``web=/data/web,code=/data/code``; or a ``.json``/``.yaml``
        file holding such a mapping.
    field
        The name used in errors.

    Returns
    -------
    dict
        ``domain -> path`` for ``domains``, in their order.

    Raises
    ------
    InputError
        When ``paths`` is none of these, or names no path for a domain that needs one.
    """
    fix = "give a template such as /data/{domain}, or web=/data/web,code=/data/code"
    if isinstance(paths, Mapping):
        mapping = {str(k): str(v) for k, v in paths.items()}
    else:
        text = str(paths).strip()
        if "{domain}" in text:
            return {d: text.replace("{domain}", d) for d in domains}
        mapping = _path_mapping(text, field, fix)
    missing = [d for d in domains if not mapping.get(d, "").strip()]
    if missing:
        raise InputError(field, f"no path for {missing}", fix)
    return {d: mapping[d].strip() for d in domains}


def _path_mapping(text: str, field: str, fix: str) -> dict[str, str]:
    path = Path(text)
    if path.suffix.lower() in (".json", ".yaml", ".yml") and path.is_file():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise InputError(field, f"cannot read {path} ({exc})", "give a JSON or YAML mapping") from None
        if not isinstance(data, Mapping):
            raise InputError(field, f"{path} is not a mapping", 'write {"web": "/data/web", ...}')
        return {str(k): str(v) for k, v in data.items()}
    if "=" not in text:
        raise InputError(field, f"{text!r} is neither a template with {{domain}} nor domain=path pairs", fix)
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise InputError(field, f"{part!r} is not domain=path", fix)
        if name.strip() in mapping:
            raise InputError(field, f"names {name.strip()!r} twice", "give each domain once")
        mapping[name.strip()] = value
    return mapping


def _header(title: str, unit: str, plan: TokenPlan | None, source: str) -> list[str]:
    """Comment lines opening a YAML or Python file: what it is, the sampling unit, the tokens."""
    lines = [f"# {title}, chosen by bayesmix.", f"# {unit}.", f"# Shape: {source}."]
    if plan is not None:
        lines.append(f"# For a budget of {plan.budget:,} tokens:")
        lines += [f"#   {line}" for line in plan.lines()]
    return lines


def _pairs(shares: Mapping[str, float], paths: Mapping[str, str]) -> list[tuple[float, str]]:
    return [(shares[d], paths[d]) for d in shares]


def _no_whitespace(paths: Mapping[str, str], what: str) -> None:
    spaced = [p for p in paths.values() if any(c.isspace() for c in p)]
    if spaced:
        raise InputError(
            "paths", f"{spaced} contain whitespace, which {what} splits on", "use paths without spaces"
        )


def megatron_data_path(shares: Mapping[str, float], paths: Mapping[str, str], digits: int = 6) -> str:
    """Megatron-LM's ``--data-path w1 prefix1 w2 prefix2 ...`` argument.

    Megatron-LM reads the flattened list of weights and dataset prefixes (a prefix is the path of
    a ``.bin``/``.idx`` pair without the suffix) with ``get_blend_from_list`` and samples
    sequences of ``--seq-length`` tokens from each prefix in proportion to its weight, so the
    weights are token shares. Paths are shell-quoted.

    Shape: NVIDIA/Megatron-LM:megatron/core/datasets/utils.py (``get_blend_from_list``) and
    NVIDIA/Megatron-LM:megatron/training/utils.py (``get_blend_and_blend_per_split``).

    Returns
    -------
    str
        One line, ``--data-path 0.6 /data/web 0.4 /data/code``, newline-terminated.
    """
    words = [f"{number(w, digits)} {shlex.quote(p)}" for w, p in _pairs(shares, paths)]
    return "--data-path " + " ".join(words) + "\n"


def megatron_data_args(shares: Mapping[str, float], paths: Mapping[str, str], digits: int = 6) -> str:
    """The file Megatron-LM's ``--data-args-path`` reads: ``weight prefix`` pairs, one per line.

    Megatron-LM splits the file on whitespace and reads the words as the ``--data-path`` list,
    so a path must not contain whitespace.

    Shape: NVIDIA/Megatron-LM:megatron/training/utils.py (``get_blend_and_blend_per_split``:
    ``get_blend_from_list(f.read().split())``).

    Raises
    ------
    InputError
        When a path contains whitespace.
    """
    _no_whitespace(paths, "--data-args-path")
    return "".join(f"{number(w, digits)} {p}\n" for w, p in _pairs(shares, paths))


def megatron_per_split(
    shares: Mapping[str, float],
    paths: Mapping[str, str],
    valid: Sequence[str] | None = None,
    test: Sequence[str] | None = None,
    digits: int = 6,
) -> str:
    """The JSON file Megatron-LM's ``--per-split-data-args-path`` reads.

    A JSON object with keys ``train``, ``valid`` and ``test``; each value is a ``--data-path``
    style list (weights and prefixes, as strings) or ``null`` for a split without data.
    ``train`` is the mixture; ``valid`` and ``test`` are the given prefixes without weights, or
    ``null``.

    Shape: NVIDIA/Megatron-LM:megatron/training/utils.py (``get_blend_and_blend_per_split``:
    ``json.load`` then ``get_blend_from_list(per_split_data_args[split])`` for the three splits).
    """
    train = [word for w, p in _pairs(shares, paths) for word in (number(w, digits), p)]
    record = {
        "train": train,
        "valid": None if valid is None else [str(p) for p in valid],
        "test": None if test is None else [str(p) for p in test],
    }
    return json.dumps(record, indent=2) + "\n"


def nemo_config(
    shares: Mapping[str, float], paths: Mapping[str, str], plan: TokenPlan | None = None, digits: int = 6
) -> str:
    """NeMo's ``model.data.data_prefix: [w1, prefix1, w2, prefix2, ...]`` as YAML to merge.

    The list is the Megatron blend (NeMo builds Megatron-core blended datasets from it), written
    with numeric weights as in NeMo's documented example. NeMo 2's
    ``llm.PreTrainingDataModule(paths=[...])`` takes the same flattened list.

    Shape: NVIDIA/NeMo:examples/nlp/language_modeling/conf/megatron_gpt_config.yaml
    (``model.data.data_prefix``) and NVIDIA/NeMo:nemo/collections/llm/gpt/data/pre_training.py
    (``PreTrainingDataModule.paths``).
    """
    prefix: list[Any] = [item for w, p in _pairs(shares, paths) for item in (round(w, digits), p)]
    head = _header(
        "NeMo data blend (model.data.data_prefix)",
        "Weights are token shares: NeMo samples sequences of model.data.seq_length tokens",
        plan,
        "NVIDIA/NeMo examples/nlp/language_modeling/conf/megatron_gpt_config.yaml",
    )
    body = yaml.safe_dump(
        {"model": {"data": {"data_prefix": prefix}}}, sort_keys=False, default_flow_style=False
    )
    return "\n".join(head) + "\n" + body


def olmo_core_config(
    shares: Mapping[str, float],
    paths: Mapping[str, str],
    plan: TokenPlan,
    global_batch_size: int | None = None,
    digits: int = 6,
) -> str:
    """An olmo-core ``SourceMixtureDatasetConfig`` as YAML.

    One ``SourceMixtureConfig`` per domain: ``source_name`` (the domain), ``target_ratio`` (its
    share), ``paths`` (its path; olmo-core expands globs such as ``/data/web/*.npy``) and
    ``max_repetition_ratio``: 1 (olmo-core's default) unless the plan's available tokens say
    the domain needs more epochs, then its epochs rounded up to 2 decimals, since olmo-core
    refuses a source whose ``tokens available * max_repetition_ratio`` is below
    ``requested_tokens * target_ratio`` (without available tokens, raise it by hand for a source
    that has less than its share). ``requested_tokens`` is the budget. ``global_batch_size``
    (tokens per step) has no default in olmo-core; without it the YAML carries a comment in its
    place. The keys are the dataclasses' fields, for olmo-core's ``Config.from_yaml`` /
    ``from_dict`` or for the constructors.

    Shape: allenai/OLMo-core:src/olmo_core/data/source_mixture.py (``SourceMixtureConfig``,
    ``SourceMixtureList``, ``SourceMixtureDatasetConfig``).
    """
    epochs = plan.epochs or {}
    sources = []
    for domain, share in shares.items():
        repetition = 1.0
        if epochs.get(domain, 0.0) > 1.0 and plan.available is not None:
            repetition = math.ceil(epochs[domain] * 100 - 1e-9) / 100
            if int(plan.available[domain] * repetition) < plan.tokens[domain]:  # olmo-core's check
                repetition = round(repetition + 0.01, 2)
        sources.append(
            {
                "source_name": domain,
                "target_ratio": round(share, digits),
                "paths": [paths[domain]],
                "max_repetition_ratio": repetition,
            }
        )
    record: dict[str, Any] = {"source_list": {"sources": sources}, "requested_tokens": plan.budget}
    if global_batch_size is not None:
        record["global_batch_size"] = int(global_batch_size)
    head = _header(
        "olmo-core source mixture (SourceMixtureDatasetConfig)",
        "target_ratio is each source's share of requested_tokens",
        plan,
        "allenai/OLMo-core src/olmo_core/data/source_mixture.py",
    )
    body = yaml.safe_dump(record, sort_keys=False, default_flow_style=False)
    if global_batch_size is None:
        body += "# global_batch_size: <tokens per optimizer step>  (required by SourceMixtureDatasetConfig)\n"
    return "\n".join(head) + "\n" + body


def litgpt_snippet(
    shares: Mapping[str, float],
    paths: Mapping[str, str],
    seed: int = 42,
    block_size: int = 2049,
    plan: TokenPlan | None = None,
    digits: int = 6,
) -> str:
    """Python for a LitGPT data module: litdata's ``CombinedStreamingDataset(datasets, weights)``.

    Each domain is a ``StreamingDataset`` of a folder written by ``litdata.optimize`` read with
    ``TokensLoader(block_size=...)``, so every item is ``block_size`` tokens and the weights are
    token shares. ``iterate_over_all=False`` is required: litdata refuses weights otherwise.
    ``block_size`` is the model's ``max_seq_length + 1`` (LitGPT's convention).

    Shape: Lightning-AI/litdata:src/litdata/streaming/combined.py (``CombinedStreamingDataset``)
    and Lightning-AI/litgpt:litgpt/data/tinyllama.py (``train_dataloader``).
    """
    head = _header(
        "LitGPT / litdata mixture (CombinedStreamingDataset)",
        f"Weights are token shares: each item is a block of {block_size} tokens",
        plan,
        "Lightning-AI/litdata src/litdata/streaming/combined.py",
    )
    body = [
        "from litdata.streaming import CombinedStreamingDataset, StreamingDataLoader, StreamingDataset, TokensLoader",
        "",
        f"BLOCK_SIZE = {int(block_size)}  # the model's max_seq_length + 1",
        f"domains = {json.dumps(list(shares))}",
        f"input_dirs = {json.dumps([paths[d] for d in shares])}",
        f"weights = {json.dumps([round(shares[d], digits) for d in shares])}",
        "train_datasets = [",
        "    StreamingDataset(",
        "        input_dir=input_dir, item_loader=TokensLoader(block_size=BLOCK_SIZE), shuffle=True, drop_last=True",
        "    )",
        "    for input_dir in input_dirs",
        "]",
        "combined_dataset = CombinedStreamingDataset(",
        f"    datasets=train_datasets, seed={int(seed)}, weights=weights, iterate_over_all=False",
        ")",
        "# train_dataloader = StreamingDataLoader(combined_dataset, batch_size=..., pin_memory=True, drop_last=True)",
    ]
    return "\n".join([*head, "", *body]) + "\n"


def _loader_lines(shares: Mapping[str, float], paths: Mapping[str, str] | None) -> list[str]:
    """``domains`` and, with paths, a ``load_domain`` that streams each domain's dataset."""
    lines = [f"domains = {json.dumps(list(shares))}"]
    if paths is None:
        return lines
    return [
        *lines,
        f"paths = {json.dumps({d: paths[d] for d in shares})}",
        "",
        "",
        "def load_domain(name):",
        '    return load_dataset(paths[name], split="train", streaming=True)',
        "",
        "",
    ]


def interleave_snippet(
    mixture: pd.Series | Mapping[str, float],
    seed: int = 0,
    digits: int = 6,
    drop_zero: bool = True,
    paths: Mapping[str, str] | None = None,
    plan: TokenPlan | None = None,
) -> str:
    """Python code that builds the mixture with ``datasets.interleave_datasets(probabilities=...)``.

    Domains with share 0 are left out when ``drop_zero`` (``interleave_datasets`` accepts zero
    probabilities, but loading a dataset that is never sampled is wasted work). Without ``paths``
    the user fills in how each domain's dataset is loaded (``load_domain``); with them,
    ``load_domain`` streams ``load_dataset(path, split="train")``. The probabilities are per
    example: they are token shares when the domains' examples have similar lengths in tokens
    (e.g. after packing into fixed-length sequences). ``stopping_strategy="all_exhausted"``
    restarts a domain that runs out, so its share holds for the whole run.

    Shape: huggingface/datasets:src/datasets/combine.py (``interleave_datasets``).
    """
    shares = mixture_dict(mixture, digits)
    if drop_zero:
        kept = {name: share for name, share in shares.items() if share > 0}
        shares = mixture_dict(kept, digits) if len(kept) < len(shares) else kept
    names = list(shares)
    head = _header(
        "datasets.interleave_datasets mixture",
        "Probabilities are per example: token shares when the domains' examples have similar lengths",
        plan,
        "huggingface/datasets src/datasets/combine.py",
    )
    imports = "from datasets import interleave_datasets" + (", load_dataset" if paths is not None else "")
    loading = "" if paths is not None else "  # your loader: one dataset per domain"
    body = [
        imports,
        "",
        *_loader_lines(shares, paths),
        f"probabilities = {json.dumps([shares[n] for n in names])}",
        "datasets = [load_domain(name) for name in domains]" + loading,
        "mixed = interleave_datasets(",
        f'    datasets, probabilities=probabilities, seed={int(seed)}, stopping_strategy="all_exhausted"',
        ")",
    ]
    return "\n".join([*head, *body]) + "\n"


def torchtitan_snippet(
    shares: Mapping[str, float],
    paths: Mapping[str, str] | None = None,
    seed: int = 0,
    name: str = "bayesmix_mixture",
    text_column: str = "text",
    plan: TokenPlan | None = None,
    digits: int = 6,
) -> str:
    """Python registering the mixture as one torchtitan dataset, plus the TOML line that selects it.

    torchtitan's job config names one dataset (``[training] dataset``), looked up in the
    ``DATASETS`` registry of ``DatasetConfig(path, loader, sample_processor)``; it has no
    per-dataset weights there. Its documented way to train on your own data is to register a
    dataset whose loader returns a Hugging Face dataset, so the snippet registers a loader that
    interleaves the domains with ``datasets.interleave_datasets(probabilities=...)``; torchtitan
    then shards it across data-parallel ranks and tokenizes it. The probabilities are per
    document, so they are token shares when the domains' documents have similar lengths.
    Without ``paths`` the user writes ``load_domain``.

    Shape: pytorch/torchtitan:torchtitan/hf_datasets/text_datasets.py (``DATASETS``,
    ``HuggingFaceTextDataset``), pytorch/torchtitan:torchtitan/hf_datasets/__init__.py
    (``DatasetConfig``) and pytorch/torchtitan:docs/datasets.md.
    """
    head = _header(
        "torchtitan dataset interleaving the mixture",
        "Probabilities are per document: token shares when the domains' documents have similar lengths",
        plan,
        "pytorch/torchtitan torchtitan/hf_datasets/text_datasets.py and docs/datasets.md",
    )
    head += [
        "# Import this module before training (e.g. from your experiment's module) and select it",
        "# in the job's .toml:",
        "#   [training]",
        f'#   dataset = "{name}"',
    ]
    imports = "from datasets import interleave_datasets" + (", load_dataset" if paths is not None else "")
    body = [
        imports,
        "from torchtitan.hf_datasets import DatasetConfig",
        "from torchtitan.hf_datasets.text_datasets import DATASETS",
        "",
        *_loader_lines(shares, paths),
        f"probabilities = {json.dumps([round(shares[d], digits) for d in shares])}",
        "",
        "",
        "def load_mixture(dataset_path):",
        "    streams = [load_domain(name) for name in domains]"
        + ("" if paths is not None else "  # your loader: one dataset per domain"),
        "    return interleave_datasets(",
        f'        streams, probabilities=probabilities, seed={int(seed)}, stopping_strategy="all_exhausted"',
        "    )",
        "",
        "",
        f"DATASETS[{json.dumps(name)}] = DatasetConfig(",
        f"    path={json.dumps(name)},",
        "    loader=load_mixture,",
        f"    sample_processor=lambda sample: sample[{json.dumps(text_column)}],",
        ")",
    ]
    return "\n".join([*head, "", *body]) + "\n"


def nanotron_config(
    shares: Mapping[str, float],
    paths: Mapping[str, str],
    seed: int = 0,
    stage: str = "bayesmix mixture",
    plan: TokenPlan | None = None,
    digits: int = 6,
) -> str:
    """Nanotron's ``data_stages`` with a Nanoset blend: ``dataset_folder`` and ``dataset_weights``.

    One stage starting at step 1 whose dataset is a Nanoset over the domains' tokenized folders
    (datatrove output) weighted by the shares; Nanosets sample sequences of
    ``tokens.sequence_length`` tokens, so the weights are token shares. Not
    ``hf_dataset_or_datasets``: as a dict, its values are the fraction of each Hugging Face
    dataset kept before the datasets are concatenated (nanotron's ``_get_dataset_mix``), not
    sampling weights. Older nanotron releases took ``dataset_path: {path: weight}`` instead
    (docs/nanoset.md).

    Shape: huggingface/nanotron:src/nanotron/config/config.py (``NanosetDatasetsArgs``,
    ``DataArgs``, ``DatasetStageArgs``, ``Config.data_stages``).
    """
    record = {
        "data_stages": [
            {
                "name": stage,
                "start_training_step": 1,
                "data": {
                    "dataset": {
                        "dataset_folder": [paths[d] for d in shares],
                        "dataset_weights": [round(shares[d], digits) for d in shares],
                    },
                    "num_loading_workers": 1,
                    "seed": int(seed),
                },
            }
        ]
    }
    head = _header(
        "nanotron data stage (Nanoset blend)",
        "Weights are token shares: Nanosets sample sequences of tokens.sequence_length tokens",
        plan,
        "huggingface/nanotron src/nanotron/config/config.py",
    )
    body = yaml.safe_dump(record, sort_keys=False, default_flow_style=False)
    return "\n".join(head) + "\n" + body

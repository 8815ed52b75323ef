"""Export of a chosen mixture in the formats pretraining teams train with.

``export_mixture(mixture, fmt, budget=..., available=..., paths=...)`` renders the mixture for
Megatron-LM, NeMo, olmo-core, LitGPT (litdata), torchtitan, nanotron or Hugging Face
``datasets`` (:data:`FORMATS`), with the tokens and epochs of each domain for a token budget
(:func:`token_plan`). Each writer's docstring names the framework source its shape follows.
"""

from bayesmix.optimise.export.api import (
    FORMATS,
    NEEDS_BUDGET,
    NEEDS_PATHS,
    Export,
    export_mixture,
    read_mixture,
    write_atomic,
)
from bayesmix.optimise.export.frameworks import (
    interleave_snippet,
    litgpt_snippet,
    megatron_data_args,
    megatron_data_path,
    megatron_per_split,
    nanotron_config,
    nemo_config,
    olmo_core_config,
    resolve_paths,
    torchtitan_snippet,
)
from bayesmix.optimise.export.shares import (
    check_mixture,
    export_shares,
    mixture_dict,
    number,
    to_json,
    to_yaml,
)
from bayesmix.optimise.export.tokens import (
    RepetitionWarning,
    TokenPlan,
    parse_tokens,
    read_available,
    split_budget,
    token_plan,
)

__all__ = [
    "FORMATS",
    "NEEDS_BUDGET",
    "NEEDS_PATHS",
    "Export",
    "RepetitionWarning",
    "TokenPlan",
    "check_mixture",
    "export_mixture",
    "export_shares",
    "interleave_snippet",
    "litgpt_snippet",
    "megatron_data_args",
    "megatron_data_path",
    "megatron_per_split",
    "mixture_dict",
    "nanotron_config",
    "nemo_config",
    "number",
    "olmo_core_config",
    "parse_tokens",
    "read_available",
    "read_mixture",
    "resolve_paths",
    "split_budget",
    "to_json",
    "to_yaml",
    "token_plan",
    "torchtitan_snippet",
    "write_atomic",
]

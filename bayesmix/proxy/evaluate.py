"""Per-domain validation loss (nats/token) and bits per byte, at log-spaced steps."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from bayesmix.data.tokenizer import bits_per_byte
from bayesmix.errors import InputError
from bayesmix.proxy.data import TokenizedCorpus


def eval_steps(total_steps: int, n_evals: int) -> list[int]:
    """Return ``n_evals`` roughly log-spaced steps in ``[1, total_steps]``, always ending at the last.

    Parameters
    ----------
    total_steps
        Steps in the run.
    n_evals
        Number of evaluations wanted (fewer come back when steps are too few to be distinct).

    Returns
    -------
    list of int
        Sorted distinct steps (counted after the optimizer update, so step ``s`` has seen ``s``
        batches).
    """
    if total_steps < 1 or n_evals < 1:
        raise InputError("steps / n_evals", f"are {total_steps} / {n_evals}", "use positive integers")
    grid = np.unique(np.round(np.geomspace(1, total_steps, n_evals)).astype(int))
    return sorted({*map(int, grid), total_steps})


def evaluate(
    model: Any,
    data: TokenizedCorpus,
    batch_size: int = 32,
    device: str = "cpu",
    autocast: AbstractContextManager | None = None,
) -> dict[str, tuple[float, float]]:
    """Compute every domain's validation loss.

    Parameters
    ----------
    model
        A causal LM returning ``logits``.
    data
        Tokenized corpus (its ``validation`` sequences are used).
    batch_size
        Sequences per forward pass.
    device
        Torch device.
    autocast
        Mixed-precision context (``None``: full precision).

    Returns
    -------
    dict
        ``{domain: (loss in nats/token, bits per byte)}``; the loss is the mean over every
        predicted token (all positions but the first of each sequence).
    """
    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    out = {}
    with torch.no_grad():
        for name in data.domains:
            seqs = data.validation[name]
            total, count = 0.0, 0
            for start in range(0, len(seqs), batch_size):
                x = torch.from_numpy(seqs[start : start + batch_size].astype(np.int64)).to(device)
                with autocast or nullcontext():
                    logits = model(input_ids=x).logits
                loss = F.cross_entropy(
                    logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                    x[:, 1:].reshape(-1),
                    reduction="sum",
                )
                total += float(loss)
                count += int(x[:, 1:].numel())
            mean = total / count
            bpb = bits_per_byte(mean, count, max(1, round(count * data.bytes_per_token[name])))
            if not math.isfinite(mean):
                raise FloatingPointError(f"validation loss of {name} is {mean}")
            out[name] = (mean, bpb)
    model.train(was_training)
    return out

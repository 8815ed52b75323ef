"""Proxies that repeat each domain as often as the target run will.

A repetition-aware law (:class:`~bayesmix.laws.RepetitionMixingLaw`) learns how fast repeated
tokens lose their value from runs that repeat data. Proxies trained on a whole corpus rarely do:
a run of ``D_p`` tokens at share ``r_j`` sees ``r_j D_p / U_j`` epochs of domain *j*, far fewer than
the target run's ``r_j D / U_j``. Giving the proxies' corpus ``U_j D_p / D`` unique tokens of each
domain makes every mixture repeat each domain exactly as often in a proxy as in the target run,
so the proxies measure the repetition the decision is about. Write the result as the proxies'
``corpus.train_bytes: {domain: bytes}`` (study settings) with the corpus's bytes per token.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

from bayesmix.errors import InputError


def repetition_matched_budgets(
    available_tokens: Mapping[str, float],
    target_tokens: float,
    proxy_tokens: float,
    *,
    bytes_per_token: float | Mapping[str, float] | None = None,
) -> dict[str, int]:
    """Unique training data per domain for proxies at the target run's repetition rate.

    Parameters
    ----------
    available_tokens
        ``domain -> U_j``: unique tokens each domain has for the target run.
    target_tokens
        ``D``: the target run's training tokens.
    proxy_tokens
        ``D_p``: each proxy's training tokens.
    bytes_per_token
        The proxies' corpus's UTF-8 bytes per token (one number, or per domain): the result is
        then in bytes, ready for ``corpus.train_bytes``; default: in tokens.

    Returns
    -------
    dict
        ``domain -> U_j D_p / D`` (tokens, or bytes with ``bytes_per_token``), at least 1.

    Raises
    ------
    InputError
        Non-positive or non-finite numbers, or ``bytes_per_token`` missing a domain.
    """
    for name, value in (("target_tokens", target_tokens), ("proxy_tokens", proxy_tokens)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
            raise InputError(name, f"got {value!r}", "give a positive number of tokens, e.g. 1e9")
    if not isinstance(available_tokens, Mapping) or not available_tokens:
        raise InputError("available_tokens", f"got {available_tokens!r}", "give {domain: unique tokens}")
    out = {}
    for domain, tokens in available_tokens.items():
        if isinstance(tokens, bool) or not isinstance(tokens, numbers.Real) or not (math.isfinite(tokens) and tokens > 0):
            raise InputError("available_tokens", f"{domain!r}: {tokens!r}", "give each domain's unique tokens (> 0)")
        value = tokens * proxy_tokens / target_tokens
        if bytes_per_token is not None:
            rate = bytes_per_token.get(domain) if isinstance(bytes_per_token, Mapping) else bytes_per_token
            if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not (math.isfinite(rate) and rate > 0):
                raise InputError("bytes_per_token", f"{domain!r}: {rate!r}", "give the corpus's bytes per token (> 0), e.g. 4.2")
            value *= rate
        out[str(domain)] = max(1, round(float(value)))
    return out

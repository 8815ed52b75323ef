"""Proxy training: small Llama-style models trained on data mixtures, results in the run ledger."""

"""Inference: fitting (NUTS, MAP, the paper's protocol), diagnostics, prediction, persistence."""

from bayesmix.inference.diagnostics import SamplerHealth, compare, loo, summary
from bayesmix.inference.fit import fit, health
from bayesmix.inference.io import load, save
from bayesmix.inference.predict import (
    add_log_likelihood,
    add_posterior_predictive,
    fitted_spec,
    interval,
    predict,
    to_chain_draw,
)

__all__ = [
    "SamplerHealth",
    "add_log_likelihood",
    "add_posterior_predictive",
    "compare",
    "fit",
    "fitted_spec",
    "health",
    "interval",
    "load",
    "loo",
    "predict",
    "save",
    "summary",
    "to_chain_draw",
]

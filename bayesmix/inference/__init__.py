"""Inference: fitting (NUTS, MAP, the paper's protocol), diagnostics, prediction, persistence."""

from bayesmix.inference.diagnostics import SamplerHealth
from bayesmix.inference.fit import fit, health
from bayesmix.inference.io import load, save
from bayesmix.inference.predict import fitted_spec, interval, predict

__all__ = ["SamplerHealth", "fit", "fitted_spec", "health", "interval", "load", "predict", "save"]

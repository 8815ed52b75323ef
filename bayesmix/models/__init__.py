"""PyMC models: a law bound to a run table, its dims and its hierarchy."""

from bayesmix.models.discrepancy import Discrepancy
from bayesmix.models.mixing_model import ModelSpec, build_model, summarise_data

__all__ = ["Discrepancy", "ModelSpec", "build_model", "summarise_data"]

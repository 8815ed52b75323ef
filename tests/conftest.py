"""Shared fixtures: simulated studies with known truth and fits reused across tests."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import bayesmix as bm
from bayesmix.data.simulate import random_law, simulate_runs

settings.register_profile(
    "default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "default")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def regmix_dir() -> Path:
    path = SHARED_DATA / "regmix"
    if not path.exists():
        pytest.skip("../shared/data/regmix is not next to this checkout")
    return path


@pytest.fixture(scope="session")
def study3():
    """A 3-domain study: 30 runs of a known law, plus held-out mixtures."""
    law = random_law(3, seed=11, noise_sd=0.01)
    return law, simulate_runs(law, 30, seed=11)


@pytest.fixture(scope="session")
def fit3(study3):
    _, runs = study3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        return bm.fit(runs, draws=500, tune=500, chains=2, seed=3, discrepancy=None)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)

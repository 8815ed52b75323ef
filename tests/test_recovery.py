"""Parameter recovery and interval calibration on data simulated from known laws."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayesmix as bm
from bayesmix.data.simulate import random_law, random_mixtures, simulate_runs


def coverage_of_parameters(idata, truth: dict, prob: float = 0.9) -> dict[str, np.ndarray]:
    out = {}
    for name, value in truth.items():
        summary = bm.interval(idata.posterior[name].stack(sample=("chain", "draw")), prob=prob)
        out[name] = (summary["lower"].to_numpy() <= value) & (value <= summary["upper"].to_numpy())
    return out


def fit_quietly(runs, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        return bm.fit(runs, **{"discrepancy": None, **kwargs})  # the law alone: its recovery is tested


def test_recovery_three_domains(fit3, study3):
    law, runs = study3
    truth = law.truth_at(runs.mixtures.to_numpy().mean(axis=0))
    covered = coverage_of_parameters(fit3, truth)
    # c, k and every zero-sum interaction are identifiable; all 15 must be inside their 90% intervals
    assert all(bool(v.all()) for v in covered.values()), covered


@pytest.mark.parametrize(("n_domains", "n_runs", "seed"), [(7, 40, 21)])
def test_recovery_seven_domains(n_domains, n_runs, seed):
    law = random_law(n_domains, seed=seed, noise_sd=0.01)
    runs = simulate_runs(law, n_runs, seed=seed)
    idata = fit_quietly(runs, draws=500, tune=500, chains=2, seed=seed)
    truth = law.truth_at(runs.mixtures.to_numpy().mean(axis=0))
    covered = coverage_of_parameters(idata, truth)
    # 63 identifiable parameters at 90%: about 6 misses are expected; 12 or more would mean miscalibration
    flat = np.concatenate([v.ravel() for v in covered.values()])
    assert flat.mean() >= 0.8, {k: v.mean() for k, v in covered.items()}
    # the slopes that matter most, each domain's effect on itself, are all recovered
    assert np.diag(covered["t"]).all()


def held_out_coverage(seeds, n_domains=3, n_runs=30, n_new=100, prob=0.9):
    hits = []
    for seed in seeds:
        law = random_law(n_domains, seed=seed, noise_sd=0.01)
        runs = simulate_runs(law, n_runs, seed=seed)
        idata = fit_quietly(runs, draws=400, tune=400, chains=2, seed=seed)
        new = random_mixtures(n_new, n_domains, seed=seed + 1000)
        held = simulate_runs(law, n_new, seed=seed + 1000, mixtures=new).losses.to_numpy()
        summary = bm.interval(bm.predict(idata, new, seed=seed), prob=prob)
        hits.append((summary["lower"].to_numpy() <= held) & (held <= summary["upper"].to_numpy()))
    return np.concatenate([h.ravel() for h in hits]).mean()


def test_predictive_intervals_are_calibrated_on_held_out_mixtures():
    """3 simulated studies x 100 held-out mixtures x 3 domains = 900 intervals at 90%."""
    coverage = held_out_coverage(seeds=(101, 202, 303))
    assert 0.85 <= coverage <= 0.95, coverage


@pytest.mark.slow
def test_predictive_intervals_are_calibrated_larger_check():
    coverage = held_out_coverage(seeds=tuple(range(500, 510)), n_domains=5, n_runs=40)
    assert 0.87 <= coverage <= 0.93, coverage


def test_shared_noise_recovers_the_shared_factor_and_calibrates_totals():
    """Runs with a per-run offset common to all domains: the 'shared' noise model finds it."""
    law = random_law(3, seed=31, noise_sd=0.01)
    runs = simulate_runs(law, 40, seed=31, shared_sd=0.02)
    idata = fit_quietly(runs, noise="shared", draws=400, tune=400, chains=2, seed=31)
    shared = bm.interval(idata.posterior["sigma_shared"].stack(sample=("chain", "draw")), prob=0.9)
    assert (shared["lower"] <= 0.02).all() and (0.02 <= shared["upper"]).all()
    new = random_mixtures(200, 3, seed=77)
    held = simulate_runs(law, 200, seed=77, mixtures=new, shared_sd=0.02).losses.to_numpy().mean(axis=1)
    total = bm.interval(bm.predict(idata, new, composition=[1, 1, 1], seed=2), 0.9).sel(domain="total")
    coverage = np.mean((total["lower"].to_numpy() <= held) & (held <= total["upper"].to_numpy()))
    assert 0.85 <= coverage <= 0.97, coverage

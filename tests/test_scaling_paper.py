"""The paper's point-fit protocol for step and size laws (the nested baseline)."""

from dataclasses import replace

import numpy as np
import pytest

from bayesmix.data.curves import CurveTable
from bayesmix.data.simulate_curves import random_nested_truth, simulate_curves
from bayesmix.inference.paper_scaling import fit_shared_power_law, paper_nested_predict


def test_recovers_noise_free_shared_power_law():
    rng = np.random.default_rng(0)
    log_x = np.tile(np.log(np.geomspace(1e9, 3e10, 11)), 2)
    curve = np.repeat([0, 1], 11)
    c, log_x0, alpha = np.array([2.0, 1.5]), np.array([19.0, 18.0]), 0.7
    y = c[curve] + np.exp(alpha * (log_x0[curve] - log_x))
    held = np.tile(np.arange(11) >= 6, 2)
    fit = fit_shared_power_law(
        log_x,
        y,
        curve,
        held,
        delta=0.05,
        grid=(np.linspace(15, 23, 11), np.linspace(0.65, 0.9, 10)),
        selection="huber",
        n_inits=5,
        seed=int(rng.integers(100)),
    )
    np.testing.assert_allclose(fit.predict(1e11), c + np.exp(alpha * (log_x0 - np.log(1e11))), rtol=2e-3)


@pytest.mark.slow
def test_nested_point_prediction_is_close_on_clean_data():
    # the truth in the protocol's exact form (one size exponent for every curve, one step exponent per
    # run's domains): on clean data the error is then only the optimiser's, not a model-form bias
    truth = replace(
        random_nested_truth(2, seed=5, run_sd=0.0, noise_sd=0.0), alpha=np.full(2, 0.3), beta=np.full(2, 0.3)
    )
    frame, mixtures = simulate_curves(truth, n_mixtures=1, model_sizes=(1e7, 2e7, 5e7, 1e8), seed=5)
    table = CurveTable.from_long(frame)
    out = paper_nested_predict(table, [3e8], 1e11, n_inits=20, seed=0)
    assert set(out.columns) == {"mixture", "domain", "model_size", "loss"}
    true = truth.mean_loss(mixtures, 3e8, 1e11)
    # over 100 start draws the error is 0.05% at the median and 1.5% at most (a draw whose 20 starts
    # all miss the basin); floating-point path changes at this seed move it by < 0.1%. A wrongly
    # wired target moves it further: step law at 2e10 tokens 3.6%, size law at 2e8 7%
    for _, row in out.iterrows():
        m, d = int(row["mixture"][1:]), list(truth.domains).index(row["domain"])
        assert abs(row["loss"] - true[m, d]) / true[m, d] < 0.02

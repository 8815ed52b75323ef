"""Backtest calibration of the nested model's size extrapolation (model-discrepancy term)."""

import numpy as np
import pytest

from bayesmix.data.curves import CurveTable
from bayesmix.data.simulate_curves import random_nested_truth, simulate_curves
from bayesmix.errors import InputError, NotEnoughDataError
from bayesmix.inference.nested import predict_target
from bayesmix.inference.nested_calibration import calibrate_extrapolation

SIZES = (1e7, 2e7, 4e7, 8e7, 1.6e8)
SETTINGS = {"draws": 150, "tune": 200, "chains": 2}


def _frame(bend: float):
    truth = random_nested_truth(2, seed=5)
    frame, _ = simulate_curves(truth, n_mixtures=3, model_sizes=SIZES, seed=5)
    # a truth that bends away from the power law as size grows (log loss + bend * ln(N/1e7)^2)
    frame["loss"] = frame["loss"] * np.exp(bend * np.log(frame["model_size"] / 1e7) ** 2)
    return frame


@pytest.fixture(scope="module")
def calibrations():
    return {bend: calibrate_extrapolation(CurveTable.from_long(_frame(bend)), holdout_sizes=2, seed=1, **SETTINGS)
            for bend in (0.0, 0.02)}  # fmt: skip


def test_backtest_finds_the_bend_and_not_a_well_specified_law(calibrations):
    straight, bent = calibrations[0.0], calibrations[0.02]
    assert straight.max_fit_size == bent.max_fit_size == 4e7
    assert set(straight.residuals["efolds"].round(6)) == {round(np.log(2), 6), round(np.log(4), 6)}
    # the bend makes the held-out losses higher than the power law extrapolates, systematically
    assert (bent.residuals["log_residual"] > 0).all()
    assert bent.kappa > 0.02 > straight.kappa
    # kappa is the method-of-moments estimate written in the module docstring
    r = bent.residuals
    excess = (r["log_residual"] ** 2 - r["predictive_var"]).mean()
    assert bent.kappa == pytest.approx(np.sqrt(max(0.0, excess) / (r["efolds"] ** 2).mean()))


def test_discrepancy_widens_only_beyond_the_fitted_sizes(calibrations):
    fitted = calibrations[0.0].refit  # fitted on the sizes up to 4e7
    assert fitted.table.model_sizes.max() == 4e7
    inside = {"model_size": 4e7, "tokens": 2e10}
    far = {"model_size": 1.6e9, "tokens": 2e10}
    np.testing.assert_array_equal(
        predict_target(fitted, **inside, seed=3).values,
        predict_target(fitted, **inside, seed=3, discrepancy=0.2).values,
    )
    bent = calibrations[0.02]
    plain = predict_target(fitted, **far, seed=3)
    wide = predict_target(fitted, **far, seed=3, discrepancy=bent)
    # same seed, same posterior draws: the ratio is the discrepancy factor exp(kappa * ln(N*/N_max) * z)
    # alone, free of the posterior's own spread
    log_factor = np.log(wide.values / plain.values)  # (sample, mixture, domain)
    per_draw = log_factor[:, 0, 0]  # kappa * e* * z
    # one z per draw, shared by every mixture and domain (and so by the total)
    np.testing.assert_allclose(
        log_factor, np.broadcast_to(per_draw[:, None, None], log_factor.shape), atol=1e-9
    )
    n, scale = per_draw.size, bent.kappa * np.log(far["model_size"] / 4e7)
    # bounds: 4 Monte Carlo standard errors over the n draws (z iid normal): the sample sd's relative
    # error is 1/sqrt(2(n-1)), the mean's standard error scale/sqrt(n)
    assert abs(per_draw.std(ddof=1) / scale - 1) < 4 / np.sqrt(2 * (n - 1))  # widens by kappa per e-fold
    assert abs(per_draw.mean()) < 4 * scale / np.sqrt(n)  # and does not move the centre
    # material next to the posterior's own spread: the factor adds about mean * kappa * e* in quadrature,
    # about 2x the posterior sd here even at the bend's kappa floor of 0.02 (4-5x at the fitted kappa)
    assert float(wide.std("sample").mean()) > 1.5 * float(plain.std("sample").mean())
    again = predict_target(fitted, **far, seed=3, discrepancy=bent)
    np.testing.assert_array_equal(wide.values, again.values)
    with pytest.raises(InputError, match="discrepancy"):
        predict_target(fitted, **far, discrepancy=-1.0)


def test_calibration_needs_enough_sizes():
    table = CurveTable.from_long(_frame(0.0))
    with pytest.raises(NotEnoughDataError, match="model_size"):
        calibrate_extrapolation(table, holdout_sizes=4)
    with pytest.raises(InputError, match="holdout_sizes"):
        calibrate_extrapolation(table, holdout_sizes=0)

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
    plain = predict_target(fitted, **far, seed=3)
    wide = predict_target(fitted, **far, seed=3, discrepancy=calibrations[0.02])
    assert float(wide.std("sample").mean()) > 1.5 * float(plain.std("sample").mean())
    assert abs(float(wide.median("sample").mean()) - float(plain.median("sample").mean())) < 0.05
    again = predict_target(fitted, **far, seed=3, discrepancy=calibrations[0.02])
    np.testing.assert_array_equal(wide.values, again.values)
    with pytest.raises(InputError, match="discrepancy"):
        predict_target(fitted, **far, discrepancy=-1.0)


def test_calibration_needs_enough_sizes():
    table = CurveTable.from_long(_frame(0.0))
    with pytest.raises(NotEnoughDataError, match="model_size"):
        calibrate_extrapolation(table, holdout_sizes=4)
    with pytest.raises(InputError, match="holdout_sizes"):
        calibrate_extrapolation(table, holdout_sizes=0)

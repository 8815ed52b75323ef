"""bayesmix: Bayesian data mixing laws for choosing LLM pretraining mixtures, with uncertainty.

The everyday API::

    import bayesmix as bm
    runs = bm.RunTable.from_wide("runs.csv")          # or from_long / from_joined
    idata = bm.fit(runs)                               # hierarchical M4 mixing law, NUTS (nutpie)
    draws = bm.predict(idata, {"web": 0.6, "code": 0.4})
    bm.interval(draws, prob=0.9)                       # mean, median, lower, upper
    bm.save(idata, "fit.nc"); idata = bm.load("fit.nc")
"""

from bayesmix.data.curves import CurveTable
from bayesmix.data.runs import RunTable, validate_mixtures
from bayesmix.errors import (
    BayesmixError,
    IncompatibleFileError,
    InputError,
    NotEnoughDataError,
    SamplerHealthError,
    SamplerHealthWarning,
)
from bayesmix.inference import SamplerHealth, fit, fitted_spec, health, interval, load, predict, save
from bayesmix.inference.nested import NestedFit, fit_nested, predict_target
from bayesmix.laws import ExplicitAggregation, ImplicitMixingLaw, Law, LinearLaw, MixingLaw, register_law
from bayesmix.laws.scaling import JointScalingLaw, SizeLaw, StepLaw
from bayesmix.versions import __version__

__all__ = [
    "BayesmixError",
    "CurveTable",
    "ExplicitAggregation",
    "ImplicitMixingLaw",
    "IncompatibleFileError",
    "InputError",
    "JointScalingLaw",
    "Law",
    "LinearLaw",
    "MixingLaw",
    "NestedFit",
    "NotEnoughDataError",
    "RunTable",
    "SamplerHealth",
    "SamplerHealthError",
    "SamplerHealthWarning",
    "SizeLaw",
    "StepLaw",
    "__version__",
    "fit",
    "fit_nested",
    "fitted_spec",
    "health",
    "interval",
    "load",
    "predict",
    "predict_target",
    "register_law",
    "save",
    "validate_mixtures",
]

# the mixture optimiser under uncertainty
from bayesmix.optimise import LossConstraint, OptimisationResult, critical_proportion, optimise

__all__ += ["LossConstraint", "OptimisationResult", "critical_proportion", "optimise"]

# active learning of the mixture
from bayesmix.design import Designer  # noqa: E402 (appended export)

__all__ += ["Designer"]

# nested fits saved and loaded, the target-scale mixing law, extrapolation calibration
from bayesmix.inference.discrepancy import calibrate_discrepancy  # noqa: E402
from bayesmix.inference.fit import DiscrepancySkippedWarning  # noqa: E402
from bayesmix.inference.nested import (  # noqa: E402
    TargetExtrapolationWarning,
    check_target,
    target_extrapolation,
)
from bayesmix.inference.nested_calibration import calibrate_extrapolation  # noqa: E402
from bayesmix.inference.nested_io import load_nested, save_nested  # noqa: E402
from bayesmix.inference.nested_target import target_fit  # noqa: E402
from bayesmix.models.discrepancy import Discrepancy  # noqa: E402

__all__ += [
    "Discrepancy",
    "DiscrepancySkippedWarning",
    "TargetExtrapolationWarning",
    "calibrate_discrepancy",
    "calibrate_extrapolation",
    "check_target",
    "load_nested",
    "save_nested",
    "target_extrapolation",
    "target_fit",
]

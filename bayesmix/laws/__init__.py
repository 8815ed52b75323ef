"""Laws: pure functions of the mixture (numpy and PyTensor) with their default priors."""

from bayesmix.laws.aggregation import ExplicitAggregation, ImplicitMixingLaw
from bayesmix.laws.base import (
    DataSummary,
    Law,
    ParameterSpec,
    available_laws,
    get_law,
    law_from_spec,
    register_law,
)
from bayesmix.laws.linear import LinearLaw
from bayesmix.laws.mixing import MixingLaw
from bayesmix.laws.repetition import RepetitionMixingLaw, effective_shares
from bayesmix.laws.scaling import JointScalingLaw, ScalingLaw, SizeLaw, StepLaw, get_scaling_law

__all__ = [
    "DataSummary",
    "ExplicitAggregation",
    "ImplicitMixingLaw",
    "JointScalingLaw",
    "Law",
    "LinearLaw",
    "MixingLaw",
    "ParameterSpec",
    "RepetitionMixingLaw",
    "ScalingLaw",
    "SizeLaw",
    "StepLaw",
    "available_laws",
    "effective_shares",
    "get_law",
    "get_scaling_law",
    "law_from_spec",
    "register_law",
]

# The public API of bayesmix: one line per name, grouped by layer. At run time bayesmix/__init__.py
# loads each name on first use (lazy_loader), so `import bayesmix` and the command line start fast.

# run tables and loss curves
from .data.curves import CurveTable as CurveTable
from .data.runs import RunTable as RunTable
from .data.runs import validate_mixtures as validate_mixtures

# errors and warnings
from .errors import BayesmixError as BayesmixError
from .errors import IncompatibleFileError as IncompatibleFileError
from .errors import InputError as InputError
from .errors import NotEnoughDataError as NotEnoughDataError
from .errors import SamplerHealthError as SamplerHealthError
from .errors import SamplerHealthWarning as SamplerHealthWarning
from .inference.fit import DiscrepancySkippedWarning as DiscrepancySkippedWarning
from .inference.nested import TargetExtrapolationWarning as TargetExtrapolationWarning

# laws
from .laws import ExplicitAggregation as ExplicitAggregation
from .laws import ImplicitMixingLaw as ImplicitMixingLaw
from .laws import Law as Law
from .laws import LinearLaw as LinearLaw
from .laws import MixingLaw as MixingLaw
from .laws import RepetitionMixingLaw as RepetitionMixingLaw
from .laws import effective_shares as effective_shares
from .laws import register_law as register_law
from .laws.scaling import JointScalingLaw as JointScalingLaw
from .laws.scaling import SizeLaw as SizeLaw
from .laws.scaling import StepLaw as StepLaw
from .laws.joint import JointMixingLaw as JointMixingLaw
from .models.discrepancy import Discrepancy as Discrepancy

# fitting, prediction, diagnostics, files
from .inference import SamplerHealth as SamplerHealth
from .inference import fit as fit
from .inference import fitted_spec as fitted_spec
from .inference import health as health
from .inference import interval as interval
from .inference import load as load
from .inference import predict as predict
from .inference import save as save
from .inference import add_log_likelihood as add_log_likelihood
from .inference import add_posterior_predictive as add_posterior_predictive
from .inference import compare as compare
from .inference import loo as loo
from .inference import summary as summary
from .inference import to_chain_draw as to_chain_draw
from .inference.discrepancy import calibrate_discrepancy as calibrate_discrepancy

# nested scaling laws and the target scale
from .inference.nested import NestedFit as NestedFit
from .inference.nested import check_target as check_target
from .inference.nested import fit_nested as fit_nested
from .inference.nested import predict_target as predict_target
from .inference.nested import target_extrapolation as target_extrapolation
from .inference.nested_calibration import calibrate_extrapolation as calibrate_extrapolation
from .inference.nested_io import load_nested as load_nested
from .inference.nested_io import save_nested as save_nested
from .inference.nested_target import target_fit as target_fit

# runs at several model sizes: the joint mixture x size law
from .inference.joint import fit_joint as fit_joint
from .inference.joint import joint_at as joint_at

# multi-phase schedules: a mixture per phase and the switch points
from .data.phases import PhaseTable as PhaseTable
from .laws.schedule import PhaseMixingLaw as PhaseMixingLaw
from .inference.schedule import fit_schedule as fit_schedule
from .inference.schedule import predict_schedule as predict_schedule
from .optimise.schedule import ScheduleOptimum as ScheduleOptimum
from .optimise.schedule import optimise_schedule as optimise_schedule
from .optimise.export.schedule import export_schedule as export_schedule

# downstream targets: benchmark accuracy from scale or from a validation loss
from .laws.downstream import AccuracyLaw as AccuracyLaw
from .laws.downstream import TaskLossLaw as TaskLossLaw
from .models.downstream import LadderData as LadderData
from .inference.downstream import DownstreamCalibration as DownstreamCalibration
from .inference.downstream_calibration import calibrate_downstream as calibrate_downstream
from .inference.downstream import fit_downstream as fit_downstream
from .inference.downstream import fit_downstream_link as fit_downstream_link
from .inference.downstream import predict_downstream as predict_downstream
from .optimise.downstream import DownstreamTarget as DownstreamTarget

# choosing the mixture
from .optimise import LossConstraint as LossConstraint
from .optimise import OptimisationResult as OptimisationResult
from .optimise import critical_proportion as critical_proportion
from .optimise import export_mixture as export_mixture
from .optimise import optimise as optimise

# active learning
from .design import Designer as Designer
from .design import repetition_matched_budgets as repetition_matched_budgets

# version
from .versions import __version__ as __version__

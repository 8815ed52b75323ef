"""Reports of a bayesmix study: figures of the posterior, findings, and the HTML report.

::

    from bayesmix.report import build_report
    files = build_report("report/", fit=idata, nested=nested_fit, target_scale=(1e9, 2e10), optimum=best)
    files.html, files.markdown                                   # report.html (self-contained), report.md

Every figure is a matplotlib function of the posterior (``ax=None`` makes a new figure; the figure
is returned) and can be used alone: :func:`observed_vs_predicted`, :func:`scaling_fan`,
:func:`interaction_matrix`, :func:`optimum_mixture`, :func:`optimum_loss`.

The report opens with the decision: :func:`decide` turns P(beats reference), the sampler's health
and the extrapolation caveats into one verdict ("switch", "not yet", "do not switch").
"""

from bayesmix.report.build import SECTIONS, ReportFiles, build_report
from bayesmix.report.decision import Decision, decide
from bayesmix.report.figures import (
    interaction_matrix,
    observed_vs_predicted,
    optimum_loss,
    optimum_mixture,
    scaling_fan,
)
from bayesmix.report.summaries import (
    fan_draws,
    interaction_summary,
    nearest_observed_mixture,
    predictive_check,
)
from bayesmix.report.uncertainty import (
    Finding,
    optimum_draws,
    optimum_location_draws,
    what_data_cannot_tell,
)

__all__ = [
    "SECTIONS",
    "Decision",
    "Finding",
    "ReportFiles",
    "build_report",
    "decide",
    "fan_draws",
    "interaction_matrix",
    "interaction_summary",
    "nearest_observed_mixture",
    "observed_vs_predicted",
    "optimum_draws",
    "optimum_location_draws",
    "optimum_loss",
    "optimum_mixture",
    "predictive_check",
    "scaling_fan",
    "what_data_cannot_tell",
]

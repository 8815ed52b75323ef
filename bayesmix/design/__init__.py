"""Active learning of the training mixture: which proxy runs to buy next.

* :class:`Designer` - ask/tell loop with batches that account for pending runs, proposals of
  model size and tokens (:class:`RunScale`) with cost-aware acquisition, a checked JSON state,
  rebuild from a :class:`~bayesmix.data.runs.RunTable` or the run ledger
  (:mod:`bayesmix.design.designer`, built on :mod:`~bayesmix.design.scales`,
  :mod:`~bayesmix.design.records`, :mod:`~bayesmix.design.candidates`,
  :mod:`~bayesmix.design.state` and :mod:`~bayesmix.design.rebuild`);
* acquisition functions on posterior draws (:mod:`bayesmix.design.acquisition`);
* space-filling initial designs inside the optimiser's constraints (:mod:`bayesmix.design.initial`);
* proxies at the target run's repetition rate (:func:`repetition_matched_budgets`);
* the refit surrogates (:mod:`bayesmix.design.surrogate`) and the stopping report
  (:mod:`bayesmix.design.stopping`).
"""

from bayesmix.design.acquisition import (
    ACQUISITIONS,
    compute_cost,
    cost_aware,
    expected_improvement,
    integrated_variance_reduction,
    optimum_probability,
    region_variance_batch,
    score_pairs,
    thompson,
    transfer_correlation,
)
from bayesmix.design.designer import Designer, Proposal
from bayesmix.design.fantasy import condition_on
from bayesmix.design.initial import feasible_candidates, maximin_select, space_filling
from bayesmix.design.repetition import repetition_matched_budgets
from bayesmix.design.scales import RunScale, parse_scales
from bayesmix.design.stopping import Snapshot, StoppingReport, batch_value, stopping_report
from bayesmix.design.surrogate import BootstrapLaw, EnsemblePosterior, JointLawFit, LawFit

__all__ = [
    "ACQUISITIONS",
    "BootstrapLaw",
    "Designer",
    "EnsemblePosterior",
    "JointLawFit",
    "LawFit",
    "Proposal",
    "RunScale",
    "Snapshot",
    "StoppingReport",
    "batch_value",
    "compute_cost",
    "condition_on",
    "cost_aware",
    "expected_improvement",
    "feasible_candidates",
    "integrated_variance_reduction",
    "maximin_select",
    "optimum_probability",
    "parse_scales",
    "region_variance_batch",
    "repetition_matched_budgets",
    "score_pairs",
    "space_filling",
    "stopping_report",
    "thompson",
    "transfer_correlation",
]

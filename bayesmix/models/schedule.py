"""Bind the phase law to multi-phase runs: data containers, priors and the robust likelihood.

Dims: ``run``, ``domain``, ``train_domain`` as in the mixing model, plus ``phase``. Every
run-dependent number (phase mixtures, tails, losses and the data scales of the priors) is
``pm.Data``, so a refit on other runs of the same shape (a cross-validation fold) reuses the
compiled model (:mod:`bayesmix.inference.engine`). The likelihood is the mixing model's
(Student-t or normal, one noise scale per domain).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesmix.data.phases import PhaseTable
from bayesmix.errors import InputError
from bayesmix.laws.schedule import PhaseMixingLaw
from bayesmix.models.likelihood import check_likelihood, observe
from bayesmix.models.mixing_model import summarise_data, symbolic_scales


def build_schedule_model(
    law: PhaseMixingLaw, table: PhaseTable, *, likelihood: str = "student_t", nu: float = 5.0
) -> Any:
    """The PyMC model of ``law`` on the runs of ``table``.

    Parameters
    ----------
    law
        The phase law.
    table
        Validated multi-phase runs (:class:`~bayesmix.data.phases.PhaseTable`).
    likelihood, nu
        As in :func:`~bayesmix.models.mixing_model.build_model`.

    Returns
    -------
    pymc.Model

    Raises
    ------
    InputError
        ``table`` is not a :class:`~bayesmix.data.phases.PhaseTable`.
    NotEnoughDataError
        Fewer runs than the law's parameters per domain plus the margin.
    """
    import pymc as pm
    import pytensor.tensor as pt

    if not isinstance(table, PhaseTable):
        raise InputError("table", f"got {type(table).__name__}", "build a PhaseTable (PhaseTable.from_ledger or from_phases)")
    check_likelihood(likelihood)
    runs = table.runs
    runs.check_enough_runs(
        law.n_parameters(len(runs.domains), len(runs.train_domains)),
        what=f"the phase law with {len(runs.train_domains)} training domains",
    )
    coords = {
        "run": [str(r) for r in runs.mixtures.index],
        "domain": runs.domains,
        "train_domain": runs.train_domains,
        "phase": list(range(table.n_phases)),
    }
    with pm.Model(coords=coords) as model:
        data = symbolic_scales(summarise_data(runs))
        phase_mixtures = pm.Data("phase_mixtures", table.phase_mixtures, dims=("run", "phase", "train_domain"))
        tails = pm.Data("phase_tails", table.tails, dims=("run", "phase"))
        values: dict[str, Any] = {
            "reference_mixture": pm.Data(
                "reference_mixture", np.asarray(runs.mixtures.to_numpy().mean(axis=0), dtype=float), dims="train_domain"
            )
        }
        values.update(law.build_priors(data))
        mean = law.evaluate(values, phase_mixtures, tails, xp=pt)
        sigma = pm.HalfNormal("sigma", sigma=data.loss_sd, dims="domain")
        observed = pm.Data("loss_observed", runs.losses.to_numpy(), dims=("run", "domain"))
        observe("loss", mean, sigma[None, :], observed, likelihood, nu, ("run", "domain"))
    return model

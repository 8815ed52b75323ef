"""The mixing law at a target scale as an ordinary fit, so the optimiser and designer can use it.

:func:`target_fit` returns the nested pipeline's last stage (the mixing law fitted on the
target-scale draws of every observed mixture, see :mod:`bayesmix.inference.nested`) as an
InferenceData that carries a ``bayesmix_spec`` like a :func:`bayesmix.fit` result, so that
``bm.optimise(target_fit(fitted, model_size=N, tokens=D), ...)`` chooses the mixture for the
large model. Its posterior is the law's *expected* loss at the target scale; for the loss of an
actual new run (with run-to-run noise) use :func:`~bayesmix.inference.nested.predict_target`.
"""

from __future__ import annotations

import json

from bayesmix.errors import InputError
from bayesmix.inference import _arviz
from bayesmix.inference.nested import NestedFit, _mixing_stage, check_target
from bayesmix.laws.mixing import MixingLaw
from bayesmix.models.mixing_model import ModelSpec
from bayesmix.versions import package_versions


def target_fit(
    fitted: NestedFit, *, model_size: float, tokens: float, force: bool = False
) -> _arviz.InferenceData:
    """The mixing law at ``(model_size, tokens)``, fitted from the nested fit's target draws.

    Parameters
    ----------
    fitted
        Result of :func:`~bayesmix.inference.nested.fit_nested`.
    model_size, tokens
        Target scale ``N*`` (the table's size unit) and ``D*`` (training tokens), checked
        against the runs as in :func:`~bayesmix.inference.nested.predict_target`
        (:func:`~bayesmix.inference.nested.check_target`).
    force
        Fit a target below every run or more than ``MAX_EFOLDS`` beyond them anyway.

    Returns
    -------
    arviz.InferenceData
        A fit with spec ``method="nested"`` (``extra`` holds the target scale): ``bm.optimise``,
        ``bm.predict(..., kind="mean")`` and ``bm.health`` accept it. The mixing stage is fitted by
        NUTS the first time a scale is asked for and cached on ``fitted``.

    Raises
    ------
    InputError, NotEnoughDataError
        Bad scale (below the runs or absurdly far, unless ``force``), or too few observed
        mixtures for the mixing law.

    Warns
    -----
    TargetExtrapolationWarning
        The target lies more than a few e-folds beyond the runs.
    """
    if not isinstance(fitted, NestedFit):
        raise InputError("fitted", f"got {type(fitted).__name__}", "pass the result of bayesmix.fit_nested")
    check_target(fitted, model_size, tokens, force=force)
    stage = _mixing_stage(fitted, float(model_size), float(tokens))
    idata = _arviz.copy(stage)
    spec = ModelSpec(
        law=MixingLaw(centred=False).spec(),  # the law the stage samples (build_mixing_stage_model)
        domains=tuple(fitted.domains),
        train_domains=tuple(str(c) for c in fitted.mixtures.columns),
        likelihood="normal",
        method="nested",
        extra={"model_size": float(model_size), "tokens": float(tokens), "nested_method": fitted.method},
    )
    key = f"mixing@{float(model_size):.4g},{float(tokens):.4g}"
    attrs = idata.posterior.attrs
    attrs["bayesmix_spec"] = spec.to_json()
    attrs["bayesmix_spec_hash"] = spec.hash
    attrs["bayesmix_versions"] = json.dumps(package_versions(), sort_keys=True)
    if key in fitted.health:
        attrs["bayesmix_health"] = fitted.health[key].to_json()
    return idata

"""A benchmark accuracy as the optimiser's target: the error rate through a loss -> accuracy link."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bayesmix.errors import InputError
from bayesmix.optimise.targets import Target


class DownstreamTarget:
    """Benchmark error rate ``1 - accuracy`` as the optimiser's target, through a loss -> accuracy link.

    A data mixing law predicts validation losses; teams choose mixtures for benchmark accuracy.
    This target maps the mixing fit's predicted loss on a validation domain (or a weighted set of
    domains) to each task's accuracy with a link fitted on a model ladder
    (:func:`~bayesmix.inference.downstream.fit_downstream_link`: a sigmoid per task, hierarchical
    over tasks), averages the tasks with ``tasks`` weights, and returns the **error rate** ``1 -
    accuracy``, which :func:`~bayesmix.optimise.optimise` minimises (so its ``summary`` row
    ``"target"`` and ``expected_loss`` are error rates; ``1 -`` them is the accuracy).

    The link's uncertainty enters the decision: posterior draw ``s`` of the mixing law is paired
    with link draw ``pairing[s]`` (a seeded choice among the link's draws, the same for every
    mixture the optimiser looks at), so the expected value, the interval and ``P(beats
    reference)`` are over the joint posterior of both fits (independent fits of different data,
    so any fixed one-to-one pairing is a draw from the joint). A mixing fit with one draw (a MAP
    or paper fit) gets the link's posterior *mean* accuracy curve instead (no link uncertainty
    then).

    Parameters
    ----------
    link
        A fit of :func:`~bayesmix.inference.downstream.fit_downstream_link`.
    domains
        The mixing fit's validation domains whose loss (nats per token) the link reads, as
        ``{domain: weight}`` (a weighted mean) or one name; default: the link's loss columns
        without their ``loss_`` prefix (a link on ``loss_c4_en`` reads domain ``c4_en``). The
        losses must be measured like the ladder's (same validation set and tokenizer).
    tasks
        ``{task: weight}`` over the link's tasks (normalised), or one task name; default: the
        equal-weight mean of all of them.
    kind
        What the accuracy draws carry besides the link's curves: ``"run"`` (default: a new
        training run's offset from the link, learnt from the ladder's runs), ``"expected"``
        (the curves alone) or ``"predictive"`` (also one evaluation's noise).
    model_size
        Parameters of the model the mixture is for: the link's size effect is applied at that
        size (default: the ladder's centre, no size effect).
    calibration, efolds
        A :func:`~bayesmix.inference.downstream_calibration.calibrate_downstream` result and the e-folds the
        target model lies beyond the ladder: adds the link's form error ``kappa * efolds * z``.
    seed
        Seed of the pairing and of the offsets' draws: the same seed gives the same numbers.
    max_draws
        Link draws read (a seeded subset; default all).

    Raises
    ------
    InputError
        ``link`` is not a link fit; unknown tasks; bad weights, ``kind`` or ``efolds``. Domains
        the mixing fit lacks are reported when the optimiser resolves the target.
    """

    #: what the target's values are (the report labels the target's numbers with it)
    unit = "error rate (1 - accuracy)"

    def __init__(
        self,
        link: Any,
        domains: str | Mapping[str, float] | None = None,
        tasks: str | Mapping[str, float] | None = None,
        *,
        kind: str = "run",
        model_size: float | None = None,
        calibration: Any = None,
        efolds: float = 0.0,
        seed: int = 0,
        max_draws: int | None = None,
    ):
        from bayesmix.inference import downstream as ds
        from bayesmix.inference.predict import check_seed

        try:
            info = ds.downstream_info(link)
        except InputError:
            raise InputError(
                "link", "is not a downstream link fit", "pass the result of bm.fit_downstream_link(data, loss=...)"
            ) from None
        if info["kind"] != "link":
            raise InputError(
                "link",
                "is a chained (task-loss) fit, whose input is each task's loss, not a validation loss",
                "fit the link on a validation loss with bm.fit_downstream_link(data, loss='loss_c4_en')",
            )
        if kind not in ds.KINDS:
            raise InputError("kind", f"got {kind!r}", f"use one of {list(ds.KINDS)}")
        check_seed(seed)
        if isinstance(efolds, bool) or not isinstance(efolds, int | float | np.integer | np.floating) or not (
            np.isfinite(efolds) and efolds >= 0
        ):
            raise InputError("efolds", f"got {efolds!r}", "give the e-folds beyond the ladder, >= 0 (0: inside it)")
        self.tasks = list(info["tasks"])
        task_map = {tasks: 1.0} if isinstance(tasks, str) else tasks
        self.task_weights = (
            np.full(len(self.tasks), 1.0 / len(self.tasks)) if task_map is None else ds._task_weights(task_map, self.tasks)
        )
        if domains is None:
            domains = {str(c).removeprefix("loss_"): float(w) for c, w in info["input"].items()}
        elif isinstance(domains, str):
            domains = {domains: 1.0}
        if not isinstance(domains, Mapping) or not domains:
            raise InputError("domains", f"got {domains!r}", "give a domain name or {domain: weight}, e.g. {'c4_en': 1.0}")
        for name, weight in domains.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float | np.integer | np.floating) or not (
                np.isfinite(weight) and weight > 0
            ):
                raise InputError("domains", f"weight {weight!r} of {name!r}", "give positive weights")
        total = float(sum(domains.values()))
        self.domain_weights = {str(k): float(v) / total for k, v in domains.items()}
        self.kind = kind
        self.seed = int(seed)
        self.params = ds.link_parameters(link, max_draws, seed)
        offset = 0.0 if model_size is None else float(np.log(ds._positive_vector(model_size, "model_size", 1)[0]) - info["log_size_ref"])
        self.size_shift = self.params["size_effect"] * offset  # (K, task)
        _, kappa = ds._calibration_scales(calibration)
        self.form_sd = float(kappa) * float(efolds)
        self.loss_range = tuple(info["loss_range"])
        picked = [t for t, w in zip(self.tasks, self.task_weights, strict=True) if w > 0]
        self.name = f"error_rate(1 - accuracy: {'+'.join(picked) if len(picked) <= 3 else f'{len(picked)} tasks'})"
        self._pairings: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def n_link_draws(self) -> int:
        """Number of link draws held."""
        return int(self.params["a"].shape[0])

    def pairing(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Link draw index ``(n,)`` for mixing-law draws ``0..n-1`` and their offsets ``(n, task)``.

        Fixed for a given ``n`` (seeded): every mixture is scored with the same pairs.
        """
        if n not in self._pairings:
            rng = np.random.default_rng([self.seed, n, 5])
            k = self.n_link_draws
            index = rng.permutation(k)[:n] if n <= k else rng.choice(k, size=n, replace=True)
            shape = (n, len(self.tasks))
            offset = self.size_shift[index] + self.form_sd * rng.standard_normal(shape)
            if self.kind in ("run", "predictive"):
                offset = offset + self.params["run_sd"][index] * rng.standard_normal(shape)
            if self.kind == "predictive":
                offset = offset + self.params["accuracy_sigma"][index] * rng.standard_normal(shape)
            self._pairings[n] = (index, offset)
        return self._pairings[n]

    def _curves(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Accuracy and its slope in the loss, ``(sample, ..., task)``, for losses ``x (sample, ...)``."""
        from bayesmix.laws.downstream import AccuracyLaw

        n = x.shape[0]
        flat = x.reshape(n, -1)[..., None]  # (sample, points, 1)
        if n == 1:  # a point fit: the link's posterior mean curve
            params = {k: self.params[k] for k in ("a", "L0", "k", "b")}
            values = (AccuracyLaw.evaluate(params, flat[0], xp=np) + self.size_shift[:, None, :]).mean(axis=0)[None]
            slopes = AccuracyLaw.slope(params, flat[0], xp=np).mean(axis=0)[None]
        else:
            index, offset = self.pairing(n)
            params = {k: self.params[k][index] for k in ("a", "L0", "k", "b")}
            values = AccuracyLaw.evaluate(params, flat, xp=np) + offset[:, None, :]
            slopes = AccuracyLaw.slope(params, flat, xp=np)
        shape = (n, *x.shape[1:], len(self.tasks))
        return values.reshape(shape), slopes.reshape(shape)

    def resolve_domains(self, domains: Sequence[str]) -> Target:
        """The :class:`Target` over a mixing fit's ``domains`` (called by :func:`resolve_target`).

        Raises
        ------
        InputError
            A domain of the link's input that the mixing fit does not have.
        """
        domains = list(domains)
        missing = [d for d in self.domain_weights if d not in domains]
        if missing:
            raise InputError(
                "domains",
                f"the link reads {missing}, which the mixing fit does not predict (it has {domains})",
                "pass DownstreamTarget(link, domains={'<your domain>': 1.0}) naming the fit's validation domain",
            )
        weights = np.zeros(len(domains))
        for name, weight in self.domain_weights.items():
            weights[domains.index(name)] = weight
        task_weights = self.task_weights

        def error_rate(per_domain: np.ndarray) -> np.ndarray:
            values, _ = self._curves(np.asarray(per_domain, dtype=float) @ weights)
            return 1.0 - values @ task_weights

        def gradient(per_domain: np.ndarray) -> np.ndarray:
            _, slopes = self._curves(np.asarray(per_domain, dtype=float) @ weights)
            return -(slopes @ task_weights)[..., None] * weights

        return Target(self.name, function=error_rate, gradient_function=gradient)

    def __repr__(self) -> str:
        return f"DownstreamTarget({self.name}, domains={self.domain_weights}, kind={self.kind!r})"

"""A project folder and its settings.

A project is a proxy-training study folder (:class:`bayesmix.proxy.study.Study`: ``study.yaml``,
``ledger.sqlite``, caches, checkpoints) plus the artefacts of the method::

    <project>/study.yaml            corpus, tokenizer, ladder, training, and a ``project:`` section
    <project>/ledger.sqlite         every run and its evaluations (the source of truth)
    <project>/fits/nested/          the nested scaling-law fit (bayesmix.save_nested)
    <project>/fits/proxy.nc         the mixing law on the final losses of the largest proxy size
    <project>/optimum.json          the chosen mixture at the target scale, with intervals
    <project>/suggestions.yaml      the designer's next runs, a plan file for `bayesmix sweep`
    <project>/report/               report.html (self-contained) and report.md
    <project>/loop.json             the design loop's batches, runs and job handles
                                    (bayesmix.project.loop)
    <project>/jobs/submitit/        job files and logs of runs sent to Slurm by submitit

The ``project:`` section of ``study.yaml`` (every key optional; see :class:`ProjectSettings`)::

    project:
      sizes: [cpu-xs, cpu-s]          # ladder entries the proxies are trained at
      steps: 200                      # optimiser steps of each proxy run
      min_step: 10                    # checkpoints before this step (warm-up) are not fitted
      n_mixtures: 10                  # mixtures of the initial design
      target: {model: cpu-xl, tokens_factor: 10}   # or {model_size: 1.0e9, tokens: 1.0e11}
      objective: mean                 # mean validation loss; or a domain; or {domain: weight}
      reference: natural              # natural (domains in proportion to their text), uniform,
                                      # or {domain: share}
      acquisition: thompson           # the designer's acquisition for `suggest`
      n_suggest: 4
      fit: {draws: 1000, chains: 4}   # NUTS; the fits' own tuning unless tune is given
      seed: 0
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.data.curves import MIN_CHECKPOINTS, CurveTable
from bayesmix.data.runs import RunTable
from bayesmix.errors import InputError, NotEnoughDataError
from bayesmix.proxy.config import count_params
from bayesmix.proxy.study import Study

REFERENCES = ("natural", "uniform")


@dataclass(frozen=True)
class ProjectSettings:
    """The ``project:`` section of ``study.yaml`` (see the module docstring).

    Attributes
    ----------
    sizes
        Ladder entries (model sizes) the proxies are trained at; two or more for the nested laws.
    steps
        Optimiser steps of every proxy run (the trainer evaluates ``train.n_evals`` log-spaced
        checkpoints, which the steps law is fitted on).
    min_step
        Checkpoints before this step are left out of the scaling fits: during warm-up and the
        first steps the loss falls from ``ln V`` in a way no power law of steps describes.
    n_mixtures
        Mixtures of the initial space-filling design (each trained at every size).
    target
        Target scale: ``{"model": <ladder entry>, "tokens_factor": f}`` (the entry's
        non-embedding parameters, ``f`` times the proxies' tokens) or
        ``{"model_size": N, "tokens": D}``.
    objective
        ``"mean"`` (mean validation loss over domains), a validation domain, or ``{domain: weight}``.
    reference
        The mixture the optimum is compared with: ``"natural"`` (each domain in proportion to
        its training text), ``"uniform"`` or ``{domain: share}``.
    acquisition, n_suggest
        The designer's acquisition and batch size for ``suggest``.
    fit
        NUTS settings (``draws``, ``tune``, ``chains``, ``target_accept``); default 4 chains x
        1,000 draws, with the fits' own tuning (the nested stages 1,000 steps; the mixing-law
        check :func:`bayesmix.fit`'s, 500 above 100 parameters and 1,000 below).
        Shorter chains left the quickstart's stages unhealthy (2 x 500: r_hat 1.07 on the run
        effects' spread, bulk ESS 56).
    seed
        Seed of the design, the fits and the optimiser.
    """

    sizes: tuple[str, ...] = ("cpu-xs", "cpu-s")
    steps: int = 200
    min_step: int = 10
    n_mixtures: int = 10
    target: dict[str, Any] = field(default_factory=lambda: {"model": "cpu-xl", "tokens_factor": 10.0})
    objective: str | dict[str, float] = "mean"
    reference: str | dict[str, float] = "natural"
    acquisition: str = "thompson"
    n_suggest: int = 4
    fit: dict[str, Any] = field(default_factory=lambda: {"draws": 1000, "chains": 4})
    seed: int = 0

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> ProjectSettings:
        """Validate the ``project:`` section; every problem names its key and the fix."""
        raw = dict(raw or {})
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(
                "project", f"unknown keys {sorted(unknown)}", f"use only {sorted(cls.__dataclass_fields__)}"
            )
        out = cls(**{k: tuple(v) if k == "sizes" and isinstance(v, list) else v for k, v in raw.items()})
        out.check()
        return out

    def check(self) -> None:
        """Raise :class:`InputError` for a setting that cannot work."""
        if (
            not isinstance(self.sizes, tuple)
            or not self.sizes
            or not all(isinstance(s, str) for s in self.sizes)
        ):
            raise InputError(
                "project.sizes", f"is {self.sizes!r}", "list ladder entries, e.g. [cpu-xs, cpu-s]"
            )
        for name, low in (("steps", 10), ("min_step", 0), ("n_mixtures", 2), ("n_suggest", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"project.{name}", f"is {value!r}", f"use an integer >= {low}")
        target = self.target
        if not isinstance(target, Mapping) or not (
            {"model", "tokens_factor"} == set(target) or {"model_size", "tokens"} == set(target)
        ):
            raise InputError(
                "project.target",
                f"is {target!r}",
                "give {model: <ladder entry>, tokens_factor: 10} or {model_size: N, tokens: D}",
            )
        for key, value in target.items():
            if key != "model" and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not np.isfinite(value)
                or value <= 0
            ):
                raise InputError(f"project.target.{key}", f"is {value!r}", "give a positive number")
        if not isinstance(self.fit, Mapping) or set(self.fit) - {"draws", "tune", "chains", "target_accept"}:
            raise InputError(
                "project.fit", f"is {self.fit!r}", "give any of draws, tune, chains, target_accept"
            )
        if isinstance(self.reference, str) and self.reference not in REFERENCES:
            raise InputError(
                "project.reference", f"is {self.reference!r}", f"use {REFERENCES} or {{domain: share}}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The section as plain YAML-able data."""
        out = asdict(self)
        out["sizes"] = list(self.sizes)
        return out


class Project:
    """A project folder (see the module docstring).

    Parameters
    ----------
    folder
        The folder; it must hold ``study.yaml`` (see :meth:`create`).
    """

    def __init__(self, folder: str | Path):
        self.study = Study(folder)
        self.folder = self.study.folder
        self.settings = ProjectSettings.from_dict(self.study.settings.get("project"))
        for size in self.settings.sizes:
            self.study.model(size)
        if "model" in self.settings.target:
            self.study.model(self.settings.target["model"])

    @classmethod
    def create(
        cls, folder: str | Path, settings: Mapping[str, Any] | None = None, overwrite: bool = False
    ) -> Project:
        """Write ``study.yaml`` (study defaults + ``settings``; its ``project`` key validated) and open it."""
        settings = dict(settings or {})
        settings["project"] = ProjectSettings.from_dict(settings.get("project")).to_dict()
        Study.create(folder, settings, overwrite=overwrite)
        return cls(folder)

    # ---- where things live ---------------------------------------------------------------------

    @property
    def nested_dir(self) -> Path:
        """The saved nested fit."""
        return self.folder / "fits" / "nested"

    @property
    def proxy_fit_path(self) -> Path:
        """The mixing-law fit on the largest proxy size's final losses."""
        return self.folder / "fits" / "proxy.nc"

    @property
    def optimum_path(self) -> Path:
        """The chosen mixture (JSON)."""
        return self.folder / "optimum.json"

    @property
    def suggestions_path(self) -> Path:
        """The designer's next runs (a plan file)."""
        return self.folder / "suggestions.yaml"

    @property
    def report_dir(self) -> Path:
        """The report folder."""
        return self.folder / "report"

    # ---- what the settings mean ----------------------------------------------------------------

    @property
    def domains(self) -> list[str]:
        """Training (and validation) domains of the study's corpus."""
        spec = self.study.settings["corpus"]
        if spec.get("kind", "embedded") == "embedded":
            from bayesmix.data.corpus import SOURCES

            return list(spec.get("domains") or [s.domain for s in SOURCES])
        return self.study.domains

    @property
    def validation_domains(self) -> list[str]:
        """Validation sets the runs are evaluated on.

        The training domains, or for a project of runs trained elsewhere
        (``corpus: {kind: external}``) any names, e.g. downstream sets.
        """
        return self.study.validation_domains

    @property
    def external(self) -> bool:
        """Whether the project studies runs trained elsewhere (no text, nothing to train here)."""
        return self.study.settings["corpus"].get("kind") == "external"

    def objective(self) -> str | dict[str, float]:
        """The optimiser's target (``"mean"``, a domain, or weights)."""
        return self.settings.objective

    def designer_target(self) -> str | dict[str, float]:
        """The objective as the designer takes it (a domain or weights)."""
        objective = self.settings.objective
        if objective == "mean":
            return {d: 1.0 / len(self.validation_domains) for d in self.validation_domains}
        return objective

    def reference(self) -> dict[str, float]:
        """The reference mixture (see :class:`ProjectSettings`)."""
        ref = self.settings.reference
        domains = self.domains
        if ref == "uniform":
            return {d: 1.0 / len(domains) for d in domains}
        if ref == "natural" and self.external:
            raise InputError(
                "project.reference",
                "is natural, but this project's runs were trained elsewhere (no text to weigh)",
                f"set project.reference in {self.folder / 'study.yaml'} to uniform or {{domain: share}}",
            )
        if ref == "natural":
            corpus = self.study.load_corpus()
            sizes = {d: float(corpus.domains[d].train_bytes) for d in domains}
            total = sum(sizes.values())
            return {d: v / total for d, v in sizes.items()}
        return {str(k): float(v) for k, v in ref.items()}

    def tokens_per_step(self) -> int:
        """Training tokens per optimiser step of the proxies (batch x sequence length)."""
        return self.study.train_config.batch_size * self.study.model(self.settings.sizes[0]).seq_len

    def proxy_tokens(self) -> int:
        """Training tokens of every proxy run (steps x tokens per step)."""
        return self.settings.steps * self.tokens_per_step()

    def target_scale(self) -> tuple[float, float]:
        """The target ``(model_size, tokens)`` (non-embedding parameters, training tokens)."""
        target = self.settings.target
        if "model" in target:
            spec = self.study.model(target["model"])
            size = float(count_params(spec, vocab_size=1)[0])  # the non-embedding count needs no vocabulary
            return size, float(target["tokens_factor"]) * self.proxy_tokens()
        return float(target["model_size"]), float(target["tokens"])

    def check_target(self, runs: Any = None) -> dict[str, float]:
        """Check the target scale against the runs it extrapolates from.

        Parameters
        ----------
        runs
            The fitted runs: a :class:`~bayesmix.data.curves.CurveTable` or a
            :class:`~bayesmix.inference.nested.NestedFit`; default the ledger's curves
            (:meth:`curves`).

        Returns
        -------
        dict of str to float
            :func:`~bayesmix.inference.nested.target_extrapolation`'s numbers for
            :meth:`target_scale` (e-folds beyond the largest run, fitted ranges).

        Raises
        ------
        InputError
            Field ``project.target``: the target lies below every run (e.g. the default ladder
            target of a project whose runs were imported from larger models), or absurdly far
            beyond them (:func:`~bayesmix.inference.nested.check_target`); the fix names the
            setting to change in ``study.yaml``.

        Warns
        -----
        UserWarning
            The target is not beyond the largest run in model size or tokens (the optimum is then
            chosen for a scale the runs already cover).
        TargetExtrapolationWarning
            The target lies far beyond the runs.
        """
        from bayesmix.inference.nested import check_target, target_extrapolation

        model_size, tokens = self.target_scale()
        runs = self.curves() if runs is None else runs
        try:
            info = check_target(runs, model_size, tokens)
        except InputError as err:
            if err.field not in ("model_size", "tokens"):
                raise
            info = target_extrapolation(runs, model_size, tokens)
            raise InputError(
                "project.target",
                f"{self.settings.target} gives {model_size:.4g} parameters x {tokens:.4g} tokens; "
                f"{err.field}: {err.problem}",
                self._target_fix(info),
            ) from None
        behind = [name for name in ("model_size", "tokens") if info[f"extrapolation_efolds_{name}"] < 0]
        if behind:
            warnings.warn(
                f"project.target ({model_size:.4g} parameters x {tokens:.4g} tokens) is not beyond "
                f"the largest run in {' and '.join(behind)} (runs up to "
                f"{info['fitted_model_size_max']:.4g} parameters, {info['fitted_tokens_max']:.4g} tokens): "
                f"the optimum is for a scale the runs already cover. To fix it, " + self._target_fix(info),
                UserWarning,
                stacklevel=2,
            )
        return info

    def _target_fix(self, info: Mapping[str, float]) -> str:
        """The advice for a target that does not suit the runs: the setting to change and a value."""
        return (
            f"set project.target in {self.folder / 'study.yaml'} to {{model_size: N, tokens: D}} at or "
            f"beyond the largest run (N >= {info['fitted_model_size_max']:.4g}, "
            f"D >= {info['fitted_tokens_max']:.4g}), e.g. {{model_size: "
            f"{10 * info['fitted_model_size_max']:.1e}, tokens: {10 * info['fitted_tokens_max']:.1e}}}"
        )

    # ---- data from the ledger ------------------------------------------------------------------

    def long_table(self) -> pd.DataFrame:
        """Every finished run's evaluations (the ledger's long table)."""
        frame = self.study.ledger.to_long_table()
        if frame.empty:
            raise NotEnoughDataError(
                "ledger",
                f"{self.folder / 'ledger.sqlite'} has no finished run",
                "train runs first (bayesmix sweep)",
            )
        return frame

    def curves(self) -> CurveTable:
        """The finished runs' loss curves, for the nested fit.

        Checkpoints before ``min_step`` steps of the project's proxies (in tokens:
        ``min_step x batch x sequence length``, so imported runs are cut at the same point of
        training) are left out, and so are runs left with fewer than 3 checkpoints (with a
        warning naming them; they still serve the mixing law through :meth:`final_runs`).
        """
        frame = self.long_table()
        frame = frame[frame["tokens"] >= self.settings.min_step * self.tokens_per_step()]
        counts = frame.groupby("run")["step"].nunique()
        short = sorted(counts.index[counts < MIN_CHECKPOINTS])
        if short:
            warnings.warn(
                f"{len(short)} runs have fewer than {MIN_CHECKPOINTS} checkpoints from step "
                f"{self.settings.min_step} on and are left out of the scaling fit: {short[:5]}",
                UserWarning,
                stacklevel=2,
            )
            frame = frame[~frame["run"].isin(short)]
        if frame.empty:
            raise NotEnoughDataError(
                "ledger",
                f"no run has {MIN_CHECKPOINTS} checkpoints from step {self.settings.min_step} on",
                "evaluate more checkpoints per run (train.n_evals), or lower project.min_step",
            )
        return CurveTable.from_long(frame)

    def final_runs(self, model_size: float | None = None) -> RunTable:
        """Final-checkpoint losses of the runs of one model size (default: the largest trained)."""
        frame = self.long_table()
        size = float(frame["model_size"].max()) if model_size is None else float(model_size)
        frame = frame[frame["model_size"] == size]
        if frame.empty:
            raise InputError("model_size", f"no finished run has {size:g} parameters", "pick a trained size")
        last = frame.groupby("run")["step"].transform("max") == frame["step"]
        columns = ["run", "domain", "loss", *(c for c in frame.columns if c.startswith("mix_"))]
        return RunTable.from_long(frame.loc[last, columns])

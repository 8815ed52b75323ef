"""One small simulated study, fitted once per test session, shared by the report tests.

``tests/test_report.py`` and ``tests/test_report_render.py`` both need real fits (a NUTS mixing-law
fit, a MAP fit, a joint nested fit and an optimum); each costs seconds, so they are made once
(``functools.cache``) and reused. :func:`wide_study` is a 17-domain study (a MAP fit, the cheapest
that has every figure) for the readability checks.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import bayesmix as bm
from bayesmix.data.curves import CurveTable
from bayesmix.data.simulate import SimulatedLaw, random_law, simulate_runs
from bayesmix.data.simulate_curves import random_nested_truth, simulate_curves
from bayesmix.report import ReportFiles, build_report, optimum_location_draws

DOMAINS = ("web", "code", "papers")
#: the true interaction matrix (zero-sum rows): t[web, papers] is exactly 0, every other entry is far from 0
TRUE_T = np.array([[-2.0, 2.0, 0.0], [1.0, -2.0, 1.0], [1.2, 0.8, -2.0]])
TARGET = {"model_size": 1e9, "tokens": 1e11}
#: 17 domains with names of the lengths real studies have (the Pile's, in snake case)
WIDE_DOMAINS = (
    "pile_cc",
    "pubmed_central",
    "books3",
    "openwebtext2",
    "arxiv",
    "github",
    "freelaw",
    "stackexchange",
    "uspto_backgrounds",
    "pubmed_abstracts",
    "gutenberg_pg19",
    "opensubtitles",
    "wikipedia_en",
    "dm_mathematics",
    "ubuntu_irc",
    "hackernews",
    "europarl",
)


@dataclass(frozen=True)
class Study:
    runs: bm.RunTable
    fit: object
    map_fit: object
    nested: bm.NestedFit
    optimum: bm.OptimisationResult
    location: pd.DataFrame
    suggestions: pd.DataFrame


@functools.cache
def study() -> Study:
    law = SimulatedLaw(
        DOMAINS, DOMAINS, np.array([2.5, 2.0, 2.2]), np.full(3, np.log(0.6)), TRUE_T, np.full(3, 0.01)
    )
    runs = simulate_runs(law, 30, seed=3)
    truth = random_nested_truth(3, seed=11)
    frame, _ = simulate_curves(
        truth, n_mixtures=4, model_sizes=(1e7, 3e7, 1e8), tokens=np.geomspace(1e9, 2e10, 5), seed=11
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        fit = bm.fit(runs, draws=200, tune=200, chains=2, seed=0, discrepancy=None)
        map_fit = bm.fit(runs, method="map", seed=0, discrepancy=None)
        nested = bm.fit_nested(CurveTable.from_long(frame), draws=100, tune=150, chains=2, seed=1)
    optimum = bm.optimise(fit, target="mean", max_draws=300, n_starts=4)
    location = optimum_location_draws(fit, optimum, n=20, seed=0)
    suggestions = pd.DataFrame(
        {
            "web": [0.2, 0.55],
            "code": [0.3, 0.05],
            "papers": [0.5, 0.4],
            "expected_improvement": [0.01234, 0.00456],
        },
        index=pd.Index(["next-1", "next-2"], name="run"),
    )
    return Study(runs, fit, map_fit, nested, optimum, location, suggestions)


def _scratch(prefix: str) -> Path:
    """A new temporary folder, removed when the test process exits."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@functools.cache
def full_report() -> ReportFiles:
    """The report with every section, written once into a new temporary folder."""
    s = study()
    return build_report(
        _scratch("bayesmix-report-"),
        fit=s.fit,
        nested=s.nested,
        target_scale=TARGET,
        optimum=s.optimum,
        location_draws=s.location,
        suggestions=s.suggestions,
        title="Report <test> & study",
        seed=0,
    )


@dataclass(frozen=True)
class TargetStudy:
    nested: bm.NestedFit
    target_fit: object
    optimum: bm.OptimisationResult


@functools.cache
def target_study() -> TargetStudy:
    """A nested study with enough mixtures (7) for the target-scale mixing law, and its optimum."""
    from bayesmix.inference.nested_target import target_fit

    truth = random_nested_truth(3, seed=5)
    frame, _ = simulate_curves(
        truth, n_mixtures=7, model_sizes=(1e7, 3e7, 1e8), tokens=np.geomspace(1e9, 2e10, 5), seed=5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        nested = bm.fit_nested(CurveTable.from_long(frame), draws=150, tune=200, chains=2, seed=1)
        fitted = target_fit(nested, **TARGET)
    optimum = bm.optimise(fitted, target={"web": 0.5, "code": 0.3, "papers": 0.2}, max_draws=200, n_starts=3)
    return TargetStudy(nested, fitted, optimum)


@dataclass(frozen=True)
class WideStudy:
    runs: bm.RunTable
    fit: object
    optimum: bm.OptimisationResult
    suggestions: pd.DataFrame


@functools.cache
def wide_study() -> WideStudy:
    """17 training and validation domains: a MAP fit of 40 runs, its optimum and 3 suggested runs."""
    law = random_law(len(WIDE_DOMAINS), seed=2, domains=WIDE_DOMAINS)
    runs = simulate_runs(law, 40, seed=2)
    fit = bm.fit(runs, method="map", seed=0, discrepancy=None)
    optimum = bm.optimise(fit, target="mean", n_starts=2)
    shares = np.random.default_rng(0).dirichlet(np.ones(len(WIDE_DOMAINS)), size=3)
    suggestions = pd.DataFrame(
        shares, columns=list(WIDE_DOMAINS), index=pd.Index(["s1", "s2", "s3"], name="run")
    )
    suggestions["expected_improvement"] = [0.012, 0.008, 0.003]
    return WideStudy(runs, fit, optimum, suggestions)


@functools.cache
def wide_report() -> ReportFiles:
    """The report of :func:`wide_study`, written once into a new temporary folder."""
    s = wide_study()
    return build_report(
        _scratch("bayesmix-wide-report-"),
        fit=s.fit,
        optimum=s.optimum,
        suggestions=s.suggestions,
        title="A 17-domain study",
        n_location=1,
        seed=0,
    )

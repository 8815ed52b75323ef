"""Report package: figures of the posterior, findings, the decision, and the HTML/Markdown report."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import replace

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
from _report_study import TARGET, WIDE_DOMAINS, full_report, study, target_study, wide_study
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.text import Text

import bayesmix as bm
from bayesmix.errors import InputError
from bayesmix.inference.diagnostics import SamplerHealth, check_health
from bayesmix.inference.nested import predict_target, target_draws
from bayesmix.optimise import Problem
from bayesmix.report import (
    SECTIONS,
    build_report,
    fan_draws,
    figures,
    interaction_matrix,
    interaction_summary,
    observed_vs_predicted,
    optimum_draws,
    optimum_location_draws,
    optimum_loss,
    optimum_mixture,
    predictive_check,
    scaling_fan,
    what_data_cannot_tell,
)
from bayesmix.report.build import (
    ReportInputs,
    decision_of,
    decision_section,
    diagnostics_section,
    suggestions_section,
)
from bayesmix.report.decision import (
    DO_NOT_SWITCH_AT,
    SWITCH_AT,
    Caveat,
    decide,
    extrapolation_caveats,
    sampler_status,
)
from bayesmix.report.summaries import observed_curve_points


@pytest.fixture(scope="module")
def s():
    return study()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _axes():
    fig = Figure()
    return fig, fig.add_subplot()


# ---- figures --------------------------------------------------------------------------------


def test_observed_vs_predicted_draws_every_loss_with_its_interval(s):
    fig, ax = _axes()
    assert observed_vs_predicted(s.fit, ax=ax) is fig
    check = predictive_check(s.fit)
    assert len(check) == s.runs.n_runs * 3
    assert len(ax.containers) == 3  # one errorbar per domain
    for container, domain in zip(ax.containers, ["web", "code", "papers"], strict=True):
        x, y = container.lines[0].get_data()
        rows = check[check["domain"] == domain]
        np.testing.assert_allclose(x, rows["observed"])
        np.testing.assert_allclose(y, rows["mean"])
        assert f"{rows['inside'].mean():.0%} inside" in container.get_label()
    coverage = check["inside"].mean()
    assert f"{coverage:.0%} of 90 losses" in ax.get_title()
    assert 0.75 <= coverage <= 1.0  # the fit is calibrated on its own runs
    # held-out runs of the same law are accepted too, and a new figure is made without ax
    new = observed_vs_predicted(s.fit, s.runs.subset(slice(0, 5)), prob=0.5)
    assert isinstance(new, Figure) and new is not fig


def test_observed_vs_predicted_needs_run_level_data(s):
    with pytest.raises(InputError, match="prob"):
        observed_vs_predicted(s.fit, prob=1.5)
    with pytest.raises(InputError, match="runs"):
        observed_vs_predicted(s.fit, runs=s.runs.losses)


def test_scaling_fan_extrapolates_the_fitted_law_to_the_target(s):
    fig, ax = _axes()
    assert (
        scaling_fan(s.nested, mixture="m1", model_size=TARGET["model_size"], tokens=TARGET["tokens"], ax=ax)
        is fig
    )
    labels = [line.get_label() for line in ax.lines]
    assert {"N=1e+07", "N=3e+07", "N=1e+08", "N=1e+09 (target)"} <= set(labels)
    target_line = ax.lines[labels.index("N=1e+09 (target)")]
    x, y = target_line.get_data()
    assert x[-1] == pytest.approx(TARGET["tokens"])
    # the median at (N*, D*) is the median of the joint law's draws there (same draws and seed)
    mean, _ = target_draws(s.nested, TARGET["model_size"], TARGET["tokens"], max_draws=500, seed=0)
    position = list(s.nested.mixtures.index).index("m1")
    assert y[-1] == pytest.approx(np.median(mean[:, position, :].mean(axis=1)), rel=1e-9)
    # observed checkpoints are the dots
    points = observed_curve_points(s.nested, "m1", "total")
    dots = np.vstack([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])
    assert len(dots) == len(points) == 3 * 5
    np.testing.assert_allclose(np.sort(dots[:, 1]), np.sort(points["loss"]))
    # the black diamond: the median and interval of a new run's loss at the target (predict_target)
    bar = ax.containers[-1]
    assert bar.get_label().startswith("new run at target")
    new_run = predict_target(
        s.nested,
        **TARGET,
        mixtures=s.nested.mixtures.loc["m1"].to_dict(),
        via="observed",
        max_draws=500,
        seed=0,
    ).sel(domain="total")
    bx, by = bar.lines[0].get_data()
    assert bx[0] == TARGET["tokens"] and by[0] == pytest.approx(float(np.median(new_run)), rel=1e-9)
    assert "D*=1e+11" in ax.get_title() and "mixture m1" in ax.get_title()


def test_scaling_fan_per_domain_and_nearest_mixture(s):
    shares = s.nested.mixtures.loc["m2"].to_dict()
    nudged = {k: v + (0.01 if k == "web" else 0.0) for k, v in shares.items()}
    fig = scaling_fan(s.nested, mixture=nudged, domain="code")
    ax = fig.axes[0]
    assert "mixture m2" in ax.get_title() and ax.get_xscale() == "log"
    draws, sizes = fan_draws(s.nested, "m2", "code", np.array([1e9, 2e10]))
    assert draws.shape[1:] == (3, 2) and sizes == [1e7, 3e7, 1e8]
    # no target: the fan stops at the last checkpoint, with no target point
    assert not ax.containers
    assert max(line.get_xdata().max() for line in ax.lines) == pytest.approx(2e10)
    with pytest.raises(InputError, match="domain"):
        scaling_fan(s.nested, domain="books")
    with pytest.raises(InputError, match="mixture"):
        scaling_fan(s.nested, mixture="m99")
    with pytest.raises(InputError, match="tokens"):
        scaling_fan(s.nested, tokens=-1.0)


def test_interaction_matrix_shows_posterior_mean_t(s):
    fig, ax = _axes()
    assert interaction_matrix(s.fit, ax=ax) is fig
    t = s.fit.posterior["t"].mean(("chain", "draw")).transpose("domain", "train_domain").to_numpy()
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), t)
    table = interaction_summary(s.fit)
    marked = [text.get_text() for text in ax.texts if text.get_text().endswith("*")]
    assert len(marked) == int(table["excludes_zero"].sum()) == 8  # all but t[web, papers]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["web", "code", "papers"]


def test_interaction_matrix_of_a_point_fit_marks_nothing(s):
    fig = interaction_matrix(s.map_fit)
    ax = fig.axes[0]
    assert "point fit" in ax.get_title()
    assert not [t for t in ax.texts if t.get_text().endswith("*")]
    assert not interaction_summary(s.map_fit)["excludes_zero"].any()


def test_optimum_mixture_bars_and_location_intervals(s):
    fig, ax = _axes()
    assert optimum_mixture(s.optimum, location_draws=s.location, ax=ax) is fig
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights[:3], s.optimum.mixture.to_numpy())
    np.testing.assert_allclose(heights[3:], s.optimum.reference.to_numpy())
    assert len(ax.containers) == 3  # chosen bars, the error bars, reference bars
    with pytest.raises(InputError, match="location_draws"):
        optimum_mixture(s.optimum, location_draws=s.location[["web", "code"]])
    with pytest.raises(InputError, match="result"):
        optimum_mixture({"web": 1.0})


def test_optimum_draws_reproduce_the_optimiser_summary(s):
    draws = optimum_draws(s.fit, s.optimum)
    assert len(draws) == s.optimum.n_draws == 300
    target = s.optimum.summary.loc["target"]
    assert draws["optimum"].mean() == pytest.approx(target["mean"], rel=1e-12)
    assert draws["reference"].mean() == pytest.approx(target["ref_mean"], rel=1e-12)
    assert (draws["optimum"] < draws["reference"]).mean() == pytest.approx(s.optimum.p_beats_reference)
    fig, ax = _axes()
    assert optimum_loss(s.fit, s.optimum, ax=ax) is fig
    means = sorted(line.get_xdata()[0] for line in ax.lines)
    np.testing.assert_allclose(means, sorted(draws.mean()))
    assert f"P(beats reference) = {s.optimum.p_beats_reference:.3f}" in ax.get_title()
    # a weighted target cannot be rebuilt from its name: the error says to pass it
    weighted = replace(s.optimum, target="weighted")
    with pytest.raises(InputError, match="target"):
        optimum_draws(s.fit, weighted)
    again = optimum_draws(s.fit, weighted, target={"web": 1, "code": 1, "papers": 1})
    np.testing.assert_allclose(again["optimum"], draws["optimum"])


def test_optimum_location_draws_are_per_draw_argmins(s):
    loc = s.location
    assert loc.shape == (20, 3) and list(loc.columns) == ["web", "code", "papers"]
    np.testing.assert_allclose(loc.sum(axis=1), 1.0, atol=1e-9)
    # each row minimises its own draw's target (checked against a fine grid on that draw)
    draws = Problem.from_idata(s.fit, "mean", max_draws=None).draws
    grid = np.array(
        [[a, b, 1 - a - b] for a in np.linspace(0, 1, 41) for b in np.linspace(0, 1, 41) if a + b <= 1]
    )
    for i in loc.index[:5]:
        values = draws.losses(np.vstack([loc.loc[i].to_numpy(), grid]))[int(i)].mean(axis=-1)
        assert values[0] <= values[1:].min() + 1e-9
    # the posterior mean of the location is close to the optimum of the posterior mean
    np.testing.assert_allclose(loc.mean(), s.optimum.mixture, atol=0.05)
    # same seed, same draws; limits are honoured
    bounded = optimum_location_draws(s.fit, s.optimum, n=3, seed=0, bounds={"web": (0.0, 0.2)})
    assert (bounded["web"] <= 0.2 + 1e-9).all()
    with pytest.raises(InputError, match="limits"):
        optimum_location_draws(s.fit, s.optimum, n=2, risk="cvar")


# ---- what the data cannot tell ----------------------------------------------------------------


def test_findings_flag_the_interaction_that_covers_zero(s):
    findings = what_data_cannot_tell(s.fit)
    interaction = [f for f in findings if f.topic == "interaction"]
    assert len(interaction) == 1
    entries = {(e["domain"], e["train_domain"]) for e in interaction[0].data["entries"]}
    assert entries == {("web", "papers")}  # built with t[web, papers] = 0, the rest far from 0
    assert "papers -> web" in interaction[0].message and "1 of 9" in interaction[0].message
    # the sampler finding follows the fit's own health
    sampler = [f for f in findings if f.topic == "sampler"]
    assert bool(sampler) == (not bm.health(s.fit).ok)


def test_findings_flag_an_unhealthy_fit(s):
    thin = s.fit.isel(draw=slice(0, 12))  # 2 chains x 12 draws: far too few for ESS
    names = ["c", "log_k", "t", "sigma"]
    # a new attrs dict: the selection shares the fit's (which other tests read)
    thin.posterior.attrs = {**thin.posterior.attrs, "bayesmix_health": check_health(thin, names).to_json()}
    assert bm.health(s.fit).max_rhat != bm.health(thin).max_rhat
    findings = what_data_cannot_tell(thin)
    sampler = [f for f in findings if f.topic == "sampler"]
    assert len(sampler) == 1
    assert sampler[0].data["min_ess_bulk"] < 200 and "bulk ESS" in sampler[0].message
    # the nested fit's own stages are checked too (its short joint run is not healthy)
    nested = what_data_cannot_tell(nested=s.nested)
    stages = [f for f in nested if f.topic == "sampler"]
    assert len(stages) == sum(not h.ok for h in s.nested.health.values())
    # a point fit says it has no uncertainty
    assert [f.topic for f in what_data_cannot_tell(s.map_fit) if f.topic == "point_fit"] == ["point_fit"]


def test_findings_extrapolation_optimum_and_runs(s):
    findings = what_data_cannot_tell(nested=s.nested, target_scale=TARGET)
    (extra,) = [f for f in findings if f.topic == "extrapolation"]
    assert extra.data["model_size_factor"] == pytest.approx(1e9 / 1e8)
    assert extra.data["tokens_factor"] == pytest.approx(1e11 / 2e10)
    assert "10x the largest model size" in extra.message
    inside = what_data_cannot_tell(nested=s.nested, target_scale=(5e7, 1e10))
    assert not [f for f in inside if f.topic == "extrapolation"]
    # wide optimum shares: the interval over the location draws is compared with `wide`
    shares = what_data_cannot_tell(location_draws=s.location, wide=0.001)
    low, high = np.quantile(s.location.to_numpy(), [0.05, 0.95], axis=0)
    flagged = {f.data["train_domain"] for f in shares}
    assert flagged == {d for d, lo, hi in zip(s.location.columns, low, high, strict=True) if hi - lo > 0.001}
    assert not what_data_cannot_tell(location_draws=s.location, wide=0.9)
    # an undecided comparison with the reference
    undecided = replace(s.optimum, p_beats_reference=0.55)
    assert [f.topic for f in what_data_cannot_tell(result=undecided)] == ["beats_reference"]
    assert not what_data_cannot_tell(result=replace(s.optimum, p_beats_reference=0.97))
    # runs per parameter: 30 mixtures for c, k and 2 free t entries + noise = 5 per domain
    (thin,) = [
        f for f in what_data_cannot_tell(s.fit, runs_per_parameter=10) if f.topic == "runs_per_parameter"
    ]
    assert thin.data == {"fit": "the mixing-law fit", "mixtures": 30, "parameters": 5, "ratio": 6.0}
    assert not [f for f in what_data_cannot_tell(s.fit) if f.topic == "runs_per_parameter"]
    with pytest.raises(InputError, match="target_scale"):
        what_data_cannot_tell(nested=s.nested, target_scale={"tokens": 1e9})


# ---- the report ---------------------------------------------------------------------------------


def test_full_report_files_and_self_contained_html(s):
    files = full_report()
    assert files.sections == tuple(SECTIONS)  # every section, in order
    assert set(files.figures) == {
        "observed_vs_predicted",
        "scaling_fans",
        "interaction_matrix",
        "optimum_mixture",
        "optimum_loss",
    }
    text = files.html.read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    refs = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]*)['"]""", text)
    assert refs and not [r for r in refs if re.match(r"(?i)(https?:)?//", r)]
    assert all(r.startswith("#") or r.startswith("data:image/png;base64,") for r in refs)
    assert "http://" not in text and "https://" not in text
    images = re.findall(r"<img src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    assert len(images) == len(files.figures) == 5
    on_disk = {path.read_bytes() for path in files.figures.values()}
    for data in images:
        png = base64.b64decode(data)
        assert png in on_disk  # the same figure as the PNG beside the Markdown
        pixels = mpimg.imread(io.BytesIO(png), format="png")
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.std() > 0.01
    # text is escaped
    assert "Report &lt;test&gt; &amp; study" in text and "<test>" not in text


def test_markdown_tables_hold_the_numbers(s):
    files = full_report()
    md = files.markdown.read_text(encoding="utf-8")
    for section in SECTIONS.values():
        assert f"## {section}" in md
    for domain, share in s.optimum.mixture.items():
        reference = s.optimum.reference[domain]
        low, high = np.quantile(s.location[domain], [0.05, 0.95])
        assert f"| {domain} | {share:.3f} | {reference:.3f} | {low:.3f} to {high:.3f} |" in md
    target = s.optimum.summary.loc["target"]
    assert f"| target | {target['mean']:.4f} | {target['lower']:.4f} to {target['upper']:.4f} |" in md
    assert f"P(beats reference) = {s.optimum.p_beats_reference:.3f}" in md
    for name in ("observed_vs_predicted", "scaling_fans", "interaction_matrix"):
        assert f"(figures/{name}.png)" in md
    # coverage table of the predictive check
    check = predictive_check(s.fit)
    assert f"| all | 90 | {check['inside'].mean():.3f} |" in md
    # interaction table: posterior mean [interval] per entry, * where the interval excludes 0
    table = interaction_summary(s.fit).set_index(["domain", "train_domain"])
    web_papers = table.loc[("web", "papers")]
    assert f"{web_papers['mean']:.3f} [{web_papers['lower']:.3f}, {web_papers['upper']:.3f}]" in md
    web_code = table.loc[("web", "code")]
    assert f"{web_code['mean']:.3f}\\* [{web_code['lower']:.3f}" in md
    # diagnostics per fit and stage, suggestions as given, findings, versions
    health = bm.health(s.fit)
    assert f"| mixing-law fit | nuts | 2 x 200 | {health.divergences} | {health.max_rhat:.3f} |" in md
    assert "| nested: joint | nuts | 2 x 100 |" in md
    assert "| run | web | code | papers | expected\\_improvement |" in md
    assert "| next-1 | 0.2 | 0.3 | 0.5 | 0.01234 |" in md
    assert "papers -> web" in md and "10x the largest model size" in md
    assert f"| bayesmix | {bm.__version__} | {bm.__version__} |" in md
    assert "\\<test>" in md.splitlines()[0]


def test_sections_are_omitted_without_their_inputs(s, tmp_path):
    fit_only = build_report(tmp_path / "fit", fit=s.fit)
    assert not plt.get_fignums()  # every figure of the report was closed
    assert fit_only.sections == (
        "decision",
        "summary",
        "observed_vs_predicted",
        "interactions",
        "diagnostics",
        "cannot_tell",
        "versions",
    )
    assert set(fit_only.figures) == {"observed_vs_predicted", "interaction_matrix"}
    html = fit_only.html.read_text(encoding="utf-8")
    assert "Scaling-law extrapolation" not in html and "Suggested next runs" not in html
    assert html.count("<img ") == 2
    nested_only = build_report(tmp_path / "nested", nested=s.nested)
    assert nested_only.sections == (
        "decision",
        "summary",
        "scaling",
        "diagnostics",
        "cannot_tell",
        "versions",
    )
    md = nested_only.markdown.read_text(encoding="utf-8")
    assert "Observed vs predicted" not in md and "fit made with" not in md
    assert "Loss of a new run" not in md  # no target scale: no target table
    assert not plt.get_fignums()
    with pytest.raises(InputError, match="nothing to report"):
        build_report(tmp_path / "none")
    with pytest.raises(InputError, match="optimum"):
        build_report(tmp_path / "x", nested=s.nested, optimum=s.optimum)
    with pytest.raises(InputError, match="location_draws"):
        build_report(tmp_path / "x", fit=s.fit, optimum=s.optimum, location_draws=s.location[["web"]])
    with pytest.raises(InputError, match="suggestions"):
        build_report(tmp_path / "x", fit=s.fit, suggestions=[1, 2])


def test_report_of_a_point_fit_with_its_optimum_is_reproducible(s, tmp_path):
    best = bm.optimise(s.map_fit, target="web")
    first = build_report(tmp_path / "a", fit=s.map_fit, optimum=best, n_location=3, seed=4)
    second = build_report(tmp_path / "b", fit=s.map_fit, optimum=best, n_location=3, seed=4)
    assert first.markdown.read_text() == second.markdown.read_text()
    assert first.html.read_text() == second.html.read_text()
    md = first.markdown.read_text()
    assert "| mixing-law fit | map | - |" in md and "point fit" in md
    assert {f.topic for f in first.findings} >= {"point_fit"}
    assert f"| web | {best.mixture['web']:.3f} |" in md


@pytest.mark.slow
def test_report_of_the_target_scale_mixing_law(tmp_path):
    """The project workflow's report: proxy fit, nested fit, target-scale law and its optimum."""
    target = target_study()
    files = build_report(
        tmp_path,
        fit=study().fit,
        nested=target.nested,
        target_fit=target.target_fit,
        optimum=target.optimum,
        optimum_target={"web": 0.5, "code": 0.3, "papers": 0.2},
        n_location=10,
    )
    assert files.sections == (*tuple(SECTIONS)[:8], "cannot_tell", "versions")
    assert "interaction_matrix_target" in files.figures and "interaction_matrix" in files.figures
    md = files.markdown.read_text(encoding="utf-8")
    # the target scale is read from the target-scale fit, and the extrapolation is measured on the nested table
    assert "N\\* = 1e+09 parameters, D\\* = 1e+11 training tokens" in md
    assert "10x the largest model size" in md
    # its sampler health is the nested fit's mixing stage: one row, not two
    assert md.count("| nested: mixing@1e+09,1e+11 |") == 1 and "| target-scale mixing law |" not in md
    draws = optimum_draws(target.target_fit, target.optimum, target={"web": 0.5, "code": 0.3, "papers": 0.2})
    assert draws["optimum"].mean() == pytest.approx(target.optimum.summary.loc["target", "mean"], rel=1e-12)


# ---- the decision on the first screen --------------------------------------------------------------


def _with_health(idata, health: SamplerHealth):
    """A view of ``idata`` whose stored sampler health is ``health`` (the fit itself is untouched)."""
    view = idata.isel(draw=slice(None))
    # a new attrs dict: the selection shares the fit's (which other tests read)
    view.posterior.attrs = {**view.posterior.attrs, "bayesmix_health": health.to_json()}
    return view


HEALTHY = SamplerHealth("nuts", chains=2, draws=200, max_rhat=1.001, min_ess_bulk=400, min_ess_tail=400)
SICK = SamplerHealth("nuts", chains=2, draws=200, divergences=3, problems=["3 divergences"])


def test_sampler_status_names_the_worst_stage():
    ok = sampler_status([("mixing-law fit", HEALTHY), ("approx", SamplerHealth("laplace", pareto_k=0.3))])
    assert ok.ok and ok.label == "OK" and "mixing-law fit" in ok.text
    bad = sampler_status([("mixing-law fit", HEALTHY), ("nested: joint", SICK)])
    assert not bad.ok and bad.label == "NOT OK" and bad.text == "NOT OK: nested: joint (3 divergences)"
    point = sampler_status([("mixing-law fit", SamplerHealth("map"))])
    assert point.label == "point fit" and "0 or 1" in point.text and not point.ok
    # problems outrank a point fit; a missing health is unknown, and so is no stage at all
    assert sampler_status([("a", SamplerHealth("map")), ("b", SICK)]).label == "NOT OK"
    assert sampler_status([("a", None)]).label == "unknown"
    assert sampler_status([]).label == "unknown"


def test_decide_switch_only_when_sure_healthy_and_inside_the_runs():
    ok = sampler_status([("fit", HEALTHY)])
    switch = decide(SWITCH_AT, sampler=ok)
    assert (
        switch.verdict == "switch" and switch.line.startswith("Switch to this mixture") and not switch.reasons
    )
    assert (
        decide(0.999, sampler=ok, suggestions=["s1"]).verdict == "switch"
    )  # suggestions do not hold it back


def test_decide_do_not_switch_keeps_the_reference_whatever_else_holds():
    for sampler in (sampler_status([("fit", HEALTHY)]), sampler_status([("fit", SICK)])):
        keep = decide(DO_NOT_SWITCH_AT, sampler=sampler, caveats=[Caveat("mixture", "x")], suggestions=["s1"])
        assert keep.verdict == "do_not_switch" and keep.line.startswith("Do not switch")
        assert "P(beats reference) = 0.200 <= 0.2" in keep.line
    assert decide(0.0, sampler=sampler_status([("fit", SamplerHealth("map"))])).verdict == "do_not_switch"


def test_decide_not_yet_names_each_reason_and_the_next_runs():
    ok, sick = sampler_status([("fit", HEALTHY)]), sampler_status([("fit", SICK)])
    # undecided: more runs; the suggestions are named when given
    undecided = decide(0.7, sampler=ok)
    assert undecided.verdict == "not_yet" and undecided.reasons == ("P(beats reference) = 0.700 < 0.9",)
    assert "train more runs" in undecided.line and "bayesmix suggest" in undecided.line
    named = decide(0.7, sampler=ok, suggestions=[f"s{i}" for i in range(1, 8)])
    assert "run these next: s1, s2, s3, s4, s5 and 2 more (see Suggested next runs)" in named.line
    # sure, but the sampler is not OK: refit (the bug this box fixes: P = 1.000 with NOT OK)
    refit = decide(1.0, sampler=sick)
    assert refit.verdict == "not_yet" and refit.reasons == ("sampler NOT OK",)
    assert refit.line.startswith("Not yet: P(beats reference) = 1.000, but sampler NOT OK")
    assert "refit with more draws" in refit.line and "train more runs" not in refit.line
    point = decide(1.0, sampler=sampler_status([("fit", SamplerHealth("map"))]))
    assert point.verdict == "not_yet" and "fit with NUTS" in point.line
    unknown = decide(1.0, sampler=sampler_status([("fit", None)]))
    assert unknown.verdict == "not_yet" and unknown.reasons == ("sampler health unknown",)
    # sure and healthy, but extrapolating: runs where the law extrapolates
    mixture = decide(0.99, sampler=ok, caveats=[Caveat("mixture", "EXTRAPOLATION: ...")])
    assert mixture.verdict == "not_yet" and "near the chosen mixture" in mixture.line
    scale = decide(0.99, sampler=ok, caveats=[Caveat("scale", "far")], suggestions=["next-1"])
    assert scale.reasons == ("the target scale lies far beyond the runs",)
    assert "run these next: next-1" in scale.line
    everything = decide(0.5, sampler=sick, caveats=[Caveat("mixture", "m"), Caveat("scale", "s")])
    assert len(everything.reasons) == 4


def test_decide_without_an_optimum_and_bad_inputs():
    none = decide(None, sampler=sampler_status([("fit", HEALTHY)]))
    assert none.verdict == "no_optimum" and none.line.startswith("No decision")
    with pytest.raises(InputError, match="p_beats"):
        decide(1.5, sampler=sampler_status([("fit", HEALTHY)]))
    with pytest.raises(InputError, match="sampler"):
        decide(0.95, sampler="OK")


def test_extrapolation_caveats_of_the_mixture_and_of_a_far_target(s):
    assert extrapolation_caveats(s.optimum) == []  # inside the runs
    assert extrapolation_caveats(s.optimum, s.nested, (1e9, 1e11)) == []  # 10x and 5x: within e^3
    (far,) = extrapolation_caveats(None, s.nested, (1e11, 1e11))  # 1000x the largest model size
    assert far.kind == "scale" and "model size 1e+11 is 1e+03x the largest fitted (1e+08" in far.text
    outside = {**s.optimum.support, "extrapolation": True, "beyond_runs": True}
    (mixture,) = extrapolation_caveats(replace(s.optimum, support=outside))
    assert mixture.kind == "mixture" and "EXTRAPOLATION" in mixture.text


def test_report_decision_rests_on_the_optimum_s_fit(s):
    full = full_report()
    md = full.markdown.read_text(encoding="utf-8")
    decision_part = md.split("## Decision", 1)[1].split("## Summary", 1)[0]
    assert md.index("## Decision") < md.index("## Summary")
    target = s.optimum.summary.loc["target"]
    assert (
        f"{target['mean']:.4f} nats/token (90% interval {target['lower']:.4f} to {target['upper']:.4f})"
        in (decision_part)
    )
    assert (
        f"**P(beats reference):** {s.optimum.p_beats_reference:.3f} on 300 posterior draws" in decision_part
    )
    # the study's short NUTS fit is not healthy: P(beats) = 1 is not enough to switch
    assert not bm.health(s.fit).ok and s.optimum.p_beats_reference > SWITCH_AT
    assert full.decision.verdict == "not_yet" and "sampler NOT OK" in full.decision.reasons
    assert "> **Not yet: P(beats reference) = 1.000, but sampler NOT OK." in decision_part
    assert "run these next: next-1, next-2" in decision_part
    assert "**Sampler health:** NOT OK: mixing-law fit (r\\_hat" in decision_part
    html = full.html.read_text(encoding="utf-8")
    assert html.index("<section id='decision' class='decision'>") < html.index("<nav>")
    assert "<p class='verdict not_yet'>Not yet:" in html
    # the same optimum from a healthy fit switches; a likely worse one does not
    healthy = _with_health(s.fit, HEALTHY)
    inputs = ReportInputs.check(fit=healthy, optimum=s.optimum, location_draws=s.location)
    assert decision_of(inputs).verdict == "switch"
    worse = replace(s.optimum, p_beats_reference=0.1)
    assert decision_of(ReportInputs.check(fit=healthy, optimum=worse)).verdict == "do_not_switch"
    # a far target scale holds it back even when healthy (the proxy fit's optimum, the nested fit's scale)
    far = ReportInputs.check(fit=healthy, nested=s.nested, target_scale=(1e11, 1e11), optimum=s.optimum)
    assert decision_of(far).verdict == "not_yet"
    assert [name for name, _ in far.decision_stages()] == ["mixing-law fit"]  # not the nested fit's stages


def test_switch_report_renders_the_green_verdict(s, tmp_path):
    files = build_report(
        tmp_path, fit=_with_health(s.fit, HEALTHY), optimum=s.optimum, location_draws=s.location
    )
    assert files.decision.verdict == "switch"
    html = files.html.read_text(encoding="utf-8")
    assert "<p class='verdict switch'>Switch to this mixture: P(beats reference) = 1.000 &gt;= 0.9" in html
    assert "<dt>Sampler health</dt><dd class='good'>OK: mixing-law fit (nuts)" in html


def test_section_builders_alone(s):
    inputs = ReportInputs.check(fit=s.map_fit)
    assert suggestions_section(inputs) is None
    diagnostics = diagnostics_section(inputs)
    assert diagnostics.key == "diagnostics"
    (table,) = [b for b in diagnostics.blocks if hasattr(b, "frame")]
    assert table.frame.loc[0, "ok"] == "point fit" and table.frame.loc[0, "method"] == "map"
    box = decision_section(inputs)
    assert box.blocks[0].verdict == "no_optimum"
    assert [label for label, _, _ in box.blocks[1].rows] == ["Sampler health"]
    assert diagnostics_section(ReportInputs.check(nested=s.nested)).key == "diagnostics"
    # a Laplace fit is a posterior (checked by its Pareto k), not a point fit
    laplace = _with_health(s.fit, SamplerHealth("laplace", chains=1, draws=400, pareto_k=0.3))
    assert "point_fit" not in {f.topic for f in what_data_cannot_tell(laplace)}
    row = diagnostics_section(ReportInputs.check(fit=laplace)).blocks[1].frame.iloc[0]
    assert row["ok"] == "ok" and row["method"] == "laplace"


# ---- units and readability ---------------------------------------------------------------------------


def test_loss_axes_and_columns_carry_their_unit(s, tmp_path):
    md = full_report().markdown.read_text(encoding="utf-8")
    for header in (
        "mean \\|observed - predicted\\| (nats/token)",
        "| domain | mean (nats/token) | lower (nats/token) | upper (nats/token) |",
        "| domain | r\\* mean (nats/token) | r\\* interval (nats/token) |",
    ):
        assert header in md
    assert observed_vs_predicted(s.fit).axes[0].get_xlabel() == "observed loss (nats/token)"
    assert optimum_loss(s.fit, s.optimum).axes[0].get_xlabel() == "expected mean loss (nats/token)"
    assert scaling_fan(s.nested).axes[0].get_ylabel() == "total loss (nats/token)"
    fig = observed_vs_predicted(s.fit, loss_unit="bits/byte")
    assert "(bits/byte" in fig.axes[0].get_ylabel()
    bits = build_report(tmp_path, fit=s.map_fit, loss_unit="bits/byte").markdown.read_text(encoding="utf-8")
    assert "(bits/byte)" in bits and "nats/token" not in bits
    with pytest.raises(InputError, match="loss_unit"):
        build_report(tmp_path, fit=s.map_fit, loss_unit="")


def _assert_readable(fig):
    """At most MAX_WIDTH inches wide, no text under MIN_FONT points, and nothing drawn outside the figure."""
    width, height = fig.get_size_inches()
    assert width <= figures.MAX_WIDTH + 1e-9
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    assert texts
    for text in texts:
        assert text.get_fontsize() >= figures.MIN_FONT, (text.get_text(), text.get_fontsize())
    fig.canvas.draw()
    drawn = fig.get_tightbbox(fig.canvas.get_renderer())  # inches, every drawn artist
    assert drawn.x0 >= -0.02 and drawn.y0 >= -0.02, drawn
    assert drawn.x1 <= width + 0.02 and drawn.y1 <= height + 0.02, drawn


def test_figures_stay_readable_with_17_domains():
    w = wide_study()
    assert len(WIDE_DOMAINS) == 17
    _assert_readable(observed_vs_predicted(w.fit))
    matrix = interaction_matrix(w.fit)
    _assert_readable(matrix)
    assert "values in the table" in matrix.axes[0].get_title()  # the cells are too small for numbers
    _assert_readable(optimum_mixture(w.optimum))
    _assert_readable(optimum_loss(w.fit, w.optimum))
    # a grid of 18 scaling fans (total + 17 domains) wraps into rows of 3 of the same width
    assert figures.panel_grid(18) == (6, 3, (figures.MAX_WIDTH, 6 * 3.2))
    assert figures.panel_grid(4)[:2] == (2, 2) and figures.panel_grid(1)[:2] == (1, 1)


def test_figures_of_the_small_study_stay_readable(s):
    for fig in (
        observed_vs_predicted(s.fit),
        interaction_matrix(s.fit),
        optimum_mixture(s.optimum, location_draws=s.location),
        scaling_fan(s.nested, model_size=TARGET["model_size"], tokens=TARGET["tokens"]),
    ):
        _assert_readable(fig)
    # three domains: the numbers fit in the cells
    assert "values in the table" not in interaction_matrix(s.fit).axes[0].get_title()


# ---- the optimum's share intervals under the optimum's own limits ------------------------------------


def test_share_intervals_respect_the_optimum_s_bounds(s, tmp_path):
    bounded = bm.optimise(s.fit, target="mean", bounds={"code": (0.0, 0.2)}, max_draws=300, n_starts=4)
    assert bounded.mixture["code"] <= 0.2 + 1e-9 < s.optimum.mixture["code"]  # the bound binds
    code = list(bounded.box.domains).index("code")
    assert bounded.box.upper[code] == pytest.approx(0.2)
    # the optimum's recorded limits are used without being given again
    location = optimum_location_draws(s.fit, bounded, n=8, seed=0)
    assert (location["code"] <= 0.2 + 1e-9).all()
    # limits given explicitly rebuild the box (here without the bound: the shares go past it)
    unbounded = optimum_location_draws(s.fit, bounded, n=8, seed=0, trust_region=0.0)
    assert (unbounded["code"] > 0.2).any()
    # with the default limits the recorded box is the one rebuilt from the defaults
    np.testing.assert_allclose(
        optimum_location_draws(s.fit, s.optimum, n=4, seed=0),
        optimum_location_draws(s.fit, s.optimum, n=4, seed=0, trust_region=0.0),
        atol=1e-12,
    )
    files = build_report(tmp_path, fit=s.fit, optimum=bounded, n_location=8)
    md = files.markdown.read_text(encoding="utf-8")
    table = md.split(
        "| training domain | chosen share | reference share | 90% interval of the optimal share |"
    )[1]
    (row,) = [line for line in table.split("\n\n")[0].splitlines() if line.startswith("| code | ")]
    low, high = (float(v) for v in row.split("|")[4].split(" to "))
    assert low <= high <= 0.2

"""The study report: one self-contained HTML file and a Markdown summary, from the posterior.

``build_report(out_dir, fit=..., nested=..., optimum=...)`` writes

* ``out_dir/report.html``: every figure embedded as a base64 PNG (``<img src="data:...">``),
  inline CSS, no script and no external URL, so the file can be mailed or archived alone;
* ``out_dir/report.md``: the same sections as Markdown tables and text, with the figures as PNG
  files in ``out_dir/figures/``.

Every section is included only when its inputs are given (see :func:`build_report`).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.data.runs import RunTable
from bayesmix.errors import InputError
from bayesmix.inference import _arviz
from bayesmix.inference.diagnostics import SamplerHealth
from bayesmix.inference.nested import NestedFit, predict_target
from bayesmix.inference.predict import check_seed, fitted_spec
from bayesmix.optimise.report import OptimisationResult
from bayesmix.optimise.support import describe_support
from bayesmix.report import figures
from bayesmix.report.summaries import (
    check_nested,
    check_prob,
    interaction_summary,
    nearest_observed_mixture,
    observed_runs,
    predictive_check,
)
from bayesmix.report.uncertainty import (
    Finding,
    check_result,
    fit_target_scale,
    optimum_draws,
    optimum_location_draws,
    parse_target_scale,
    stored_health,
    target_stage,
    what_data_cannot_tell,
)
from bayesmix.versions import package_versions

#: section keys in report order, with their headings
SECTIONS = {
    "summary": "Summary",
    "observed_vs_predicted": "Observed vs predicted",
    "scaling": "Scaling-law extrapolation",
    "interactions": "Interaction matrix",
    "optimum": "Optimum mixture vs reference",
    "optimum_loss": "Posterior of the optimum's loss",
    "diagnostics": "Sampler diagnostics",
    "suggestions": "Suggested next runs",
    "cannot_tell": "What the data cannot tell yet",
    "versions": "Versions",
}

#: table cells shown right-aligned: numbers, intervals "a to b" and "m [a, b]"
NUMERIC = re.compile(r"^[-+0-9.eE*x \[\],]+(to [-+0-9.eE]+)?$")

CSS = """
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; color: #1d1d1f;
       max-width: 1100px; margin: 0 auto; padding: 1.5em 2em 4em; line-height: 1.45; }
h1 { font-size: 1.8em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 2px solid #d0d7de; padding-bottom: 0.2em; }
nav { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 0.6em 1em; }
nav ol { margin: 0; padding-left: 1.4em; columns: 2; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.65em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption, .caption { color: #57606a; font-size: 0.9em; margin-top: -0.4em; }
.finding { margin: 0.4em 0; }
.muted { color: #57606a; }
.bad { color: #b3261e; font-weight: 600; }
.good { color: #1a7f37; font-weight: 600; }
"""


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`build_report` wrote.

    Attributes
    ----------
    html, markdown
        Paths of ``report.html`` and ``report.md``.
    figures
        Figure name -> path of its PNG in ``out_dir/figures``.
    sections
        Keys of the sections included, in order (see :data:`SECTIONS`).
    findings
        What the data cannot tell yet (:func:`~bayesmix.report.what_data_cannot_tell`).
    """

    html: Path
    markdown: Path
    figures: dict[str, Path]
    sections: tuple[str, ...]
    findings: tuple[Finding, ...] = ()


# ---- document model: sections of blocks, rendered to HTML and to Markdown ---------------------


@dataclass
class _Table:
    frame: pd.DataFrame  # cells already formatted as strings
    caption: str = ""


@dataclass
class _Figure:
    name: str
    caption: str
    png: bytes


@dataclass
class _Section:
    key: str
    blocks: list[Any] = field(default_factory=list)

    def text(self, value: str) -> None:
        self.blocks.append(str(value))

    def table(self, frame: pd.DataFrame, caption: str = "") -> None:
        self.blocks.append(_Table(frame, caption))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append([str(i) for i in items])


def _png(fig: Any, dpi: int) -> bytes:
    """The figure as PNG bytes; the figure is closed (pyplot keeps no reference to it)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _num(value: Any, digits: int = 4) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(x):
        return "n/a"
    return f"{x:.{digits}f}"


def _sig(value: float) -> str:
    return f"{float(value):.3g}"


def _md_text(value: Any) -> str:
    """Text with the Markdown characters that would change its meaning escaped."""
    text = str(value).replace("\\", "\\\\")
    for char in "*_<`":
        text = text.replace(char, "\\" + char)
    return text.replace("\n", " ")


def _md_cell(value: Any) -> str:
    return _md_text(value).replace("|", "\\|")


def _md_table(table: _Table) -> str:
    frame = table.frame
    header = "| " + " | ".join(_md_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    caption = f"\n*{_md_text(table.caption)}*\n" if table.caption else ""
    return "\n".join([header, rule, *rows]) + "\n" + caption


def _cell_class(value: str) -> str:
    if value in ("NOT OK", "ok"):
        return " class='bad'" if value == "NOT OK" else " class='good'"
    return " class='num'" if NUMERIC.match(value) else ""


def _html_table(table: _Table) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in table.frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td{_cell_class(str(v))}>{esc(str(v))}</td>" for v in row) + "</tr>"
        for row in table.frame.itertuples(index=False)
    )
    caption = f"<p class='caption'>{esc(table.caption)}</p>" if table.caption else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{caption}"


def _render_html(title: str, sections: list[_Section]) -> str:
    esc = html.escape
    nav = "".join(f"<li><a href='#{s.key}'>{esc(SECTIONS[s.key])}</a></li>" for s in sections)
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        "<p class='muted'>Bayesian data mixing laws: every number below comes with its posterior uncertainty.</p>",
        f"<nav><ol>{nav}</ol></nav>",
    ]
    for section in sections:
        parts.append(f"<section id='{section.key}'><h2>{esc(SECTIONS[section.key])}</h2>")
        for block in section.blocks:
            if isinstance(block, _Table):
                parts.append(_html_table(block))
            elif isinstance(block, _Figure):
                data = base64.b64encode(block.png).decode("ascii")
                parts.append(
                    f"<figure><img src='data:image/png;base64,{data}' alt='{esc(block.caption)}'>"
                    f"<figcaption>{esc(block.caption)}</figcaption></figure>"
                )
            elif isinstance(block, list):
                items = "".join(f"<li class='finding'>{esc(item)}</li>" for item in block)
                parts.append(f"<ul>{items}</ul>")
            else:
                parts.append(f"<p>{esc(block)}</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _render_markdown(title: str, sections: list[_Section]) -> str:
    lines = [f"# {_md_text(title)}", ""]
    for section in sections:
        lines += [f"## {SECTIONS[section.key]}", ""]
        for block in section.blocks:
            if isinstance(block, _Table):
                lines += [_md_table(block), ""]
            elif isinstance(block, _Figure):
                caption = _md_text(block.caption)
                lines += [f"![{caption}](figures/{block.name}.png)", "", f"*{caption}*", ""]
            elif isinstance(block, list):
                lines += [f"- {_md_text(item)}" for item in block] + [""]
            else:
                lines += [_md_text(block), ""]
    return "\n".join(lines).rstrip() + "\n"


# ---- sections ----------------------------------------------------------------------------------


def _health_row(name: str, health: SamplerHealth) -> dict[str, str]:
    nuts = health.method == "nuts"
    return {
        "fit": name,
        "method": health.method,
        "chains x draws": f"{health.chains} x {health.draws}" if nuts else "-",
        "divergences": str(health.divergences) if nuts else "-",
        "max r_hat": _num(health.max_rhat, 3) if nuts else "-",
        "min ESS bulk": _num(health.min_ess_bulk, 0) if nuts else "-",
        "min ESS tail": _num(health.min_ess_tail, 0) if nuts else "-",
        "ok": ("ok" if health.ok else "NOT OK") if nuts else "point fit",
        "problems": "; ".join(health.problems) if health.problems else "",
    }


def _summary(
    section: _Section,
    fit: Any,
    runs: RunTable | None,
    target_fit: Any,
    nested: NestedFit | None,
    scale: tuple[float, float] | None,
    optimum: OptimisationResult | None,
    location: pd.DataFrame | None,
    prob: float,
) -> None:
    if optimum is not None:
        row = optimum.summary.loc["target"]
        section.text(
            f"Chosen mixture for target {optimum.target!r} (risk {optimum.risk!r}): expected target loss "
            f"{_num(row['mean'])} ({optimum.prob:.0%} interval {_num(row['lower'])} to {_num(row['upper'])}) vs "
            f"{_num(row['ref_mean'])} ({_num(row['ref_lower'])} to {_num(row['ref_upper'])}) at the reference; "
            f"P(beats reference) = {optimum.p_beats_reference:.3f} on {optimum.n_draws} posterior draws."
        )
        if optimum.support is not None:
            section.text(describe_support(optimum.support))
        table = pd.DataFrame(
            {
                "training domain": [str(d) for d in optimum.mixture.index],
                "chosen share": [_num(v, 3) for v in optimum.mixture],
                "reference share": [_num(v, 3) for v in optimum.reference],
            }
        )
        if location is not None:
            tail = (1 - prob) / 2
            low, high = np.quantile(location.to_numpy(dtype=float), [tail, 1 - tail], axis=0)
            table[f"{prob:.0%} interval of the optimal share"] = [
                f"{_num(lo, 3)} to {_num(hi, 3)}" for lo, hi in zip(low, high, strict=True)
            ]
        section.table(table, "The optimum's mixture (shares of training tokens).")
    if scale is not None:
        section.text(
            f"Target scale: N* = {_sig(scale[0])} parameters, D* = {_sig(scale[1])} training tokens."
        )
    if fit is not None:
        spec = fitted_spec(fit)
        try:
            n_runs = len(observed_runs(fit, runs)[0])
            runs_text = f"{n_runs} runs, "
        except InputError:
            runs_text = ""
        seconds = fit.posterior.attrs.get("bayesmix_fit_seconds")
        took = f", fitted in {float(seconds):.1f} s" if seconds is not None else ""
        section.text(
            f"Mixing-law fit: law {spec.law.get('name')!r} ({spec.method}), {runs_text}"
            f"{len(spec.train_domains)} training domains ({', '.join(spec.train_domains)}), "
            f"{len(spec.domains)} validation domains ({', '.join(spec.domains)}){took}."
        )
    if target_fit is not None:
        spec = fitted_spec(target_fit)
        mixtures = target_fit.constant_data["mixtures"] if "constant_data" in target_fit.groups() else None
        observed = f" on {mixtures.shape[0]} observed mixtures" if mixtures is not None else ""
        section.text(
            f"Target-scale mixing law: law {spec.law.get('name')!r} fitted{observed} to the nested fit's "
            f"target-scale draws" + ("; the optimum is chosen on it." if optimum is not None else ".")
        )
    if nested is not None:
        table = nested.table
        tokens = table.frame["tokens"]
        section.text(
            f"Nested scaling fit ({nested.method}): {len(table.runs)} runs of {len(nested.mixtures)} mixtures at "
            f"{len(table.model_sizes)} model sizes ({', '.join(_sig(s) for s in table.model_sizes)}), checkpoints "
            f"from {_sig(tokens.min())} to {_sig(tokens.max())} tokens."
        )


def _observed_section(
    section: _Section, fit: Any, runs: RunTable | None, prob: float, seed: int, dpi: int
) -> None:
    check = predictive_check(fit, runs, prob=prob, seed=seed)
    fig = figures.observed_vs_predicted(fit, runs, prob=prob, seed=seed)
    section.blocks.append(
        _Figure(
            "observed_vs_predicted",
            f"Posterior predictive mean and {prob:.0%} interval of each observed loss vs the observation.",
            _png(fig, dpi),
        )
    )
    rows = []
    for domain, group in check.groupby("domain", sort=False):
        rows.append(
            {
                "domain": str(domain),
                "losses": str(len(group)),
                f"coverage of {prob:.0%} intervals": _num(group["inside"].mean(), 3),
                "mean |observed - predicted|": _num((group["observed"] - group["mean"]).abs().mean()),
                "mean interval width": _num((group["upper"] - group["lower"]).mean()),
            }
        )
    rows.append(
        {
            "domain": "all",
            "losses": str(len(check)),
            f"coverage of {prob:.0%} intervals": _num(check["inside"].mean(), 3),
            "mean |observed - predicted|": _num((check["observed"] - check["mean"]).abs().mean()),
            "mean interval width": _num((check["upper"] - check["lower"]).mean()),
        }
    )
    section.table(pd.DataFrame(rows), "A calibrated fit puts about the nominal share of observations inside.")


def _scaling_section(
    section: _Section,
    nested: NestedFit,
    scale: tuple[float, float] | None,
    optimum: OptimisationResult | None,
    prob: float,
    seed: int,
    dpi: int,
) -> None:
    import matplotlib.pyplot as plt

    mixture = None
    why = "the observed mixture nearest the mean observed mixture"
    if optimum is not None and [str(d) for d in optimum.mixture.index] == [
        str(c) for c in nested.mixtures.columns
    ]:
        mixture, why = optimum.mixture.to_dict(), "the observed mixture nearest the chosen optimum"
    label = nearest_observed_mixture(nested, mixture)
    shares = ", ".join(f"{k}={v:.3f}" for k, v in nested.mixtures.loc[label].items())
    panels = ["total", *nested.domains] if len(nested.domains) > 1 else list(nested.domains)
    ncols = len(panels) if len(panels) <= 3 else (2 if len(panels) == 4 else 3)
    nrows = int(np.ceil(len(panels) / ncols))
    fig, grid = plt.subplots(
        nrows, ncols, squeeze=False, figsize=(5.2 * ncols, 3.9 * nrows), layout="constrained"
    )
    axes = grid.ravel()
    model_size, tokens = scale if scale is not None else (None, None)
    for k, (ax, panel) in enumerate(zip(axes, panels, strict=False)):
        figures.scaling_fan(
            nested,
            mixture=label,
            domain=panel,
            model_size=model_size,
            tokens=tokens,
            prob=prob,
            seed=seed,
            legend=k == 0,
            ax=ax,
        )
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    section.text(
        f"Mixture {label} ({shares}), {why}. Dots: observed checkpoints; lines: posterior median of the "
        f"fitted scaling law with its {prob:.0%} band, dashed where it extrapolates."
    )
    section.blocks.append(
        _Figure("scaling_fans", f"Scaling fans of mixture {label}, total and per domain.", _png(fig, dpi))
    )
    if scale is not None:
        draws = predict_target(
            nested,
            model_size=scale[0],
            tokens=scale[1],
            mixtures=nested.mixtures.loc[label].to_dict(),
            via="observed",
            seed=seed,
        ).isel(mixture=0)
        tail = (1 - prob) / 2
        rows = []
        for domain in draws["domain"].to_numpy():
            values = draws.sel(domain=domain).to_numpy()
            low, high = np.quantile(values, [tail, 1 - tail])
            rows.append(
                {"domain": str(domain), "mean": _num(values.mean()), "lower": _num(low), "upper": _num(high)}
            )
        section.table(
            pd.DataFrame(rows),
            f"Loss of a new run of mixture {label} at N* = {_sig(scale[0])}, D* = {_sig(scale[1])} "
            f"({prob:.0%} predictive interval: law, run effect and checkpoint noise).",
        )


def _interaction_section(section: _Section, fits: list[tuple[str, str, Any]], prob: float, dpi: int) -> None:
    """One heatmap and table per fit: ``fits`` holds (figure name, description, fit)."""
    for k, (figure_name, what, fit) in enumerate(fits):
        table = interaction_summary(fit, prob=prob)
        name = table.attrs["parameter"]
        if k == 0:
            section.text(
                f"{name}_ij: how training on domain j changes the loss of validation domain i, relative to the "
                f"average training domain (rows are zero-sum); negative lowers the loss. * marks {prob:.0%} "
                f"intervals that exclude 0."
            )
        fig = figures.interaction_matrix(fit, prob=prob)
        section.blocks.append(
            _Figure(figure_name, f"Posterior mean interaction matrix {name} of {what}.", _png(fig, dpi))
        )
        columns = list(pd.unique(table["train_domain"]))
        rows = []
        for domain, group in table.groupby("domain", sort=False):
            row = {"validation \\ training": str(domain)}
            for r in group.itertuples():
                mark = "*" if r.excludes_zero else ""
                row[str(r.train_domain)] = f"{r.mean:.3f}{mark} [{r.lower:.3f}, {r.upper:.3f}]"
            rows.append(row)
        section.table(
            pd.DataFrame(rows, columns=["validation \\ training", *columns]),
            f"Posterior mean [{prob:.0%} interval] of {name}_ij of {what}.",
        )


def _optimum_sections(
    sections: list[_Section],
    fit: Any,
    optimum: OptimisationResult,
    location: pd.DataFrame | None,
    target: Any,
    prob: float,
    dpi: int,
) -> None:
    section = _Section("optimum")
    fig = figures.optimum_mixture(optimum, location_draws=location, prob=prob)
    if location is not None:
        section.text(
            f"Error bars: {prob:.0%} interval of the optimum's location, the mixtures that minimise the target under "
            f"{len(location)} posterior draws (per-draw argmin, same mixture limits)."
        )
    section.blocks.append(
        _Figure("optimum_mixture", "Chosen mixture r* and the reference mixture.", _png(fig, dpi))
    )
    sections.append(section)
    section = _Section("optimum_loss")
    draws = optimum_draws(fit, optimum, target=target)
    fig = figures.optimum_loss(fit, optimum, target=target)
    section.blocks.append(
        _Figure(
            "optimum_loss",
            f"Posterior of the expected {optimum.target} loss at r* and at the reference.",
            _png(fig, dpi),
        )
    )
    rows = []
    for name, row in optimum.summary.iterrows():
        rows.append(
            {
                "domain": str(name),
                "r* mean": _num(row["mean"]),
                "r* interval": f"{_num(row['lower'])} to {_num(row['upper'])}",
                "reference mean": _num(row["ref_mean"]),
                "reference interval": f"{_num(row['ref_lower'])} to {_num(row['ref_upper'])}",
            }
        )
    section.table(
        pd.DataFrame(rows),
        f"Expected losses ({optimum.prob:.0%} intervals) at r* and at the reference; "
        f"P(beats reference) = {float((draws['optimum'] < draws['reference']).mean()):.3f}, compared draw by "
        f"draw (paired), which is why it can be near 1 while the two histograms overlap.",
    )
    sections.append(section)


def _suggestions_table(suggestions: pd.DataFrame) -> pd.DataFrame:
    frame = suggestions.copy()
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    out = pd.DataFrame(index=range(len(frame)))
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values):
            out[str(column)] = [f"{v:.4g}" for v in values]
        else:
            out[str(column)] = [str(v) for v in values]
    return out


def _versions_table(fit: Any) -> pd.DataFrame:
    current = package_versions()
    recorded: dict[str, str] = {}
    if fit is not None and "bayesmix_versions" in fit.posterior.attrs:
        recorded = json.loads(fit.posterior.attrs["bayesmix_versions"])
    names = list(dict.fromkeys([*current, *recorded]))
    rows = [
        {"package": n, "report made with": current.get(n, "-"), "fit made with": recorded.get(n, "-")}
        for n in names
    ]
    if fit is None or not recorded:
        for row in rows:
            row.pop("fit made with")
    return pd.DataFrame(rows)


def _has_interactions(fit: Any, prob: float) -> bool:
    try:
        interaction_summary(fit, prob=prob)
    except InputError:
        return False
    return True


def build_report(
    out_dir: str | os.PathLike[str],
    *,
    fit: _arviz.InferenceData | None = None,
    runs: RunTable | None = None,
    nested: NestedFit | None = None,
    target_scale: Mapping[str, float] | Sequence[float] | None = None,
    target_fit: _arviz.InferenceData | None = None,
    optimum: OptimisationResult | None = None,
    optimum_target: Any = None,
    optimum_limits: Mapping[str, Any] | None = None,
    location_draws: pd.DataFrame | None = None,
    n_location: int = 40,
    suggestions: pd.DataFrame | None = None,
    title: str = "bayesmix report",
    prob: float = 0.9,
    seed: int = 0,
    dpi: int = 100,
) -> ReportFiles:
    """Write the study report (HTML with embedded figures, and Markdown) into ``out_dir``.

    Sections, each included only when its inputs are given:

    ========================  =================================================================
    summary                   always: the optimum, the target scale, what was fitted
    observed vs predicted     ``fit`` with run-level data (its own runs, or ``runs``)
    scaling-law extrapolation ``nested`` (fans up to the target scale when known)
    interaction matrix        ``fit`` and/or ``target_fit`` whose law has one (``t``, ``beta``)
    optimum vs reference      ``optimum`` (with the intervals of its location)
    posterior of its loss     ``optimum``
    sampler diagnostics       ``fit``, ``target_fit`` and/or ``nested`` (every fitted stage)
    suggested next runs       ``suggestions``
    what data cannot tell     ``fit``, ``target_fit`` and/or ``nested``
    versions                  always
    ========================  =================================================================

    Parameters
    ----------
    out_dir
        Folder to write ``report.html``, ``report.md`` and ``figures/*.png`` into (created).
    fit
        A mixing-law fit of the proxy runs (:func:`bayesmix.fit`).
    runs
        Runs to compare ``fit``'s predictions with (default the fit's own runs).
    nested
        A fit from :func:`bayesmix.fit_nested`.
    target_scale
        ``{"model_size": N, "tokens": D}`` or ``(N, D)``: the scale the mixture is chosen for;
        default the scale of ``target_fit``.
    target_fit
        The mixing law at the target scale
        (:func:`bayesmix.inference.nested_target.target_fit`); when given, the optimum is taken to
        come from it.
    optimum
        The answer of :func:`bayesmix.optimise` on ``target_fit`` (or on ``fit`` when there is
        no ``target_fit``).
    optimum_target
        The ``target`` given to :func:`bayesmix.optimise` when it was a mapping or a function
        (default ``optimum.extra["target"]``; a domain or ``"mean"`` is known from the result).
    optimum_limits
        The mixture limits given to :func:`bayesmix.optimise` (``bounds``, ``fixed``,
        ``exclude``, ``tokens``, ``max_epochs``, ``target_tokens``, ``reference``), for the
        optimum's location draws.
    location_draws
        Precomputed :func:`~bayesmix.report.optimum_location_draws`; default computed here from
        ``n_location`` posterior draws.
    n_location
        Posterior draws for the optimum's location (each a small SLSQP solve).
    suggestions
        Suggested next runs (a DataFrame, e.g. from :class:`bayesmix.Designer`), shown as given.
    title
        Title of the report.
    prob
        Probability of every interval in the report.
    seed
        Seed of every random choice (posterior subsets, run noise): same seed, same report.
    dpi
        Resolution of the figures.

    Returns
    -------
    ReportFiles
        Paths of the files written, the sections included and the findings.

    Raises
    ------
    InputError
        Nothing to report, an optimum without its fit, or bad arguments.
    """
    prob = check_prob(prob)
    check_seed(seed)
    if fit is None and nested is None and target_fit is None:
        raise InputError(
            "build_report", "nothing to report", "give fit=, nested= and/or target_fit= (and optimum=)"
        )
    for name, value in (("fit", fit), ("target_fit", target_fit)):
        if value is not None and not hasattr(value, "posterior"):
            raise InputError(name, f"got {type(value).__name__}", "pass an InferenceData from bayesmix")
        if value is not None:
            fitted_spec(value)
    if nested is not None:
        check_nested(nested)
    source = target_fit if target_fit is not None else fit
    if optimum is not None:
        check_result(optimum)
        if source is None:
            raise InputError(
                "optimum",
                "was given without the fit it was computed from",
                "pass target_fit= (or fit=) as well",
            )
    if location_draws is not None and (
        optimum is None
        or not isinstance(location_draws, pd.DataFrame)
        or location_draws.empty
        or [str(c) for c in location_draws.columns] != [str(d) for d in optimum.mixture.index]
    ):
        raise InputError(
            "location_draws",
            "is not a non-empty DataFrame with one column per training domain of the optimum",
            "pass optimum_location_draws(fit, optimum) together with optimum=, or leave it out",
        )
    if suggestions is not None and not isinstance(suggestions, pd.DataFrame):
        raise InputError("suggestions", f"got {type(suggestions).__name__}", "give a pandas DataFrame")
    if not isinstance(title, str) or not title.strip():
        raise InputError("title", f"got {title!r}", "give a non-empty string")
    if not isinstance(dpi, int) or not 30 <= dpi <= 400:
        raise InputError("dpi", f"got {dpi!r}", "give an integer between 30 and 400")
    scale = parse_target_scale(target_scale)
    for idata in (target_fit, fit):
        if scale is None and idata is not None:
            scale = fit_target_scale(idata)
    out = Path(out_dir)
    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            "out_dir", f"cannot create {str(out)!r} ({exc.strerror})", "give a writable folder"
        ) from None

    location = location_draws
    if optimum is not None and location is None:
        location = optimum_location_draws(
            source, optimum, n=n_location, target=optimum_target, seed=seed, **dict(optimum_limits or {})
        )
    findings = what_data_cannot_tell(
        fit,
        runs=runs,
        target_fit=target_fit,
        result=optimum,
        location_draws=location,
        nested=nested,
        target_scale=scale,
        prob=prob,
    )

    sections: list[_Section] = []
    summary = _Section("summary")
    _summary(summary, fit, runs, target_fit, nested, scale, optimum, location, prob)
    sections.append(summary)
    if fit is not None:
        try:
            observed_runs(fit, runs)
            has_runs = True
        except InputError:
            has_runs = False
        if has_runs:
            section = _Section("observed_vs_predicted")
            _observed_section(section, fit, runs, prob, seed, dpi)
            sections.append(section)
    if nested is not None:
        section = _Section("scaling")
        _scaling_section(section, nested, scale, optimum, prob, seed, dpi)
        sections.append(section)
    matrices = [
        (name, what, idata)
        for name, what, idata in (
            ("interaction_matrix", "the proxy runs' fit", fit),
            ("interaction_matrix_target", "the target-scale mixing law", target_fit),
        )
        if idata is not None and _has_interactions(idata, prob)
    ]
    if matrices:
        section = _Section("interactions")
        _interaction_section(section, matrices, prob, dpi)
        sections.append(section)
    if optimum is not None:
        _optimum_sections(sections, source, optimum, location, optimum_target, prob, dpi)
    health_rows = []
    if fit is not None and stored_health(fit) is not None:
        health_rows.append(_health_row("mixing-law fit", stored_health(fit)))
    if target_fit is not None and stored_health(target_fit) is not None:
        if not (nested is not None and target_stage(target_fit) in nested.health):
            health_rows.append(_health_row("target-scale mixing law", stored_health(target_fit)))
    if nested is not None:
        health_rows += [_health_row(f"nested: {stage}", h) for stage, h in nested.health.items()]
    if health_rows:
        section = _Section("diagnostics")
        bad = [r["fit"] for r in health_rows if r["ok"] == "NOT OK"]
        section.text(
            "Problems in: " + ", ".join(bad) + " (see the problems column)."
            if bad
            else "No sampler problems: no divergences, r_hat <= 1.01 and bulk ESS >= 100 per chain everywhere."
        )
        section.table(pd.DataFrame(health_rows))
        sections.append(section)
    if suggestions is not None:
        section = _Section("suggestions")
        section.table(_suggestions_table(suggestions), f"{len(suggestions)} suggested runs.")
        sections.append(section)
    section = _Section("cannot_tell")
    if findings:
        section.bullets([f.message for f in findings])
    else:
        section.text(
            "Nothing flagged: no uncertain interaction, wide optimum share, undecided comparison with the "
            "reference, extrapolation, sampler problem or thin data was found."
        )
    sections.append(section)
    section = _Section("versions")
    section.table(_versions_table(fit if fit is not None else target_fit))
    sections.append(section)

    figure_paths: dict[str, Path] = {}
    for section in sections:
        for block in section.blocks:
            if isinstance(block, _Figure):
                path = out / "figures" / f"{block.name}.png"
                path.write_bytes(block.png)
                figure_paths[block.name] = path
    html_path, md_path = out / "report.html", out / "report.md"
    html_path.write_text(_render_html(title, sections), encoding="utf-8")
    md_path.write_text(_render_markdown(title, sections), encoding="utf-8")
    return ReportFiles(
        html=html_path,
        markdown=md_path,
        figures=figure_paths,
        sections=tuple(s.key for s in sections),
        findings=tuple(findings),
    )

"""The study report: one self-contained HTML file and a Markdown summary, from the posterior.

``build_report(out_dir, fit=..., nested=..., optimum=...)`` writes

* ``out_dir/report.html``: every figure embedded as a base64 PNG (``<img src="data:...">``),
  inline CSS, no script and no external URL, so the file can be mailed or archived alone;
* ``out_dir/report.md``: the same sections as Markdown tables and text, with the figures as PNG
  files in ``out_dir/figures/``.

The report opens with the decision (:mod:`bayesmix.report.decision`): the chosen mixture, its
predicted target loss, P(beats reference), the sampler's health, any extrapolation caveat and
one verdict line, all on the first screen. Every other section is included only when its inputs
are given (see :func:`build_report`); each is made by one builder of :data:`SECTION_BUILDERS`
from the validated inputs (:class:`ReportInputs`). Wide tables scroll inside their own box and
figures never exceed the page's width, so the page itself never scrolls sideways, however many
domains the study has.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.data.runs import RunTable
from bayesmix.errors import InputError
from bayesmix.inference import _arviz
from bayesmix.inference.diagnostics import SamplerHealth, stored_health
from bayesmix.inference.nested import NestedFit, predict_target, target_extrapolation
from bayesmix.inference.predict import check_seed, fitted_spec
from bayesmix.optimise.report import OptimisationResult
from bayesmix.optimise.support import describe_support
from bayesmix.report import figures
from bayesmix.report.decision import (
    Decision,
    decide,
    extrapolation_caveats,
    sampler_status,
)
from bayesmix.report.summaries import (
    check_nested,
    check_prob,
    interaction_summary,
    nearest_observed_mixture,
    observed_runs,
    predictive_check,
)
from bayesmix.report.uncertainty import (
    POSTERIOR_METHODS,
    Finding,
    check_result,
    fit_target_scale,
    optimum_draws,
    optimum_location_draws,
    parse_target_scale,
    target_stage,
    what_data_cannot_tell,
)
from bayesmix.versions import package_versions

#: section keys in report order, with their headings
SECTIONS = {
    "decision": "Decision",
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
.table-wrap { max-width: 100%; overflow-x: auto; margin: 0.8em 0; }
table { border-collapse: collapse; margin: 0; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.65em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption, .caption { color: #57606a; font-size: 0.9em; margin-top: 0.2em; }
.finding { margin: 0.4em 0; }
.muted { color: #57606a; }
.bad { color: #b3261e; font-weight: 600; }
.good { color: #1a7f37; font-weight: 600; }
section.decision { background: #f3f8ff; border: 2px solid #0969da; border-radius: 8px;
                   padding: 0.2em 1.2em 0.9em; margin: 0.8em 0 1.2em; }
section.decision h2 { margin-top: 0.5em; border-bottom: none; }
p.verdict { font-size: 1.15em; font-weight: 600; padding: 0.45em 0.8em; border-radius: 6px;
            margin: 0.3em 0 0.7em; }
p.verdict.switch { background: #dafbe1; color: #116329; }
p.verdict.not_yet { background: #fff8c5; color: #6f4a00; }
p.verdict.do_not_switch { background: #ffebe9; color: #a40e26; }
p.verdict.no_optimum { background: #eaeef2; color: #1d1d1f; }
dl.facts { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 0.3em 1.2em; margin: 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
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
    decision
        The verdict on the first screen (:func:`~bayesmix.report.decision.decide`).
    """

    html: Path
    markdown: Path
    figures: dict[str, Path]
    sections: tuple[str, ...]
    findings: tuple[Finding, ...] = ()
    decision: Decision | None = None


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
class _Verdict:
    verdict: str  # one of decision.VERDICTS, also the CSS class
    line: str


@dataclass
class _Facts:
    rows: list[tuple[str, str, str]]  # (label, value, CSS class of the value: "", "good" or "bad")


@dataclass
class Section:
    """One section of the report: its key in :data:`SECTIONS` and its blocks, in order.

    A block is a paragraph (``str``), a bullet list (``list`` of ``str``), a table, a figure (PNG
    bytes), a verdict line or a list of facts; :func:`build_report` renders the same blocks to
    HTML and to Markdown.
    """

    key: str
    blocks: list[Any] = field(default_factory=list)

    def text(self, value: str) -> None:
        """Add a paragraph."""
        self.blocks.append(str(value))

    def table(self, frame: pd.DataFrame, caption: str = "") -> None:
        """Add a table whose cells are already formatted as strings."""
        self.blocks.append(_Table(frame, caption))

    def bullets(self, items: Sequence[str]) -> None:
        """Add a bullet list."""
        self.blocks.append([str(i) for i in items])

    def figure(self, name: str, caption: str, fig: Any, dpi: int) -> None:
        """Add a matplotlib figure as PNG (``figures/<name>.png``); the figure is closed."""
        self.blocks.append(_Figure(name, caption, _png(fig, dpi)))


def _png(fig: Any, dpi: int) -> bytes:
    """The figure as PNG bytes; the figure is closed (pyplot keeps no reference to it)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height in pixels of a PNG (from its IHDR chunk)."""
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


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
    # a wide table (many domains) scrolls inside its box; the page never scrolls sideways
    return (
        f"<div class='table-wrap'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        f"{caption}"
    )


def _html_block(block: Any) -> str:
    esc = html.escape
    if isinstance(block, _Table):
        return _html_table(block)
    if isinstance(block, _Figure):
        data = base64.b64encode(block.png).decode("ascii")
        width, height = _png_size(block.png)
        return (
            f"<figure><img src='data:image/png;base64,{data}' width='{width}' height='{height}' "
            f"alt='{esc(block.caption)}'><figcaption>{esc(block.caption)}</figcaption></figure>"
        )
    if isinstance(block, _Verdict):
        return f"<p class='verdict {esc(block.verdict)}'>{esc(block.line)}</p>"
    if isinstance(block, _Facts):
        items = "".join(
            f"<dt>{esc(label)}</dt><dd" + (f" class='{css}'" if css else "") + f">{esc(value)}</dd>"
            for label, value, css in block.rows
        )
        return f"<dl class='facts'>{items}</dl>"
    if isinstance(block, list):
        items = "".join(f"<li class='finding'>{esc(item)}</li>" for item in block)
        return f"<ul>{items}</ul>"
    return f"<p>{esc(block)}</p>"


def _html_section(section: Section) -> str:
    esc = html.escape
    css = " class='decision'" if section.key == "decision" else ""
    parts = [f"<section id='{section.key}'{css}><h2>{esc(SECTIONS[section.key])}</h2>"]
    parts += [_html_block(block) for block in section.blocks]
    parts.append("</section>")
    return "\n".join(parts)


def _render_html(title: str, sections: list[Section]) -> str:
    esc = html.escape
    nav = "".join(f"<li><a href='#{s.key}'>{esc(SECTIONS[s.key])}</a></li>" for s in sections)
    first = [s for s in sections if s.key == "decision"]
    rest = [s for s in sections if s.key != "decision"]
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        *[_html_section(s) for s in first],
        "<p class='muted'>Bayesian data mixing laws: every number below comes with its posterior uncertainty.</p>",
        f"<nav><ol>{nav}</ol></nav>",
        *[_html_section(s) for s in rest],
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _md_block(block: Any) -> list[str]:
    if isinstance(block, _Table):
        return [_md_table(block), ""]
    if isinstance(block, _Figure):
        caption = _md_text(block.caption)
        return [f"![{caption}](figures/{block.name}.png)", "", f"*{caption}*", ""]
    if isinstance(block, _Verdict):
        return [f"> **{_md_text(block.line)}**", ""]
    if isinstance(block, _Facts):
        return [f"- **{_md_text(label)}:** {_md_text(value)}" for label, value, _ in block.rows] + [""]
    if isinstance(block, list):
        return [f"- {_md_text(item)}" for item in block] + [""]
    return [_md_text(block), ""]


def _render_markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {_md_text(title)}", ""]
    for section in sections:
        lines += [f"## {SECTIONS[section.key]}", ""]
        for block in section.blocks:
            lines += _md_block(block)
    return "\n".join(lines).rstrip() + "\n"


# ---- the inputs every section builder reads ----------------------------------------------------


@dataclass
class ReportInputs:
    """The validated inputs of :func:`build_report`, shared by the section builders.

    Attributes
    ----------
    fit, runs, nested, target_fit, optimum, optimum_target, suggestions
        As given to :func:`build_report`.
    source
        The fit the optimum comes from: ``target_fit`` when given, else ``fit``.
    scale
        The target scale ``(N*, D*)``: given, or read from ``target_fit`` (or ``fit``).
    location
        Draws of the optimum's location (given, or computed by :meth:`complete`).
    findings
        What the data cannot tell yet (computed by :meth:`complete`).
    prob, seed, dpi, loss_unit
        As given to :func:`build_report`.
    """

    fit: _arviz.InferenceData | None = None
    runs: RunTable | None = None
    nested: NestedFit | None = None
    target_fit: _arviz.InferenceData | None = None
    optimum: OptimisationResult | None = None
    optimum_target: Any = None
    suggestions: pd.DataFrame | None = None
    source: _arviz.InferenceData | None = None
    scale: tuple[float, float] | None = None
    location: pd.DataFrame | None = None
    findings: list[Finding] = field(default_factory=list)
    prob: float = 0.9
    seed: int = 0
    dpi: int = 100
    loss_unit: str = figures.LOSS_UNIT

    @classmethod
    def check(
        cls,
        *,
        fit: Any = None,
        runs: RunTable | None = None,
        nested: Any = None,
        target_scale: Any = None,
        target_fit: Any = None,
        optimum: Any = None,
        optimum_target: Any = None,
        location_draws: Any = None,
        suggestions: Any = None,
        prob: float = 0.9,
        seed: int = 0,
        dpi: int = 100,
        loss_unit: str = figures.LOSS_UNIT,
    ) -> ReportInputs:
        """Validate :func:`build_report`'s arguments (cheap: nothing is computed from the posterior)."""
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
        if not isinstance(dpi, int) or not 30 <= dpi <= 400:
            raise InputError("dpi", f"got {dpi!r}", "give an integer between 30 and 400")
        loss_unit = figures.check_loss_unit(loss_unit)
        scale = parse_target_scale(target_scale)
        for idata in (target_fit, fit):
            if scale is None and idata is not None:
                scale = fit_target_scale(idata)
        return cls(
            fit=fit,
            runs=runs,
            nested=nested,
            target_fit=target_fit,
            optimum=optimum,
            optimum_target=optimum_target,
            suggestions=suggestions,
            source=source,
            scale=scale,
            location=location_draws,
            prob=prob,
            seed=seed,
            dpi=dpi,
            loss_unit=loss_unit,
        )

    def complete(self, n_location: int = 40, optimum_limits: Mapping[str, Any] | None = None) -> ReportInputs:
        """Compute the optimum's location draws (unless given) and the findings; returns ``self``.

        The location draws are solved within the optimum's own limits (its ``box``), unless
        ``optimum_limits`` are given (see :func:`~bayesmix.report.optimum_location_draws`).
        """
        if self.optimum is not None and self.location is None:
            self.location = optimum_location_draws(
                self.source,
                self.optimum,
                n=n_location,
                target=self.optimum_target,
                seed=self.seed,
                **dict(optimum_limits or {}),
            )
        self.findings = what_data_cannot_tell(
            self.fit,
            runs=self.runs,
            target_fit=self.target_fit,
            result=self.optimum,
            location_draws=self.location,
            nested=self.nested,
            target_scale=self.scale,
            prob=self.prob,
        )
        return self

    def stages(self) -> list[tuple[str, SamplerHealth | None]]:
        """Every fitted stage in the report with its stored sampler health (``None``: none stored).

        A target-scale fit whose health is a stage of the nested fit is listed once, as that stage.
        """
        stages: list[tuple[str, SamplerHealth | None]] = []
        if self.fit is not None:
            stages.append(("mixing-law fit", stored_health(self.fit)))
        if self.target_fit is not None and not (
            self.nested is not None and target_stage(self.target_fit) in self.nested.health
        ):
            stages.append(("target-scale mixing law", stored_health(self.target_fit)))
        if self.nested is not None:
            stages += [(f"nested: {stage}", h) for stage, h in self.nested.health.items()]
        return stages

    def decision_stages(self) -> list[tuple[str, SamplerHealth | None]]:
        """The stages the optimum rests on (every stage when there is no optimum).

        An optimum of the proxy runs' fit rests on that fit; one of the target-scale mixing law
        rests on that law and on every stage of the nested fit it was fitted from.
        """
        stages = self.stages()
        if self.optimum is None:
            return stages
        if self.target_fit is None:
            return [s for s in stages if s[0] == "mixing-law fit"]
        return [s for s in stages if s[0] != "mixing-law fit"]

    def suggestion_names(self) -> list[str]:
        """Names of the suggested runs: the index labels, a ``run``/``name`` column, or row numbers."""
        if self.suggestions is None or self.suggestions.empty:
            return []
        frame = self.suggestions
        if not isinstance(frame.index, pd.RangeIndex):
            return [str(i) for i in frame.index]
        for column in ("run", "name", "id"):
            if column in frame.columns:
                return [str(v) for v in frame[column]]
        return [f"row {i + 1}" for i in range(len(frame))]


# ---- section builders: one per section, each returns None when its inputs are missing ---------


def _health_row(name: str, health: SamplerHealth) -> dict[str, str]:
    posterior = health.method in POSTERIOR_METHODS
    nuts = health.method == "nuts"
    return {
        "fit": name,
        "method": health.method,
        "chains x draws": f"{health.chains} x {health.draws}" if nuts else "-",
        "divergences": str(health.divergences) if nuts else "-",
        "max r_hat": _num(health.max_rhat, 3) if nuts else "-",
        "min ESS bulk": _num(health.min_ess_bulk, 0) if nuts else "-",
        "min ESS tail": _num(health.min_ess_tail, 0) if nuts else "-",
        "ok": ("ok" if health.ok else "NOT OK") if posterior else "point fit",
        "problems": "; ".join(health.problems) if health.problems else "",
    }


def _mixture_text(shares: pd.Series) -> str:
    """Shares above 0.0005, largest first; the domains left out are named after them."""
    kept = shares[shares > 5e-4].sort_values(ascending=False)
    text = ", ".join(f"{d} {v:.3f}" for d, v in kept.items())
    dropped = [str(d) for d in shares.index if d not in kept.index]
    return text + (f"; 0 for {', '.join(dropped)}" if dropped else "")


def _scale_text(inputs: ReportInputs) -> str:
    """The target scale, with how far it lies beyond the nested fit's runs when known."""
    assert inputs.scale is not None
    size, tokens = inputs.scale
    if inputs.nested is None:
        return f"N* = {_sig(size)} parameters, D* = {_sig(tokens)} training tokens"
    try:
        info = target_extrapolation(inputs.nested, size, tokens)
    except InputError:
        return f"N* = {_sig(size)} parameters, D* = {_sig(tokens)} training tokens"
    return (
        f"N* = {_sig(size)} parameters ({_sig(size / info['fitted_model_size_max'])}x the largest fitted), "
        f"D* = {_sig(tokens)} training tokens ({_sig(tokens / info['fitted_tokens_max'])}x the most fitted)"
    )


def decision_of(inputs: ReportInputs) -> Decision:
    """The verdict of :func:`~bayesmix.report.decision.decide` on the report's inputs."""
    optimum = inputs.optimum
    return decide(
        None if optimum is None else optimum.p_beats_reference,
        sampler=sampler_status(inputs.decision_stages()),
        caveats=extrapolation_caveats(optimum, inputs.nested, inputs.scale),
        suggestions=inputs.suggestion_names(),
    )


def decision_section(inputs: ReportInputs) -> Section:
    """The first screen: verdict, chosen mixture, its loss, P(beats reference), sampler, caveats."""
    section = Section("decision")
    decision = decision_of(inputs)
    section.blocks.append(_Verdict(decision.verdict, decision.line))
    status = sampler_status(inputs.decision_stages())
    caveats = extrapolation_caveats(inputs.optimum, inputs.nested, inputs.scale)
    rows: list[tuple[str, str, str]] = []
    optimum = inputs.optimum
    if optimum is not None:
        row = optimum.summary.loc["target"]
        unit = target_unit(inputs)
        rows += [
            (
                "Chosen mixture",
                f"{_mixture_text(optimum.mixture)} (target {optimum.target!r}, risk {optimum.risk!r})",
                "",
            ),
            (
                "Predicted target loss",
                f"{_num(row['mean'])} {unit} ({optimum.prob:.0%} interval {_num(row['lower'])} to "
                f"{_num(row['upper'])}); reference {_num(row['ref_mean'])} ({_num(row['ref_lower'])} to "
                f"{_num(row['ref_upper'])})",
                "",
            ),
            (
                "P(beats reference)",
                f"{optimum.p_beats_reference:.3f} on {optimum.n_draws} posterior draws, compared draw by draw",
                "",
            ),
        ]
    rows.append(("Sampler health", status.text, "good" if status.ok else "bad"))
    if inputs.scale is not None:
        rows.append(("Target scale", _scale_text(inputs), ""))
    if caveats:
        rows.append(("Extrapolation", " | ".join(c.text for c in caveats), "bad"))
    elif optimum is not None and optimum.support is not None:
        inside = describe_support(optimum.support)
        rows.append(("Extrapolation", f"none; {inside[0].lower()}{inside[1:]}", ""))
    elif optimum is not None:
        rows.append(
            ("Extrapolation", "unknown: the fit stores no run mixtures to compare the optimum with", "")
        )
    section.blocks.append(_Facts(rows))
    return section


def target_unit(inputs: ReportInputs) -> str:
    """The unit of the optimum's target values: the target's own (``unit``, e.g. an error rate) or the loss unit."""
    unit = getattr(inputs.optimum_target, "unit", None)
    return unit if isinstance(unit, str) and unit.strip() else inputs.loss_unit


def summary_section(inputs: ReportInputs) -> Section:
    """The optimum (with the intervals of its shares), the target scale and what was fitted."""
    section = Section("summary")
    optimum, prob, unit = inputs.optimum, inputs.prob, target_unit(inputs)
    if optimum is not None:
        row = optimum.summary.loc["target"]
        section.text(
            f"Chosen mixture for target {optimum.target!r} (risk {optimum.risk!r}): expected target loss "
            f"{_num(row['mean'])} {unit} ({optimum.prob:.0%} interval {_num(row['lower'])} to "
            f"{_num(row['upper'])}) vs {_num(row['ref_mean'])} ({_num(row['ref_lower'])} to "
            f"{_num(row['ref_upper'])}) at the reference; P(beats reference) = {optimum.p_beats_reference:.3f} "
            f"on {optimum.n_draws} posterior draws."
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
        if inputs.location is not None:
            tail = (1 - prob) / 2
            low, high = np.quantile(inputs.location.to_numpy(dtype=float), [tail, 1 - tail], axis=0)
            table[f"{prob:.0%} interval of the optimal share"] = [
                f"{_num(lo, 3)} to {_num(hi, 3)}" for lo, hi in zip(low, high, strict=True)
            ]
        section.table(table, "The optimum's mixture (shares of training tokens).")
    if inputs.scale is not None:
        section.text(
            f"Target scale: N* = {_sig(inputs.scale[0])} parameters, D* = {_sig(inputs.scale[1])} training tokens."
        )
    if inputs.fit is not None:
        fit = inputs.fit
        spec = fitted_spec(fit)
        try:
            n_runs = len(observed_runs(fit, inputs.runs)[0])
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
    if inputs.target_fit is not None:
        target_fit = inputs.target_fit
        spec = fitted_spec(target_fit)
        mixtures = target_fit.constant_data["mixtures"] if "constant_data" in target_fit.groups() else None
        observed = f" on {mixtures.shape[0]} observed mixtures" if mixtures is not None else ""
        section.text(
            f"Target-scale mixing law: law {spec.law.get('name')!r} fitted{observed} to the nested fit's "
            f"target-scale draws" + ("; the optimum is chosen on it." if optimum is not None else ".")
        )
    if inputs.nested is not None:
        nested = inputs.nested
        table = nested.table
        tokens = table.frame["tokens"]
        section.text(
            f"Nested scaling fit ({nested.method}): {len(table.runs)} runs of {len(nested.mixtures)} mixtures at "
            f"{len(table.model_sizes)} model sizes ({', '.join(_sig(s) for s in table.model_sizes)}), checkpoints "
            f"from {_sig(tokens.min())} to {_sig(tokens.max())} tokens."
        )
    return section


def observed_section(inputs: ReportInputs) -> Section | None:
    """Posterior predictive check of the proxy fit on its runs (needs run-level data)."""
    fit, runs, prob, seed, unit = inputs.fit, inputs.runs, inputs.prob, inputs.seed, inputs.loss_unit
    if fit is None:
        return None
    try:
        observed_runs(fit, runs)
    except InputError:
        return None
    section = Section("observed_vs_predicted")
    check = predictive_check(fit, runs, prob=prob, seed=seed)
    fig = figures.observed_vs_predicted(fit, runs, prob=prob, seed=seed, loss_unit=unit, check=check)
    counts = check["method"].value_counts()
    words = {
        "loo": "predicted leave-one-out (PSIS-LOO: the posterior as if that loss had not been observed, so "
        "the check is not flattered by the fit having seen it)",
        "held-out": "of runs the fit was not made on",
        "in-sample": "of the fit's own runs predicted in-sample (coverage is flattered)",
    }
    how = "".join(f" {n} of {len(check)} losses are {words[m]}." for m, n in counts.items())
    high_k = int(((check["method"] == "loo") & (check["pareto_k"] > 0.7)).sum())
    if high_k:
        how += f" {high_k} leave-one-out interval(s) have Pareto k > 0.7 (unreliable)."
    section.figure(
        "observed_vs_predicted",
        f"Posterior predictive mean and {prob:.0%} interval of each observed loss vs the observation.{how}",
        fig,
        inputs.dpi,
    )

    def row(domain: str, group: pd.DataFrame) -> dict[str, str]:
        return {
            "domain": domain,
            "losses": str(len(group)),
            f"coverage of {prob:.0%} intervals": _num(group["inside"].mean(), 3),
            f"mean |observed - predicted| ({unit})": _num((group["observed"] - group["mean"]).abs().mean()),
            f"mean interval width ({unit})": _num((group["upper"] - group["lower"]).mean()),
        }

    rows = [row(str(domain), group) for domain, group in check.groupby("domain", sort=False)]
    rows.append(row("all", check))
    section.table(pd.DataFrame(rows), "A calibrated fit puts about the nominal share of observations inside.")
    return section


def _fan_figure(inputs: ReportInputs, label: str) -> Any:
    """Scaling fans of one mixture, total and per domain, in a grid that stays readable."""
    import matplotlib.pyplot as plt

    nested = inputs.nested
    assert nested is not None
    panels = ["total", *nested.domains] if len(nested.domains) > 1 else list(nested.domains)
    nrows, ncols, size = figures.panel_grid(len(panels))
    fig, grid = plt.subplots(nrows, ncols, squeeze=False, figsize=size, layout="constrained")
    axes = grid.ravel()
    model_size, tokens = inputs.scale if inputs.scale is not None else (None, None)
    for ax, panel in zip(axes, panels, strict=False):
        figures.scaling_fan(
            nested,
            mixture=label,
            domain=panel,
            model_size=model_size,
            tokens=tokens,
            prob=inputs.prob,
            seed=inputs.seed,
            legend=False,
            loss_unit=inputs.loss_unit,
            ax=ax,
        )
        ax.set_title(panel, fontsize=figures.TITLE_FONT)
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=figures.MIN_FONT
    )
    scale = ""
    if tokens is not None:
        scale = f", to D*={tokens:.3g}" + (f", N*={model_size:.3g}" if model_size is not None else "")
    fig.suptitle(f"Scaling fans of mixture {label}{scale}", fontsize=figures.TITLE_FONT + 1)
    return fig


def scaling_section(inputs: ReportInputs) -> Section | None:
    """Scaling fans of the observed mixture nearest the optimum, and its loss at the target scale."""
    nested, optimum, scale, prob, unit = (
        inputs.nested,
        inputs.optimum,
        inputs.scale,
        inputs.prob,
        inputs.loss_unit,
    )
    if nested is None:
        return None
    section = Section("scaling")
    mixture = None
    why = "the observed mixture nearest the mean observed mixture"
    if optimum is not None and [str(d) for d in optimum.mixture.index] == [
        str(c) for c in nested.mixtures.columns
    ]:
        mixture, why = optimum.mixture.to_dict(), "the observed mixture nearest the chosen optimum"
    label = nearest_observed_mixture(nested, mixture)
    shares = ", ".join(f"{k}={v:.3f}" for k, v in nested.mixtures.loc[label].items())
    fig = _fan_figure(inputs, label)
    section.text(
        f"Mixture {label} ({shares}), {why}. Dots: observed checkpoints; lines: posterior median of the "
        f"fitted scaling law with its {prob:.0%} band, dashed where it extrapolates."
    )
    section.figure("scaling_fans", f"Scaling fans of mixture {label}, total and per domain.", fig, inputs.dpi)
    if scale is not None:
        draws = predict_target(
            nested,
            model_size=scale[0],
            tokens=scale[1],
            mixtures=nested.mixtures.loc[label].to_dict(),
            via="observed",
            seed=inputs.seed,
        ).isel(mixture=0)
        tail = (1 - prob) / 2
        rows = []
        for domain in draws["domain"].to_numpy():
            values = draws.sel(domain=domain).to_numpy()
            low, high = np.quantile(values, [tail, 1 - tail])
            rows.append(
                {
                    "domain": str(domain),
                    f"mean ({unit})": _num(values.mean()),
                    f"lower ({unit})": _num(low),
                    f"upper ({unit})": _num(high),
                }
            )
        section.table(
            pd.DataFrame(rows),
            f"Loss of a new run of mixture {label} at N* = {_sig(scale[0])}, D* = {_sig(scale[1])} "
            f"({prob:.0%} predictive interval: law, run effect and checkpoint noise).",
        )
    return section


def _has_interactions(fit: Any, prob: float) -> bool:
    try:
        interaction_summary(fit, prob=prob)
    except InputError:
        return False
    return True


def interaction_section(inputs: ReportInputs) -> Section | None:
    """One heatmap and table per fit whose law has an interaction matrix (``t``, ``beta``)."""
    prob = inputs.prob
    fits = [
        (name, what, idata)
        for name, what, idata in (
            ("interaction_matrix", "the proxy runs' fit", inputs.fit),
            ("interaction_matrix_target", "the target-scale mixing law", inputs.target_fit),
        )
        if idata is not None and _has_interactions(idata, prob)
    ]
    if not fits:
        return None
    section = Section("interactions")
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
        section.figure(figure_name, f"Posterior mean interaction matrix {name} of {what}.", fig, inputs.dpi)
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
    return section


def optimum_section(inputs: ReportInputs) -> Section | None:
    """Bars of the chosen mixture and the reference, with the intervals of the optimum's location."""
    optimum, location, prob = inputs.optimum, inputs.location, inputs.prob
    if optimum is None:
        return None
    section = Section("optimum")
    fig = figures.optimum_mixture(optimum, location_draws=location, prob=prob)
    if location is not None:
        section.text(
            f"Error bars: {prob:.0%} interval of the optimum's location, the mixtures that minimise the target under "
            f"{len(location)} posterior draws (per-draw argmin, same mixture limits)."
        )
    section.figure("optimum_mixture", "Chosen mixture r* and the reference mixture.", fig, inputs.dpi)
    return section


def optimum_loss_section(inputs: ReportInputs) -> Section | None:
    """Posterior of the target loss at the optimum and at the reference, and per-domain losses."""
    optimum, source, target, unit = inputs.optimum, inputs.source, inputs.optimum_target, target_unit(inputs)
    if optimum is None:
        return None
    section = Section("optimum_loss")
    draws = optimum_draws(source, optimum, target=target)
    fig = figures.optimum_loss(source, optimum, target=target, loss_unit=unit)
    section.figure(
        "optimum_loss",
        f"Posterior of the expected {optimum.target} loss at r* and at the reference.",
        fig,
        inputs.dpi,
    )
    rows = []
    for name, row in optimum.summary.iterrows():
        rows.append(
            {
                "domain": str(name),
                f"r* mean ({unit})": _num(row["mean"]),
                f"r* interval ({unit})": f"{_num(row['lower'])} to {_num(row['upper'])}",
                f"reference mean ({unit})": _num(row["ref_mean"]),
                f"reference interval ({unit})": f"{_num(row['ref_lower'])} to {_num(row['ref_upper'])}",
            }
        )
    section.table(
        pd.DataFrame(rows),
        f"Expected losses ({optimum.prob:.0%} intervals) at r* and at the reference; "
        f"P(beats reference) = {float((draws['optimum'] < draws['reference']).mean()):.3f}, compared draw by "
        f"draw (paired), which is why it can be near 1 while the two histograms overlap.",
    )
    return section


def diagnostics_section(inputs: ReportInputs) -> Section | None:
    """Sampler health of every fitted stage that stored one."""
    rows = [_health_row(name, health) for name, health in inputs.stages() if health is not None]
    if not rows:
        return None
    section = Section("diagnostics")
    bad = [r["fit"] for r in rows if r["ok"] == "NOT OK"]
    section.text(
        "Problems in: " + ", ".join(bad) + " (see the problems column)."
        if bad
        else "No sampler problems: no divergences, r_hat <= 1.01 and bulk ESS >= 100 per chain everywhere."
    )
    section.table(pd.DataFrame(rows))
    return section


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


def suggestions_section(inputs: ReportInputs) -> Section | None:
    """The suggested next runs, as given."""
    if inputs.suggestions is None:
        return None
    section = Section("suggestions")
    section.table(_suggestions_table(inputs.suggestions), f"{len(inputs.suggestions)} suggested runs.")
    return section


def cannot_tell_section(inputs: ReportInputs) -> Section:
    """The findings of :func:`~bayesmix.report.what_data_cannot_tell`."""
    section = Section("cannot_tell")
    if inputs.findings:
        section.bullets([f.message for f in inputs.findings])
    else:
        section.text(
            "Nothing flagged: no uncertain interaction, wide optimum share, undecided comparison with the "
            "reference, extrapolation, sampler problem or thin data was found."
        )
    return section


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


def versions_section(inputs: ReportInputs) -> Section:
    """Package versions of the report and of the fit."""
    section = Section("versions")
    section.table(_versions_table(inputs.fit if inputs.fit is not None else inputs.target_fit))
    return section


#: section key -> its builder, in report order (the keys of :data:`SECTIONS`)
SECTION_BUILDERS: dict[str, Callable[[ReportInputs], Section | None]] = {
    "decision": decision_section,
    "summary": summary_section,
    "observed_vs_predicted": observed_section,
    "scaling": scaling_section,
    "interactions": interaction_section,
    "optimum": optimum_section,
    "optimum_loss": optimum_loss_section,
    "diagnostics": diagnostics_section,
    "suggestions": suggestions_section,
    "cannot_tell": cannot_tell_section,
    "versions": versions_section,
}


def _out_folder(out_dir: str | os.PathLike[str]) -> Path:
    out = Path(out_dir)
    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            "out_dir", f"cannot create {str(out)!r} ({exc.strerror})", "give a writable folder"
        ) from None
    return out


def _write(out: Path, title: str, sections: list[Section]) -> tuple[Path, Path, dict[str, Path]]:
    """Write the figures, ``report.html`` and ``report.md``; return their paths."""
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
    return html_path, md_path, figure_paths


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
    loss_unit: str = figures.LOSS_UNIT,
) -> ReportFiles:
    """Write the study report (HTML with embedded figures, and Markdown) into ``out_dir``.

    Sections, each included only when its inputs are given:

    ========================= =================================================================
    decision                  always, first: the verdict (see below), chosen mixture, its
                              predicted target loss and interval, P(beats reference), sampler
                              health, target scale and extrapolation caveats
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
    ========================= =================================================================

    The verdict (:func:`~bayesmix.report.decision.decide`) is "switch to this mixture" when
    P(beats reference) >= 0.9, the sampler is OK on every stage the optimum rests on and nothing
    extrapolates (the chosen mixture inside the runs, the target scale within e^3 of the fitted
    runs); "do not switch" when P(beats reference) <= 0.2; "not yet" otherwise, naming the
    reasons and the suggested next runs when given.

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
        Mixture limits (``bounds``, ``fixed``, ``exclude``, ``tokens``, ``max_epochs``,
        ``target_tokens``, ``reference``, ``trust_region``) for the optimum's location draws;
        default the limits the optimum was chosen within, which it records (``optimum.box``),
        so the intervals of the optimal shares respect the optimum's constraints. Needed only
        for an optimum that records none.
    location_draws
        Precomputed :func:`~bayesmix.report.optimum_location_draws`; default computed here from
        ``n_location`` posterior draws.
    n_location
        Posterior draws for the optimum's location (each a small SLSQP solve).
    suggestions
        Suggested next runs (a DataFrame, e.g. from :class:`bayesmix.Designer`), shown as given;
        the verdict names them by their index labels (or ``run`` column).
    title
        Title of the report.
    prob
        Probability of every interval in the report.
    seed
        Seed of every random choice (posterior subsets, run noise): same seed, same report.
    dpi
        Resolution of the figures.
    loss_unit
        Unit of the fitted losses, named on every loss axis and loss column: default
        ``"nats/token"``, the unit of the run tables' ``loss`` column (the proxies' evaluation
        writes nats per token, and bits per byte in a separate column); give ``"bits/byte"``
        when the fits were made on bits per byte.

    Returns
    -------
    ReportFiles
        Paths of the files written, the sections included, the findings and the decision.

    Raises
    ------
    InputError
        Nothing to report, an optimum without its fit, or bad arguments.
    """
    inputs = ReportInputs.check(
        fit=fit,
        runs=runs,
        nested=nested,
        target_scale=target_scale,
        target_fit=target_fit,
        optimum=optimum,
        optimum_target=optimum_target,
        location_draws=location_draws,
        suggestions=suggestions,
        prob=prob,
        seed=seed,
        dpi=dpi,
        loss_unit=loss_unit,
    )
    if not isinstance(title, str) or not title.strip():
        raise InputError("title", f"got {title!r}", "give a non-empty string")
    out = _out_folder(out_dir)
    inputs.complete(n_location=n_location, optimum_limits=optimum_limits)
    sections = [s for build in SECTION_BUILDERS.values() if (s := build(inputs)) is not None]
    html_path, md_path, figure_paths = _write(out, title, sections)
    return ReportFiles(
        html=html_path,
        markdown=md_path,
        figures=figure_paths,
        sections=tuple(s.key for s in sections),
        findings=tuple(inputs.findings),
        decision=decision_of(inputs),
    )

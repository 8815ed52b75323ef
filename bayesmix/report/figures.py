"""The report's figures: matplotlib functions of the posterior, each usable alone.

Every function takes ``ax=None`` (a new pyplot figure is made: ``plt.show()`` or a notebook shows
it, ``plt.close(fig)`` frees it) or an existing ``matplotlib`` axes to draw on, and returns the
figure that holds the axes::

    fig = observed_vs_predicted(idata)                      # a new figure
    fig, axes = plt.subplots(1, 2)
    interaction_matrix(idata, ax=axes[0]); optimum_mixture(best, ax=axes[1])

Readable at any number of domains: a figure made here is at most :data:`MAX_WIDTH` inches wide
(it shows unscaled in the report's text column at 100 dpi), its text is at least
:data:`MIN_FONT` points, and legends, tick labels and annotations move, rotate or thin out as the
number of domains grows. Loss axes name their unit (``loss_unit``, default nats per token: the
unit of the run tables' ``loss`` column).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.data.runs import RunTable
from bayesmix.errors import InputError
from bayesmix.inference import _arviz
from bayesmix.inference.nested import NestedFit, predict_target
from bayesmix.optimise.report import OptimisationResult
from bayesmix.report.summaries import (
    check_nested,
    check_prob,
    fan_draws,
    interaction_draws,
    interaction_summary,
    nearest_observed_mixture,
    observed_curve_points,
    predictive_check,
)
from bayesmix.report.uncertainty import check_result, optimum_draws

#: points of the token grid of a scaling fan
FAN_POINTS = 60
#: smallest font (points) of any text the figures draw
MIN_FONT = 9.0
#: font (points) of axes titles
TITLE_FONT = 10.5
#: widest figure made here (inches): at the report's default 100 dpi it fills the report's text
#: column (about 1030 px) without being scaled down, so MIN_FONT shows at 12.5 px
MAX_WIDTH = 10.3
#: the loss unit of the run tables' ``loss`` column (the proxies' evaluation writes nats per token)
LOSS_UNIT = "nats/token"
#: a legend of more entries than this is put beside the axes rather than over the points
LEGEND_INSIDE = 6


def check_loss_unit(loss_unit: Any) -> str:
    """``loss_unit`` as given; raise :class:`InputError` unless it is a non-empty string."""
    if not isinstance(loss_unit, str) or not loss_unit.strip():
        raise InputError(
            "loss_unit", f"got {loss_unit!r}", "give the losses' unit, e.g. 'nats/token' or 'bits/byte'"
        )
    return loss_unit.strip()


def panel_grid(n_panels: int, *, max_cols: int = 3) -> tuple[int, int, tuple[float, float]]:
    """Rows, columns and figure size (inches) of a readable grid of ``n_panels`` panels.

    One to three panels sit in one row, four in two rows of two, more wrap into rows of
    ``max_cols``; the figure is never wider than :data:`MAX_WIDTH` and grows in height with the
    rows, so each panel keeps a readable size however many panels there are.

    Parameters
    ----------
    n_panels
        Number of panels (at least 1).
    max_cols
        Most panels per row.

    Returns
    -------
    tuple
        ``(rows, columns, (width, height))``.
    """
    if not isinstance(n_panels, int | np.integer) or isinstance(n_panels, bool) or n_panels < 1:
        raise InputError("n_panels", f"got {n_panels!r}", "give a positive integer")
    cols = min(int(n_panels), max_cols) if n_panels != 4 else 2
    rows = int(np.ceil(n_panels / cols))
    width = min(MAX_WIDTH, 5.2 * cols)
    row_height = 3.9 if cols <= 2 else 3.2
    return rows, cols, (width, row_height * rows)


def _tick_rotation(n_labels: int) -> tuple[float, str]:
    """Rotation and horizontal alignment of category tick labels: flat for few, steeper for many."""
    if n_labels <= 4:
        return 0.0, "center"
    return (30.0, "right") if n_labels <= 8 else (45.0, "right")


def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    """The axes to draw on: ``ax`` itself, or those of a new figure."""
    if ax is not None:
        if not hasattr(ax, "figure") or not hasattr(ax, "plot"):
            raise InputError(
                "ax", f"got {type(ax).__name__}", "give a matplotlib Axes, or None for a new figure"
            )
        return ax
    import matplotlib.pyplot as plt

    # a pyplot figure, so that plt.show() and notebooks display it; close it when done with it
    _, new = plt.subplots(figsize=figsize, layout="constrained")
    return new


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def observed_vs_predicted(
    idata: _arviz.InferenceData,
    runs: RunTable | None = None,
    *,
    prob: float = 0.9,
    max_draws: int | None = 1000,
    seed: int = 0,
    loss_unit: str = LOSS_UNIT,
    ax: Any = None,
    check: pd.DataFrame | None = None,
) -> Any:
    """Observed losses against the posterior predictive mean and interval, coloured by domain.

    Each point is one (run, validation domain): x the observed loss, y the posterior predictive
    mean (:func:`bayesmix.predict` with ``kind="predictive"`` at the run's mixture) with a
    vertical bar for its ``prob`` interval; for the fit's own runs both are leave-one-out
    (:func:`~bayesmix.report.predictive_check`). The dashed line is ``y = x``; the legend gives each
    domain's coverage (share of observations inside their interval) and the title the overall
    coverage, which should be close to ``prob`` for a calibrated fit. With more than
    :data:`LEGEND_INSIDE` domains the legend sits beside the axes.

    Parameters
    ----------
    idata
        A fit from :func:`bayesmix.fit`.
    runs
        Runs to check (held-out runs, say); default the fit's own runs.
    prob
        Probability of the intervals.
    max_draws, seed
        Posterior draws used (at most) and the seed of the subset and of the run noise.
    loss_unit
        Unit of the losses, named on both axes.
    ax
        Axes to draw on; ``None`` makes a new figure.
    check
        The :func:`~bayesmix.report.predictive_check` of these arguments, when the caller has it
        already (it is then drawn, not recomputed).

    Returns
    -------
    matplotlib.figure.Figure
    """
    prob = check_prob(prob)
    loss_unit = check_loss_unit(loss_unit)
    if check is None:
        check = predictive_check(idata, runs, prob=prob, max_draws=max_draws, seed=seed)
    domains = list(pd.unique(check["domain"]))
    beside = len(domains) > LEGEND_INSIDE
    ax = _axes(ax, (min(MAX_WIDTH, 9.5), 6.0) if beside else (6.5, 5.5))
    for colour, domain in zip(_colours(len(domains)), domains, strict=True):
        rows = check[check["domain"] == domain]
        errors = np.vstack([rows["mean"] - rows["lower"], rows["upper"] - rows["mean"]]).astype(float)
        ax.errorbar(
            rows["observed"].to_numpy(dtype=float),
            rows["mean"].to_numpy(dtype=float),
            yerr=np.maximum(errors, 0),
            fmt="o",
            ms=4,
            capsize=2,
            elinewidth=1,
            alpha=0.8,
            color=colour,
            label=f"{domain} ({rows['inside'].mean():.0%} inside)",
        )
    low = float(min(check["observed"].min(), check["lower"].min()))
    high = float(max(check["observed"].max(), check["upper"].max()))
    pad = 0.03 * (high - low or 1.0)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], ls="--", color="0.4", lw=1, label="y = x")
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlabel(f"observed loss ({loss_unit})")
    ax.set_ylabel(f"predicted loss ({loss_unit}; mean, {prob:.0%} predictive interval)")
    coverage = float(check["inside"].mean())
    methods = set(check["method"])
    how = {frozenset({"loo"}): " (leave-one-out)", frozenset({"held-out"}): " (held out)"}.get(frozenset(methods), "")
    ax.set_title(
        f"Observed vs predicted{how}:\n{coverage:.0%} of {len(check)} losses inside their {prob:.0%} interval",
        fontsize=TITLE_FONT,
    )
    if beside:
        ax.legend(
            fontsize=MIN_FONT,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            ncols=1 if len(domains) <= 20 else 2,
            borderaxespad=0.0,
        )
    else:
        ax.legend(fontsize=MIN_FONT, loc="upper left")
    return ax.figure


def _target(model_size: float | None, tokens: float | None) -> tuple[float | None, float | None]:
    for name, value in (("model_size", model_size), ("tokens", tokens)):
        if value is not None and (
            not isinstance(value, int | float | np.integer | np.floating)
            or isinstance(value, bool)
            or not np.isfinite(value)
            or value <= 0
        ):
            raise InputError(name, f"got {value!r}", "give a positive number, or None")
    return (None if model_size is None else float(model_size), None if tokens is None else float(tokens))


def scaling_fan(
    nested: NestedFit,
    *,
    mixture: str | Mapping[str, float] | Sequence[float] | None = None,
    domain: str = "total",
    model_size: float | None = None,
    tokens: float | None = None,
    prob: float = 0.9,
    max_draws: int | None = 500,
    seed: int = 0,
    legend: bool = True,
    loss_unit: str = LOSS_UNIT,
    ax: Any = None,
) -> Any:
    """Observed checkpoint losses vs tokens per model size, and the fitted law extrapolated.

    For one observed mixture, each model size it was trained at gets its checkpoints (dots) and
    the posterior median of the fitted scaling law with its ``prob`` band (the law's expected
    loss, no run noise), solid inside the observed token range and dashed beyond it, up to the
    target ``tokens``: the "extrapolation fan". With a target ``model_size`` (joint fits), the law
    at that size is drawn too, and the predictive interval of a new run at the target scale
    (:func:`bayesmix.predict_target`: law, per-run effect and checkpoint noise) is the black bar.

    Parameters
    ----------
    nested
        A fit from :func:`bayesmix.fit_nested` (``"joint"``: :class:`~bayesmix.JointScalingLaw`
        per mixture and domain; ``"staged"``: the step law of each run, one per size).
    mixture
        An observed mixture id (``"m0"``...), or a mixture whose nearest observed mixture (L1) is
        drawn; default the observed mixture nearest the mean of the observed mixtures.
    domain
        A validation domain, or ``"total"`` (equal-weight mean over the domains).
    model_size, tokens
        Target scale ``N*``, ``D*``; default none (the fan stops at the last checkpoint). A
        staged fit fits its size stage for the target point the first time (NUTS).
    prob
        Probability of the bands and of the target interval.
    max_draws, seed
        Posterior draws used (at most) and their seed.
    legend
        Draw the legend.
    loss_unit
        Unit of the losses, named on the loss axis.
    ax
        Axes to draw on; ``None`` makes a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    check_nested(nested)
    prob = check_prob(prob)
    loss_unit = check_loss_unit(loss_unit)
    model_size, tokens = _target(model_size, tokens)
    if domain != "total" and domain not in nested.domains:
        raise InputError(
            "domain", f"unknown domain {domain!r}", f"use 'total' or one of {list(nested.domains)}"
        )
    label = nearest_observed_mixture(nested, mixture)
    points = observed_curve_points(nested, label, domain)
    observed_max = float(points["tokens"].max())
    high = observed_max if tokens is None else max(observed_max, tokens)
    grid = np.geomspace(float(points["tokens"].min()), high, FAN_POINTS)
    sizes: list[float] | None = None
    if nested.method == "joint":
        sizes = sorted(set(points["model_size"].astype(float)))
        if model_size is not None and model_size not in sizes:
            sizes.append(model_size)
    draws, row_sizes = fan_draws(nested, label, domain, grid, sizes, max_draws=max_draws, seed=seed)
    tail = (1 - prob) / 2
    lower, median, upper = np.quantile(draws, [tail, 0.5, 1 - tail], axis=0)
    ax = _axes(ax, (6.5, 4.5))
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    logs = np.log(row_sizes)
    span = float(logs.max() - logs.min()) or 1.0
    inside = grid <= observed_max * (1 + 1e-9)
    for k, size in enumerate(row_sizes):
        colour = cmap(0.85 * (logs[k] - logs.min()) / span)
        observed = points[np.isclose(points["model_size"], size)]
        target_row = model_size is not None and np.isclose(size, model_size) and observed.empty
        name = f"N={size:.3g}" + (" (target)" if target_row else "")
        if not observed.empty:
            ax.scatter(observed["tokens"], observed["loss"], s=14, color=colour, zorder=3)
        ax.fill_between(grid, lower[k], upper[k], color=colour, alpha=0.18, lw=0)
        if target_row:
            ax.plot(grid, median[k], color=colour, ls="--", lw=1.6, label=name)
        else:
            ax.plot(grid[inside], median[k][inside], color=colour, lw=1.6, label=name)
            if (~inside).any():
                ax.plot(grid[~inside], median[k][~inside], color=colour, lw=1.6, ls="--")
    if tokens is not None and tokens > observed_max:
        ax.axvline(observed_max, color="0.5", ls=":", lw=1, label="last checkpoint")
    if model_size is not None and tokens is not None:
        share = nested.mixtures.loc[label].to_dict()
        target = (
            predict_target(
                nested,
                model_size=model_size,
                tokens=tokens,
                mixtures=share,
                via="observed",
                max_draws=max_draws,
                seed=seed,
            )
            .sel(domain=domain)
            .isel(mixture=0)
            .to_numpy()
        )
        low, mid, up = np.quantile(target, [tail, 0.5, 1 - tail])
        ax.errorbar(
            [tokens],
            [mid],
            yerr=[[mid - low], [up - mid]],
            fmt="D",
            color="black",
            capsize=4,
            zorder=4,
            label=f"new run at target ({prob:.0%})",
        )
    ax.set_xscale("log")
    ax.set_xlabel("training tokens")
    ax.set_ylabel(f"{domain} loss ({loss_unit})")
    scale = ""
    if tokens is not None:
        scale = f", to D*={tokens:.3g}" + (f", N*={model_size:.3g}" if model_size is not None else "")
    ax.set_title(f"Scaling fan: {domain}, mixture {label}{scale}", fontsize=TITLE_FONT)
    if legend:
        ax.legend(fontsize=MIN_FONT, loc="upper right")
    return ax.figure


def interaction_matrix(idata: _arviz.InferenceData, *, prob: float = 0.9, ax: Any = None) -> Any:
    """Heatmap of the posterior mean interaction matrix ``t`` (validation x training domain).

    Cells are coloured by the posterior mean of ``t_ij`` on a diverging scale centred at 0 (blue:
    training on ``j`` lowers the loss of ``i``, relative to the average training domain, since rows
    are zero-sum), annotated with the mean; a ``*`` marks entries whose ``prob`` interval
    excludes 0. A point fit (MAP) has no interval and marks nothing. When a cell is too narrow
    for its number at :data:`MIN_FONT` (many domains), only the ``*`` marks are drawn and the
    title says so (the report's table holds the numbers).

    Parameters
    ----------
    idata
        A fit whose law has an interaction matrix (``t`` of the mixing laws, ``beta`` of the
        linear law).
    prob
        Probability of the intervals.
    ax
        Axes to draw on; ``None`` makes a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    prob = check_prob(prob)
    name, draws, rows, columns = interaction_draws(idata)
    table = interaction_summary(idata, prob=prob)
    mean = draws.mean(axis=0)
    excludes = table["excludes_zero"].to_numpy().reshape(mean.shape)
    cell = min(0.95, (MAX_WIDTH - 2.8) / len(columns))
    ax = _axes(ax, (2.8 + cell * len(columns), 1.6 + min(0.6, max(0.32, 0.65 * cell)) * len(rows)))
    limit = float(np.abs(mean).max()) or 1.0
    image = ax.imshow(mean, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(
        range(len(columns)), columns, rotation=max(_tick_rotation(len(columns))[0], 30.0), ha="right"
    )
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("training domain j")
    ax.set_ylabel("validation domain i")
    # a number "-0.12*" needs about 0.5 inch at MIN_FONT; the axes get about 3/4 of the figure
    cell_width = ax.get_position().width * ax.figure.get_figwidth() / len(columns)
    numbers = cell_width >= 0.5
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            mark = "*" if excludes[i, j] else ""
            if not numbers and not mark:
                continue
            strong = abs(mean[i, j]) > 0.6 * limit
            ax.text(
                j,
                i,
                f"{mean[i, j]:.2f}{mark}" if numbers else mark,
                ha="center",
                va="center",
                fontsize=MIN_FONT,
                color="white" if strong else "black",
            )
    ax.figure.colorbar(image, ax=ax, label=f"posterior mean {name}_ij")
    note = "point fit: no intervals" if draws.shape[0] == 1 else f"* = {prob:.0%} interval excludes 0"
    if not numbers:
        note += "; values in the table"
    ax.set_title(f"Interaction matrix {name} ({note})", fontsize=TITLE_FONT)
    return ax.figure


def optimum_mixture(
    result: OptimisationResult,
    *,
    location_draws: pd.DataFrame | None = None,
    prob: float = 0.9,
    ax: Any = None,
) -> Any:
    """Bars of the chosen mixture ``r*`` and of the reference mixture, per training domain.

    Parameters
    ----------
    result
        The optimiser's answer (:func:`bayesmix.optimise`).
    location_draws
        Draws of the optimum's location (:func:`~bayesmix.report.optimum_location_draws`, one
        row per draw, one column per training domain): their ``prob`` interval is drawn as
        error bars on ``r*``'s bars.
    prob
        Probability of those intervals.
    ax
        Axes to draw on; ``None`` makes a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    check_result(result)
    prob = check_prob(prob)
    domains = list(result.mixture.index)
    ax = _axes(ax, (min(MAX_WIDTH, max(5.0, 1.0 + 0.9 * len(domains))), 4.2 if len(domains) <= 8 else 4.8))
    x = np.arange(len(domains))
    width = 0.38
    chosen = result.mixture.to_numpy(dtype=float)
    yerr = None
    if location_draws is not None:
        if not isinstance(location_draws, pd.DataFrame) or list(location_draws.columns) != domains:
            raise InputError(
                "location_draws",
                "is not a DataFrame with one column per training domain of the result",
                "pass the output of optimum_location_draws(fit, result)",
            )
        tail = (1 - prob) / 2
        low, high = np.quantile(location_draws.to_numpy(dtype=float), [tail, 1 - tail], axis=0)
        yerr = np.vstack([np.maximum(chosen - low, 0), np.maximum(high - chosen, 0)])
    ax.bar(x - width / 2, chosen, width, color="tab:blue", label="chosen r*")
    if yerr is not None:
        ax.errorbar(
            x - width / 2,
            chosen,
            yerr=yerr,
            fmt="none",
            ecolor="black",
            capsize=4,
            label=f"{prob:.0%} interval of the optimum's location",
        )
    ax.bar(x + width / 2, result.reference.to_numpy(dtype=float), width, color="0.65", label="reference")
    rotation, align = _tick_rotation(len(domains))
    ax.set_xticks(x, domains, rotation=rotation, ha=align)
    ax.set_ylabel("share of training tokens")
    ax.set_ylim(
        0,
        min(
            1.05,
            max(
                1e-3,
                float(np.max(chosen)),
                float(result.reference.max()),
                float(yerr[1].max() + chosen.max()) if yerr is not None else 0,
            )
            * 1.15,
        ),
    )
    ax.set_title(
        f"Optimum mixture for target {result.target!r} ({result.risk}) vs reference", fontsize=TITLE_FONT
    )
    ax.legend(fontsize=MIN_FONT)
    return ax.figure


def optimum_loss(
    idata: _arviz.InferenceData,
    result: OptimisationResult,
    *,
    target: Any = None,
    max_draws: int | None = None,
    seed: int = 0,
    bins: int | None = None,
    loss_unit: str = LOSS_UNIT,
    ax: Any = None,
) -> Any:
    """Posterior of the target loss at the optimum ``r*`` and at the reference mixture.

    Histograms (densities) of the law's expected target loss on the same posterior draws at both
    mixtures (recomputed by :func:`~bayesmix.report.optimum_draws`), their means as vertical
    lines, and ``P(beats reference)`` on those draws in the title. That probability compares the
    two mixtures draw by draw (paired), so it can be close to 1 while the two histograms overlap:
    much of the uncertainty is shared by both mixtures. A point fit has one draw: only the lines
    are drawn.

    Parameters
    ----------
    idata
        The fit the optimum was computed from.
    result
        The optimiser's answer.
    target, max_draws, seed
        Passed to :func:`~bayesmix.report.optimum_draws` (give the ``target`` and ``seed`` you
        gave :func:`bayesmix.optimise` when the target was a mapping or a function).
    bins
        Histogram bins; default ``1.5 sqrt(draws)`` between 10 and 40.
    loss_unit
        Unit of the losses, named on the loss axis.
    ax
        Axes to draw on; ``None`` makes a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    loss_unit = check_loss_unit(loss_unit)
    draws = optimum_draws(idata, result, target=target, max_draws=max_draws, seed=seed)
    if bins is None:
        bins = int(np.clip(1.5 * np.sqrt(len(draws)), 10, 40))
    if not isinstance(bins, int | np.integer) or isinstance(bins, bool) or bins < 1:
        raise InputError("bins", f"got {bins!r}", "give a positive integer, or None")
    ax = _axes(ax, (6.5, 4.2))
    values = draws.to_numpy()
    edges = np.histogram_bin_edges(values.ravel(), bins=int(bins)) if len(draws) > 1 else None
    for column, colour, name in (("optimum", "tab:blue", "chosen r*"), ("reference", "0.45", "reference")):
        if edges is not None:
            ax.hist(draws[column], bins=edges, density=True, alpha=0.45, color=colour, label=name)
        ax.axvline(
            float(draws[column].mean()), color=colour, lw=2, label=f"{name} mean {draws[column].mean():.4f}"
        )
    p = float((draws["optimum"] < draws["reference"]).mean())
    ax.set_xlabel(f"expected {result.target} loss ({loss_unit})")
    ax.set_ylabel("posterior density" if edges is not None else "")
    note = "" if edges is not None else "\n(point fit: no posterior spread)"
    ax.set_title(f"Target loss at r* vs reference: P(beats reference) = {p:.3f}{note}", fontsize=TITLE_FONT)
    ax.legend(fontsize=MIN_FONT)
    return ax.figure

"""A report's figures, drawn with matplotlib's Agg canvas (no display needed).

`dice_vs_labels_<dataset>.png`: one panel per test set, side by side (the dataset's own test
split, then each out-of-domain set with scores), mean Dice over seeds against the labeled budget
with the std over seeds as error bars; one line per method (with its variant, and the backbone or
setup where the dataset has several); one legend for all panels.

`paired_<dataset>.png`: one panel per test set; for each budget and method, the per-seed Dice
difference to the reference (dots) and their mean (bar), with a line at zero.

Axis rules, so that the eye is not misled by automatic zoom:
- x (budgets): logarithmic always, ticks at the measured budgets only.
- y (Dice): from a floor up to 1.0, the same in every panel of a figure. The floor is the lower
  of 0.5 and the lowest mean - std drawn, rounded down to a multiple of 0.1 (never below 0): a
  0.01 gap never fills the axis, and a poor OOD score stays in view.
- y (differences): symmetric about zero, +-max(0.1, the largest |difference| rounded up to 0.05).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from genseg_cli.report.summary import is_set_dice

PANEL_WIDTH, PANEL_HEIGHT = 4.2, 3.6  # inches per test-set panel
MIN_WIDTH = 7.0  # inches: a one-panel figure still has room for its title and legend
CHARS_PER_INCH = 11  # legend text at matplotlib's default 10 pt
DODGE = 0.035  # log-x offset between methods at one budget, so error bars do not hide each other
MIN_HALF_RANGE, STEP = 0.1, 0.05  # the differences' y axis: at least +-0.1, in steps of 0.05


def panel_columns(frame: pd.DataFrame, suffix: str = "") -> list[str]:
    """The Dice columns that are test sets (test_dice, then each OOD set's `<name>_dice`) with at
    least one score in `frame`, read from the columns `<name><suffix>`; per-class columns
    (test_anterior_dice) are not test sets.

    >>> panel_columns(pd.DataFrame({"nlm_mc_dice": [0.5], "test_a_dice": [1], "test_dice": [1]}))
    ['test_dice', 'nlm_mc_dice']
    """
    found = []
    for column in frame.columns:
        if not column.endswith(suffix):
            continue
        name = column[: len(column) - len(suffix)]
        if is_set_dice(name) and frame[column].notna().any():
            found.append(name)
    return sorted(found, key=lambda n: (n != "test_dice", n))


def panel_title(column: str) -> str:
    """test_dice -> 'test (in-domain)', nlm_mc_dice -> 'nlm_mc (out-of-domain)'."""
    name = column[: -len("_dice")]
    return "test (in-domain)" if name == "test" else f"{name} (out-of-domain)"


def series_label(method: str, backbone: str, setup: str, several: tuple[bool, bool]) -> str:
    """The legend entry of a line: the method, then the backbone / setup where they vary."""
    extra = [b for b, shown in zip((backbone, setup), several, strict=True) if shown and b]
    return f"{method} ({', '.join(extra)})" if extra else method


def _series(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with a `series` column: one line (or one colour) per method/backbone/setup."""
    setup = frame["setup"] if "setup" in frame.columns else pd.Series("", index=frame.index)
    several = (frame.backbone.nunique() > 1, setup.nunique() > 1)
    labels = [
        series_label(m, b, s, several)
        for m, b, s in zip(frame.method, frame.backbone, setup, strict=True)
    ]
    return frame.assign(series=labels)


def series_colors(summary: pd.DataFrame, dataset: str) -> dict[str, str]:
    """One colour per line of a dataset's figures (the same in both figures)."""
    labels = sorted(_series(summary[summary.dataset == dataset]).series.unique())
    return {label: f"C{i % 10}" for i, label in enumerate(labels)}


def dice_floor(lowest: float) -> float:
    """The Dice axis' lower limit: min(0.5, lowest), rounded down to 0.1, never below 0.

    >>> dice_floor(0.87), dice_floor(0.43), dice_floor(-0.2), dice_floor(float("nan"))
    (0.5, 0.4, 0.0, 0.5)
    """
    if math.isnan(lowest):
        return 0.5
    return max(0.0, math.floor(min(0.5, lowest) * 10 + 1e-9) / 10)


def _figure(n_panels: int) -> tuple[Figure, list]:
    width = max(MIN_WIDTH, PANEL_WIDTH * n_panels)  # one panel still has room for the legend
    fig = Figure(figsize=(width, PANEL_HEIGHT + 0.8), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n_panels, sharey=True, squeeze=False)[0]
    return fig, list(axes)


def _legend(fig: Figure, axes: list) -> None:
    """One legend below the panels, every entry once, as many columns as fit the width."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(text, handle)
    if handles:
        chars = max(len(text) for text in handles) + 6  # the marker and the gap
        fit = int(fig.get_figwidth() * CHARS_PER_INCH // chars)
        ncol = max(1, min(len(handles), fit))
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=ncol)


def dice_vs_labels(
    summary: pd.DataFrame, dataset: str, path: Path, colors: dict[str, str] | None = None
) -> Figure:
    """Mean Dice (std error bars) against n_labeled, one panel per test set, into `path`.

    Returns the figure (its axes are the panels, in panel_columns() order).

    >>> dice_vs_labels(aggregate(runs), "jsrt", Path("report/dice_vs_labels_jsrt.png"))
    ... # doctest: +SKIP
    """
    rows = _series(summary[summary.dataset == dataset])
    colors = colors or series_colors(summary, dataset)
    columns = panel_columns(rows, "_mean") or ["test_dice"]
    budgets = sorted(int(b) for b in rows.n_labeled.unique())
    fig, axes = _figure(len(columns))
    lowest = np.inf
    names = sorted(rows.series.unique())
    for ax, column in zip(axes, columns, strict=True):
        for i, name in enumerate(names):
            line = rows[rows.series == name].sort_values("n_labeled")
            mean, std = line[f"{column}_mean"], line[f"{column}_std"].fillna(0.0)
            keep = mean.notna()
            if not keep.any():
                continue
            lowest = min(lowest, float((mean - std)[keep].min()))
            shift = np.exp(DODGE * (i - (len(names) - 1) / 2))
            ax.errorbar(
                line.n_labeled[keep] * shift,
                mean[keep],
                yerr=std[keep],
                marker="o",
                markersize=4,
                capsize=3,
                color=colors.get(name),
                label=name,
            )
        ax.set_xscale("log")
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
        if budgets:
            ax.set_xlim(budgets[0] / 1.4, budgets[-1] * 1.4)
        ax.set_title(panel_title(column))
        ax.set_xlabel("labeled images (n_labeled)")
        ax.grid(alpha=0.3)
    axes[0].set_ylim(dice_floor(float(lowest)), 1.0)  # sharey: every panel
    axes[0].set_ylabel("Dice (mean ± std over seeds)")
    fig.suptitle(f"{dataset}: Dice versus labels")
    _legend(fig, axes)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return fig


def difference_limit(largest: float) -> float:
    """Half the differences' y range: max(0.1, `largest` rounded up to 0.05).

    >>> difference_limit(0.012), difference_limit(0.21)
    (0.1, 0.25)
    """
    if math.isnan(largest):
        return MIN_HALF_RANGE
    return max(MIN_HALF_RANGE, math.ceil(largest / STEP - 1e-9) * STEP)


def paired_figure(
    diffs: pd.DataFrame,
    dataset: str,
    path: Path,
    reference: str,
    colors: dict[str, str] | None = None,
) -> Figure | None:
    """Per-seed `method - reference` Dice (dots) and its mean (bars) per budget and method, one
    panel per test set, into `path`; None (and no file) when the dataset has no pairs.

    `diffs` is paired_differences(runs, reference).

    >>> paired_figure(paired_differences(runs), "jsrt", Path("report/paired_jsrt.png"), "baseline")
    ... # doctest: +SKIP
    """
    rows = diffs[diffs.dataset == dataset]
    if rows.empty:
        return None
    rows = _series(rows)
    colors = colors or {n: f"C{i % 10}" for i, n in enumerate(sorted(rows.series.unique()))}
    columns = panel_columns(rows) or ["test_dice"]
    budgets = sorted(int(b) for b in rows.n_labeled.unique())
    names = sorted(rows.series.unique())
    width = 0.8 / len(names)  # the methods of one budget share 0.8 of a unit on the x axis
    fig, axes = _figure(len(columns))
    largest = 0.0
    for ax, column in zip(axes, columns, strict=True):
        for b, budget in enumerate(budgets):
            for i, name in enumerate(names):
                values = rows[(rows.n_labeled == budget) & (rows.series == name)][column].dropna()
                if values.empty:
                    continue
                largest = max(largest, float(values.abs().max()))
                x = b - 0.4 + width * (i + 0.5)
                color = colors.get(name)
                ax.bar(x, values.mean(), width * 0.8, color=color, alpha=0.35, label=name)
                spread = np.linspace(-width * 0.25, width * 0.25, len(values))
                ax.scatter(x + spread, values, s=14, color=color, edgecolor="black", linewidth=0.4)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(budgets)), [f"n={b}" for b in budgets])
        ax.set_xlim(-0.6, len(budgets) - 0.4)
        ax.set_title(panel_title(column))
        ax.set_xlabel("labeled images")
        ax.grid(axis="y", alpha=0.3)
    limit = difference_limit(largest)
    axes[0].set_ylim(-limit, limit)
    axes[0].set_ylabel("Δ Dice (dots: seeds; bars: mean)")
    fig.suptitle(f"{dataset}: Dice − {reference}, paired by seed and budget")
    _legend(fig, axes)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return fig

"""Dice-versus-labels figures, drawn with matplotlib's Agg canvas (no display needed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def dice_vs_labels(summary: pd.DataFrame, dataset: str, path: Path) -> Path:
    """Mean test Dice (std error bars) against n_labeled, one line per method, into `path`.

    The x axis is logarithmic when the budgets span more than 4x. The backbone joins the label
    when the dataset was run with several.

    >>> dice_vs_labels(aggregate(runs), "jsrt", Path("report/dice_vs_labels_jsrt.png"))
    ... # doctest: +SKIP
    """
    rows = summary[summary.dataset == dataset]
    several_backbones = rows.backbone.nunique() > 1
    fig = Figure(figsize=(6, 4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for (method, backbone), line in rows.groupby(["method", "backbone"], sort=True):
        line = line.sort_values("n_labeled")
        ax.errorbar(
            line.n_labeled,
            line.test_dice_mean,
            yerr=line.test_dice_std,
            marker="o",
            capsize=3,
            label=f"{method} ({backbone})" if several_backbones else method,
        )
    budgets = sorted(rows.n_labeled.unique())
    if budgets and budgets[-1] > 4 * budgets[0]:
        ax.set_xscale("log")
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("labeled images (n_labeled)")
    ax.set_ylabel("test Dice (mean ± std over seeds)")
    ax.set_title(f"{dataset}: Dice versus labels")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path

"""The benchmark's figure: each method's paired difference of mean Dice to the reference, with
its 95% interval, per dataset, for both checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from genseg_cli.report.blocks import MEAN  # noqa: E402

if TYPE_CHECKING:
    from genseg_cli.report.benchmark_tables import SuiteInfo


def forest_plot(paired: pd.DataFrame, info: SuiteInfo, path: Path) -> None:
    """One panel per dataset: a row per method, a dot at the mean difference, a bar across its
    interval; circles for the kept checkpoint, squares for the final weights."""
    mean = paired[paired.set == MEAN]
    datasets = list(dict.fromkeys(zip(mean.dataset, mean.budget, strict=True)))
    fig, axes = plt.subplots(
        1, len(datasets), figsize=(3.2 * len(datasets), 0.5 * len(info.methods) + 1.5),
        squeeze=False, sharey=True,
    )  # fmt: skip
    methods = [m for m in info.methods if m != info.reference]
    for ax, (dataset, budget) in zip(axes[0], datasets, strict=True):
        for offset, (checkpoint, marker) in zip(
            (-0.15, 0.15), (("best_val", "o"), ("final", "s")), strict=True
        ):
            rows = mean[(mean.dataset == dataset) & (mean.budget == budget)]
            rows = rows[rows.checkpoint == checkpoint]
            for i, method in enumerate(methods):
                row = rows[rows.method == method]
                if row.empty:
                    continue
                r = row.iloc[0]
                y = i + offset
                ax.plot([r.d_dice_ci_low, r.d_dice_ci_high], [y, y], color="0.4")
                ax.plot(r.d_dice_mean, y, marker, color="C0" if marker == "o" else "C1")
        ax.axvline(0.0, color="k", lw=0.8)
        ax.set_title(f"{dataset}-{budget}")
        ax.set_xlabel(f"Δ mean Dice vs {info.reference}")
        ax.set_yticks(range(len(methods)), methods)
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

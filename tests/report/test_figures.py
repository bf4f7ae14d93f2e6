"""The report's figures: one panel per test set, log budgets, a fixed Dice floor, paired dots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from genseg_cli.report.figures import dice_floor, dice_vs_labels, paired_figure, panel_columns
from genseg_cli.report.summary import aggregate, paired_differences
from genseg_cli.stages.report import main
from tests.report.fake_runs import collect, fake_run

BUDGETS, SEEDS = (9, 35, 175), (0, 1, 2)
OOD = ("nlm_mc", "nlm_sz")


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """3 methods x 3 budgets x 3 seeds, scored in-domain and on 2 OOD sets."""
    rng = np.random.default_rng(0)
    root = tmp_path / "sweep"
    for method, gain in (("baseline", 0.0), ("separate", 0.01), ("genseg", 0.03)):
        for n in BUDGETS:
            for seed in SEEDS:
                dice = 0.8 + 0.05 * np.log10(n / 9) + gain + rng.normal(0, 0.01)
                ood = {"nlm_mc": dice - 0.1, "nlm_sz": dice - 0.45 + rng.normal(0, 0.03)}
                fake_run(
                    root / f"{method}_n{n}_s{seed}",
                    method=method,
                    n_labeled=n,
                    seed=seed,
                    dice=float(dice),
                    ood={k: float(v) for k, v in ood.items()},
                )
    return root


def test_report_writes_both_figures_per_dataset(sweep: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert main([f"sweep_dir={sweep}", f"out={out}"]) == 0
    for name in ("dice_vs_labels_jsrt.png", "paired_jsrt.png"):
        with Image.open(out / name) as image:
            assert image.size[0] > 3 * 300, name  # three panels side by side
    assert len(pd.read_csv(out / "paired_seeds.csv")) == 2 * len(BUDGETS) * len(SEEDS)


def test_dice_figure_has_a_log_panel_per_test_set_and_a_fixed_floor(sweep: Path, tmp_path):
    runs, _ = collect(sweep)
    summary = aggregate(runs)
    fig = dice_vs_labels(summary, "jsrt", tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 0
    assert [ax.get_title() for ax in fig.axes] == [
        "test (in-domain)",
        "nlm_mc (out-of-domain)",
        "nlm_sz (out-of-domain)",
    ]
    lowest = min((summary[f"{c}_mean"] - summary[f"{c}_std"]).min() for c in panel_columns(runs))
    for ax in fig.axes:
        assert ax.get_xscale() == "log"
        assert list(ax.get_xticks()) == list(BUDGETS)
        # nlm_sz scores ~0.35-0.5: the floor is the lowest lower error bar, rounded down to 0.1
        assert ax.get_ylim() == pytest.approx((np.floor(lowest * 10) / 10, 1.0))
        assert ax.get_ylim()[0] < 0.4
        assert len(ax.lines) >= 3  # one line (with error bars) per method
    assert len(fig.legends) == 1  # one legend for all panels


def test_high_scores_do_not_zoom_the_axis(tmp_path: Path):
    """Dice 0.95 +- 0.01 everywhere: the axis still starts at 0.5, so a 0.01 gap looks small."""
    summary = pd.DataFrame(
        {
            "dataset": "jsrt",
            "backbone": "unet",
            "n_labeled": [9, 35, 9, 35],
            "method": ["baseline", "baseline", "genseg", "genseg"],
            "test_dice_mean": [0.95, 0.96, 0.96, 0.97],
            "test_dice_std": 0.01,
            "test_anterior_dice_mean": 0.9,  # a class of the test set, not a test set
            "test_anterior_dice_std": 0.0,
            "n_seeds": 3,
        }
    )
    fig = dice_vs_labels(summary, "jsrt", tmp_path / "d.png")
    assert len(fig.axes) == 1
    assert fig.axes[0].get_ylim() == (0.5, 1.0)
    assert fig.axes[0].get_xscale() == "log"


def test_dice_floor_rule():
    assert dice_floor(0.93) == 0.5
    assert dice_floor(0.47) == 0.4
    assert dice_floor(0.5) == 0.5
    assert dice_floor(-0.05) == 0.0


def test_paired_figure_shows_seeds_and_means_per_test_set(sweep: Path, tmp_path: Path):
    runs, _ = collect(sweep)
    diffs = paired_differences(runs, "baseline")
    fig = paired_figure(diffs, "jsrt", tmp_path / "p.png", "baseline")
    assert fig is not None and (tmp_path / "p.png").stat().st_size > 0
    assert len(fig.axes) == 3
    for ax, column in zip(fig.axes, ("test_dice", "nlm_mc_dice", "nlm_sz_dice"), strict=True):
        assert [tick.get_text() for tick in ax.get_xticklabels()] == [f"n={n}" for n in BUDGETS]
        zero = [line for line in ax.lines if list(line.get_ydata()) == [0.0, 0.0]]
        assert zero, "a line at zero"
        dots = sum(len(c.get_offsets()) for c in ax.collections)
        assert dots == 2 * len(BUDGETS) * len(SEEDS)  # every seed of both methods
        assert len(ax.patches) == 2 * len(BUDGETS)  # one mean bar per method and budget
        bottom, top = ax.get_ylim()
        assert bottom == -top and top >= 0.1 and top >= diffs[column].abs().max()
    assert paired_figure(diffs, "ph2", tmp_path / "none.png", "baseline") is None
    assert not (tmp_path / "none.png").exists()

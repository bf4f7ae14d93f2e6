"""The paired tables' mean over a dataset's test sets (its test split and each OOD set)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from genseg_cli.report.summary import SETS_MEAN, paired, paired_differences, set_dice_columns
from genseg_cli.stages.report import main
from tests.report.fake_runs import collect, fake_run

PH2_OOD = ("dermis", "dermquest")


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """PH2 with two OOD sets (seed 2's genseg run lacks DermQuest) and BUSI with none."""
    root = tmp_path / "sweep"
    for seed in (0, 1, 2):
        fake_run(root / f"ph2_b{seed}", method="baseline", dataset="ph2", n_labeled=40,
                 seed=seed, dice=0.9, ood={"dermis": 0.6, "dermquest": 0.5})  # fmt: skip
        ood = {"dermis": 0.7, "dermquest": 0.5 + 0.1 * seed}
        if seed == 2:
            del ood["dermquest"]
        fake_run(root / f"ph2_g{seed}", method="genseg", dataset="ph2", n_labeled=40,
                 seed=seed, dice=0.88, ood=ood)  # fmt: skip
        fake_run(root / f"busi_b{seed}", method="baseline", dataset="busi", n_labeled=100,
                 seed=seed, dice=0.6)  # fmt: skip
        fake_run(root / f"busi_g{seed}", method="genseg", dataset="busi", n_labeled=100,
                 seed=seed, dice=0.65)  # fmt: skip
    return root


def test_the_mean_is_over_the_datasets_own_sets_and_only_where_each_was_scored(sweep: Path):
    runs, _ = collect(sweep)
    diffs = paired_differences(runs, "baseline").set_index(["dataset", "seed"])
    # seed 0: (-0.02 + 0.1 + 0.0) / 3; seed 1: (-0.02 + 0.1 + 0.1) / 3
    assert diffs.loc[("ph2", 0), SETS_MEAN] == pytest.approx(0.08 / 3)
    assert diffs.loc[("ph2", 1), SETS_MEAN] == pytest.approx(0.18 / 3)
    assert math.isnan(diffs.loc[("ph2", 2), SETS_MEAN])  # DermQuest missing: no mean of two
    assert diffs.xs("busi")[SETS_MEAN].isna().all()  # one set: the mean would repeat it
    row = paired(runs, "baseline").set_index("dataset").loc["ph2"]
    assert row[f"{SETS_MEAN}_diff_mean"] == pytest.approx(0.13 / 3)
    assert row[f"{SETS_MEAN}_wins"] == 2


def test_report_shows_the_mean_column_where_there_are_ood_sets(sweep: Path, tmp_path: Path):
    out = tmp_path / "report"
    assert main([f"sweep_dir={sweep}", f"out={out}"]) == 0
    lines = [x for x in (out / "paired.md").read_text().splitlines() if x.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[-1] == "Δ mean Dice over test sets"
    rows = {line.split("|")[1].strip(): line.split("|")[-2].strip() for line in lines[2:]}
    assert rows == {"busi": "-", "ph2": "+0.0433 ± 0.0167 (2/2)"}
    seeds = pd.read_csv(out / "paired_seeds.csv")
    assert SETS_MEAN in seeds.columns
    # no figure panel of its own: the paired figure's panels are the test sets
    assert not any(SETS_MEAN in p.name for p in out.iterdir())


def test_single_set_sweeps_keep_their_tables_as_they_were(tmp_path: Path):
    for seed in (0, 1):
        fake_run(tmp_path / f"b{seed}", method="baseline", seed=seed, dice=0.9)
        fake_run(tmp_path / f"g{seed}", method="genseg", seed=seed, dice=0.91)
    runs, _ = collect(tmp_path)
    assert SETS_MEAN not in paired_differences(runs, "baseline").columns
    assert f"{SETS_MEAN}_diff_mean" not in paired(runs, "baseline").columns


def test_a_class_column_is_part_of_the_test_split_not_a_set():
    runs = pd.DataFrame(
        {"test_dice": [0.8], "test_anterior_dice": [0.7], "nlm_mc_dice": [0.6], "seed": [0]}
    )
    assert set_dice_columns(runs) == ["test_dice", "nlm_mc_dice"]

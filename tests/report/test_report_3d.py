"""`genseg report` over real multi-class (3D hippocampus) runs: per-class columns and HD95."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from genseg_cli.stages.report import label, main
from tests.conftest import DATA_DIR
from tests.report.fake_runs import collect


@pytest.fixture(scope="module")
def sweep_3d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (DATA_DIR / "hippocampus" / "imagesTr").is_dir():
        pytest.skip("real hippocampus volumes not found")
    from genseg_cli.core.config import compose
    from genseg_cli.core.files import write_status
    from genseg_cli.engine.loop import run_training

    root = tmp_path_factory.mktemp("sweep3d")
    for seed in (0, 1):
        cfg = compose(
            "train",
            ["dataset=hippocampus", "profile=debug", "trainer.precision=fp32", f"seed={seed}"],
        )
        run_training(cfg, root / f"s{seed}")
        write_status(root / f"s{seed}", "done")
    return root


def test_runs_table_has_a_column_per_class(sweep_3d: Path):
    runs, skipped = collect(sweep_3d)
    assert not skipped and len(runs) == 2
    columns = list(runs.columns)
    expected = ["test_dice", "test_iou", "test_anterior_dice", "test_anterior_iou"]
    assert columns[5:9] == expected
    assert columns.index("test_hd95") > columns.index("test_posterior_iou")
    mean_of_classes = (runs.test_anterior_dice + runs.test_posterior_dice) / 2
    assert (runs.test_dice - mean_of_classes).abs().max() < 1e-9


def test_report_tables_name_the_classes(sweep_3d: Path, tmp_path: Path):
    assert main([f"sweep_dir={sweep_3d}", f"out={tmp_path}"]) == 0
    lines = (tmp_path / "summary.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("|"))
    assert "test anterior Dice" in header and "test HD95 (mm)" in header
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary.n_seeds.tolist() == [2]


def test_column_labels():
    assert label("test_dice") == "test Dice"
    assert label("nlm_mc_iou") == "nlm_mc IoU"
    assert label("test_posterior_dice") == "test posterior Dice"
    assert label("test_hd95") == "test HD95 (mm)"

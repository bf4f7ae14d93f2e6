"""`genseg report` on a real (tiny) sweep: 8 trained runs plus 3 broken ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from genseg_cli.core.errors import GensegError
from genseg_cli.report.collect import KEYS
from genseg_cli.report.summary import (
    aggregate,
    efficiency,
    efficiency_factor,
    labels_needed,
    paired,
    paired_differences,
)
from genseg_cli.stages.report import main, rich_table
from tests.conftest import DATA_DIR
from tests.report.fake_runs import collect

GENSEG = str(Path(sys.executable).parent / "genseg")
METHODS, BUDGETS, SEEDS = ("baseline", "baseline_noaug"), (3, 5), (0, 1)
TABLES = ["runs", "summary", "paired", "efficiency", "skipped"]
OUTPUTS = [f"{t}.csv" for t in TABLES] + ["summary.md", "summary.tex", "paired.md"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 debug runs trained for real (2 methods x 2 budgets x 2 seeds) and 3 broken runs."""
    if not (DATA_DIR / "jsrt" / "images").is_dir():
        pytest.skip(f"real datasets not found in {DATA_DIR} (set GENSEG_DATA_DIR)")
    from genseg_cli.core.config import compose
    from genseg_cli.core.files import write_status
    from genseg_cli.engine.loop import run_training

    root = tmp_path_factory.mktemp("sweep")
    for method, n, seed in product(METHODS, BUDGETS, SEEDS):
        run_dir = root / "jsrt" / method / f"n{n}" / f"seed{seed}"
        overrides = [f"method={method}", f"n_labeled={n}", f"seed={seed}"]
        cfg = compose("train", ["profile=debug", "trainer.precision=fp32", *overrides])
        run_training(cfg, run_dir)
        write_status(run_dir, "done")
    write_status(root / "broken" / "failed", "failed", reason="CUDA out of memory")
    write_status(root / "broken" / "corrupt", "done")
    (root / "broken" / "corrupt" / "metrics.json").write_text('{"run": {"dataset": "js')
    (root / "broken" / "no_status").mkdir()
    shutil.copy(run_dir / "metrics.json", root / "broken" / "no_status" / "metrics.json")
    return root


def metrics_of(sweep: Path, method: str, n: int, seed: int) -> dict:
    path = sweep / "jsrt" / method / f"n{n}" / f"seed{seed}" / "metrics.json"
    return json.loads(path.read_text())


def test_collect_reads_done_runs_and_skips_the_rest(sweep: Path):
    runs, skipped = collect(sweep)
    assert len(runs) == 8 and set(runs.method) == set(METHODS) and set(runs.n_labeled) == {3, 5}
    reasons = {s.path.name: s.reason for s in skipped}
    assert set(reasons) == {"failed", "corrupt", "no_status"}
    assert reasons["failed"] == "status failed: CUDA out of memory"
    assert "metrics.json unreadable" in reasons["corrupt"]
    assert reasons["no_status"] == "no status.json"
    row = runs[(runs.method == "baseline") & (runs.n_labeled == 5) & (runs.seed == 1)].iloc[0]
    m = metrics_of(sweep, "baseline", 5, 1)
    assert row.test_dice == m["test"]["dice_mean"] and row.test_iou == m["test"]["iou_mean"]
    assert row.train_time_s == pytest.approx(m["train_time_s"] + m["prepare_time_s"])


def test_collect_follows_symlinked_runs_once(sweep: Path, tmp_path: Path):
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "jsrt").symlink_to(sweep / "jsrt", target_is_directory=True)
    (linked / "again").symlink_to(sweep / "jsrt", target_is_directory=True)  # the same runs
    (linked / "jsrt" / "loop").symlink_to(linked, target_is_directory=True)  # a cycle
    try:
        runs, skipped = collect(linked)
    finally:
        (linked / "jsrt" / "loop").unlink()
    assert len(runs) == 8 and not skipped
    assert set(runs.method) == set(METHODS)


def test_report_writes_every_output_with_the_real_means(sweep: Path, tmp_path: Path):
    assert main([f"sweep_dir={sweep}", f"out={tmp_path}", "method=baseline_noaug"]) == 0
    for name in [*OUTPUTS, "dice_vs_labels_jsrt.png"]:
        assert (tmp_path / name).stat().st_size > 0, name
    assert Image.open(tmp_path / "dice_vs_labels_jsrt.png").size[0] > 100
    assert len(pd.read_csv(tmp_path / "skipped.csv")) == 3
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert len(summary) == 4 and (summary.n_seeds == 2).all()
    for method, n in product(METHODS, BUDGETS):
        dice = [metrics_of(sweep, method, n, s)["test"]["dice_mean"] for s in SEEDS]
        iou = [metrics_of(sweep, method, n, s)["test"]["iou_mean"] for s in SEEDS]
        row = summary[(summary.method == method) & (summary.n_labeled == n)].iloc[0]
        assert row.test_dice_mean == pytest.approx(np.mean(dice))
        assert row.test_dice_std == pytest.approx(np.std(dice))  # ddof=0
        assert row.test_iou_mean == pytest.approx(np.mean(iou))
    # the header names what every run shares (nothing here), then the table
    text = (tmp_path / "summary.md").read_text()
    assert text.startswith("shared overrides: none\n")
    md = [line for line in text.splitlines() if line.startswith("|")]
    assert len(md) == 2 + 4 and "±" in md[2] and "test Dice" in md[0]
    assert len(pd.read_csv(tmp_path / "paired.csv")) == 2
    assert len(pd.read_csv(tmp_path / "efficiency.csv")) == 2


def test_paired_differences_match_hand_computed(sweep: Path):
    runs, _ = collect(sweep)
    diffs = paired_differences(runs, "baseline")
    assert len(diffs) == 4 and set(diffs.method) == {"baseline_noaug"}
    table = paired(runs, "baseline")
    for n in BUDGETS:
        hand = [
            metrics_of(sweep, "baseline_noaug", n, s)["test"]["dice_mean"]
            - metrics_of(sweep, "baseline", n, s)["test"]["dice_mean"]
            for s in SEEDS
        ]
        got = diffs[diffs.n_labeled == n].sort_values("seed").test_dice.tolist()
        assert got == pytest.approx(hand)
        row = table[table.n_labeled == n].iloc[0]
        assert row.n_pairs == 2 and row.test_dice_wins == sum(d > 0 for d in hand)
        assert row.test_dice_diff_mean == pytest.approx(np.mean(hand))
        assert row.test_dice_diff_std == pytest.approx(np.std(hand))


def copy_run(sweep: Path, method: str, seed: int, dest: Path, overrides: list[str]) -> Path:
    """A copy of a debug run (n=3) whose overrides.yaml says it was trained with `overrides`."""
    shutil.copytree(sweep / "jsrt" / method / "n3" / f"seed{seed}", dest)
    lines = [f"method={method}", f"seed={seed}", "trainer.progress=false", *overrides]
    (dest / "overrides.yaml").write_text("".join(f"- {o}\n" for o in lines))
    return dest


def test_variants_are_summarised_apart_and_paired_with_their_reference(sweep: Path, tmp_path):
    base = tmp_path / "ablation"
    for seed in SEEDS:
        copy_run(sweep, "baseline", seed, base / f"b{seed}", [])
        copy_run(sweep, "baseline_noaug", seed, base / f"n{seed}", [])
        # a method-only ablation: paired with the default baseline of the same seed
        copy_run(sweep, "baseline_noaug", seed, base / f"lr{seed}", ["optim.optimizer.lr=0.01"])
    # an override both methods were trained with: paired within it (its baseline scores 0.5)
    copy_run(sweep, "baseline_noaug", 0, base / "s64n", ["data.image_size=64", "paths.x=/y"])
    ref = copy_run(sweep, "baseline", 0, base / "s64b", ["data.image_size=64"])
    metrics = json.loads((ref / "metrics.json").read_text())
    metrics["test"]["dice_mean"] = 0.5
    (ref / "metrics.json").write_text(json.dumps(metrics))

    runs, skipped = collect(base)
    assert not skipped
    lr, s64 = "baseline_noaug [optim.optimizer.lr=0.01]", "baseline_noaug [data.image_size=64]"
    assert set(runs.method) == {
        "baseline",
        "baseline_noaug",
        lr,
        s64,
        "baseline [data.image_size=64]",
    }
    assert set(runs[runs.method == lr].base_method) == {"baseline_noaug"}
    summary = aggregate(runs)
    assert summary.set_index("method").loc[lr, "n_seeds"] == 2

    diffs = paired_differences(runs, "baseline").set_index(["method", "seed"])
    noaug = [metrics_of(sweep, "baseline_noaug", 3, s)["test"]["dice_mean"] for s in SEEDS]
    plain = [metrics_of(sweep, "baseline", 3, s)["test"]["dice_mean"] for s in SEEDS]
    for s in SEEDS:
        assert diffs.loc[(lr, s), "reference"] == "baseline"
        assert diffs.loc[(lr, s), "test_dice"] == pytest.approx(noaug[s] - plain[s])
    assert diffs.loc[(s64, 0), "reference"] == "baseline [data.image_size=64]"
    assert diffs.loc[(s64, 0), "test_dice"] == pytest.approx(noaug[0] - 0.5)
    # the reference method's own variant is paired with its default run
    assert diffs.loc[("baseline [data.image_size=64]", 0), "reference"] == "baseline"
    assert diffs.loc[("baseline [data.image_size=64]", 0), "test_dice"] == pytest.approx(
        0.5 - plain[0]
    )
    assert len(diffs) == 2 + 2 + 1 + 1


def test_ood_sets_become_columns_and_are_paired(sweep: Path, tmp_path: Path):
    """The debug runs skip OOD scoring; give two real runs OOD results by hand."""
    for method, dice in (("baseline", 0.5), ("baseline_noaug", 0.75)):
        src = sweep / "jsrt" / method / "n3" / "seed0"
        shutil.copytree(src, tmp_path / method, ignore=shutil.ignore_patterns("checkpoints"))
        m = metrics_of(sweep, method, 3, 0)
        m["ood"] = {"nlm_mc": {**m["test"], "dice_mean": dice, "iou_mean": dice / 2}}
        (tmp_path / method / "metrics.json").write_text(json.dumps(m))
    runs, skipped = collect(tmp_path)
    assert not skipped and {"nlm_mc_dice", "nlm_mc_iou"} <= set(runs.columns)
    assert aggregate(runs).nlm_mc_iou_mean.tolist() == [0.25, 0.375]
    assert paired(runs, "baseline").nlm_mc_dice_diff_mean.tolist() == [0.25]


def test_labels_needed_interpolates_on_the_reference_curve():
    curve = [(16, 1.0), (4, 0.5), (8, 0.75)]  # unsorted on purpose
    assert labels_needed(curve, 0.625) == 6.0
    assert labels_needed(curve, 0.875) == 12.0
    assert labels_needed(curve, 0.75) == 8.0  # exactly a measured point
    assert labels_needed([(4, 0.5), (8, 0.9), (16, 0.8), (32, 0.95)], 0.85) == 7.5  # first crossing
    assert efficiency_factor(curve, 0.875, 4) == 3.0
    assert efficiency_factor(curve, 0.625, 8) == 0.75  # the reference is better at n: factor < 1


def test_labels_needed_out_of_range():
    curve = [(4, 0.5), (8, 0.75)]
    assert labels_needed(curve, 0.9) == "> max" and efficiency_factor(curve, 0.9, 4) == "> max"
    assert labels_needed(curve, 0.4) == "<= min" and efficiency_factor(curve, 0.4, 2) == "<= min"
    assert labels_needed(curve, 0.5) == 4.0
    assert labels_needed([(4, float("nan")), (8, 0.75)], 0.6) == "n/a: one budget"
    # one budget cannot bracket a score: no factor, whichever side the score lies
    assert labels_needed([(40, 0.8)], 0.85) == efficiency_factor([(40, 0.8)], 0.7, 40)
    assert labels_needed([(40, 0.8)], 0.85) == "n/a: one budget"


def test_efficiency_table_per_dataset_and_budget():
    summary = pd.DataFrame(
        [
            ("jsrt", "unet", 4, "baseline", 0.5),
            ("jsrt", "unet", 8, "baseline", 0.75),
            ("jsrt", "unet", 4, "genseg", 0.625),
            ("jsrt", "unet", 8, "genseg", 0.9),
            ("ph2", "unet", 4, "genseg", 0.9),  # no reference runs: no row
        ],
        columns=["dataset", "backbone", "n_labeled", "method", "test_dice_mean"],
    )
    table = efficiency(summary, "genseg", "baseline")
    assert table.n_labeled.tolist() == [4, 8]
    assert table.reference_labels_needed.tolist() == [6.0, "> max"]
    assert table.factor.tolist() == [1.5, "> max"]


def test_report_errors_are_clear(tmp_path: Path):
    with pytest.raises(GensegError, match="needs sweep_dir"):
        main([])
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "status.json").write_text('{"status": "failed"}')
    with pytest.raises(GensegError, match=r"no finished runs under .*\(1 skipped: .*status failed"):
        main([f"sweep_dir={tmp_path}"])


def genseg(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([GENSEG, *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_report(sweep: Path):
    out = genseg("report", f"sweep_dir={sweep}")
    assert out.returncode == 0, out.stderr
    assert (sweep / "report" / "dice_vs_labels_jsrt.png").is_file()
    assert "3 skipped run(s)" in out.stdout and "baseline_noaug" in out.stdout
    bad = genseg("report", f"sweep_dir={sweep}", "bogus=1")
    assert bad.returncode == 2
    assert "unknown argument 'bogus'" in bad.stderr
    assert "sweep_dir, runs_csv, out, reference, method" in bad.stderr


def test_terminal_tables_show_variant_labels_whole():
    """A variant's brackets are text, not rich markup (which would swallow them)."""
    from rich.console import Console

    label = "genseg [mlo.learn_synthetic_weight=true]"
    frame = pd.DataFrame({"dataset": ["busi"], "method": [label], "Δ test Dice": ["+0.02"]})
    console = Console(record=True, width=200)
    console.print(rich_table(frame, "paired differences"))
    assert label in console.export_text()


def test_an_objective_on_unlabeled_images_is_a_method_and_scoring_switches_no_variant(
    sweep: Path, tmp_path
):
    """`ssl=fixmatch` names the method (baseline+fixmatch, paired with the baseline of its seed,
    its unlabeled count shown); `evaluation.ood=false` only changes what is scored."""
    base = tmp_path / "ssl"
    for seed in SEEDS:
        copy_run(sweep, "baseline", seed, base / f"b{seed}", ["evaluation.ood=false"])
        run = copy_run(sweep, "baseline", seed, base / f"f{seed}", ["ssl=fixmatch"])
        metrics = json.loads((run / "metrics.json").read_text())
        metrics["run"].update(method="baseline+fixmatch", n_unlabeled=176)
        metrics["test"]["dice_mean"] += 0.1
        (run / "metrics.json").write_text(json.dumps(metrics))
    runs, _ = collect(base)
    assert set(runs.method) == {"baseline", "baseline+fixmatch"}
    assert runs.set_index("method").loc["baseline+fixmatch", "n_unlabeled"].tolist() == [176] * 2
    summary = aggregate(runs).set_index("method")
    assert summary.loc["baseline+fixmatch", "n_unlabeled"] == 176
    assert summary.loc["baseline", "n_unlabeled"] == 0
    diffs = paired_differences(runs, "baseline")
    assert set(diffs.method) == {"baseline+fixmatch"} and len(diffs) == len(SEEDS)
    assert diffs.test_dice.tolist() == pytest.approx([0.1] * len(SEEDS))


def test_one_seed_cells_show_no_spread():
    from genseg_cli.stages.report import display_paired, display_summary

    summary = pd.DataFrame(
        [
            ("jsrt", "unet", "profile=cpu", 9, "baseline", 0.9, 0.0, 1),
            ("jsrt", "unet", "profile=cpu", 9, "genseg", 0.9, 0.01, 3),
        ],
        columns=[*KEYS, "test_dice_mean", "test_dice_std", "n_seeds"],
    )
    shown = display_summary(summary, ["test_dice"]).iloc[:, -1].tolist()
    assert shown == ["0.9000", "0.9000 ± 0.0100"]
    paired = pd.DataFrame(
        [("jsrt", "unet", "profile=cpu", 9, "genseg", "baseline", 1, 0.02, 0.0, 1)],
        columns=[*KEYS, "reference", "n_pairs", "test_dice_diff_mean", "test_dice_diff_std"]
        + ["test_dice_wins"],
    )
    assert display_paired(paired, ["test_dice"]).iloc[0, -1] == "+0.0200 (1/1)"

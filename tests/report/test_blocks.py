"""Paired statistics over benchmark blocks, on hand-made runs tables whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from genseg_cli.core.fingerprint import BLOCK_KEYS
from genseg_cli.report.blocks import (
    MEAN,
    block_differences,
    bootstrap_ci,
    check_blocks,
    long_scores,
    sign_test_p,
    summarise_differences,
    wilcoxon_p,
)

MACHINE = {f"machine_{k}": "x" for k in BLOCK_KEYS}


def run(seed: int, method: str, test: float, ood: float, **machine: str) -> dict:
    return {
        "dataset": "jsrt", "budget": 9, "seed": seed, "block": f"jsrt-n9-s{seed}",
        "method": method, "test_dice": test, "test_iou": test - 0.1, "nlm_mc_dice": ood,
        "nlm_mc_iou": ood - 0.1, "test_dice_final": test + 0.01, "test_iou_final": test - 0.09,
        "nlm_mc_dice_final": ood, "nlm_mc_iou_final": ood - 0.1,
        **MACHINE, **{f"machine_{k}": v for k, v in machine.items()},
    }  # fmt: skip


def three_blocks(**broken_machine: str) -> pd.DataFrame:
    rows = []
    for seed, gain in enumerate((0.01, 0.02, 0.03)):
        rows.append(run(seed, "baseline", 0.90, 0.80))
        extra = broken_machine if seed == 2 else {}
        rows.append(run(seed, "genseg", 0.90 + gain, 0.80 + gain, **extra))
    return pd.DataFrame(rows)


def test_bootstrap_interval_of_a_constant_is_that_constant() -> None:
    assert bootstrap_ci([0.02] * 5) == pytest.approx((0.02, 0.02))


def test_bootstrap_interval_brackets_the_mean_and_stays_inside_the_values() -> None:
    values = [0.01, 0.02, 0.03, 0.05, -0.01]
    low, high = bootstrap_ci(values)
    assert min(values) <= low < np.mean(values) < high <= max(values)


def test_no_interval_from_fewer_than_three_blocks() -> None:
    assert all(math.isnan(v) for v in bootstrap_ci([0.02, 0.05]))
    assert not any(math.isnan(v) for v in bootstrap_ci([0.02, 0.05, 0.01]))


def test_sign_test_of_five_wins_out_of_five() -> None:
    assert sign_test_p([0.1, 0.2, 0.1, 0.3, 0.05]) == pytest.approx(0.0625)
    assert math.isnan(sign_test_p([0.0, 0.0]))


def test_wilcoxon_needs_five_blocks() -> None:
    assert math.isnan(wilcoxon_p([0.1, 0.2, 0.3]))
    assert wilcoxon_p([0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(0.0625)


def test_a_block_whose_runs_differ_in_threads_is_broken_and_named() -> None:
    blocks = check_blocks(three_blocks(threads="2"), ["baseline", "genseg"])
    broken = blocks[blocks.broken]
    assert broken.block.tolist() == ["jsrt-n9-s2"]
    assert "threads differs" in broken.why.iloc[0]
    assert blocks.complete.all()


def test_a_run_without_fingerprint_breaks_its_block() -> None:
    blocks = check_blocks(three_blocks(commit=""), ["baseline", "genseg"])
    assert "no fingerprint (commit) for genseg" in blocks[blocks.broken].why.iloc[0]


def test_differences_are_taken_inside_valid_blocks_only() -> None:
    runs = three_blocks(precision="fp32")
    blocks = check_blocks(runs, ["baseline", "genseg"])
    diffs = block_differences(long_scores(runs), "baseline", blocks[~blocks.broken])
    mean = diffs[(diffs.set == MEAN) & (diffs.checkpoint == "best_val")]
    assert sorted(mean.block) == ["jsrt-n9-s0", "jsrt-n9-s1"]  # the broken block is left out
    assert mean.d_dice.tolist() == pytest.approx([0.01, 0.02])


def test_summary_of_differences_counts_wins_per_set_and_checkpoint() -> None:
    runs = three_blocks()
    blocks = check_blocks(runs, ["baseline", "genseg"])
    paired = summarise_differences(
        block_differences(long_scores(runs), "baseline", blocks), "baseline"
    )
    row = paired[(paired.set == "in-domain") & (paired.checkpoint == "final")].iloc[0]
    assert (row.blocks, row.wins) == (3, 3)
    assert row.d_dice_mean == pytest.approx(0.02)
    assert row.d_dice_ci_low <= 0.02 <= row.d_dice_ci_high
    assert set(paired.set) == {"in-domain", "nlm_mc", MEAN}


def test_a_block_missing_a_method_is_incomplete_but_not_broken() -> None:
    runs = three_blocks()
    runs = runs[~((runs.seed == 1) & (runs.method == "genseg"))]
    blocks = check_blocks(runs, ["baseline", "genseg"]).set_index("block")
    assert not blocks.loc["jsrt-n9-s1", "complete"]
    assert blocks.loc["jsrt-n9-s1", "missing"] == "genseg"
    assert not blocks.broken.any()


def test_one_block_shows_means_without_a_spread_and_asks_for_three_blocks(tmp_path) -> None:
    from genseg_cli.report.benchmark_tables import SuiteInfo, write_benchmark_tables

    info = SuiteInfo("t", "one block", "baseline", ("baseline", "genseg"), ("jsrt-n9-s0",))
    runs = three_blocks()
    text = write_benchmark_tables(info, runs[runs.seed == 0], tmp_path)
    assert "± -" not in text and "| 0.9000 |" in text
    assert "+0.0100 [3+ blocks for an interval]" in text
    assert "[3+ blocks" not in write_benchmark_tables(info, runs, tmp_path / "three")

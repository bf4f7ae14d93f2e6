"""`genseg benchmark suite=smoke` end to end on real data: every run of every block, the tables,
a block broken on purpose, continuation from committed tables, and --plan."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.stages.test_cli import GENSEG, genseg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from tests.conftest import DATA_DIR

    for name in ("jsrt", "ph2", "nlm_mc"):
        if not (DATA_DIR / name / "images").is_dir():
            pytest.skip(f"real dataset {name} not found in {DATA_DIR}")
    out = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as patch:
        # one code version for every run, whatever is committed meanwhile in this checkout
        patch.setenv("GENSEG_CODE_VERSION", "benchmark-test")
        # eight short trainings, each its own process: longer than genseg()'s 300 s when busy
        command = [GENSEG, "benchmark", "suite=smoke", f"out={out}"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        yield out


def test_every_block_runs_every_method_and_the_table_pairs_them(finished: Path) -> None:
    text = (finished / "tables" / "benchmark.md").read_text()
    assert "Blocks complete and valid: 4 of 4." in text
    runs = pd.read_csv(finished / "tables" / "runs.csv")
    assert len(runs) == 8 and set(runs.method) == {"baseline", "baseline_noaug"}
    assert runs.machine_threads.notna().all() and runs.machine_commit.notna().all()
    assert runs.nlm_mc_dice.notna().sum() == 4  # jsrt's out-of-domain set, and only jsrt's
    paired = pd.read_csv(finished / "tables" / "paired.csv")
    mean = paired[(paired.set == "mean") & (paired.checkpoint == "best_val")]
    assert sorted(mean.dataset) == ["jsrt", "ph2"] and (mean.blocks == 2).all()
    # two blocks per dataset: a mean difference, and no interval until three
    assert mean.d_dice_mean.notna().all() and mean.d_dice_ci_low.isna().all()
    assert "[3+ blocks for an interval]" in text
    assert "| jsrt-9 | baseline_noaug | 2 |" in text


def test_a_rerun_keeps_finished_runs(finished: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in finished.glob("*/*/metrics.json")}
    result = genseg("benchmark", "suite=smoke", f"out={finished}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in finished.glob("*/*/metrics.json")} == before


def test_a_block_with_two_thread_settings_is_broken_named_and_not_averaged(
    finished: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "bench"
    shutil.copytree(finished, copy)
    metrics = copy / "ph2-n40-s1" / "baseline_noaug" / "metrics.json"
    data = json.loads(metrics.read_text())
    data["machine"]["threads"] = int(data["machine"]["threads"]) + 1
    metrics.write_text(json.dumps(data))
    result = genseg("benchmark", "suite=smoke", f"out={copy}", "--report")
    assert result.returncode == 0, result.stderr[-2000:]
    text = (copy / "tables" / "benchmark.md").read_text()
    assert "broken (not averaged): ph2-n40-s1" in text
    assert "| ph2-n40-s1 | broken |" in text and "threads differs" in text
    paired = pd.read_csv(copy / "tables" / "paired.csv")
    ph2 = paired[(paired.dataset == "ph2") & (paired.set == "mean")]
    assert (ph2.blocks == 1).all()  # only ph2-n40-s0 is paired


def test_committed_tables_stand_for_run_folders_that_are_elsewhere(
    finished: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "bench"
    shutil.copytree(finished, copy)
    shutil.rmtree(copy / "jsrt-n9-s0")  # a block finished on another machine: only its tables
    plan = genseg("benchmark", "suite=smoke", f"out={copy}", "--plan")
    assert plan.returncode == 0, plan.stderr
    assert "4/4 blocks done" in plan.stdout
    result = genseg("benchmark", "suite=smoke", f"out={copy}", "--report")
    assert result.returncode == 0
    assert "Blocks complete and valid: 4 of 4." in (copy / "tables" / "benchmark.md").read_text()


def test_a_run_limited_to_some_seeds_or_datasets_keeps_the_rest_of_the_tables(
    finished: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "bench"
    shutil.copytree(finished, copy)
    shutil.rmtree(copy / "jsrt-n9-s1")  # finished elsewhere: in the tables only
    result = genseg("benchmark", "suite=smoke", f"out={copy}", "seeds=[0]", "datasets=[ph2]")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Blocks complete and valid: 4 of 4." in (copy / "tables" / "benchmark.md").read_text()
    assert len(pd.read_csv(copy / "tables" / "runs.csv")) == 8
    plan = genseg("benchmark", "suite=smoke", f"out={copy}", "datasets=[ph2]", "--plan")
    assert "ph2-n40-s1" in plan.stdout and "jsrt-n9" not in plan.stdout


def test_methods_runs_only_those_methods_and_leaves_the_block_partial(
    finished: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "bench"
    shutil.copytree(finished, copy)
    shutil.rmtree(copy / "ph2-n40-s1")
    shutil.rmtree(copy / "tables")  # nor recorded there: the block is to be trained again
    args = ("suite=smoke", f"out={copy}", "seeds=[1]", "datasets=[ph2]")
    result = genseg("benchmark", *args, "methods=[baseline_noaug]")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (copy / "ph2-n40-s1" / "baseline_noaug" / "metrics.json").is_file()
    assert not (copy / "ph2-n40-s1" / "baseline").exists()
    assert "ph2-n40-s1: runs of baseline_noaug finished" in " ".join(result.stdout.split())
    plan = genseg("benchmark", *args, "--plan")
    row = next(line for line in plan.stdout.splitlines() if "ph2-n40-s1" in line)
    assert "partial" in row and "1/2" in row


def test_plan_lists_blocks_left_with_a_time_per_block(tmp_path: Path) -> None:
    result = genseg("benchmark", "suite=cpu", f"out={tmp_path}", "--plan")
    assert result.returncode == 0, result.stderr
    assert "jsrt-n9-s0" in result.stdout and "0/25 blocks done" in result.stdout
    assert "min" in result.stdout


@pytest.mark.parametrize(
    "args, expected",
    [
        (["suite=smok"], "did you mean smoke"),
        (["suite=smoke", "jobs=0"], "jobs=0"),
        (["suite=smoke", "seeds=[7]"], "seed 7 is not in suite smoke"),
        (["suite=smoke", "datasets=[busi]"], "dataset busi is not in suite smoke"),
        (["suite=smoke", "launcher=pbs"], "launcher=pbs"),
        (["suite=smoke", "methods=[genseg]"], "method genseg is not in suite smoke"),
        (["suite=smoke", "methods=[baseline]", "launcher=slurm"], "leave methods= out"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], expected: str, tmp_path) -> None:
    result = genseg("benchmark", *args, f"out={tmp_path / 'b'}")
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "b").exists()

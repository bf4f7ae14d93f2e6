"""The measuring scripts still run against the package (a smoke run each, tiny settings; the
numbers they print are not checked: a benchmark is a script, not a timed test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
TINY = ["data.image_size=32", "mlo.arch_every=1"]  # overrides_of skips pre-training


def run(script: str, *args: str) -> str:
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "jsrt").is_dir():
        pytest.skip("real dataset jsrt not found")
    env = {**os.environ, "GENSEG_DATA_DIR": str(DATA_DIR), "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_benchmark_times_a_method_with_its_own_overrides() -> None:
    out = run(
        "benchmark_methods.py",
        *TINY,
        "--steps",
        "1",
        "--warmup",
        "0",
        "--methods",
        "baseline",
        "genseg:mlo.sample_weights=difference",
    )
    assert "genseg:mlo.sample_weights=difference" in out and "x baseline" in out


def test_profile_splits_a_genseg_iteration_into_its_parts() -> None:
    out = run("profile_methods.py", *TINY, "--steps", "1", "--methods", "genseg")
    assert "upper step" in out and "genseg" in out


def test_generator_sweep_scores_each_variant_and_the_real_reference(tmp_path) -> None:
    table = tmp_path / "sweep.csv"
    out = run(
        "generator_sweep.py",
        "--tstr-steps",
        "2",
        "--seeds",
        "0",
        "1",
        "--variant",
        "short=method.pretrain.steps=2",
        "--variant",
        "fm=method.pretrain.steps=2,generator.lambda_fm=10",
        "--csv",
        str(table),
        "data.image_size=32",
    )
    assert "real pairs (reference)" in out and "minus first per seed" in out
    rows = table.read_text().splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == ["real pairs (reference)", "short", "fm"] * 2
    summary = run("generator_sweep.py", "--summarise", str(table))
    assert "| short |" in summary and "| fm |" in summary and "0: " in summary and "1: " in summary


SELF_TRAINING_GRID = "method=baseline; method=baseline ssl=self_training ssl.teacher_run=@baseline"


def screen(tmp_path: Path, methods: str, **settings: str) -> subprocess.CompletedProcess:
    """scripts/screen.sh on JSRT seed 0 at the debug profile, a few steps per run."""
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "jsrt").is_dir():
        pytest.skip("real dataset jsrt not found")
    env = {
        **os.environ,
        "GENSEG_DATA_DIR": str(DATA_DIR),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "OUT": str(tmp_path),
        "SEEDS": "0",
        "DATASETS": "jsrt",
        "METHODS": methods,
        "EXTRA": "profile=debug trainer.steps=3 n_unlabeled=4 trainer.precision=fp32 "
        "trainer.checkpoint_every=1 trainer.num_threads=1",
        **settings,
    }
    return subprocess.run(
        ["bash", str(SCRIPTS / "screen.sh")], capture_output=True, text=True, env=env, timeout=600
    )


def test_screen_grid_runs_each_method_and_points_self_training_at_its_baseline(tmp_path) -> None:
    """scripts/screen.sh with @baseline: the student reads its seed's finished baseline."""
    out = screen(tmp_path, SELF_TRAINING_GRID)
    assert out.returncode == 0, out.stderr[-2000:]
    student = tmp_path / "jsrt_method-baseline_ssl-self_training_seed0"
    assert (student / "metrics.json").is_file()
    teacher = (student / "config.yaml").read_text().split("teacher_run: ")[1].split()[0]
    assert Path(teacher) == tmp_path / "jsrt_method-baseline_seed0"
    assert (tmp_path / "report" / "runs.csv").is_file()


def test_screen_grid_runs_in_parallel_and_lists_a_failed_run(tmp_path) -> None:
    """JOBS=2: the runs finish side by side with a log each, the self-training run still reads a
    finished baseline, and a run that fails is named at the end (exit 1) without stopping the rest
    or writing a report over a partial grid."""
    methods = f"{SELF_TRAINING_GRID}; method=no_such_method"
    out = screen(tmp_path, methods, JOBS="2")
    assert out.returncode == 1, out.stderr[-2000:]
    assert "jsrt_method-no_such_method_seed0" in out.stderr.split("failed runs")[1]
    for run in ("jsrt_method-baseline_seed0", "jsrt_method-baseline_ssl-self_training_seed0"):
        assert (tmp_path / run / "metrics.json").is_file()
        assert (tmp_path / "logs" / f"{run}.log").is_file()
    assert not (tmp_path / "report").exists()
    # rerun without the failing method: nothing trains again, and the report is written
    again = screen(tmp_path, SELF_TRAINING_GRID, JOBS="2")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "(log: " not in again.stdout  # no run was started
    assert (tmp_path / "report" / "runs.csv").is_file()


def test_screen_grid_refuses_a_bad_jobs_value(tmp_path) -> None:
    out = screen(tmp_path, SELF_TRAINING_GRID, JOBS="two")
    assert out.returncode == 2 and "JOBS=two" in out.stderr

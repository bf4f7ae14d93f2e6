"""The measuring scripts still run against the package (a smoke run each, tiny settings; the
numbers they print are not checked: a benchmark is a script, not a timed test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from genseg_cli.core.config import compose

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


def test_generator_sweep_reads_list_values_keeps_previews_and_scores_the_grid(tmp_path) -> None:
    table, previews = tmp_path / "sweep.csv", tmp_path / "previews"
    run(
        "generator_sweep.py",
        "--tstr-steps",
        "1",
        "--no-reference",
        "--variant",
        "bilinear=method.pretrain.steps=1,generator.model.upsample_ops=[transposed,bilinear]",
        "--csv",
        str(table),
        "--previews",
        str(previews),
        "data.image_size=32",
    )
    header, row = table.read_text().splitlines()
    assert "upsample_ops=[transposed,bilinear]" in row  # one override, its comma kept
    grid, grid_real = (float(v) for v in row.split(",")[-2:])
    assert grid == grid and grid_real == grid_real  # measured, not NaN
    dataset = compose("train", []).dataset.name
    assert (previews / f"{dataset}_bilinear_seed0" / "synthetic_pretrained.png").is_file()

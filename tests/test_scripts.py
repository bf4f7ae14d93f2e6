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

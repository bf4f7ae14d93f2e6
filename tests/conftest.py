"""Shared fixtures: the real datasets in ../shared/datasets; small synthetic sets for bad input.

A test that needs a real dataset skips where it is absent; the run's summary then says loudly how
many were skipped and why. With GENSEG_REQUIRE_DATA=1 (CI) such a skip is a failure instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
DATA_DIR = Path(os.environ.get("GENSEG_DATA_DIR", SHARED)).resolve()
REQUIRE_DATA = os.environ.get("GENSEG_REQUIRE_DATA", "") not in ("", "0")
# the real datasets the suite reads (CI checks them before the tests: .ci/run)
USED_DATASETS = ("jsrt", "nlm_mc", "nlm_sz", "hippocampus", "ph2", "kvasir", "fuseg")


def is_data_skip(reason: str) -> bool:
    """Whether a skip's reason is a missing real dataset (how the suite's fixtures word it)."""
    return "not found" in reason and ("dataset" in reason or str(DATA_DIR) in reason)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_DATA and report.skipped and is_data_skip(_skip_reason(report)):
        report.outcome = "failed"
        report.longrepr = f"GENSEG_REQUIRE_DATA=1 and {_skip_reason(report)} (in {DATA_DIR})"


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = _skip_reason(report)
        if is_data_skip(reason):
            reasons[reason] = reasons.get(reason, 0) + 1
    if not reasons:
        return
    total = sum(reasons.values())
    terminalreporter.section("real data missing", sep="!", red=True, bold=True)
    terminalreporter.write_line(
        f"{total} tests were SKIPPED because real datasets are missing in {DATA_DIR}: the claims "
        "they guard went untested. Set GENSEG_DATA_DIR to the datasets folder (CI sets "
        "GENSEG_REQUIRE_DATA=1, which makes these skips failures).",
        red=True,
        bold=True,
    )
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"  {count:4d} x {reason}")


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("GENSEG_DATA_DIR", str(DATA_DIR))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # one torch thread per worker: `make test` runs one worker per core (pytest -n 2), and
        # two workers of two threads each on two cores slow each other down
        import torch

        torch.set_num_threads(1)
        os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture
def data_dir() -> Path:
    """The real datasets; tests that need them are skipped where they are absent."""
    if not (DATA_DIR / "jsrt" / "images").is_dir():
        pytest.skip(f"real datasets not found in {DATA_DIR} (set GENSEG_DATA_DIR)")
    return DATA_DIR


def write_pair(root: Path, key: str, size=(24, 20), mode="L", mask_values=(0, 255)) -> None:
    """One synthetic image + mask pair in the standard layout (a square of foreground)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    width, height = size
    rng = np.random.default_rng(abs(hash(key)) % 2**32)
    shape = (height, width, 3) if mode == "RGB" else (height, width)
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(
        root / "images" / f"{key}.png"
    )
    mask = np.full((height, width), mask_values[0], np.uint8)
    mask[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = mask_values[1]
    Image.fromarray(mask, "L").save(root / "masks" / f"{key}.png")


@pytest.fixture
def folder_dataset(tmp_path: Path) -> Path:
    """A valid 12-pair grey dataset in tmp_path/folder."""
    root = tmp_path / "folder"
    for i in range(12):
        write_pair(root, f"case{i:02d}")
    return root

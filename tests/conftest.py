"""Shared fixtures: the real datasets in ../shared/datasets; small synthetic sets for bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
DATA_DIR = Path(os.environ.get("GENSEG_DATA_DIR", SHARED)).resolve()


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

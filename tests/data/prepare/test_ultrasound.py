"""Breast ultrasound converter: BUSI (also registered as BUID)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.data.prepare.fake_downloads import box, check_output, load, mask, rgb, run


@pytest.mark.parametrize("name", ["busi", "buid"])
def test_busi_merges_multiple_masks(tmp_path: Path, name: str) -> None:
    root = tmp_path / "src" / "Dataset_BUSI_with_GT"
    rgb(root / "benign" / "benign (10).png")
    mask(root / "benign" / "benign (10)_mask.png", 1, 1, 5, 5)
    mask(root / "benign" / "benign (10)_mask_1.png", 10, 8, 15, 14)
    rgb(root / "malignant" / "malignant (2).png")
    mask(root / "malignant" / "malignant (2)_mask.png")
    rgb(root / "normal" / "normal (1).png")
    mask(root / "normal" / "normal (1)_mask.png", value=0)

    result = run(name, tmp_path / "src", tmp_path)

    check_output(result.dst, ["benign_10", "malignant_2", "normal_1"], ".jpg")
    merged = box(1, 1, 5, 5) | box(10, 8, 15, 14)
    np.testing.assert_array_equal(load(result.dst / "masks" / "benign_10.png"), merged)
    assert not load(result.dst / "masks" / "normal_1.png").any()

"""Endoscopy converters: Kvasir-SEG, CVC-ClinicDB, FetReg."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.data.prepare.fake_downloads import (
    box,
    check_output,
    load,
    mask,
    rgb,
    run,
    save,
    split_rows,
)


@pytest.mark.parametrize("nested", [True, False])
def test_kvasir_jpeg_masks_and_split_files(tmp_path: Path, nested: bool) -> None:
    src = tmp_path / "src"
    root = src / "Kvasir-SEG" if nested else src
    ids = ["cju0", "cju1", "cju2"]
    for n, key in enumerate(ids):
        rgb(root / "images" / f"{key}.jpg", seed=n)
        mask(root / "masks" / f"{key}.jpg", quality=70)  # JPEG noise around the edges
    (src / "train.txt").write_text("cju0\ncju1.jpg\n")
    (src / "val.txt").write_text("cju2\n\n")

    result = run("kvasir", src, tmp_path)

    check_output(result.dst, ids, ".jpg")
    assert split_rows(result.dst) == ["id,split", "cju0,train", "cju1,train", "cju2,val"]
    produced = load(result.dst / "masks" / "cju0.png")
    assert (produced != box(2, 3, 9, 10)).mean() < 0.05  # noise gone, box kept


@pytest.mark.parametrize("layout", ["tif", "png"])
def test_cvc_clinicdb(tmp_path: Path, layout: str) -> None:
    src = tmp_path / "src"
    root = src if layout == "tif" else src / "PNG"
    for n in (1, 2):
        rgb(root / "Original" / f"{n}.{layout}", seed=n)
        mask(root / "Ground Truth" / f"{n}.{layout}")

    result = run("cvc_clinicdb", src, tmp_path)

    check_output(result.dst, ["1", "2"], ".jpg")
    np.testing.assert_array_equal(load(result.dst / "masks" / "2.png"), box(2, 3, 9, 10))


def test_fetreg_keeps_vessel_and_splits_by_video(tmp_path: Path) -> None:
    src = tmp_path / "src" / "FetReg2021"
    labels = box(0, 0, 5, 16, 1) + box(5, 0, 10, 16, 2) + box(10, 0, 15, 16, 3)
    ids = []
    for v in range(1, 7):
        key = f"Video{v:03d}_frame0{v}250"
        rgb(src / f"Video{v:03d}" / "images" / f"{key}.png", seed=v)
        save(labels, src / f"Video{v:03d}" / "labels" / f"{key}.png")
        ids.append(key)

    result = run("fetreg", tmp_path / "src", tmp_path)

    check_output(result.dst, ids, ".jpg")
    np.testing.assert_array_equal(load(result.dst / "masks" / f"{ids[0]}.png"), box(0, 0, 5, 16))
    rows = dict(line.split(",") for line in split_rows(result.dst)[1:])
    assert [rows[i] for i in ids] == ["train"] * 4 + ["val", "train"]

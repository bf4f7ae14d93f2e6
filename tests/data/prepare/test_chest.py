"""Chest X-ray converters: JSRT (raw with SCR lungs, or PNG label maps), NLM MC and SZ."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.data.prepare.fake_downloads import H, W, box, check_output, grey, load, mask, run, save


def _jsrt_raw(path: Path, side: int = 32) -> np.ndarray:
    values = np.tile(np.linspace(0, 4095, side, dtype=np.uint16), (side, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    values.astype(">u2").tofile(path)
    return values


def test_jsrt_raw_images_with_scr_lungs(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _jsrt_raw(src / "All247images" / "JPCLN001.IMG")
    _jsrt_raw(src / "All247images" / "JPCNN002.IMG")
    (src / "All247images" / "._JPCLN001.IMG").write_bytes(b"\0\1")  # macOS fork, ignored
    lungs = src / "scratch" / "masks"
    for case in ("JPCLN001", "JPCNN002"):
        mask(lungs / "left lung" / f"{case}.gif", 1, 1, 6, 15, size=(16, 16))
        mask(lungs / "right lung" / f"{case}.gif", 10, 1, 15, 15, size=(16, 16))
    mask(lungs / "left lung" / "JPCLN003.gif", size=(16, 16))  # right lung missing

    result = run("jsrt", src, tmp_path)

    check_output(result.dst, ["JPCLN001", "JPCNN002"], ".png", size=(16, 16))
    merged = box(1, 1, 6, 15, size=(16, 16)) | box(10, 1, 15, 15, size=(16, 16))
    np.testing.assert_array_equal(load(result.dst / "masks" / "JPCLN001.png"), merged)
    image = load(result.dst / "images" / "JPCLN001.png").astype(int)
    # Raw values rise to the right; after inversion the image must darken to the right.
    assert image[:, 0].mean() > 200 and image[:, -1].mean() < 55
    assert any("JPCLN003" in w for w in result.warnings)


def test_jsrt_png_label_maps_keep_selected_labels(tmp_path: Path) -> None:
    src = tmp_path / "src"
    grey(src / "images" / "JPCLN001.png", size=(32, 32))
    sq = (16, 16)
    labels = box(0, 0, 8, 8, 150, sq) + box(8, 0, 16, 8, 200, sq) + box(0, 8, 16, 16, 250, sq)
    save(labels, src / "masks" / "JPCLN001.png")

    result = run("jsrt", src, tmp_path, labels=[150, 200])

    check_output(result.dst, ["JPCLN001"], ".png", size=(16, 16))
    np.testing.assert_array_equal(
        load(result.dst / "masks" / "JPCLN001.png"), box(0, 0, 16, 8, size=(16, 16))
    )


def test_nlm_mc_merges_left_and_right(tmp_path: Path) -> None:
    root = tmp_path / "src" / "MontgomerySet"
    for case in ("MCUCXR_0001_0", "MCUCXR_0002_1"):
        grey(root / "CXR_png" / f"{case}.png")
        mask(root / "ManualMask" / "leftMask" / f"{case}.png", 1, 1, 8, 14)
        mask(root / "ManualMask" / "rightMask" / f"{case}.png", 12, 2, 19, 15)

    result = run("nlm_mc", tmp_path / "src", tmp_path)

    check_output(result.dst, ["MCUCXR_0001_0", "MCUCXR_0002_1"], ".png")
    merged = box(1, 1, 8, 14) | box(12, 2, 19, 15)
    np.testing.assert_array_equal(load(result.dst / "masks" / "MCUCXR_0001_0.png"), merged)


def test_nlm_sz_skips_images_without_mask(tmp_path: Path) -> None:
    src = tmp_path / "src"
    save(np.full((H, W, 3), 90, np.uint8), src / "CXR_png" / "CHNCXR_0001_0.png")  # RGB source
    grey(src / "CXR_png" / "CHNCXR_0002_1.png")
    grey(src / "CXR_png" / "CHNCXR_0003_1.png")
    mask(src / "mask" / "CHNCXR_0001_0_mask.png")
    mask(src / "mask" / "CHNCXR_0002_1_mask.png")

    result = run("nlm_sz", src, tmp_path)

    check_output(result.dst, ["CHNCXR_0001_0", "CHNCXR_0002_1"], ".png")
    assert result.n_pairs == 2
    assert any("CHNCXR_0003_1" in w and "without mask" in w for w in result.warnings)

"""Skin photograph converters: ISIC, PH2, DermIS, DermQuest, FUSeg."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.data.prepare.fake_downloads import box, check_output, load, mask, rgb, run, split_rows


def test_isic_splits_by_folder_and_warns_on_orphans(tmp_path: Path) -> None:
    src = tmp_path / "isic"
    tr_in = src / "ISIC2018_Task1-2_Training_Input"
    tr_gt = src / "ISIC2018_Task1_Training_GroundTruth"
    for n in (1, 2, 3):
        rgb(tr_in / f"ISIC_000000{n}.jpg", seed=n)
    for n in (1, 2):
        mask(tr_gt / f"ISIC_000000{n}_segmentation.png")
    (tr_in / "LICENSE.txt").write_text("licence")
    (tr_in / "ATTRIBUTION.txt").write_text("who")
    rgb(src / "ISIC2018_Task1-2_Validation_Input" / "ISIC_0000010.jpg")
    mask(src / "ISIC2018_Task1_Validation_GroundTruth" / "ISIC_0000010_segmentation.png")
    rgb(src / "ISIC2018_Task1-2_Test_Input" / "ISIC_0000020.jpg")
    mask(src / "ISIC2018_Task1_Test_GroundTruth" / "ISIC_0000020_segmentation.png")

    result = run("isic", src, tmp_path)

    ids = ["ISIC_0000001", "ISIC_0000002", "ISIC_0000010", "ISIC_0000020"]
    check_output(result.dst, ids, ".jpg")
    assert result.n_pairs == 4 and result.has_split
    assert split_rows(result.dst) == [
        "id,split",
        "ISIC_0000001,train",
        "ISIC_0000002,train",
        "ISIC_0000010,val",
        "ISIC_0000020,test",
    ]
    assert any("ISIC_0000003" in w for w in result.warnings)
    np.testing.assert_array_equal(load(result.dst / "masks" / "ISIC_0000001.png"), box(2, 3, 9, 10))


def test_isic_training_only_has_no_split(tmp_path: Path) -> None:
    src = tmp_path / "isic"
    rgb(src / "ISIC2018_Task1-2_Training_Input" / "ISIC_0000001.jpg")
    mask(src / "ISIC2018_Task1_Training_GroundTruth" / "ISIC_0000001_segmentation.png")
    result = run("isic", src, tmp_path)
    assert not result.has_split and not (result.dst / "split.csv").exists()


def test_ph2_one_level_below(tmp_path: Path) -> None:
    cases = tmp_path / "src" / "PH2Dataset" / "PH2 Dataset images"
    for case in ("IMD002", "IMD003"):
        rgb(cases / case / f"{case}_Dermoscopic_Image" / f"{case}.bmp")
        mask(cases / case / f"{case}_lesion" / f"{case}_lesion.bmp")
    rgb(cases / "IMD004" / "IMD004_Dermoscopic_Image" / "IMD004.bmp")  # no lesion mask

    result = run("ph2", tmp_path / "src", tmp_path)

    check_output(result.dst, ["IMD002", "IMD003"], ".jpg")
    assert any("IMD004" in w for w in result.warnings)
    assert not (result.dst / "split.csv").exists()


@pytest.mark.parametrize("name", ["dermis", "dermquest"])
def test_skin_contour_files_beside_images(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "src" / name
    rgb(folder / "case1.jpg")
    mask(folder / "case1_contour.png")
    rgb(folder / "case2_orig.jpg")  # Waterloo naming
    mask(folder / "case2_contour.png")
    rgb(folder / "lonely.jpg")

    result = run(name, tmp_path / "src", tmp_path)

    check_output(result.dst, ["case1", "case2"], ".jpg")
    assert any("lonely" in w for w in result.warnings)


@pytest.mark.parametrize("name", ["dermis", "dermquest"])
def test_skin_images_and_masks_folders(tmp_path: Path, name: str) -> None:
    src = tmp_path / "src"
    rgb(src / "images" / "a.jpg")
    mask(src / "masks" / "a.png", value=1)  # any non-zero value is lesion
    mask(src / "masks" / "b.png")

    result = run(name, src, tmp_path)

    check_output(result.dst, ["a"], ".jpg")
    np.testing.assert_array_equal(load(result.dst / "masks" / "a.png"), box(2, 3, 9, 10))
    assert any("b" in w and "without image" in w for w in result.warnings)


def test_fuseg_train_and_validation(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rgb(src / "train" / "images" / "0001.png")
    mask(src / "train" / "labels" / "0001.png")
    rgb(src / "train" / "images" / "0002.png")
    mask(src / "train" / "labels" / "0002.png")
    rgb(src / "validation" / "images" / "0100.png")
    mask(src / "validation" / "labels" / "0100.png")
    rgb(src / "test" / "images" / "0200.png")  # no labels: ignored

    result = run("fuseg", src, tmp_path)

    check_output(result.dst, ["0001", "0002", "0100"], ".jpg")
    assert split_rows(result.dst) == ["id,split", "0001,train", "0002,train", "0100,val"]
    assert result.warnings == []


def test_fuseg_ids_repeated_across_splits_are_renamed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for folder in ("train", "validation"):
        rgb(src / folder / "images" / "0001.png")
        mask(src / folder / "labels" / "0001.png")

    result = run("fuseg", src, tmp_path)

    check_output(result.dst, ["0001", "val_0001"], ".jpg")
    assert split_rows(result.dst) == ["id,split", "0001,train", "val_0001,val"]
    assert any("val_0001" in w for w in result.warnings)

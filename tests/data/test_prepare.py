"""Converters of official dataset layouts, each run on a tiny imitation built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from genseg_cli.data.prepare import CONVERTERS, PrepareResult, prepare_dataset
from genseg_cli.errors import GensegError

W, H = 20, 16  # fixture image size (width, height)


# --------------------------------------------------------------------------- fixture helpers


def _save(array: np.ndarray, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def rgb(path: Path, seed: int = 0, size: tuple[int, int] = (W, H)) -> Path:
    rng = np.random.default_rng(seed)
    return _save(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), path)


def grey(path: Path, seed: int = 0, size: tuple[int, int] = (W, H)) -> Path:
    rng = np.random.default_rng(seed)
    return _save(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8), path)


def box(x0: int, y0: int, x1: int, y1: int, value: int = 255, size=(W, H)) -> np.ndarray:
    array = np.zeros((size[1], size[0]), dtype=np.uint8)
    array[y0:y1, x0:x1] = value
    return array


def mask(path: Path, x0=2, y0=3, x1=9, y1=10, value=255, size=(W, H), **kwargs) -> Path:
    return _save(box(x0, y0, x1, y1, value, size), path, **kwargs)


def load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def check_output(dst: Path, ids: list[str], ext: str, size=(W, H)) -> None:
    """The standard layout: one image and one 0/255 'L' mask of the same size per id."""
    assert sorted(p.name for p in (dst / "images").iterdir()) == [f"{i}{ext}" for i in ids]
    assert sorted(p.name for p in (dst / "masks").iterdir()) == [f"{i}.png" for i in ids]
    for key in ids:
        with Image.open(dst / "images" / f"{key}{ext}") as image:
            assert image.size == size
            assert image.mode == ("L" if ext == ".png" else "RGB")
        with Image.open(dst / "masks" / f"{key}.png") as m:
            assert m.mode == "L" and m.size == size
        assert set(np.unique(load(dst / "masks" / f"{key}.png"))) <= {0, 255}
    assert not dst.with_name(dst.name + ".partial").exists()


def split_rows(dst: Path) -> list[str]:
    return (dst / "split.csv").read_text().splitlines()


def run(name: str, src: Path, tmp_path: Path, **kwargs) -> PrepareResult:
    result = prepare_dataset(name, src=src, dst=tmp_path / "out", **kwargs)
    assert result.dst == tmp_path / "out"
    assert result.name == name
    return result


# --------------------------------------------------------------------------- converters


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
    _save(labels, src / "masks" / "JPCLN001.png")

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
    _save(np.full((H, W, 3), 90, np.uint8), src / "CXR_png" / "CHNCXR_0001_0.png")  # RGB source
    grey(src / "CXR_png" / "CHNCXR_0002_1.png")
    grey(src / "CXR_png" / "CHNCXR_0003_1.png")
    mask(src / "mask" / "CHNCXR_0001_0_mask.png")
    mask(src / "mask" / "CHNCXR_0002_1_mask.png")

    result = run("nlm_sz", src, tmp_path)

    check_output(result.dst, ["CHNCXR_0001_0", "CHNCXR_0002_1"], ".png")
    assert result.n_pairs == 2
    assert any("CHNCXR_0003_1" in w and "without mask" in w for w in result.warnings)


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


def test_fetreg_keeps_vessel_and_splits_by_video(tmp_path: Path) -> None:
    src = tmp_path / "src" / "FetReg2021"
    labels = box(0, 0, 5, 16, 1) + box(5, 0, 10, 16, 2) + box(10, 0, 15, 16, 3)
    ids = []
    for v in range(1, 7):
        key = f"Video{v:03d}_frame0{v}250"
        rgb(src / f"Video{v:03d}" / "images" / f"{key}.png", seed=v)
        _save(labels, src / f"Video{v:03d}" / "labels" / f"{key}.png")
        ids.append(key)

    result = run("fetreg", tmp_path / "src", tmp_path)

    check_output(result.dst, ids, ".jpg")
    np.testing.assert_array_equal(load(result.dst / "masks" / f"{ids[0]}.png"), box(0, 0, 5, 16))
    rows = dict(line.split(",") for line in split_rows(result.dst)[1:])
    assert [rows[i] for i in ids] == ["train"] * 4 + ["val", "train"]


@pytest.mark.parametrize(("images", "masks"), [("image", "mask"), ("images", "masks")])
def test_icfluid(tmp_path: Path, images: str, masks: str) -> None:
    src = tmp_path / "src"
    for key in ("oct_1", "oct_2"):
        grey(src / images / f"{key}.png")
        mask(src / masks / f"{key}.png", value=1)

    result = run("icfluid", src, tmp_path)

    check_output(result.dst, ["oct_1", "oct_2"], ".png")


def _nifti(path: Path, shape=(4, 5, 3)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros(shape, dtype=np.int16), np.eye(4)), path)


def test_hippocampus_copies_and_makes_split(tmp_path: Path) -> None:
    task = tmp_path / "src" / "Task04_Hippocampus"
    ids = [f"hippocampus_{n:03d}" for n in (1, 3, 4, 6, 7)]
    for key in ids:
        _nifti(task / "imagesTr" / f"{key}.nii.gz")
        _nifti(task / "labelsTr" / f"{key}.nii.gz")
    _nifti(task / "labelsTr" / "hippocampus_009.nii.gz")  # label without image
    (task / "imagesTr" / "._hippocampus_001.nii.gz").write_bytes(b"junk")
    (task / "dataset.json").write_text('{"name": "Hippocampus"}')

    result = run("hippocampus", tmp_path / "src", tmp_path)

    dst = result.dst
    assert sorted(p.name for p in (dst / "imagesTr").iterdir()) == [f"{k}.nii.gz" for k in ids]
    assert sorted(p.name for p in (dst / "labelsTr").iterdir()) == [f"{k}.nii.gz" for k in ids]
    assert (dst / "dataset.json").read_text() == '{"name": "Hippocampus"}'
    assert result.n_pairs == 5 and result.has_split
    rows = split_rows(dst)
    assert rows[0] == "id,split" and [r.split(",")[0] for r in rows[1:]] == ids
    assert [r.split(",")[1] for r in rows[1:]].count("val") == 1
    assert any("hippocampus_009" in w for w in result.warnings)
    again = prepare_dataset("hippocampus", tmp_path / "src", tmp_path / "again")
    assert split_rows(again.dst) == rows  # seeded, so reproducible


def test_liver_src_is_task_folder_and_keeps_its_split(tmp_path: Path) -> None:
    task = tmp_path / "Task03_Liver"
    for key in ("liver_0", "liver_1"):
        _nifti(task / "imagesTr" / f"{key}.nii.gz")
        _nifti(task / "labelsTr" / f"{key}.nii.gz")
    (task / "split.csv").write_text("id,split\nliver_0,train\nliver_1,test\n")

    result = run("liver", task, tmp_path)

    assert result.n_pairs == 2 and not (result.dst / "dataset.json").exists()
    assert split_rows(result.dst) == ["id,split", "liver_0,train", "liver_1,test"]


def test_max_size_shrinks_keeping_aspect(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rgb(src / "images" / "a.jpg", size=(40, 20))
    mask(src / "masks" / "a.jpg", 0, 0, 20, 20, size=(40, 20))

    result = run("kvasir", src, tmp_path, max_size=10)

    check_output(result.dst, ["a"], ".jpg", size=(10, 5))
    expected = box(0, 0, 5, 5, size=(10, 5))
    np.testing.assert_array_equal(load(result.dst / "masks" / "a.png"), expected)


def test_every_converter_is_registered() -> None:
    assert set(CONVERTERS) == {
        "isic",
        "ph2",
        "dermis",
        "dermquest",
        "jsrt",
        "nlm_mc",
        "nlm_sz",
        "kvasir",
        "cvc_clinicdb",
        "busi",
        "buid",
        "fuseg",
        "fetreg",
        "icfluid",
        "hippocampus",
        "liver",
    }


# --------------------------------------------------------------------------- errors


def test_unknown_name_lists_known(tmp_path: Path) -> None:
    with pytest.raises(GensegError, match="unknown dataset 'nope'.*kvasir"):
        prepare_dataset("nope", tmp_path, tmp_path / "out")


def test_missing_src_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(GensegError, match="nowhere.*does not exist"):
        prepare_dataset("kvasir", missing, tmp_path / "out")


def test_absent_layout_names_expected_pattern(tmp_path: Path) -> None:
    (tmp_path / "src" / "random").mkdir(parents=True)
    with pytest.raises(GensegError) as info:
        prepare_dataset("isic", tmp_path / "src", tmp_path / "out")
    message = str(info.value)
    assert str(tmp_path / "src") in message
    assert "ISIC2018_Task1-2_Training_Input/*.jpg" in message
    assert "ISIC2018_Task1_Training_GroundTruth/*_segmentation.png" in message
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


@pytest.mark.parametrize("name", sorted(CONVERTERS))
def test_every_converter_describes_its_layout(tmp_path: Path, name: str) -> None:
    (tmp_path / "src" / "unrelated").mkdir(parents=True)
    with pytest.raises(GensegError, match="expected") as info:
        prepare_dataset(name, tmp_path / "src", tmp_path / "out")
    assert str(tmp_path / "src") in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_fuseg_ids_repeated_across_splits_are_renamed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for folder in ("train", "validation"):
        rgb(src / folder / "images" / "0001.png")
        mask(src / folder / "labels" / "0001.png")

    result = run("fuseg", src, tmp_path)

    check_output(result.dst, ["0001", "val_0001"], ".jpg")
    assert split_rows(result.dst) == ["id,split", "0001,train", "val_0001,val"]
    assert any("val_0001" in w for w in result.warnings)


def _kvasir_src(root: Path) -> Path:
    rgb(root / "images" / "a.jpg")
    mask(root / "masks" / "a.jpg")
    return root


def test_existing_dst_needs_overwrite(tmp_path: Path) -> None:
    src = _kvasir_src(tmp_path / "src")
    dst = tmp_path / "out"
    (dst / "images").mkdir(parents=True)
    (dst / "images" / "keep.png").write_bytes(b"mine")

    with pytest.raises(GensegError, match="--overwrite") as info:
        prepare_dataset("kvasir", src, dst)
    assert str(dst) in str(info.value)
    assert (dst / "images" / "keep.png").read_bytes() == b"mine"

    result = prepare_dataset("kvasir", src, dst, overwrite=True)
    check_output(result.dst, ["a"], ".jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


def test_corrupt_image_leaves_nothing_behind(tmp_path: Path) -> None:
    src = _kvasir_src(tmp_path / "src")
    bad = src / "images" / "b.jpg"
    bad.write_bytes(b"this is not a jpeg")
    mask(src / "masks" / "b.jpg")

    with pytest.raises(GensegError, match="b.jpg"):
        prepare_dataset("kvasir", src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "out.partial").exists()


def test_failed_overwrite_keeps_old_dataset(tmp_path: Path) -> None:
    src = _kvasir_src(tmp_path / "src")
    dst = tmp_path / "out"
    prepare_dataset("kvasir", src, dst)
    (src / "images" / "b.jpg").write_bytes(b"broken")
    mask(src / "masks" / "b.jpg")

    with pytest.raises(GensegError, match="b.jpg"):
        prepare_dataset("kvasir", src, dst, overwrite=True)
    check_output(dst, ["a"], ".jpg")


def test_jsrt_options_only_for_jsrt(tmp_path: Path) -> None:
    src = _kvasir_src(tmp_path / "src")
    with pytest.raises(GensegError, match="labels"):
        prepare_dataset("kvasir", src, tmp_path / "out", labels=[1])


def _msd_task(root: Path, ids: list[str]) -> Path:
    task = root / "Task04_Hippocampus"
    for key in ids:
        _nifti(task / "imagesTr" / f"{key}.nii.gz")
        _nifti(task / "labelsTr" / f"{key}.nii.gz")
    return task


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_prepare_reads_the_official_archive(tmp_path: Path, kind: str) -> None:
    import tarfile
    import zipfile

    ids = ["hippocampus_001", "hippocampus_003", "hippocampus_004"]
    task = _msd_task(tmp_path / "download", ids)
    archive = tmp_path / f"Task04_Hippocampus.{kind}"
    if kind == "tar":
        with tarfile.open(archive, "w") as tar:
            tar.add(task, arcname=task.name)
    else:
        with zipfile.ZipFile(archive, "w") as zf:
            for path in task.rglob("*"):
                zf.write(path, path.relative_to(task.parent))
    result = run("hippocampus", archive, tmp_path)
    assert result.n_pairs == 3
    assert sorted(p.name for p in (result.dst / "labelsTr").iterdir()) == [
        f"{k}.nii.gz" for k in ids
    ]
    assert not list(tmp_path.glob(".unpack-*"))  # the temporary folder is gone


def test_an_archive_escaping_its_folder_is_refused(tmp_path: Path) -> None:
    import io
    import tarfile

    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(GensegError, match="cannot unpack"):
        run("hippocampus", archive, tmp_path / "x")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "x" / "out").exists()


def test_a_file_that_is_no_archive_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "Task04_Hippocampus.tar"
    bogus.write_bytes(b"not an archive")
    with pytest.raises(GensegError, match="not a directory or a tar/zip archive"):
        run("hippocampus", bogus, tmp_path)

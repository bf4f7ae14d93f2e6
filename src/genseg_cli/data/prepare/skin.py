"""Converters of skin photographs: dermoscopy (ISIC 2018, PH2), clinical photos (DermIS,
DermQuest) and foot-ulcer wounds (FUSeg). All are written as RGB JPEG."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from genseg_cli.data.prepare.job import ConversionJob, PrepareResult
from genseg_cli.data.prepare.sources import (
    JPG,
    PNG,
    find_root,
    folder_pairs,
    has_dirs,
    index_by_id,
    list_files,
    pair_by_id,
    stem_id,
    strip_suffix,
)

# --------------------------------------------------------------------------- dermoscopy

_ISIC_FOLDERS = (
    ("train", "ISIC2018_Task1-2_Training_Input", "ISIC2018_Task1_Training_GroundTruth"),
    ("val", "ISIC2018_Task1-2_Validation_Input", "ISIC2018_Task1_Validation_GroundTruth"),
    ("test", "ISIC2018_Task1-2_Test_Input", "ISIC2018_Task1_Test_GroundTruth"),
)


def convert_isic(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """ISIC 2018 Task 1; validation/test folders, when present, define split.csv."""
    job = ConversionJob("isic", src, dst, max_size)
    root = find_root(src, has_dirs(*_ISIC_FOLDERS[0][1:]))
    if root is None:
        raise job.layout_error()
    groups, warnings = [], []
    for split, input_name, truth_name in _ISIC_FOLDERS:
        present = [(root / n).is_dir() for n in (input_name, truth_name)]
        if not any(present):
            continue
        if not all(present):
            missing = truth_name if present[0] else input_name
            warnings.append(f"{split}: {missing} not found in {root}; {split} set skipped")
            continue
        # Only *.jpg: the input folders also hold LICENSE and ATTRIBUTION.txt.
        pairs, orphans = folder_pairs(
            root / input_name, root / truth_name, JPG, PNG, strip_suffix("_segmentation")
        )
        groups.append((split, pairs))
        warnings += orphans
    return job.finish_groups(groups, warnings, grey=False)


_PH2_DIR = "PH2 Dataset images"


def convert_ph2(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """PH2: one folder per case holding the dermoscopic image and the lesion mask."""
    job = ConversionJob("ph2", src, dst, max_size)
    if src.name == _PH2_DIR:
        cases = src
    else:
        root = find_root(src, has_dirs(_PH2_DIR))
        if root is None:
            raise job.layout_error()
        cases = root / _PH2_DIR
    images, masks = {}, {}
    for case in sorted(p for p in cases.iterdir() if p.is_dir() and not p.name.startswith(".")):
        image = case / f"{case.name}_Dermoscopic_Image" / f"{case.name}.bmp"
        mask = case / f"{case.name}_lesion" / f"{case.name}_lesion.bmp"
        if image.is_file():
            images[case.name] = image
        if mask.is_file():
            masks[case.name] = mask
    return job.finish(*pair_by_id(images, masks, where=str(cases)), grey=False)


_SKIN_IMAGES = (*JPG, ".png", ".bmp")


def _skin_image_id(path: Path) -> str:
    # The Waterloo release names photos <id>_orig.jpg beside <id>_contour.png.
    stem = stem_id(path)
    return stem[: -len("_orig")] if stem.endswith("_orig") else stem


def _convert_skin(name: str, src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """DermIS / DermQuest: contour masks beside the photos, or an images/masks couple."""
    job = ConversionJob(name, src, dst, max_size)
    root = find_root(src, has_dirs("images", "masks"))
    if root is not None:
        return job.finish(*folder_pairs(root / "images", root / "masks", _SKIN_IMAGES), grey=False)
    contours = [p for p in sorted(src.rglob("*_contour.png")) if not p.name.startswith(".")]
    photos = [p for folder in sorted({p.parent for p in contours}) for p in list_files(folder, JPG)]
    images = index_by_id(photos, _skin_image_id)
    masks = index_by_id(contours, strip_suffix("_contour"))
    return job.finish(*pair_by_id(images, masks, where=str(src)), grey=False)


convert_dermis = partial(_convert_skin, "dermis")
convert_dermquest = partial(_convert_skin, "dermquest")


# --------------------------------------------------------------------------- foot ulcers


def convert_fuseg(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """FUSeg foot ulcers: train/ and validation/ give the split; test/ has no labels."""
    job = ConversionJob("fuseg", src, dst, max_size)
    root = find_root(src, has_dirs("train/images", "train/labels"))
    if root is None:
        raise job.layout_error()
    groups, warnings = [], []
    for split, folder in (("train", root / "train"), ("val", root / "validation")):
        if folder.is_dir():
            pairs, orphans = folder_pairs(folder / "images", folder / "labels")
            groups.append((split, pairs))
            warnings += orphans
    return job.finish_groups(groups, warnings, grey=False)

"""Converters from each dataset's official distribution to genseg's layout, one per source.

A converter takes (src, dst, max_size) and writes the pairs (and split.csv where the source
defines a split) into dst; `genseg_cli.data.prepare` runs it into a temporary folder, unpacks
archives first and publishes the result atomically.

>>> CONVERTERS["kvasir"](Path("downloads/kvasir-seg"), Path("data/kvasir.partial"), None)
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from genseg_cli.data.prepare_io import (
    JPG,
    NIFTI,
    PNG,
    SPLIT_FILE,
    MaskRule,
    Pair,
    combine_groups,
    copy_volumes,
    describe_ids,
    find_root,
    find_roots,
    has_dirs,
    index_by_id,
    list_files,
    pair_by_id,
    random_split,
    read_id_list,
    read_jsrt_raw,
    require_all_parts,
    stem_id,
    strip_suffix,
    write_pairs,
    write_split,
)
from genseg_cli.errors import GensegError

log = logging.getLogger(__name__)


@dataclass
class PrepareResult:
    """What a conversion produced: pairs written, whether split.csv exists, what was skipped."""

    name: str
    dst: Path
    n_pairs: int
    has_split: bool
    warnings: list[str] = field(default_factory=list)


Converter = Callable[..., PrepareResult]


_SKIN = "<id>.jpg next to <id>_contour.png (any folder below src), or images/ + masks/<id>.png"
_MSD = "{task}/imagesTr/*.nii.gz and {task}/labelsTr/*.nii.gz ({task} may be src itself)"
# The layout each converter looks for, quoted in the error when src does not match it.
_EXPECTED = {
    "isic": "ISIC2018_Task1-2_Training_Input/*.jpg and "
    "ISIC2018_Task1_Training_GroundTruth/*_segmentation.png",
    "ph2": "'PH2 Dataset images/IMDxxx/IMDxxx_Dermoscopic_Image/IMDxxx.bmp' and "
    "'.../IMDxxx_lesion/IMDxxx_lesion.bmp' (in src or one folder below)",
    "dermis": _SKIN,
    "dermquest": _SKIN,
    "jsrt": "All247images/*.IMG with SCR masks '.../masks/left lung/*.gif' and "
    "'.../masks/right lung/*.gif', or images/*.png with masks/*.png",
    "nlm_mc": "CXR_png/MCUCXR_*.png with ManualMask/leftMask/*.png and ManualMask/rightMask/*.png",
    "nlm_sz": "CXR_png/CHNCXR_*.png with mask/CHNCXR_*_mask.png",
    "kvasir": "Kvasir-SEG/images/<id>.jpg and Kvasir-SEG/masks/<id>.jpg "
    "(Kvasir-SEG may be src itself), optional train.txt/val.txt",
    "cvc_clinicdb": "Original/<n>.tif and 'Ground Truth/<n>.tif' "
    "(or PNG/Original and 'PNG/Ground Truth')",
    "busi": "Dataset_BUSI_with_GT/<class>/'<class> (<n>).png' with '<class> (<n>)_mask.png' "
    "(and _mask_1.png, ...) for class in benign, malignant, normal",
    "fuseg": "train/images/<id>.png with train/labels/<id>.png (and validation/images, labels)",
    "fetreg": "Video<nnn>/images/*.png with Video<nnn>/labels/*.png (labels 0..3, 1 = vessel)",
    "icfluid": "image/<id>.png with mask/<id>.png (or images/ with masks/)",
    "hippocampus": _MSD.format(task="Task04_Hippocampus"),
    "liver": _MSD.format(task="Task03_Liver"),
}


@dataclass(frozen=True)
class _Job:
    """One conversion request; knows how to report a source that does not match its layout."""

    name: str
    src: Path
    dst: Path
    max_size: int | None

    def layout_error(self, problem: str = "no {name} dataset found") -> GensegError:
        return GensegError(
            f"{problem.format(name=self.name)} in {self.src}: expected {_EXPECTED[self.name]}"
        )

    def finish(
        self,
        pairs: list[Pair],
        warnings: list[str],
        split: dict[str, str] | None = None,
        **write_options: Any,
    ) -> PrepareResult:
        """Write the pairs (and split) of a 2D set; finding no pair at all is an error."""
        if not pairs:
            raise self.layout_error("no image with a matching mask")
        written, skipped = write_pairs(pairs, self.dst, max_size=self.max_size, **write_options)
        has_split = write_split(self.dst, split, written) if split else False
        return PrepareResult(self.name, self.dst, len(written), has_split, warnings + skipped)

    def finish_groups(
        self, groups: Sequence[tuple[str, list[Pair]]], warnings: list[str], **write_options: Any
    ) -> PrepareResult:
        """Like :meth:`finish` for pairs grouped by split; a single split writes no split.csv."""
        pairs, split, renamed = combine_groups(groups)
        several = len({name for name, _ in groups}) > 1
        return self.finish(pairs, warnings + renamed, split if several else None, **write_options)


def _folder_pairs(
    image_dir: Path,
    mask_dir: Path,
    image_suffixes: tuple[str, ...] = PNG,
    mask_suffixes: tuple[str, ...] = PNG,
    mask_id: Callable[[Path], str | None] = stem_id,
) -> tuple[list[Pair], list[str]]:
    """Pairs of an ``images``/``masks`` style folder couple matched by file id."""
    images = index_by_id(list_files(image_dir, image_suffixes), stem_id)
    masks = index_by_id(list_files(mask_dir, mask_suffixes), mask_id)
    return pair_by_id(images, masks, where=str(image_dir.parent))


# --------------------------------------------------------------------------- dermoscopy

_ISIC_FOLDERS = (
    ("train", "ISIC2018_Task1-2_Training_Input", "ISIC2018_Task1_Training_GroundTruth"),
    ("val", "ISIC2018_Task1-2_Validation_Input", "ISIC2018_Task1_Validation_GroundTruth"),
    ("test", "ISIC2018_Task1-2_Test_Input", "ISIC2018_Task1_Test_GroundTruth"),
)


def convert_isic(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """ISIC 2018 Task 1; validation/test folders, when present, define split.csv."""
    job = _Job("isic", src, dst, max_size)
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
        pairs, orphans = _folder_pairs(
            root / input_name, root / truth_name, JPG, PNG, strip_suffix("_segmentation")
        )
        groups.append((split, pairs))
        warnings += orphans
    return job.finish_groups(groups, warnings, grey=False)


_PH2_DIR = "PH2 Dataset images"


def convert_ph2(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """PH2: one folder per case holding the dermoscopic image and the lesion mask."""
    job = _Job("ph2", src, dst, max_size)
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
    job = _Job(name, src, dst, max_size)
    root = find_root(src, has_dirs("images", "masks"))
    if root is not None:
        return job.finish(*_folder_pairs(root / "images", root / "masks", _SKIN_IMAGES), grey=False)
    contours = [p for p in sorted(src.rglob("*_contour.png")) if not p.name.startswith(".")]
    photos = [p for folder in sorted({p.parent for p in contours}) for p in list_files(folder, JPG)]
    images = index_by_id(photos, _skin_image_id)
    masks = index_by_id(contours, strip_suffix("_contour"))
    return job.finish(*pair_by_id(images, masks, where=str(src)), grey=False)


convert_dermis = partial(_convert_skin, "dermis")
convert_dermquest = partial(_convert_skin, "dermquest")


# --------------------------------------------------------------------------- chest X-ray


def convert_jsrt(
    src: Path,
    dst: Path,
    max_size: int | None,
    labels: list[int] | None = None,
    size: int = 2048,
) -> PrepareResult:
    """JSRT images with SCR lung masks (left OR right), or an already converted PNG set.

    ``labels`` picks mask values to keep from label maps (e.g. [150, 200] keeps lungs and
    drops the heart at 250); default: every non-zero value. ``size`` is the raw image side.
    Images are resampled onto the mask grid because SCR masks are half JSRT's resolution.
    """
    job = _Job("jsrt", src, dst, max_size)
    options: dict[str, Any] = {"grey": True, "fit_image_to_mask": True}
    options["rule"] = MaskRule(keep=tuple(labels) if labels else None)
    raw_root = find_root(src, has_dirs("All247images"), depth=2)
    lung_roots = find_roots(src, has_dirs("left lung", "right lung"), depth=4)
    if raw_root is not None and lung_roots:
        images = index_by_id(list_files(raw_root / "All247images", (".img",)), stem_id)
        parts = {
            side: index_by_id(
                (p for root in lung_roots for p in list_files(root / side, (".gif", ".png"))),
                stem_id,
            )
            for side in ("left lung", "right lung")
        }
        masks, warnings = require_all_parts(parts, where="SCR masks")
        pairs, orphans = pair_by_id(images, masks, where=str(raw_root / "All247images"))
        options["reader"] = partial(read_jsrt_raw, size=size)
        return job.finish(pairs, warnings + orphans, **options)
    root = find_root(src, has_dirs("images", "masks"))
    if root is None:
        raise job.layout_error()
    return job.finish(*_folder_pairs(root / "images", root / "masks"), **options)


def convert_nlm_mc(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """NLM Montgomery County: left and right lung masks merged into one."""
    job = _Job("nlm_mc", src, dst, max_size)
    root = find_root(src, has_dirs("CXR_png", "ManualMask"))
    if root is None:
        raise job.layout_error()
    images = index_by_id(list_files(root / "CXR_png", PNG), stem_id)
    parts = {
        side: index_by_id(list_files(root / "ManualMask" / side, PNG), stem_id)
        for side in ("leftMask", "rightMask")
    }
    masks, warnings = require_all_parts(parts, where=str(root / "ManualMask"))
    pairs, orphans = pair_by_id(images, masks, where=str(root / "CXR_png"))
    return job.finish(pairs, warnings + orphans, grey=True)


def convert_nlm_sz(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """NLM Shenzhen: about 100 images have no mask; they are skipped with a warning."""
    job = _Job("nlm_sz", src, dst, max_size)
    root = find_root(src, has_dirs("CXR_png", "mask"))
    if root is None:
        raise job.layout_error()
    pairs, warnings = _folder_pairs(root / "CXR_png", root / "mask", mask_id=strip_suffix("_mask"))
    return job.finish(pairs, warnings, grey=True)


# --------------------------------------------------------------------------- endoscopy


def convert_kvasir(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """Kvasir-SEG; JPEG masks are thresholded at 127 to drop compression noise.

    Optional ``train.txt``/``val.txt``/``test.txt`` (one id per line, in src or Kvasir-SEG)
    become split.csv; ids they do not list go to train with a warning.
    """
    job = _Job("kvasir", src, dst, max_size)
    root = find_root(src, has_dirs("images", "masks"))
    if root is None:
        raise job.layout_error()
    pairs, warnings = _folder_pairs(root / "images", root / "masks", JPG, (*JPG, *PNG))
    split: dict[str, str] = {}
    for name in ("train", "val", "test"):
        for folder in dict.fromkeys((src, root)):
            if (folder / f"{name}.txt").is_file():
                split.update(dict.fromkeys(read_id_list(folder / f"{name}.txt"), name))
    unlisted = [p.id for p in pairs if p.id not in split]
    if split and unlisted:
        warnings.append(
            f"{len(unlisted)} id(s) in no split file put in train: {describe_ids(unlisted)}"
        )
        split.update(dict.fromkeys(unlisted, "train"))
    return job.finish(pairs, warnings, split, grey=False, rule=MaskRule(threshold=127))


def convert_cvc_clinicdb(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """CVC-ClinicDB, TIFF release or the PNG copy."""
    job = _Job("cvc_clinicdb", src, dst, max_size)
    root = find_root(src, has_dirs("Original", "Ground Truth"), depth=2)
    if root is None:
        raise job.layout_error()
    suffixes = (".tif", ".tiff", ".png")
    pairs, warnings = _folder_pairs(root / "Original", root / "Ground Truth", suffixes, suffixes)
    return job.finish(pairs, warnings, grey=False)


# --------------------------------------------------------------------------- other 2D

_BUSI_CLASSES = ("benign", "malignant", "normal")
_BUSI_FILE = re.compile(r"^[a-z]+ \((?P<n>\d+)\)(?P<mask>_mask(?:_\d+)?)?\.png$", re.IGNORECASE)


def convert_busi(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """BUSI breast ultrasound; several masks of one image are merged, ids are ``<class>_<n>``."""
    job = _Job("busi", src, dst, max_size)
    root = find_root(src, lambda d: any((d / c).is_dir() for c in _BUSI_CLASSES))
    if root is None:
        raise job.layout_error()
    images: dict[str, Path] = {}
    masks: dict[str, list[Path]] = {}
    for cls in _BUSI_CLASSES:
        for path in list_files(root / cls, PNG):
            match = _BUSI_FILE.match(path.name)
            if match is None:
                continue
            key = f"{cls}_{int(match['n'])}"
            if match["mask"]:
                masks.setdefault(key, []).append(path)
            else:
                images[key] = path
    merged = {key: tuple(sorted(parts)) for key, parts in masks.items()}
    return job.finish(*pair_by_id(images, merged, where=str(root)), grey=False)


def convert_fuseg(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """FUSeg foot ulcers: train/ and validation/ give the split; test/ has no labels."""
    job = _Job("fuseg", src, dst, max_size)
    root = find_root(src, has_dirs("train/images", "train/labels"))
    if root is None:
        raise job.layout_error()
    groups, warnings = [], []
    for split, folder in (("train", root / "train"), ("val", root / "validation")):
        if folder.is_dir():
            pairs, orphans = _folder_pairs(folder / "images", folder / "labels")
            groups.append((split, pairs))
            warnings += orphans
    return job.finish_groups(groups, warnings, grey=False)


_VIDEO = re.compile(r"^Video\d+$")
_FETREG_VESSEL = 1


def _videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _VIDEO.match(p.name))


def convert_fetreg(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """FetReg 2021 placental vessels (label 1 of the 0..3 maps).

    The split is by video so frames of one video never sit on both sides: in the sorted
    video list every 5th video (index % 5 == 4) is val, the others train. With fewer than
    five videos there is no val side, so no split.csv is written.
    """
    job = _Job("fetreg", src, dst, max_size)
    root = find_root(src, lambda d: bool(_videos(d)))
    if root is None:
        raise job.layout_error()
    groups, warnings = [], []
    for index, video in enumerate(_videos(root)):
        pairs, orphans = _folder_pairs(video / "images", video / "labels")
        groups.append(("val" if index % 5 == 4 else "train", pairs))
        warnings += orphans
    return job.finish_groups(groups, warnings, grey=False, rule=MaskRule(keep=(_FETREG_VESSEL,)))


def convert_icfluid(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """Intraretinal cystoid fluid OCT slices."""
    job = _Job("icfluid", src, dst, max_size)
    for image_dir, mask_dir in (("image", "mask"), ("images", "masks")):
        root = find_root(src, has_dirs(image_dir, mask_dir))
        if root is not None:
            return job.finish(*_folder_pairs(root / image_dir, root / mask_dir), grey=True)
    raise job.layout_error()


# --------------------------------------------------------------------------- 3D (MSD)


def _convert_msd(name: str, task: str, src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """An MSD task copied as is; split.csv is made (80/20, seed 0) unless the source has one."""
    job = _Job(name, src, dst, max_size)
    root = next((d for d in (src, src / task) if has_dirs("imagesTr", "labelsTr")(d)), None)
    if root is None:
        raise job.layout_error()
    images = index_by_id(list_files(root / "imagesTr", NIFTI), stem_id)
    labels = index_by_id(list_files(root / "labelsTr", NIFTI), stem_id)
    pairs, warnings = pair_by_id(images, labels, where=str(root))
    if not pairs:
        raise job.layout_error("no image with a matching label")
    if max_size is not None:
        warnings.append("max_size ignored: 3D volumes are copied unchanged")
    copy_volumes(pairs, dst)
    for extra in ("dataset.json", SPLIT_FILE):
        if (root / extra).is_file():
            shutil.copy2(root / extra, dst / extra)
    ids = [pair.id for pair in pairs]
    if not (dst / SPLIT_FILE).is_file():
        write_split(dst, random_split(ids), ids)
    return PrepareResult(name, dst, len(pairs), True, warnings)


convert_hippocampus = partial(_convert_msd, "hippocampus", "Task04_Hippocampus")
convert_liver = partial(_convert_msd, "liver", "Task03_Liver")


CONVERTERS: dict[str, Converter] = {
    "isic": convert_isic,
    "ph2": convert_ph2,
    "dermis": convert_dermis,
    "dermquest": convert_dermquest,
    "jsrt": convert_jsrt,
    "nlm_mc": convert_nlm_mc,
    "nlm_sz": convert_nlm_sz,
    "kvasir": convert_kvasir,
    "cvc_clinicdb": convert_cvc_clinicdb,
    "busi": convert_busi,
    "buid": convert_busi,
    "fuseg": convert_fuseg,
    "fetreg": convert_fetreg,
    "icfluid": convert_icfluid,
    "hippocampus": convert_hippocampus,
    "liver": convert_liver,
}

"""Converters of endoscopy frames: colonoscopy (Kvasir-SEG, CVC-ClinicDB) and fetoscopy
(FetReg 2021). All are written as RGB JPEG."""

from __future__ import annotations

import re
from pathlib import Path

from genseg_cli.data.prepare.images import MaskRule
from genseg_cli.data.prepare.job import ConversionJob, PrepareResult
from genseg_cli.data.prepare.sources import (
    JPG,
    PNG,
    describe_ids,
    find_root,
    folder_pairs,
    has_dirs,
)
from genseg_cli.data.prepare.split_files import read_id_list


def convert_kvasir(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """Kvasir-SEG; JPEG masks are thresholded at 127 to drop compression noise.

    Optional ``train.txt``/``val.txt``/``test.txt`` (one id per line, in src or Kvasir-SEG)
    become split.csv; ids they do not list go to train with a warning.
    """
    job = ConversionJob("kvasir", src, dst, max_size)
    root = find_root(src, has_dirs("images", "masks"))
    if root is None:
        raise job.layout_error()
    pairs, warnings = folder_pairs(root / "images", root / "masks", JPG, (*JPG, *PNG))
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
    job = ConversionJob("cvc_clinicdb", src, dst, max_size)
    root = find_root(src, has_dirs("Original", "Ground Truth"), depth=2)
    if root is None:
        raise job.layout_error()
    suffixes = (".tif", ".tiff", ".png")
    pairs, warnings = folder_pairs(root / "Original", root / "Ground Truth", suffixes, suffixes)
    return job.finish(pairs, warnings, grey=False)


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
    job = ConversionJob("fetreg", src, dst, max_size)
    root = find_root(src, lambda d: bool(_videos(d)))
    if root is None:
        raise job.layout_error()
    groups, warnings = [], []
    for index, video in enumerate(_videos(root)):
        pairs, orphans = folder_pairs(video / "images", video / "labels")
        groups.append(("val" if index % 5 == 4 else "train", pairs))
        warnings += orphans
    return job.finish_groups(groups, warnings, grey=False, rule=MaskRule(keep=(_FETREG_VESSEL,)))

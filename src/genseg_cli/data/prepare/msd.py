"""Converters of Medical Segmentation Decathlon tasks (hippocampus, liver): 3D volumes.

The NIfTI files are copied unchanged into ``imagesTr``/``labelsTr`` after a header check;
split.csv is kept from the source or drawn (80/20, seed 0).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from genseg_cli.core.errors import DataContractError
from genseg_cli.data.prepare.job import ConversionJob, PrepareResult
from genseg_cli.data.prepare.sources import (
    NIFTI,
    SourcePair,
    has_dirs,
    index_by_id,
    list_files,
    pair_by_id,
    stem_id,
)
from genseg_cli.data.prepare.split_files import SPLIT_FILE, random_split, write_split


def copy_volumes(pairs: Sequence[SourcePair], dst: Path) -> None:
    """Copy NIfTI image/label pairs to ``dst/imagesTr`` and ``dst/labelsTr`` after a header check.

    Only headers are read (cheap even for CT volumes); an unreadable file or an image and
    label of different shapes would break training much later, so it fails here instead.
    """
    import nibabel  # deferred: only the 3D converters need it

    for folder in ("imagesTr", "labelsTr"):
        (dst / folder).mkdir(parents=True, exist_ok=True)
    for pair in pairs:
        label = pair.masks[0]
        shapes = []
        for path in (pair.image, label):
            try:
                shapes.append(tuple(nibabel.load(path).shape[:3]))
            except Exception as exc:  # nibabel raises many unrelated types for bad files
                raise DataContractError(f"cannot read image {path}: {exc}") from exc
        if shapes[0] != shapes[1]:
            raise DataContractError(
                f"{pair.image} has shape {shapes[0]} but its label {label} has {shapes[1]}"
            )
        shutil.copy2(pair.image, dst / "imagesTr" / pair.image.name)
        shutil.copy2(label, dst / "labelsTr" / label.name)


def _convert_msd(name: str, task: str, src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """An MSD task copied as is; split.csv is made (80/20, seed 0) unless the source has one."""
    job = ConversionJob(name, src, dst, max_size)
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

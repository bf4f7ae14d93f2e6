"""Converter of breast ultrasound (BUSI, also registered as BUID)."""

from __future__ import annotations

import re
from pathlib import Path

from genseg_cli.data.prepare.job import ConversionJob, PrepareResult
from genseg_cli.data.prepare.sources import PNG, find_root, list_files, pair_by_id

_BUSI_CLASSES = ("benign", "malignant", "normal")
_BUSI_FILE = re.compile(r"^[a-z]+ \((?P<n>\d+)\)(?P<mask>_mask(?:_\d+)?)?\.png$", re.IGNORECASE)


def convert_busi(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """BUSI breast ultrasound; several masks of one image are merged, ids are ``<class>_<n>``."""
    job = ConversionJob("busi", src, dst, max_size)
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

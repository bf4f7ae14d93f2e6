"""Converters of chest X-rays (JSRT with SCR lung masks, NLM Montgomery and Shenzhen).

All are written as grey PNG; left and right lung masks are merged into one target.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from genseg_cli.data.prepare.images import MaskRule, read_jsrt_raw
from genseg_cli.data.prepare.job import ConversionJob, PrepareResult
from genseg_cli.data.prepare.sources import (
    PNG,
    find_root,
    find_roots,
    folder_pairs,
    has_dirs,
    index_by_id,
    list_files,
    pair_by_id,
    require_all_parts,
    stem_id,
    strip_suffix,
)


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
    job = ConversionJob("jsrt", src, dst, max_size)
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
    return job.finish(*folder_pairs(root / "images", root / "masks"), **options)


def convert_nlm_mc(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """NLM Montgomery County: left and right lung masks merged into one."""
    job = ConversionJob("nlm_mc", src, dst, max_size)
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
    job = ConversionJob("nlm_sz", src, dst, max_size)
    root = find_root(src, has_dirs("CXR_png", "mask"))
    if root is None:
        raise job.layout_error()
    pairs, warnings = folder_pairs(root / "CXR_png", root / "mask", mask_id=strip_suffix("_mask"))
    return job.finish(pairs, warnings, grey=True)

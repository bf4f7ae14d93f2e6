"""Converter of retinal OCT slices (intraretinal cystoid fluid), written as grey PNG."""

from __future__ import annotations

from pathlib import Path

from genseg_cli.data.prepare.job import ConversionJob, PrepareResult
from genseg_cli.data.prepare.sources import find_root, folder_pairs, has_dirs


def convert_icfluid(src: Path, dst: Path, max_size: int | None) -> PrepareResult:
    """Intraretinal cystoid fluid OCT slices."""
    job = ConversionJob("icfluid", src, dst, max_size)
    for image_dir, mask_dir in (("image", "mask"), ("images", "masks")):
        root = find_root(src, has_dirs(image_dir, mask_dir))
        if root is not None:
            return job.finish(*folder_pairs(root / image_dir, root / mask_dir), grey=True)
    raise job.layout_error()

"""Reading source images and masks, and writing them as standard-layout 2D pairs.

:func:`write_pairs` applies one set of rules to every 2D dataset: read the image, merge and
binarise its mask files, check the sizes agree, cap the size and write
``images/<id>.{png|jpg}`` + ``masks/<id>.png`` (0/255).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from genseg_cli.core.errors import DataContractError
from genseg_cli.data.io import WIDE_GREY, stretch_to_uint8
from genseg_cli.data.prepare.sources import SourcePair

log = logging.getLogger(__name__)

IMAGE_DIR = "images"
MASK_DIR = "masks"


@dataclass(frozen=True)
class MaskRule:
    """Which source mask values are foreground.

    ``keep`` selects exact label values (multi-class label maps); otherwise every value above
    ``threshold`` counts, 0 for clean masks and 127 for JPEG masks whose edges carry noise.
    """

    threshold: int = 0
    keep: tuple[int, ...] | None = None


class SkipPair(Exception):
    """A sample that cannot be used (its parts disagree); reported as a warning, not a failure."""


# --------------------------------------------------------------------------- pixels


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    if image.mode in WIDE_GREY:
        image = Image.fromarray(stretch_to_uint8(np.asarray(image)))
    return image.convert(mode)


def read_jsrt_raw(path: Path, size: int = 2048) -> Image.Image:
    """A JSRT ``.IMG`` (headerless 12-bit big-endian square) as an 8-bit 'L' image.

    The side is ``size`` when the byte count fits, else sqrt(pixels), so cropped or test
    files of another size still load. Values are stretched to 0..255 then inverted: raw
    JSRT stores attenuation, and the usual renderings (and SCR masks) show lungs dark.
    """
    n_bytes = path.stat().st_size
    n_pixels = n_bytes // 2
    side = size if n_pixels == size * size else int(np.sqrt(n_pixels) + 0.5)
    if n_bytes == 0 or n_bytes % 2 or side * side != n_pixels:
        raise DataContractError(
            f"cannot read image {path}: {n_bytes} bytes is not a square 16-bit raw image"
        )
    values = np.fromfile(path, dtype=">u2").reshape(side, side)
    return Image.fromarray(255 - stretch_to_uint8(values))


def read_source_image(path: Path, mode: str) -> Image.Image:
    """Open ``path`` as an 8-bit ``mode`` ('L' or 'RGB') image, or fail naming the file.

    EXIF orientation is deliberately ignored: the official masks are drawn on the stored
    pixel grid, so rotating only the image would misalign the pair.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return _to_mode(image, mode)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataContractError(f"cannot read image {path}: {exc}") from exc


def _read_mask_values(path: Path, raw: bool) -> np.ndarray:
    try:
        with Image.open(path) as mask:
            mask.load()
            # Label maps need their stored values; binary masks in palette or RGB form are
            # safer through 'L', where black stays 0 whatever the palette order.
            if (raw and mask.mode in ("L", "P")) or mask.mode in WIDE_GREY:
                return np.asarray(mask)
            return np.asarray(mask.convert("L"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataContractError(f"cannot read mask {path}: {exc}") from exc


def binarise(values: np.ndarray, rule: MaskRule) -> np.ndarray:
    """Boolean foreground of a label array under ``rule``."""
    if rule.keep is not None:
        return np.isin(values, rule.keep)
    return values > rule.threshold


def merge_masks(paths: Sequence[Path], rule: MaskRule) -> np.ndarray:
    """OR of the binarised mask files; parts of different sizes cannot be merged (SkipPair)."""
    merged: np.ndarray | None = None
    for path in paths:
        part = binarise(_read_mask_values(path, raw=rule.keep is not None), rule)
        if merged is None:
            merged = part
        elif merged.shape != part.shape:
            raise SkipPair(f"mask parts differ in size: {paths[0]} vs {path}; skipped")
        else:
            merged |= part
    if merged is None:
        raise SkipPair("no mask file")
    return merged


def cap_size(
    image: Image.Image, mask: Image.Image, max_size: int | None
) -> tuple[Image.Image, Image.Image]:
    """Shrink both so the long side is at most ``max_size``; smaller images are left alone.

    Masks use NEAREST so they stay exactly 0/255.
    """
    width, height = image.size
    if max_size is None or max(width, height) <= max_size:
        return image, mask
    scale = max_size / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS), mask.resize(size, Image.Resampling.NEAREST)


# --------------------------------------------------------------------------- writing


def write_pairs(
    pairs: Sequence[SourcePair],
    dst: Path,
    *,
    grey: bool,
    max_size: int | None,
    rule: MaskRule = MaskRule(),
    reader: Callable[[Path], Image.Image] | None = None,
    fit_image_to_mask: bool = False,
) -> tuple[list[str], list[str]]:
    """Write ``dst/images/<id>.{png|jpg}`` and ``dst/masks/<id>.png`` for every pair.

    ``grey`` selects 'L' PNG (X-rays, OCT) over RGB JPEG quality 95 (photographs).
    ``fit_image_to_mask`` resamples the image onto the mask grid for sets whose masks were
    drawn at a lower resolution (JSRT/SCR); elsewhere a size mismatch means the pair is not
    aligned and it is skipped with a warning. Returns (written ids, warnings).
    """
    image_dir, mask_dir = dst / IMAGE_DIR, dst / MASK_DIR
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    mode, ext = ("L", ".png") if grey else ("RGB", ".jpg")
    read = reader or (lambda path: read_source_image(path, mode))
    written: list[str] = []
    warnings: list[str] = []
    for number, pair in enumerate(pairs, start=1):
        image = read(pair.image)
        try:
            foreground = merge_masks(pair.masks, rule)
        except SkipPair as exc:
            warnings.append(f"{pair.id}: {exc}")
            continue
        mask_size = (foreground.shape[1], foreground.shape[0])
        if image.size != mask_size:
            if not fit_image_to_mask:
                warnings.append(
                    f"{pair.id}: image is {image.size[0]}x{image.size[1]} but mask is "
                    f"{mask_size[0]}x{mask_size[1]}; skipped"
                )
                continue
            image = image.resize(mask_size, Image.Resampling.LANCZOS)
        mask = Image.fromarray(np.where(foreground, 255, 0).astype(np.uint8))
        image, mask = cap_size(image, mask, max_size)
        if grey:
            image.save(image_dir / f"{pair.id}{ext}", format="PNG")
        else:
            image.save(image_dir / f"{pair.id}{ext}", format="JPEG", quality=95)
        mask.save(mask_dir / f"{pair.id}.png", format="PNG")
        written.append(pair.id)
        if number % 500 == 0:
            log.info("written %d/%d pairs", number, len(pairs))
    return written, warnings

"""Reading the standard 2D layout: images/<id>.<ext> and masks/<id>.png."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from genseg_cli.core.errors import DataContractError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MODES = {1: "L", 3: "RGB"}


def index_folder(folder: Path) -> dict[str, Path]:
    """Map id (file stem) to path for every image file in `folder`, skipping hidden files."""
    if not folder.is_dir():
        return {}
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            if path.stem in found:
                raise DataContractError(
                    f"two files share the id '{path.stem}' in {folder}: "
                    f"{found[path.stem].name} and {path.name}; keep one"
                )
            found[path.stem] = path
    return found


def open_image(path: Path) -> Image.Image:
    """Open and fully decode a file, naming it when it is unreadable or truncated."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise DataContractError(f"cannot read {path}: {err}; replace or remove this file") from err


def read_image(path: Path, channels: int) -> np.ndarray:
    """An image as uint8 HxWxC with C = `channels` (grey and RGB are converted as needed)."""
    array = np.asarray(open_image(path).convert(MODES[channels]), dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


def read_mask(path: Path) -> tuple[np.ndarray, int]:
    """A binary mask (bool HxW, foreground = value > 127) and its count of pixels not 0 or 255."""
    array = np.asarray(open_image(path).convert("L"), dtype=np.uint8)
    nonbinary = int(np.count_nonzero((array != 0) & (array != 255)))
    return array > 127, nonbinary


def read_split_table(root: Path) -> dict[str, str] | None:
    """`split.csv` (id,split) of a dataset folder as {id: split}, or None when there is none."""
    path = root / "split.csv"
    if not path.is_file():
        return None
    import csv

    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"id", "split"} <= set(reader.fieldnames):
            raise DataContractError(
                f"{path} must have the columns id,split; found {reader.fieldnames}"
            )
        return {row["id"]: row["split"].strip() for row in reader}

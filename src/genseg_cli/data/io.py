"""Reading the standard 2D layout: images/<id>.<ext> and masks/<id>.png (0/255 or 0/1)."""

from __future__ import annotations

from dataclasses import dataclass
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


# Grey modes of more than 8 bits (16-bit PNG/TIFF X-rays, often holding 12 bits). PIL's own
# convert("L") clips every value above 255, turning such images white; they are stretched instead,
# each image from its own min..max to 0..255, the rule `genseg data prepare` applies to them.
WIDE_GREY = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    """Min-max stretch to 0..255 (uint8); a constant image becomes black."""
    values = values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def read_image(path: Path, channels: int) -> np.ndarray:
    """An image as uint8 HxWxC with C = `channels` (grey and RGB are converted as needed; 16-bit
    grey is stretched from its own min..max to 0..255, see `WIDE_GREY`)."""
    picture = open_image(path)
    if picture.mode in WIDE_GREY:
        values = np.asarray(picture)
        if not np.isfinite(values).all():
            raise DataContractError(f"{path} holds NaN or infinite values; replace this file")
        grey = stretch_to_uint8(values)
        array = grey if channels == 1 else np.repeat(grey[..., None], channels, axis=-1)
    else:
        array = np.asarray(picture.convert(MODES[channels]), dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


# The mask conventions genseg reads: 0/255 (its own, and most datasets') and 0/1 (nnU-Net's, and
# `genseg generate format=nnunet`'s); a 0/1 mask is read as 0/255. Anything else is refused: a
# mask of other values binarised at some threshold would silently train on wrong labels.
CONVENTIONS = {"0/255": {0, 255}, "0/1": {0, 1}}
SHOWN_VALUES = 6


class MaskValuesError(DataContractError):
    """A mask whose values are neither 0/255 nor 0/1, or a colour mask; `values` lists them."""

    def __init__(self, message: str, values: str) -> None:
        super().__init__(message)
        self.values = values


@dataclass(frozen=True)
class MaskFile:
    """One mask as stored: foreground (bool H x W), its convention ("0/255", "0/1", or None
    for an empty mask, which fits both) and whether it is stored as RGB with equal channels."""

    foreground: np.ndarray
    convention: str | None
    grey_rgb: bool = False


def _values(array: np.ndarray) -> str:
    if array.ndim == 3:  # colours
        pixels = array.reshape(-1, array.shape[-1])
        shown = [str(tuple(int(c) for c in v)) for v in np.unique(pixels, axis=0)]
    else:
        shown = [f"{v:g}" for v in np.unique(array)]
    more = len(shown) - SHOWN_VALUES
    return ", ".join(shown[:SHOWN_VALUES]) + (f" and {more} more" if more > 0 else "")


def read_mask_file(path: Path) -> MaskFile:
    """Read a mask and its convention; MaskValuesError naming the file and its values when it
    is not a one-channel 0/255 or 0/1 mask (an RGB mask with three equal channels counts as one
    channel). Palette masks are read by their indices, not their colours."""
    picture = open_image(path)
    if picture.mode == "1":
        picture = picture.convert("L")
    elif picture.mode not in ("L", "P", "I", "I;16", "F", "RGB", "RGBA", "LA"):
        picture = picture.convert("RGB")
    array = np.asarray(picture)
    grey_rgb = False
    if picture.mode in ("RGBA", "LA") and array[..., -1].min() < 255:
        # transparency is not a label: a shape drawn in the alpha channel would read as empty
        raise MaskValuesError(
            f"{path} is {picture.mode} with transparent pixels (the mask may be in its alpha "
            "channel); masks must be one channel of 0 and 255: save the mask as grey "
            "(foreground white) without transparency",
            "transparent pixels: the mask may be in the alpha channel",
        )
    if array.ndim == 3:
        colour = array[..., :1] if picture.mode == "LA" else array[..., :3]
        if colour.shape[-1] == 3 and not (
            np.array_equal(colour[..., 0], colour[..., 1])
            and np.array_equal(colour[..., 0], colour[..., 2])
        ):
            shown = f"colour {_values(colour)}"
            raise MaskValuesError(
                f"{path} is a colour mask ({shown}); masks must be one channel of 0 and 255 "
                "(or 0 and 1): convert it to grey with the foreground white",
                shown,
            )
        grey_rgb = colour.shape[-1] == 3
        array = colour[..., 0]
    values = set(np.unique(array).tolist())
    for name, allowed in CONVENTIONS.items():
        if values <= allowed:
            convention = None if values <= {0} else name
            return MaskFile(array > 0, convention, grey_rgb)
    shown = _values(array)
    raise MaskValuesError(
        f"{path} holds the values {shown}; masks must hold only 0 and 255 (or 0 and 1, read "
        "as 0/255): set the foreground to 255 and everything else to 0",
        shown,
    )


def read_mask(path: Path) -> np.ndarray:
    """A mask's foreground (bool HxW); see `read_mask_file` for the values it accepts."""
    return read_mask_file(path).foreground


class SplitTable(dict):
    """`split.csv` as {id: split}, with the file and each id's line number (for messages)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.lines: dict[str, int] = {}


def read_split_table(root: Path) -> SplitTable | None:
    """`split.csv` (id,split) of a dataset folder as {id: split}, or None when there is none;
    an id listed twice is refused, naming both lines."""
    path = root / "split.csv"
    if not path.is_file():
        return None
    import csv

    table = SplitTable(path)
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"id", "split"} <= set(reader.fieldnames):
            raise DataContractError(
                f"{path} must have the columns id,split; found {reader.fieldnames}"
            )
        for row in reader:
            key, line = (row["id"] or "").strip(), reader.line_num
            if key in table:
                raise DataContractError(
                    f"{path} lists the id '{key}' twice (lines {table.lines[key]} and {line}); "
                    "keep one row per id"
                )
            table[key], table.lines[key] = (row["split"] or "").strip(), line
    return table

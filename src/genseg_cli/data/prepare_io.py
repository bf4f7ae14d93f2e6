"""File helpers shared by the dataset converters in :mod:`genseg_cli.data.prepare`.

Every converter reduces an official layout to a list of :class:`Pair` (one image, the mask
files whose union is its target) and hands it to :func:`write_pairs`, so reading, merging,
binarising, resizing and writing follow one set of rules for all datasets.
"""

from __future__ import annotations

import csv
import logging
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from genseg_cli.errors import DataContractError

log = logging.getLogger(__name__)

IMAGE_DIR = "images"
MASK_DIR = "masks"
SPLIT_FILE = "split.csv"

JPG = (".jpg", ".jpeg")
PNG = (".png",)
NIFTI = (".nii.gz",)
# Pillow narrows these to 8 bits by clipping, which turns 12/16-bit X-rays almost white.
_WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_MAX_LISTED = 20


@dataclass(frozen=True)
class Pair:
    """One source sample: an image and the mask files whose union (OR) is its target."""

    id: str
    image: Path
    masks: tuple[Path, ...]


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


# --------------------------------------------------------------------------- finding files


def list_files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """Sorted files of ``folder`` with one of ``suffixes`` (any case).

    Hidden files are skipped because archives made on macOS carry ``._name`` resource forks
    that share the real file's suffix but are not images.
    """
    if not folder.is_dir():
        return []
    wanted = tuple(s.lower() for s in suffixes)
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(wanted)
    )


def _subdirs(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name != "__MACOSX"
    )


def find_roots(src: Path, predicate: Callable[[Path], bool], depth: int = 1) -> list[Path]:
    """All folders at most ``depth`` levels below ``src`` (``src`` included) matching ``predicate``.

    Archives unpack with or without their top folder, so converters look a level or two down
    instead of insisting on one exact nesting.
    """
    found: list[Path] = []
    level = [src]
    for _ in range(depth + 1):
        found.extend(d for d in level if predicate(d))
        level = [child for d in level for child in _subdirs(d)]
    return found


def find_root(src: Path, predicate: Callable[[Path], bool], depth: int = 1) -> Path | None:
    """The shallowest folder under ``src`` matching ``predicate``, or None."""
    roots = find_roots(src, predicate, depth)
    return roots[0] if roots else None


def has_dirs(*names: str) -> Callable[[Path], bool]:
    """Predicate: the folder holds all the sub-folders ``names``."""
    return lambda folder: all((folder / name).is_dir() for name in names)


def strip_suffix(suffix: str) -> Callable[[Path], str | None]:
    """Id function for files named ``<id><suffix>.<ext>``; other files are not masks (None)."""

    def file_id(path: Path) -> str | None:
        stem = stem_id(path)
        return stem[: -len(suffix)] if stem.endswith(suffix) and stem != suffix else None

    return file_id


def stem_id(path: Path) -> str:
    """Id of ``<id>.<ext>``; ``.nii.gz`` counts as one extension."""
    return path.name[: -len(".nii.gz")] if path.name.endswith(".nii.gz") else path.stem


def index_by_id(paths: Iterable[Path], file_id: Callable[[Path], str | None]) -> dict[str, Path]:
    """Map id -> file; ``file_id`` returns None for files to ignore.

    Two files with one id would silently overwrite each other in the output, so that fails.
    """
    index: dict[str, Path] = {}
    for path in paths:
        key = file_id(path)
        if key is None:
            continue
        if key in index:
            raise DataContractError(f"two files share the id '{key}': {index[key]} and {path}")
        index[key] = path
    return index


# --------------------------------------------------------------------------- pairing


def describe_ids(ids: Iterable[str]) -> str:
    """Comma-separated ids, shortened so one warning stays one readable line."""
    ordered = sorted(ids)
    text = ", ".join(ordered[:_MAX_LISTED])
    if len(ordered) > _MAX_LISTED:
        text += f", ... (+{len(ordered) - _MAX_LISTED} more)"
    return text


def pair_by_id(
    images: Mapping[str, Path],
    masks: Mapping[str, Path | tuple[Path, ...]],
    where: str,
) -> tuple[list[Pair], list[str]]:
    """Pairs for ids present on both sides; orphans on either side become warnings."""
    warnings: list[str] = []
    lonely_images = images.keys() - masks.keys()
    lonely_masks = masks.keys() - images.keys()
    if lonely_images:
        warnings.append(
            f"{where}: {len(lonely_images)} image(s) without mask skipped: "
            f"{describe_ids(lonely_images)}"
        )
    if lonely_masks:
        warnings.append(
            f"{where}: {len(lonely_masks)} mask(s) without image skipped: "
            f"{describe_ids(lonely_masks)}"
        )
    pairs = []
    for key in sorted(images.keys() & masks.keys()):
        parts = masks[key]
        pairs.append(Pair(key, images[key], parts if isinstance(parts, tuple) else (parts,)))
    return pairs, warnings


def require_all_parts(
    parts: Mapping[str, Mapping[str, Path]], where: str
) -> tuple[dict[str, tuple[Path, ...]], list[str]]:
    """Join per-part mask indexes (e.g. left and right lung) into id -> all part files.

    An id missing one part is dropped: half a target would teach the model a wrong label.
    """
    all_ids = set().union(*(index.keys() for index in parts.values()))
    complete: dict[str, tuple[Path, ...]] = {}
    incomplete: list[str] = []
    for key in sorted(all_ids):
        if all(key in index for index in parts.values()):
            complete[key] = tuple(index[key] for index in parts.values())
        else:
            incomplete.append(key)
    warnings = []
    if incomplete:
        warnings.append(
            f"{where}: {len(incomplete)} mask(s) lacking one of {', '.join(parts)} skipped: "
            f"{describe_ids(incomplete)}"
        )
    return complete, warnings


def combine_groups(
    groups: Sequence[tuple[str, list[Pair]]],
) -> tuple[list[Pair], dict[str, str], list[str]]:
    """Flatten per-split pair lists into one list and an id -> split map.

    Splits of some datasets reuse file names; a later duplicate is renamed ``<split>_<id>``
    (with a warning) rather than overwriting the earlier sample.
    """
    pairs: list[Pair] = []
    split: dict[str, str] = {}
    renamed: list[str] = []
    for name, group in groups:
        for pair in group:
            if pair.id in split:
                renamed.append(f"{pair.id} -> {name}_{pair.id}")
                pair = Pair(f"{name}_{pair.id}", pair.image, pair.masks)
            split[pair.id] = name
            pairs.append(pair)
    warnings = []
    if renamed:
        warnings.append(f"ids repeated across splits renamed: {describe_ids(renamed)}")
    return pairs, split, warnings


# --------------------------------------------------------------------------- pixels


def scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Min-max stretch to 0..255; a constant image becomes black instead of dividing by 0."""
    values = values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    if image.mode in _WIDE_GREY_MODES:
        image = Image.fromarray(scale_to_uint8(np.asarray(image)))
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
    return Image.fromarray(255 - scale_to_uint8(values))


def read_image(path: Path, mode: str) -> Image.Image:
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
            if (raw and mask.mode in ("L", "P")) or mask.mode in _WIDE_GREY_MODES:
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
    pairs: Sequence[Pair],
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
    read = reader or (lambda path: read_image(path, mode))
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


def write_split(dst: Path, split: Mapping[str, str], ids: Iterable[str]) -> bool:
    """Write ``dst/split.csv`` (``id,split``, sorted by id) for ``ids``; False if none has one."""
    rows = sorted((key, split[key]) for key in ids if key in split)
    if not rows:
        return False
    with (dst / SPLIT_FILE).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "split"])
        writer.writerows(rows)
    return True


def random_split(ids: Sequence[str], val_fraction: float = 0.2, seed: int = 0) -> dict[str, str]:
    """Deterministic train/val assignment of the sorted ids (numpy Generator(seed) permutation).

    At least one validation case whenever there are two or more, so validation is never empty.
    """
    ordered = sorted(ids)
    n_val = max(1, round(len(ordered) * val_fraction)) if len(ordered) > 1 else 0
    order = np.random.default_rng(seed).permutation(len(ordered))
    val = {ordered[i] for i in order[:n_val]}
    return {key: ("val" if key in val else "train") for key in ordered}


def read_id_list(path: Path) -> list[str]:
    """Ids from a one-per-line split file; blank lines and file extensions are dropped."""
    ids = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name = line.strip()
        if name:
            ids.append(Path(name).stem if name.lower().endswith(JPG + PNG) else name)
    return ids


def copy_volumes(pairs: Sequence[Pair], dst: Path) -> None:
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

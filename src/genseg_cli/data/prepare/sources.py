"""Finding and pairing source files in an official download.

Every converter reduces its dataset's layout to a list of :class:`SourcePair` (one image, the
mask files whose union is its target); :mod:`.images` then reads and writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from genseg_cli.core.errors import DataContractError

JPG = (".jpg", ".jpeg")
PNG = (".png",)
NIFTI = (".nii.gz",)
_MAX_LISTED = 20


@dataclass(frozen=True)
class SourcePair:
    """One source sample: an image and the mask files whose union (OR) is its target."""

    id: str
    image: Path
    masks: tuple[Path, ...]


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
) -> tuple[list[SourcePair], list[str]]:
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
        pairs.append(SourcePair(key, images[key], parts if isinstance(parts, tuple) else (parts,)))
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
    groups: Sequence[tuple[str, list[SourcePair]]],
) -> tuple[list[SourcePair], dict[str, str], list[str]]:
    """Flatten per-split pair lists into one list and an id -> split map.

    Splits of some datasets reuse file names; a later duplicate is renamed ``<split>_<id>``
    (with a warning) rather than overwriting the earlier sample.
    """
    pairs: list[SourcePair] = []
    split: dict[str, str] = {}
    renamed: list[str] = []
    for name, group in groups:
        for pair in group:
            if pair.id in split:
                renamed.append(f"{pair.id} -> {name}_{pair.id}")
                pair = SourcePair(f"{name}_{pair.id}", pair.image, pair.masks)
            split[pair.id] = name
            pairs.append(pair)
    warnings = []
    if renamed:
        warnings.append(f"ids repeated across splits renamed: {describe_ids(renamed)}")
    return pairs, split, warnings


def folder_pairs(
    image_dir: Path,
    mask_dir: Path,
    image_suffixes: tuple[str, ...] = PNG,
    mask_suffixes: tuple[str, ...] = PNG,
    mask_id: Callable[[Path], str | None] = stem_id,
) -> tuple[list[SourcePair], list[str]]:
    """Pairs of an ``images``/``masks`` style folder couple matched by file id."""
    images = index_by_id(list_files(image_dir, image_suffixes), stem_id)
    masks = index_by_id(list_files(mask_dir, mask_suffixes), mask_id)
    return pair_by_id(images, masks, where=str(image_dir.parent))

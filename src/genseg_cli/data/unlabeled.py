"""Images without masks: the pool's own images outside the labelled ids, and a dataset folder's
optional `unlabeled/` folder (images a user has but never annotated, beside images/ and masks/).

Ids of the folder's images carry the prefix `unlabeled/` in splits.json, so that a run can be
read back; they may never share an id with a test image (the same picture would leak the test
set into training).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from genseg_cli.core.errors import GensegError
from genseg_cli.data.samples import SampleCodec
from genseg_cli.data.splits import Splits

UNLABELED_DIR = "unlabeled"
PREFIX = f"{UNLABELED_DIR}/"


def extra_images(root: Path, codec: SampleCodec) -> dict[str, Path]:
    """id -> file of the images in `root/unlabeled/` (empty when the folder is absent)."""
    folder = root / UNLABELED_DIR
    return codec.index(folder) if folder.is_dir() else {}


def pool_share(n_unlabeled: int | None, n_pool: int) -> int | None:
    """How many of `n_unlabeled` come from the pool (first) before the extra folder's images."""
    # a negative count passes through, so that the split refuses it with its own message
    return None if n_unlabeled is None else min(n_unlabeled, n_pool)


def add_extra_images(
    splits: Splits, extra: list[str], n_unlabeled: int | None, n_pool: int, root: Path
) -> Splits:
    """`splits` with the extra folder's ids appended to its unlabeled ones (all of them, or up to
    `n_unlabeled` in total); refuses ids that are test ids and counts beyond what exists."""
    clash = sorted(set(extra) & set(splits.test))
    if clash:
        raise GensegError(
            f"{root / UNLABELED_DIR}: {len(clash)} images share an id with test images "
            f"({', '.join(clash[:5])}); remove them from {UNLABELED_DIR}/ or rename them if "
            "they are different pictures"
        )
    if n_unlabeled is not None and n_unlabeled > n_pool + len(extra):
        raise GensegError(
            f"n_unlabeled={n_unlabeled} exceeds the {n_pool} unlabeled pool images and "
            f"{len(extra)} images in {root / UNLABELED_DIR}; the maximum is "
            f"{n_pool + len(extra)} (null: all)"
        )
    take = len(extra) if n_unlabeled is None else n_unlabeled - len(splits.unlabeled)
    chosen = [PREFIX + i for i in sorted(extra)[:take]]
    return replace(splits, unlabeled=[*splits.unlabeled, *chosen])


def image_file(root: Path, codec: SampleCodec, key: str, pool: dict[str, Path]) -> Path:
    """The file of an unlabeled id: the extra folder's for `unlabeled/<id>`, else the pool's."""
    if key.startswith(PREFIX):
        return extra_images(root, codec)[key[len(PREFIX) :]]
    return pool[key]

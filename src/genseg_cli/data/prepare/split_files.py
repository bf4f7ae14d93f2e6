"""The split of a prepared dataset: ``split.csv`` written from a map or drawn at random,
and the one-id-per-line split lists some downloads ship."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from genseg_cli.data.prepare.sources import JPG, PNG

SPLIT_FILE = "split.csv"


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

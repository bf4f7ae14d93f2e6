"""The dataset contract, verified before any training and by `genseg data check`.

2D (images/, masks/): every image has exactly one mask with the same id; both files are readable;
image and mask have the same size; masks hold only 0 and 255 (other values are binarised at >127
with a warning, not an error). 3D (MSD: imagesTr/, labelsTr/): every volume has one label map of
the same shape, with values among background + the dataset's classes. `check_folder` walks the
pairs of either layout; each codec (`genseg_cli.data.images`, `.volumes`) says how to read one.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from genseg_cli.core.errors import DataContractError, GensegError
from genseg_cli.data.registry import class_names

SHOWN_IDS = 10
log = logging.getLogger(__name__)


@dataclass
class ContractReport:
    """What `check_folder` found; `problems` are contract breaks, `warnings` are not."""

    root: Path
    n_pairs: int = 0
    orphan_images: list[str] = field(default_factory=list)
    orphan_masks: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    size_mismatch: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    nonbinary: dict[str, int] = field(default_factory=dict)
    empty_masks: list[str] = field(default_factory=list)
    modes: Counter = field(default_factory=Counter)
    sizes: Counter = field(default_factory=Counter)
    foreground: list[float] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        out = []
        if self.n_pairs == 0 and not self.orphan_images and not self.orphan_masks:
            out.append(f"no images in {self.root / 'images'}")
        if self.orphan_images:
            out.append(f"images without a mask: {_ids(self.orphan_images)}")
        if self.orphan_masks:
            out.append(f"masks without an image: {_ids(self.orphan_masks)}")
        for key, err in self.unreadable.items():
            out.append(f"unreadable file ({key}): {err}")
        if self.size_mismatch:
            shown = [
                f"{i} (image {a[0]}x{a[1]}, mask {b[0]}x{b[1]})"
                for i, (a, b) in list(self.size_mismatch.items())[:SHOWN_IDS]
            ]
            more = len(self.size_mismatch) - len(shown)
            out.append(
                "image and mask sizes differ: "
                + ", ".join(shown)
                + (f" and {more} more" if more > 0 else "")
            )
        return out

    @property
    def warnings(self) -> list[str]:
        if not self.nonbinary:
            return []
        total = sum(self.nonbinary.values())
        return [
            f"{len(self.nonbinary)} masks hold {total} pixels that are neither 0 nor 255 "
            f"(binarised at >127): {_ids(list(self.nonbinary))}"
        ]

    def raise_if_broken(self) -> None:
        """Raise DataContractError listing every problem, with the fix."""
        if self.problems:
            raise DataContractError(
                f"dataset at {self.root} breaks the contract: "
                + "; ".join(self.problems)
                + ". Fix or remove these files (each image needs masks/<id>.png of the same size)."
            )


def _ids(ids: list[str]) -> str:
    shown = ", ".join(ids[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")


@dataclass
class PairFacts:
    """What the contract needs to know of one readable pair: its modes (2D image modes, or the
    label values present), image and mask sizes, non-binary mask pixels, whether the mask is
    empty and its foreground share."""

    modes: list[str]
    image_size: tuple[int, ...]
    mask_size: tuple[int, ...]
    empty: bool
    foreground: float
    nonbinary: int = 0


def check_folder(
    root: Path,
    images: dict[str, Path],
    masks: dict[str, Path],
    inspect: Callable[[Path, Path], PairFacts],
) -> ContractReport:
    """Check every pair of a dataset folder (id -> image file, id -> mask file) and report what
    is wrong; `inspect` reads one pair and raises DataContractError when it cannot.

    >>> report = IMAGES.check(Path("../shared/datasets/jsrt"))
    >>> report.n_pairs, report.problems
    (247, [])
    """
    report = ContractReport(root=root)
    report.orphan_images = sorted(images.keys() - masks.keys())
    report.orphan_masks = sorted(masks.keys() - images.keys())
    for key in sorted(images.keys() & masks.keys()):
        try:
            facts = inspect(images[key], masks[key])
        except DataContractError as err:
            report.unreadable[key] = str(err)
            continue
        report.n_pairs += 1
        report.modes.update(facts.modes)
        report.sizes[facts.image_size] += 1
        if facts.image_size != facts.mask_size:
            report.size_mismatch[key] = (facts.image_size, facts.mask_size)
        if facts.nonbinary:
            report.nonbinary[key] = facts.nonbinary
        if facts.empty:
            report.empty_masks.append(key)
        report.foreground.append(facts.foreground)
    return report


GREY_MODES = {"L", "I", "I;16", "1", "P"}


def check_channels(entry: DictConfig, modes: dict[Hashable, int], root: Path) -> None:
    """Refuse colour images for a grey dataset and grey images for a colour one."""
    grey = sum(n for mode, n in modes.items() if mode in GREY_MODES)
    colour = sum(modes.values()) - grey
    if entry.channels == 1 and colour:
        raise GensegError(
            f"{root}: {colour} images are colour but dataset.channels=1; set "
            f"dataset.channels=3 or convert the images to grey"
        )
    if entry.channels == 3 and grey:
        raise GensegError(
            f"{root}: {grey} images are grey but dataset.channels=3; set "
            f"dataset.channels=1 or convert the images to RGB"
        )


def check_label_values(entry: DictConfig, values: dict[Hashable, int], root: Path) -> None:
    """Refuse label maps with values beyond background + the dataset's classes."""
    allowed = {f"label {i}" for i in range(len(class_names(entry)) + 1)}
    extra = sorted(set(values) - allowed)
    if extra:
        raise DataContractError(
            f"{root}/labelsTr: values {', '.join(v.split()[1] for v in extra)} are not among "
            f"0..{len(allowed) - 1} (background + classes {class_names(entry)}); fix the label "
            "maps or list the extra classes in dataset.classes"
        )


def check_msd_labels(entry: DictConfig, root: Path) -> None:
    """When the MSD dataset.json is there, its label list must match the registry's classes
    (a different count would mis-size every network; different names only get a warning)."""
    path = root / "dataset.json"
    if not path.is_file():
        return
    try:
        labels = json.loads(path.read_text()).get("labels")
    except (OSError, json.JSONDecodeError, AttributeError) as err:
        raise DataContractError(f"{path}: unreadable ({err}); fix or remove it") from err
    if not isinstance(labels, dict):
        return
    # MSD: {"0": "background", "1": "Anterior"}; nnU-Net v2: {"background": 0, "Anterior": 1}
    by_value = (
        {int(k): str(v) for k, v in labels.items()}
        if all(str(k).isdigit() for k in labels)
        else {int(v): str(k) for k, v in labels.items()}
    )
    names = [by_value[v] for v in sorted(by_value) if v != 0]
    expected = class_names(entry)
    if len(names) != len(expected):
        raise DataContractError(
            f"{path} lists {len(names)} foreground labels {names} but dataset '{entry.name}' "
            f"has classes {expected}; set dataset.classes (and mask_channels) to match"
        )
    if [n.lower() for n in names] != [n.lower() for n in expected]:
        log.warning("%s: labels %s are named %s in the registry", path, names, expected)

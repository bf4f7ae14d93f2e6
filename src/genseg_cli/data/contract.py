"""The dataset contract, verified before any training and by `genseg data check`.

2D (images/, masks/): every image has exactly one mask with the same id; both files are readable;
image and mask have the same size; a mask is one channel holding only 0 and 255, or only 0 and 1
(nnU-Net's convention, read as 0/255); anything else is refused, naming the file and its values.
3D (MSD: imagesTr/, labelsTr/): every volume has one label map of the same shape, with values
among background + the dataset's classes. A dataset to train on must have some foreground: when
every mask is empty, the run would learn nothing and score Dice 0 without saying why.
`check_folder` walks the pairs of either layout; each codec (`genseg_cli.data.images`,
`.volumes`) says how to read one.
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
from genseg_cli.data.io import WIDE_GREY, MaskValuesError
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
    bad_masks: dict[str, str] = field(default_factory=dict)  # id -> "file (values)"
    conventions: Counter = field(default_factory=Counter)  # "0/255" | "0/1" -> masks
    grey_rgb_masks: int = 0
    empty_masks: list[str] = field(default_factory=list)
    modes: Counter = field(default_factory=Counter)
    mode_ids: dict[str, list[str]] = field(default_factory=dict)  # mode -> ids, in id order
    other_problems: list[str] = field(default_factory=list)  # found by a codec's own checks
    sizes: Counter = field(default_factory=Counter)
    foreground: list[float] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        out = []
        found = self.orphan_images or self.orphan_masks or self.unreadable or self.bad_masks
        if self.n_pairs == 0 and not found:
            out.append(f"no images in {self.root / 'images'}")
        if self.orphan_images:
            out.append(f"images without a mask: {_ids(self.orphan_images)}")
        if self.orphan_masks:
            out.append(f"masks without an image: {_ids(self.orphan_masks)}")
        for key, err in self.unreadable.items():
            out.append(f"unreadable file ({key}): {err}")
        if self.bad_masks:
            shown = list(self.bad_masks.values())[:SHOWN_IDS]
            more = len(self.bad_masks) - len(shown)
            out.append(
                "masks that are not 0/255 or 0/1: "
                + "; ".join(shown)
                + (f" and {more} more" if more > 0 else "")
            )
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
        return out + self.other_problems

    @property
    def all_empty(self) -> bool:
        """Every readable mask is empty (nothing to learn from)."""
        return self.n_pairs > 0 and len(self.empty_masks) == self.n_pairs

    def empty_problem(self) -> str:
        return (
            f"all {self.n_pairs} masks are empty (no foreground pixel): nothing to learn from; "
            "check that the masks mark the foreground with 255 (or 1)"
        )

    @property
    def warnings(self) -> list[str]:
        if len(self.conventions) > 1:
            return [f"the masks mix conventions ({self.convention_counts()}); each is read right"]
        return []

    def convention_counts(self) -> str:
        return ", ".join(f"{name} in {n} masks" for name, n in self.conventions.most_common())

    @property
    def mask_convention(self) -> str | None:
        """One line saying how the masks store their foreground (2D; None for label maps)."""
        if not self.conventions:
            return None
        if len(self.conventions) == 1:
            ((name, n),) = self.conventions.items()
            line = f"masks: {name}" + (" (nnU-Net's, read as 0/255)" if name == "0/1" else "")
            line += f" in all {n} masks with foreground"
        else:
            line = f"masks: mixed, {self.convention_counts()} (0/1 read as 0/255)"
        if self.empty_masks:
            line += f", {len(self.empty_masks)} empty"
        if self.grey_rgb_masks:
            line += f"; {self.grey_rgb_masks} stored as RGB with equal channels, read as grey"
        return line

    def raise_if_broken(self, training: bool = False) -> None:
        """Raise DataContractError listing every problem, with the fix; `training`: also when
        every mask is empty."""
        problems = self.problems + ([self.empty_problem()] if training and self.all_empty else [])
        if problems:
            raise DataContractError(
                f"dataset at {self.root} breaks the contract: "
                + "; ".join(problems)
                + ". Fix or remove these files (each image needs masks/<id>.png of the same "
                "size, one channel of 0/255 or 0/1)."
            )


def _ids(ids: list[str]) -> str:
    shown = ", ".join(ids[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")


@dataclass
class PairFacts:
    """What the contract needs to know of one readable pair: its modes (2D image modes, or the
    label values present), image and mask sizes, whether the mask is empty, its foreground share
    and (2D) the mask's convention."""

    modes: list[str]
    image_size: tuple[int, ...]
    mask_size: tuple[int, ...]
    empty: bool
    foreground: float
    convention: str | None = None  # 2D: "0/255" or "0/1" (None: empty, or a label map)
    grey_rgb: bool = False  # 2D: a mask stored as RGB with three equal channels


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
        except MaskValuesError as err:
            report.bad_masks[key] = f"{masks[key].name} ({err.values})"
            continue
        except DataContractError as err:
            report.unreadable[key] = str(err)
            continue
        report.n_pairs += 1
        report.modes.update(facts.modes)
        for mode in facts.modes:
            report.mode_ids.setdefault(mode, []).append(key)
        report.sizes[facts.image_size] += 1
        if facts.image_size != facts.mask_size:
            report.size_mismatch[key] = (facts.image_size, facts.mask_size)
        if facts.convention:
            report.conventions[facts.convention] += 1
        report.grey_rgb_masks += facts.grey_rgb
        if facts.empty:
            report.empty_masks.append(key)
        report.foreground.append(facts.foreground)
    return report


GREY_MODES = {"L", "1", "P"} | WIDE_GREY


def grey_and_colour(report: ContractReport) -> tuple[list[str], list[str]]:
    """Ids of the grey images and of the colour ones (2D image modes)."""
    grey = sorted(i for m, ids in report.mode_ids.items() if m in GREY_MODES for i in ids)
    colour = sorted(i for m, ids in report.mode_ids.items() if m not in GREY_MODES for i in ids)
    return grey, colour


def check_channels(entry: DictConfig, report: ContractReport, root: Path) -> None:
    """Refuse colour images for a grey dataset and grey images for a colour one, naming them."""
    grey, colour = grey_and_colour(report)
    if entry.channels == 1 and colour:
        raise GensegError(
            f"{root}: {len(colour)} images are colour but dataset.channels=1 ({_ids(colour)}); "
            "set dataset.channels=3 or convert the images to grey"
        )
    if entry.channels == 3 and grey:
        raise GensegError(
            f"{root}: {len(grey)} images are grey but dataset.channels=3 ({_ids(grey)}); set "
            "dataset.channels=1 or convert the images to RGB"
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

"""The 2D dataset contract, verified before any training and by `genseg data check`.

Contract: every image in images/ has exactly one mask in masks/ with the same id; both files are
readable; image and mask have the same size; masks hold only 0 and 255 (other values are binarised
at >127 with a warning, not an error).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genseg_cli.data.io import index_folder, open_image, read_mask
from genseg_cli.data.volumes import index_volumes
from genseg_cli.errors import DataContractError

SHOWN_IDS = 10


@dataclass
class ContractReport:
    """What `check_dataset` found; `problems` are contract breaks, `warnings` are not."""

    root: Path
    n_pairs: int = 0
    orphan_images: list[str] = field(default_factory=list)
    orphan_masks: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    size_mismatch: dict[str, tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=dict)
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


def check_dataset(root: Path) -> ContractReport:
    """Check every pair of a 2D dataset folder and report what is wrong.

    >>> report = check_dataset(Path("../shared/datasets/jsrt"))
    >>> report.n_pairs, report.problems
    (247, [])
    """
    report = ContractReport(root=root)
    images, masks = index_folder(root / "images"), index_folder(root / "masks")
    report.orphan_images = sorted(images.keys() - masks.keys())
    report.orphan_masks = sorted(masks.keys() - images.keys())
    for key in sorted(images.keys() & masks.keys()):
        try:
            image = open_image(images[key])
            mask_img = open_image(masks[key])
            mask, nonbinary = read_mask(masks[key])
        except DataContractError as err:
            report.unreadable[key] = str(err)
            continue
        report.n_pairs += 1
        report.modes[image.mode] += 1
        report.sizes[image.size] += 1
        if image.size != mask_img.size:
            report.size_mismatch[key] = (image.size, mask_img.size)
        if nonbinary:
            report.nonbinary[key] = nonbinary
        if not mask.any():
            report.empty_masks.append(key)
        report.foreground.append(float(mask.mean()))
    return report


def check_volumes(root: Path) -> ContractReport:
    """The MSD contract: imagesTr/<id>.nii.gz and labelsTr/<id>.nii.gz of equal shape.

    Labels are multi-class, so `nonbinary` stays empty; `modes` counts the label values present.
    """
    import nibabel as nib

    report = ContractReport(root=root)
    images, labels = index_volumes(root / "imagesTr"), index_volumes(root / "labelsTr")
    report.orphan_images = sorted(images.keys() - labels.keys())
    report.orphan_masks = sorted(labels.keys() - images.keys())
    for key in sorted(images.keys() & labels.keys()):
        try:
            image_shape = nib.load(images[key]).shape
            label = np.asarray(nib.load(labels[key]).dataobj)
        except Exception as err:  # nibabel raises many types for broken files
            report.unreadable[key] = f"cannot read {images[key].name}/{labels[key].name}: {err}"
            continue
        report.n_pairs += 1
        report.sizes[tuple(image_shape[:3])] += 1
        report.modes.update(f"label {int(v)}" for v in np.unique(label))
        if image_shape[:3] != label.shape[:3]:
            report.size_mismatch[key] = (tuple(image_shape[:3]), tuple(label.shape[:3]))
        if not label.any():
            report.empty_masks.append(key)
        report.foreground.append(float((label > 0).mean()))
    return report

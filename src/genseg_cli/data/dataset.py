"""In-memory image/mask pairs and the torch Dataset that feeds them to a network.

Images are resized once to the model's square input (data.image_size) and kept in memory: the
label budgets of this project are tens to hundreds of images. Network inputs are float in [-1, 1]
(the range a tanh generator produces too), masks float {0, 1}.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from genseg_cli.data.io import index_folder, read_image, read_mask
from genseg_cli.data.mask_augment import augment_mask


@dataclass
class Pair:
    """One image (uint8 HxWxC) and its binary mask (bool HxW) at original resolution."""

    id: str
    image: np.ndarray
    mask: np.ndarray


def load_pairs(root: Path, ids: list[str], channels: int) -> list[Pair]:
    """Read the pairs `ids` of a standard-layout folder."""
    images, masks = index_folder(root / "images"), index_folder(root / "masks")
    return [Pair(i, read_image(images[i], channels), read_mask(masks[i])[0]) for i in ids]


def resize_pair(pair: Pair, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Image (uint8 size x size x C, area/linear resampling) and mask (uint8 {0,1}, nearest)."""
    interp = cv2.INTER_AREA if max(pair.image.shape[:2]) > size else cv2.INTER_LINEAR
    image = cv2.resize(pair.image, (size, size), interpolation=interp)
    if image.ndim == 2:
        image = image[..., None]
    mask = cv2.resize(pair.mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    return image, mask


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWxC -> float CxHxW in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 127.5 - 1.0


class SegmentationDataset(Dataset):
    """Pairs at model resolution, optionally augmented (albumentations, image + mask together).

    >>> ds = SegmentationDataset(pairs, image_size=128, transform=None)
    >>> ds[0]["image"].shape, ds[0]["mask"].shape
    (torch.Size([1, 128, 128]), torch.Size([1, 128, 128]))
    """

    def __init__(
        self,
        pairs: list[Pair],
        image_size: int,
        transform: A.Compose | None = None,
        mask_pipeline: A.Compose | None = None,
        with_new_masks: bool = False,
    ):
        self.ids = [p.id for p in pairs]
        self.items = [resize_pair(p, image_size) for p in pairs]
        self.transform = transform
        # GenSeg also needs, per item, a new mask made from a real one (see data.mask_augment)
        self.mask_pipeline = mask_pipeline
        self.with_new_masks = with_new_masks

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        image, mask = self.items[index]
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
            if image.ndim == 2:  # some albumentations ops drop a singleton channel axis
                image = image[..., None]
        item = {
            "image": to_tensor(image),
            "mask": torch.from_numpy(np.ascontiguousarray(mask)).float()[None],
            "id": self.ids[index],
        }
        if self.with_new_masks:
            new_mask = augment_mask(self.items[index][1], self.mask_pipeline)
            item["new_mask"] = torch.from_numpy(new_mask).float()[None]
        return item

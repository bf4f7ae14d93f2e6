"""The torch Dataset that feeds samples, 2D or 3D, to a network at model size.

One class for both dimensionalities: the samples are resized once (and kept in memory, the label
budgets here are tens to hundreds of samples); per item, the spec's codec applies the augmentation
pipeline to image and mask together and turns them into tensors. Items hold "image" (C x spatial,
float in [-1, 1]), "mask" (mask_channels x spatial, float: {0, 1} in 2D, one-hot over background
+ classes in 3D), "id", and with `with_new_masks` a "new_mask" made from the real one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch.utils.data import Dataset

from genseg_cli.data.samples import Sample
from genseg_cli.data.spec import DataSpec


class SampleDataset(Dataset):
    """Samples at `spec`'s model size, optionally augmented (`transform`: an albumentations
    pipeline in 2D, a MONAI dictionary pipeline in 3D, see `data.augment`).

    >>> ds = SampleDataset(samples, spec)  # a 2D spec with model_size 128
    >>> ds[0]["image"].shape, ds[0]["mask"].shape
    (torch.Size([1, 128, 128]), torch.Size([1, 128, 128]))
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        spec: DataSpec,
        transform: Any = None,
        mask_pipeline: Any = None,
        with_new_masks: bool = False,
    ):
        self.spec, self.codec = spec, spec.codec
        self.ids = [s.id for s in samples]
        self.items = [self.codec.model_pair(s, spec) for s in samples]
        self.transform = transform
        # GenSeg also needs, per item, a new mask made from a real one (see data.mask_augment)
        self.mask_pipeline = mask_pipeline
        self.with_new_masks = with_new_masks

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        image, mask = self.items[index]
        if self.transform is not None:
            image, mask = self.codec.augment(image, mask, self.transform)
        item = {
            "image": self.codec.image_tensor(image),
            "mask": self.codec.mask_tensor(mask, self.spec),
            "id": self.ids[index],
        }
        if self.with_new_masks:
            new_mask = self.codec.new_mask(self.items[index][1], self.mask_pipeline, self.spec)
            item["new_mask"] = self.codec.mask_tensor(new_mask, self.spec)
        return item

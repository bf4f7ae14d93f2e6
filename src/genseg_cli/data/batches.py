"""Network-ready data of a run: sampled training batches, whole sets as one batch, and new masks
made from real ones (for previews and for `genseg generate`).

Every function takes the run's `DataSpec` and only the config nodes it needs (the augment and
mask_augment groups); seeds are explicit, so each stream of random numbers is reproducible on
its own: pipelines keep their own generators and the sampler has a seeded torch.Generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, RandomSampler

from genseg_cli.data.augment import instantiate_pipeline
from genseg_cli.data.dataset import SampleDataset
from genseg_cli.data.samples import Sample
from genseg_cli.data.spec import DataSpec

# One new mask per call: (the generator's input, mask_channels x spatial float; the mask to write)
MaskSource = Callable[[], tuple[torch.Tensor, np.ndarray]]


def training_batches(
    samples: Sequence[Sample],
    spec: DataSpec,
    steps: int,
    seed: int,
    augment: DictConfig | None,
    mask_augment: DictConfig | None = None,
    with_new_masks: bool = False,
) -> DataLoader:
    """`steps` batches of spec.batch_size sampled with replacement from `samples`, augmented by
    the `augment` group (None: as they are); with `with_new_masks`, each item also carries a new
    mask made by the `mask_augment` group.

    >>> batches = training_batches(data.train, spec, 100, seed=0, augment=cfg.augment)
    """
    dataset = SampleDataset(
        samples,
        spec,
        instantiate_pipeline(augment, seed, spec),
        mask_pipeline=instantiate_pipeline(mask_augment, seed + 1, spec),
        with_new_masks=with_new_masks,
    )
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(
        dataset, replacement=True, num_samples=steps * spec.batch_size, generator=generator
    )
    return DataLoader(
        dataset,
        batch_size=spec.batch_size,
        sampler=sampler,
        num_workers=spec.num_workers,
        drop_last=True,
    )


def unlabeled_batches(
    samples: Sequence[Sample], spec: DataSpec, steps: int, seed: int, augment: DictConfig | None
) -> DataLoader:
    """`steps` batches of unlabeled images ("unlabeled_image"), spec.batch_size each, sampled
    with replacement and moved by the `augment` group: the weak view that semi-supervised
    objectives predict pseudo labels on. The samples' masks are placeholders and never leave."""
    dataset = SampleDataset(samples, spec, instantiate_pipeline(augment, seed, spec))
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(
        dataset, replacement=True, num_samples=steps * spec.batch_size, generator=generator
    )
    return DataLoader(
        _OnlyImages(dataset),
        batch_size=spec.batch_size,
        sampler=sampler,
        num_workers=spec.num_workers,
        drop_last=True,
    )


class _OnlyImages(torch.utils.data.Dataset):
    """A SampleDataset's items reduced to their image, under the unlabeled stream's key."""

    def __init__(self, dataset: SampleDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return {"unlabeled_image": self.dataset[index]["image"]}


def whole_set(samples: Sequence[Sample], spec: DataSpec) -> dict[str, torch.Tensor]:
    """All samples at model size as one batch (validation, references for previews)."""
    items = SampleDataset(samples, spec)
    return {k: torch.stack([items[i][k] for i in range(len(items))]) for k in ("image", "mask")}


def preview_masks(
    samples: Sequence[Sample],
    spec: DataSpec,
    mask_augment: DictConfig | None,
    seed: int,
    n: int = 4,
) -> torch.Tensor:
    """Fixed new masks, made from the first `n` samples' masks, for before/after pictures."""
    pipeline = instantiate_pipeline(mask_augment, seed, spec)
    items = SampleDataset(samples[:n], spec, mask_pipeline=pipeline, with_new_masks=True)
    return torch.stack([items[i]["new_mask"] for i in range(len(items))])


def new_masks(
    samples: Sequence[Sample], spec: DataSpec, mask_augment: DictConfig | None, seed: int
) -> MaskSource:
    """An endless source of new masks: each call moves a randomly drawn real mask (at model
    size) with the `mask_augment` group and returns it as the generator's input and as a writer
    stores it.

    >>> new_mask = new_masks(train, spec, cfg.mask_augment, seed=0)
    >>> generator_input, mask = new_mask()
    """
    codec = spec.codec
    real = [codec.model_pair(s, spec)[1] for s in samples]
    pipeline = instantiate_pipeline(mask_augment, seed, spec)
    rng = np.random.default_rng(seed)

    def new_mask() -> tuple[torch.Tensor, np.ndarray]:
        mask = codec.new_mask(real[rng.integers(len(real))], pipeline, spec)
        return codec.mask_tensor(mask, spec), codec.mask_array(mask)

    return new_mask

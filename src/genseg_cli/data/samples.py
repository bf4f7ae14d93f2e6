"""One entry point from a run's config to its network-ready samples, 2D or 3D.

The training loop, evaluation and the stages ask this module for "the dataset of these pairs" or
"this pair's network input" and never branch on dimensionality themselves: 2D pairs go through
`genseg_cli.data.dataset`, 3D volumes through `genseg_cli.data.volumes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from torch.utils.data import Dataset

from genseg_cli.data.dataset import (
    Pair,
    SegmentationDataset,
    load_pairs,
    resize_pair,
    to_tensor,
)
from genseg_cli.data.registry import mask_channels
from genseg_cli.data.volumes import Volume, VolumeDataset, load_volumes, resize_volume

ModelSize = int | tuple[int, ...]


def model_size(cfg: DictConfig) -> ModelSize:
    """The network's input size: data.image_size (square) in 2D, dataset.volume_shape in 3D."""
    if int(cfg.dataset.dims) == 3:
        return tuple(int(s) for s in cfg.dataset.volume_shape)
    return int(cfg.data.image_size)


def make_dataset(
    pairs: Sequence[Pair | Volume],
    cfg: DictConfig,
    transform=None,
    mask_pipeline=None,
    with_new_masks: bool = False,
) -> Dataset:
    """The Dataset of `pairs` at the run's model size (see SegmentationDataset/VolumeDataset)."""
    size = model_size(cfg)
    if int(cfg.dataset.dims) == 3:
        return VolumeDataset(
            list(pairs),
            size,
            mask_channels(cfg.dataset),
            transform=transform,
            mask_pipeline=mask_pipeline,
            with_new_masks=with_new_masks,
        )
    return SegmentationDataset(
        list(pairs), size, transform, mask_pipeline=mask_pipeline, with_new_masks=with_new_masks
    )


def model_input(pair: Pair | Volume, size: ModelSize) -> torch.Tensor:
    """One pair's image as the network sees it (C x size, float in [-1, 1])."""
    if isinstance(pair, Volume):
        return resize_volume(pair, size)[0]
    return to_tensor(resize_pair(pair, size)[0])


def model_target(pair: Pair | Volume, size: ModelSize) -> np.ndarray:
    """One pair's mask (binary) or label map at model size, for scoring at model resolution."""
    if isinstance(pair, Volume):
        return resize_volume(pair, size)[1].numpy()
    side = size if isinstance(size, int) else int(size[-1])  # 2D logits give (H, W), H == W
    return resize_pair(pair, side)[1].astype(bool)


def load_samples(
    spec: DictConfig, root: Path, ids: Sequence[str], channels: int
) -> list[Pair] | list[Volume]:
    """Read `ids` of a dataset folder: 2D pairs with `channels` image channels, or volumes."""
    if int(spec.dims) == 3:
        return load_volumes(root, ids)
    return load_pairs(root, list(ids), channels)

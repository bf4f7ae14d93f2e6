"""Augmentation pipelines from config: albumentations for 2D pairs, MONAI for 3D volumes.

An augment or mask_augment config group holds both recipes (`pipeline` and `volume_pipeline`);
the spec's codec says which one its samples take and how that library is seeded.
"""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from genseg_cli.data.spec import DataSpec


def instantiate_pipeline(node: DictConfig | None, seed: int, spec: DataSpec) -> Any:
    """The pipeline of `node` for `spec`'s samples, seeded (it keeps its own generator), or None
    when the node or its recipe for this dimensionality is absent.

    >>> pipeline = instantiate_pipeline(cfg.mask_augment, seed=1, spec=spec)
    """
    key = spec.codec.pipeline_key
    if not node or not node.get(key):
        return None
    pipeline = instantiate(node[key], _convert_="all")  # albumentations wants plain lists
    spec.codec.seed_pipeline(pipeline, seed)
    return pipeline

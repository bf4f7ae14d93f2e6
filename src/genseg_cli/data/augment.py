"""Augmentation pipelines from config: albumentations for 2D pairs, MONAI for 3D volumes.

An augment or mask_augment config group holds both recipes (`pipeline` and `volume_pipeline`);
the spec's codec says which one its samples take and how that library is seeded.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from genseg_cli.core.errors import GensegError
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


def without_transforms(
    node: DictConfig | None, targets: Sequence[str], key: str
) -> DictConfig | None:
    """A copy of augment group `node` whose pipelines (2D and 3D) leave out every transform whose
    `_target_` is in `targets` (e.g. a generator's pairs without the affine move's black padding).

    A target that none of the node's pipelines holds is refused, naming the config `key` that
    asked (a misspelt name would otherwise change nothing); a node without pipelines
    (`augment=none`) has nothing to leave out.

    >>> without_transforms(cfg.augment, ["albumentations.Affine"], "generator.skip_augment")
    """
    if not targets or not node:
        return node
    pipelines = [k for k, v in node.items() if isinstance(v, DictConfig) and "transforms" in v]
    if not pipelines:
        return node
    held = {t.get("_target_") for k in pipelines for t in node[k].transforms}
    missing = sorted(set(targets) - held)
    if missing:
        raise GensegError(
            f"{key} names {', '.join(missing)}, which augment={node.get('name')} does not hold "
            f"(it has {', '.join(sorted(h for h in held if h))}); fix the name or set {key}=[]"
        )
    trimmed = copy.deepcopy(node)
    for k in pipelines:
        kept = [t for t in trimmed[k].transforms if t.get("_target_") not in targets]
        trimmed[k].transforms = kept
    return trimmed

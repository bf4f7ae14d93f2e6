"""New masks from real ones: the cheap half of a synthetic pair, correct by construction.

The pipeline (albumentations, `conf/mask_augment/`) moves a real mask with linear interpolation;
the result is re-binarised at one half so the generator always sees a clean {0, 1} mask.
"""

from __future__ import annotations

import albumentations as A
import numpy as np


def augment_mask(mask: np.ndarray, pipeline: A.Compose | None) -> np.ndarray:
    """A new binary mask (uint8 {0,1}, same shape) from `mask` (bool or {0,1}).

    >>> new = augment_mask(mask, instantiate(compose("train").mask_augment.pipeline))
    >>> set(np.unique(new)) <= {0, 1}
    True
    """
    if pipeline is None:
        return mask.astype(np.uint8)
    moved = pipeline(image=mask.astype(np.uint8) * 255)["image"]
    return (np.squeeze(moved) > 127).astype(np.uint8)

"""Preview grids of synthetic data: new mask | synthetic image | nearest real image."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import save_image


def nearest_real(masks: Tensor, real_masks: Tensor) -> Tensor:
    """Index of the real mask with the highest IoU to each of `masks` (all N,1,H,W in {0,1})."""
    a = masks.flatten(1)[:, None, :] > 0.5
    b = real_masks.flatten(1)[None, :, :] > 0.5
    inter = (a & b).sum(-1).float()
    union = (a | b).sum(-1).float().clamp_min(1)
    return (inter / union).argmax(dim=1)


def save_preview(
    path: Path, masks: Tensor, synthetic: Tensor, real_masks: Tensor, real_images: Tensor
) -> None:
    """One row per mask: the mask, its synthetic image, the real image whose mask is nearest."""
    real = real_images[nearest_real(masks, real_masks)]
    channels = synthetic.shape[1]
    as_image = masks.expand(-1, channels, -1, -1) * 2 - 1  # masks drawn in the image range
    rows = torch.stack([as_image, synthetic.float(), real.float()], dim=1).flatten(0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image((rows.cpu() + 1) / 2, path, nrow=3, padding=2)

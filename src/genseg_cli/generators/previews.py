"""Preview grids of synthetic data: new mask | synthetic image | nearest real image.

Volumes are shown by their middle slice along the first spatial axis; one-hot label maps are
drawn as grey levels (background black, the last class white).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import save_image


def foreground(masks: Tensor) -> Tensor:
    """Foreground channels of masks: a binary mask itself, a one-hot map without background."""
    return masks if masks.shape[1] == 1 else masks[:, 1:]


def nearest_real(masks: Tensor, real_masks: Tensor) -> Tensor:
    """Index of the real mask with the highest foreground IoU to each of `masks`."""
    a = foreground(masks).flatten(1)[:, None, :] > 0.5
    b = foreground(real_masks).flatten(1)[None, :, :] > 0.5
    inter = (a & b).sum(-1).float()
    union = (a | b).sum(-1).float().clamp_min(1)
    return (inter / union).argmax(dim=1)


def middle_slice(x: Tensor) -> Tensor:
    """N,C,D,H,W -> N,C,H,W at D // 2; 2D batches pass through."""
    return x[:, :, x.shape[2] // 2] if x.ndim == 5 else x


def mask_as_image(masks: Tensor, channels: int) -> Tensor:
    """Masks drawn in the image range [-1, 1] with `channels` channels."""
    if masks.shape[1] == 1:
        grey = masks
    else:  # label index scaled to [0, 1]
        grey = masks.argmax(1, keepdim=True).float() / (masks.shape[1] - 1)
    return grey.expand(-1, channels, *grey.shape[2:]) * 2 - 1


def save_preview(
    path: Path, masks: Tensor, synthetic: Tensor, real_masks: Tensor, real_images: Tensor
) -> None:
    """One row per mask: the mask, its synthetic image, the real image whose mask is nearest."""
    real = real_images[nearest_real(masks, real_masks)]
    channels = synthetic.shape[1]
    shown = [mask_as_image(masks.float(), channels), synthetic.float(), real.float()]
    rows = torch.stack([middle_slice(x) for x in shown], dim=1).flatten(0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image((rows.cpu() + 1) / 2, path, nrow=3, padding=2)

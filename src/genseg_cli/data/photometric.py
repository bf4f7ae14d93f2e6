"""Differentiable brightness/contrast jitter for synthetic images (tensors in [-1, 1]).

Real training images get albumentations' RandomBrightnessContrast in the standard recipe; the
generator's images never pass through that numpy pipeline, because on the hypergradient path they
must stay in the autograd graph. This is the same transform written in torch: on [0, 1] values,
x' = clip(contrast * x + brightness), applied to each image with probability p.

    >>> jitter = PhotometricJitter(brightness=0.2, contrast=0.2, p=0.5)
    >>> params = jitter.draw(images.shape[0])     # once per step, from torch's global RNG
    >>> jittered = jitter(images, params)         # differentiable in `images`
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class PhotometricJitter:
    """Random contrast in [1 - contrast, 1 + contrast] and brightness shift in
    [-brightness, brightness] (fractions of the value range), each image with probability p."""

    brightness: float = 0.2
    contrast: float = 0.2
    p: float = 0.5

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "p"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"synthetic_jitter.{name}={value} must lie in [0, 1]")

    def draw(self, n: int) -> tuple[Tensor, Tensor]:
        """(contrast, brightness) factors for n images, shape (n,); identity where not applied.
        Drawn on the CPU so that CPU and CUDA runs of one seed see the same jitter."""
        applied = torch.rand(n) < self.p
        contrast = 1.0 + (torch.rand(n) * 2 - 1) * self.contrast
        brightness = (torch.rand(n) * 2 - 1) * self.brightness
        return torch.where(applied, contrast, 1.0), torch.where(applied, brightness, 0.0)

    def __call__(self, images: Tensor, params: tuple[Tensor, Tensor]) -> Tensor:
        contrast, brightness = (
            p.to(images.device, images.dtype).view(-1, *([1] * (images.dim() - 1))) for p in params
        )
        unit = (images + 1) / 2
        return (unit * contrast + brightness).clamp(0, 1) * 2 - 1

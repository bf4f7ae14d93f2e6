"""Appearance encoder E of a cVAE-GAN (BicycleGAN; Zhu et al., "Toward Multimodal
Image-to-Image Translation", NeurIPS 2017): an image -> the mean and log-variance of a
Gaussian over a low-dimensional code z, which the mask-to-image generator takes beside the
mask (``MaskToImageGenerator(style_dim=...)``).

A few stride-2 convolutions, global average pooling (the code describes the whole image, not a
place in it) and two linear heads. ``dims=3`` builds the same network for volumes.

>>> enc = StyleEncoder(in_channels=3, style_dim=8, base_width=8)
>>> mu, logvar = enc(torch.rand(2, 3, 64, 64) * 2 - 1)
>>> mu.shape, logvar.shape
(torch.Size([2, 8]), torch.Size([2, 8]))
>>> StyleEncoder(in_channels=1, style_dim=4, base_width=4, dims=3)(
...     torch.rand(1, 1, 16, 24, 16))[0].shape
torch.Size([1, 4])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genseg_cli.nets.layers import CONV, check_dims

__all__ = ["StyleEncoder", "encoder_layers"]


class StyleEncoder(nn.Module):
    """Image (N, in_channels, *S) in [-1, 1] -> (mu, logvar), each (N, style_dim).

    ``n_layers`` 4x4 stride-2 convolutions (LeakyReLU 0.2, no normalisation: a batch's statistics
    would leak one image's appearance into another's code), widths ``base_width * 2**i`` up to
    ``max_width``; every side must halve that many times (``encoder_layers`` picks it).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        style_dim: int,
        base_width: int = 64,
        max_width: int = 256,
        n_layers: int = 4,
        dims: int = 2,
    ) -> None:
        super().__init__()
        if style_dim < 1:
            raise ValueError(f"style_dim must be >= 1, got {style_dim}")
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.dims = check_dims(dims)
        self.style_dim = style_dim
        conv = CONV[dims]
        layers: list[nn.Module] = []
        width = in_channels
        for i in range(n_layers):
            nxt = min(base_width * 2**i, max_width)
            layers += [conv(width, nxt, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            width = nxt
        self.net = nn.Sequential(*layers)
        self.mu = nn.Linear(width, style_dim)
        self.logvar = nn.Linear(width, style_dim)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """``enc(image)`` -> (mu, logvar) of the code's Gaussian, per image."""
        if image.ndim != self.dims + 2:
            raise ValueError(
                f"a {self.dims}D StyleEncoder takes {self.dims + 2}-dim image batches, got "
                f"{tuple(image.shape)}"
            )
        pooled = torch.flatten(self.net(image).mean(dim=tuple(range(2, image.ndim))), 1)
        return self.mu(pooled), self.logvar(pooled)


def encoder_layers(spatial: tuple[int, ...], wanted: int = 4) -> int:
    """The number of stride-2 layers (at most `wanted`) that leave every side at least 2."""
    smallest, layers = min(spatial), 0
    while layers < wanted and smallest >= 4:
        smallest //= 2
        layers += 1
    return max(layers, 1)

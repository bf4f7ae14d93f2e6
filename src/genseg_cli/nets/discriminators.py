"""Conditional PatchGAN discriminator for the mask-to-image generator.

The discriminator sees the mask and the image side by side (channel concatenation), so it
judges whether the image is realistic *for that mask*, and returns one logit per patch; the
adversarial loss on those logits is ``genseg_cli.nets.losses.GANLoss``.
``dims=3`` builds the same network with 3D layers for volumes (N,C,D,H,W).

>>> disc = PatchDiscriminator(in_channels=1 + 3, base_width=16)
>>> logits = disc(torch.rand(2, 1, 64, 64), torch.rand(2, 3, 64, 64) * 2 - 1)
>>> logits.shape
torch.Size([2, 1, 6, 6])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genseg_cli.nets.layers import CONV, NORMS, check_dims, norm_layer

__all__ = ["PatchDiscriminator"]


class PatchDiscriminator(nn.Module):
    """PatchGAN over ``cat([mask, image], dim=1)``: (N,1,h,w) real/fake logits, one per patch.

    ``in_channels`` is the channel count of the concatenation: mask channels + image
    channels (1 + 3 for an RGB image and a binary mask). ``n_layers`` stride-2 convolutions
    are followed by two stride-1 ones; with the default 3 each logit sees a 70x70 patch
    (70x70x70 with ``dims=3``, where the logits are (N,1,d,h,w)). Each of the two stride-1
    4-kernels shrinks a side by 1, so a side must be at least ``2**n_layers * 3``.

    >>> PatchDiscriminator(in_channels=2, base_width=8)(torch.rand(1, 1, 32, 32),
    ...                                                 torch.rand(1, 1, 32, 32)).shape
    torch.Size([1, 1, 2, 2])
    >>> PatchDiscriminator(in_channels=4, base_width=4, n_layers=2, dims=3)(
    ...     torch.rand(1, 3, 16, 24, 16), torch.rand(1, 1, 16, 24, 16)).shape
    torch.Size([1, 1, 2, 4, 2])
    """

    def __init__(
        self,
        *,
        in_channels: int,
        base_width: int = 64,
        n_layers: int = 3,
        norm: str = "batch",
        dims: int = 2,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {list(NORMS)}")
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.in_channels = in_channels
        self.dims = check_dims(dims)
        conv = CONV[dims]
        # A conv bias is redundant right before a BatchNorm.
        biased = norm != "batch"
        width = base_width
        layers: list[nn.Module] = [
            conv(in_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        ]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1  # the last widening conv keeps the size
            nxt = base_width * min(2**i, 8)
            layers += [
                conv(width, nxt, 4, stride=stride, padding=1, bias=biased),
                norm_layer(norm, nxt, dims),
                nn.LeakyReLU(0.2),
            ]
            width = nxt
        layers.append(conv(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        self._init_weights()

    def _init_weights(self) -> None:
        # pix2pix initialisation: N(0, 0.02) kernels, N(1, 0.02) norm scales, zero biases.
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Conv3d):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm3d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, mask: Tensor | None, image: Tensor) -> Tensor:
        """``disc(mask, image)`` -> (N,1,[d,]h,w) logits (no sigmoid: GANLoss works on logits).
        ``mask=None``: an unconditional critic of images alone (built with ``in_channels`` =
        image channels), e.g. the realism term on unlabeled images."""
        return self.net(self._joined(mask, image))

    def features(self, mask: Tensor | None, image: Tensor) -> list[Tensor]:
        """The activations after each LeakyReLU, then the logits: what feature matching
        (pix2pixHD) compares between real and synthetic images.

        >>> disc = PatchDiscriminator(in_channels=2, base_width=8)
        >>> [tuple(f.shape) for f in disc.features(torch.rand(1, 1, 32, 32),
        ...                                        torch.rand(1, 1, 32, 32))]
        [(1, 8, 16, 16), (1, 16, 8, 8), (1, 32, 4, 4), (1, 64, 3, 3), (1, 1, 2, 2)]
        """
        out, x = [], self._joined(mask, image)
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                out.append(x)
        return [*out, x]

    def _joined(self, mask: Tensor | None, image: Tensor) -> Tensor:
        """The network's input: mask and image side by side, checked against the build."""
        want = self.dims + 2
        if (mask is not None and mask.ndim != want) or image.ndim != want:
            raise ValueError(
                f"a {self.dims}D PatchDiscriminator takes {want}-dim mask and image batches "
                f"(N,C,{'D,' if self.dims == 3 else ''}H,W), got mask "
                f"{None if mask is None else tuple(mask.shape)} and image {tuple(image.shape)}"
            )
        if mask is not None and (
            mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]
        ):
            raise ValueError(
                f"mask {tuple(mask.shape)} and image {tuple(image.shape)} must share batch "
                "size and spatial size"
            )
        got = (0 if mask is None else mask.shape[1]) + image.shape[1]
        if got != self.in_channels:
            raise ValueError(
                f"PatchDiscriminator was built with in_channels={self.in_channels} but got "
                f"mask ({0 if mask is None else mask.shape[1]} ch) + image ({image.shape[1]} ch)"
                f" = {got}; in_channels must be mask channels + image channels"
            )
        if mask is None:
            return image
        return torch.cat([mask, image.to(mask.dtype)], dim=1)

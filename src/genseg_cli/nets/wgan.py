"""The networks of a WGAN-GP that makes an image and its mask together from noise (Gulrajani et
al., "Improved Training of Wasserstein GANs", NeurIPS 2017), DCGAN-shaped as in its image
experiments: a generator of transposed convolutions with batch norm, a critic of strided
convolutions without any normalisation (the gradient penalty is taken per sample, which batch
norm would mix across the batch).

A pair travels as one tensor of image_channels + mask_channels channels: the image in [-1, 1]
and the mask mapped from [0, 1] to [-1, 1], so the critic judges image and mask jointly.

>>> g = JointGenerator(image_channels=1, mask_channels=1, image_size=32, latent=16, base_width=4)
>>> g(torch.randn(2, 16)).shape
torch.Size([2, 2, 32, 32])
>>> WGANCritic(in_channels=2, image_size=32, base_width=4)(torch.zeros(2, 2, 32, 32)).shape
torch.Size([2])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["JointGenerator", "WGANCritic", "gradient_penalty", "up_steps"]


def up_steps(image_size: int) -> int:
    """How many times the 4-or-more-pixel start doubles to `image_size`: the most halvings of
    the side that stay whole and leave at least 4 pixels (64 -> 4, 96 -> 4, 100 -> 2)."""
    steps = 0
    while image_size % 2 ** (steps + 1) == 0 and image_size // 2 ** (steps + 1) >= 4:
        steps += 1
    return steps


def _width(base_width: int, max_width: int, scale: int) -> int:
    return int(min(max_width, base_width * scale))


class JointGenerator(nn.Module):
    """z (N, latent) -> (N, image_channels + mask_channels, S, S) logits of a pair.

    `split` turns the logits into an image (tanh, [-1, 1]) and a soft mask in [0, 1] (sigmoid for
    one binary channel, softmax over a label map's channels).
    """

    def __init__(
        self,
        *,
        image_channels: int,
        mask_channels: int,
        image_size: int,
        latent: int = 128,
        base_width: int = 64,
        max_width: int = 512,
    ) -> None:
        super().__init__()
        self.image_channels, self.mask_channels = int(image_channels), int(mask_channels)
        self.latent = int(latent)
        steps = up_steps(int(image_size))
        self.start = int(image_size) // 2**steps
        widths = [_width(base_width, max_width, 2 ** (steps - i)) for i in range(steps + 1)]
        self.project = nn.Sequential(
            nn.Linear(self.latent, widths[0] * self.start**2, bias=False),
            nn.Unflatten(1, (widths[0], self.start, self.start)),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        for wide, narrow in zip(widths[:-1], widths[1:], strict=True):
            layers += [
                nn.ConvTranspose2d(wide, narrow, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(narrow),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv2d(widths[-1], self.image_channels + self.mask_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(self.project(z))

    def split(self, logits: Tensor) -> tuple[Tensor, Tensor]:
        """(image in [-1, 1], soft mask in [0, 1]) from the generator's logits."""
        image, mask = logits[:, : self.image_channels], logits[:, self.image_channels :]
        soft = torch.sigmoid(mask) if self.mask_channels == 1 else mask.softmax(1)
        return torch.tanh(image), soft


class WGANCritic(nn.Module):
    """(N, in_channels, S, S) -> (N,) scores: strided 4x4 convolutions with leaky ReLU down to
    the generator's start size, then one linear layer; no normalisation."""

    def __init__(
        self, *, in_channels: int, image_size: int, base_width: int = 64, max_width: int = 512
    ) -> None:
        super().__init__()
        steps = up_steps(int(image_size))
        start = int(image_size) // 2**steps
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base_width, 3, padding=1)]
        channels = base_width
        for i in range(steps):
            wide = _width(base_width, max_width, 2 ** (i + 1))
            layers += [
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(channels, wide, 4, stride=2, padding=1),
            ]
            channels = wide
        layers += [nn.LeakyReLU(0.2, inplace=True), nn.Flatten(), nn.Linear(channels * start**2, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, pairs: Tensor) -> Tensor:
        return self.body(pairs).squeeze(1)


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """E[(||grad_x critic(x)||_2 - 1)^2] at x on the line between each real and fake sample,
    at a uniform random point per sample (WGAN-GP's two-sided penalty)."""
    share = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    between = (share * real + (1 - share) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(between).sum(), between, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()

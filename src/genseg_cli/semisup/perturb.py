"""Strong views of unlabeled images, in torch on whole batches (2D N,C,H,W or 3D N,C,D,H,W).

The weak view is what the unlabeled stream delivers (the augment group's pipeline); a strong view
keeps its geometry, so the weak view's pseudo labels stay aligned, and changes appearance:
contrast, brightness and gamma, Gaussian blur and noise, each with a probability. CutMix then
pastes a random box of another image of the batch (with its pseudo labels) into each image.
Random numbers come from torch's global generator, whose state resumable checkpoints keep.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def _per_image(values: Tensor, like: Tensor) -> Tensor:
    return values.to(like.device, like.dtype).view(-1, *([1] * (like.dim() - 1)))


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur over every spatial axis, reflect-padded."""
    radius = max(1, int(round(2 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels, dims = images.shape[1], images.dim() - 2
    conv = F.conv2d if dims == 2 else F.conv3d
    out = images
    for axis in range(dims):
        shape = [1] * dims
        shape[axis] = kernel.numel()
        weight = kernel.view(1, 1, *shape).repeat(channels, 1, *([1] * dims))
        pad = [0, 0] * dims
        pad[2 * (dims - 1 - axis)] = pad[2 * (dims - 1 - axis) + 1] = radius
        out = conv(F.pad(out, pad, mode="reflect"), weight, groups=channels)
    return out


@dataclass(frozen=True)
class StrongPerturbation:
    """Appearance changes of images in [-1, 1]: contrast and brightness as fractions of the value
    range, gamma in [1 - gamma, 1 + gamma], blur with probability `blur` (sigma 0.1-1.5 px), noise
    with standard deviation up to `noise`; each change applied to an image with probability p."""

    contrast: float = 0.4
    brightness: float = 0.4
    gamma: float = 0.4
    blur: float = 0.5
    noise: float = 0.05
    p: float = 0.8

    def __call__(self, images: Tensor) -> Tensor:
        n = images.shape[0]
        unit = (images.float() + 1) / 2

        def chosen() -> Tensor:
            return torch.rand(n) < self.p

        contrast = torch.where(chosen(), 1 + (torch.rand(n) * 2 - 1) * self.contrast, 1.0)
        brightness = torch.where(chosen(), (torch.rand(n) * 2 - 1) * self.brightness, 0.0)
        gamma = torch.where(chosen(), 1 + (torch.rand(n) * 2 - 1) * self.gamma, 1.0)
        mean = unit.mean(dim=tuple(range(1, unit.dim())), keepdim=True)
        unit = (unit - mean) * _per_image(contrast, unit) + mean + _per_image(brightness, unit)
        unit = unit.clamp(0, 1) ** _per_image(gamma, unit)
        blurred = torch.rand(n) < self.blur
        if blurred.any():
            sigma = float(0.1 + torch.rand(()) * 1.4)
            smooth = gaussian_blur(unit, sigma)
            unit = torch.where(_per_image(blurred, unit).bool(), smooth, unit)
        noisy = _per_image(torch.where(chosen(), torch.rand(n) * self.noise, 0.0), unit)
        unit = (unit + noisy * torch.randn(unit.shape).to(unit.device)).clamp(0, 1)
        return (unit * 2 - 1).to(images.dtype)


def cutmix_boxes(n: int, spatial: tuple[int, ...], p: float = 1.0) -> tuple[Tensor, Tensor]:
    """(box masks N x 1 x spatial, partner index N): with probability p an image gets a box of
    another image of the batch, its side a random 0.25-0.6 of each axis (UniMatch's CutMix)."""
    boxes = torch.zeros(n, 1, *spatial)
    for i in range(n):
        if torch.rand(()) >= p:
            continue
        share = float(0.25 + torch.rand(()) * 0.35)
        index = []
        for size in spatial:
            side = max(1, int(size * share))
            start = int(torch.randint(0, size - side + 1, ()))
            index.append(slice(start, start + side))
        boxes[(i, 0, *index)] = 1.0
    return boxes, torch.roll(torch.arange(n), 1)  # each image takes from its neighbour


def cutmix(values: Tensor, boxes: Tensor, partner: Tensor) -> Tensor:
    """Inside each box, the partner's values (images, pseudo labels or confidences alike)."""
    inside = boxes.to(values.device, values.dtype)
    return values * (1 - inside) + values[partner.to(values.device)] * inside

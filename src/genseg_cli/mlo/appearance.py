"""Appearance lever: how far the synthetic images' look may move from the generator's.

Written from the idea of causality-inspired single-source domain generalisation (Ouyang et al.,
2022): a random shallow convolutional network re-renders an image with the same shapes and a
different intensity mapping; mixing its output with the original by a random amount gives
appearance outside the labelled images while the mask stays valid. Plus a random gamma and
contrast. What the upper level learns is how strong each may be:

    mix      ~ U(0, 1) * sigmoid(raw_mix)          (share of the re-rendered image)
    gamma    = exp(softplus(raw_gamma) * N(0, 1))  (on [0, 1] values)
    contrast = exp(softplus(raw_contrast) * N(0, 1)) around each image's mean

The random network's weights are drawn each step and are not learned: the lever learns the
distribution of appearance, not one appearance.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genseg_cli.mlo.levers import SyntheticLever, as_unit, from_unit, inverse_softplus, per_sample

_CONV = {2: F.conv2d, 3: F.conv3d}


class AppearanceLever(SyntheticLever):
    """Random-convolution mixing, gamma and contrast, with learned strengths.

    `mix`, `gamma` and `contrast` are the starting strengths (mix in (0, 1), the others > 0);
    `hidden` the random network's width, `kernel` its first layer's kernel size.
    """

    def __init__(
        self,
        *,
        mix: float = 0.2,
        gamma: float = 0.1,
        contrast: float = 0.1,
        hidden: int = 8,
        kernel: int = 3,
        **channels,
    ) -> None:
        super().__init__(**channels)
        if not 0.0 < mix < 1.0 or gamma <= 0 or contrast <= 0:
            raise ValueError(
                f"mlo.appearance: mix={mix} must lie in (0, 1), gamma={gamma} and "
                f"contrast={contrast} must be positive"
            )
        self.hidden, self.kernel = int(hidden), int(kernel)
        self.raw_mix = nn.Parameter(torch.tensor(math.log(mix / (1 - mix))))
        self.raw_gamma = nn.Parameter(torch.tensor(inverse_softplus(gamma)))
        self.raw_contrast = nn.Parameter(torch.tensor(inverse_softplus(contrast)))

    def strengths(self) -> tuple[Tensor, Tensor, Tensor]:
        return (
            torch.sigmoid(self.raw_mix),
            F.softplus(self.raw_gamma),
            F.softplus(self.raw_contrast),
        )

    def draw(self, n: int) -> dict[str, Tensor]:
        c, h, k = self.image_channels, self.hidden, self.kernel
        shape = (k,) * self.dims
        return {
            "mix": torch.rand(n),
            "gamma": torch.randn(n),
            "contrast": torch.randn(n),
            # He-like scales keep the random rendering's intensities in a sane range
            "w1": torch.randn(h, c, *shape) / math.sqrt(c * k**self.dims),
            "w2": torch.randn(c, h, *(1,) * self.dims) / math.sqrt(h),
        }

    def images(self, images: Tensor, draw: dict[str, Tensor]) -> Tensor:
        mix, gamma, contrast = self.strengths()
        unit = as_unit(images)
        conv = _CONV[self.dims]
        w1, w2 = (draw[k].to(images.device, images.dtype) for k in ("w1", "w2"))
        rendered = conv(F.leaky_relu(conv(unit, w1, padding=self.kernel // 2), 0.2), w2)
        # the re-rendering keeps each image's mean and spread, so only the mapping changes
        axes = tuple(range(1, images.dim()))
        rendered = (rendered - rendered.mean(axes, keepdim=True)) / (
            rendered.std(axes, keepdim=True) + 1e-5
        ) * unit.std(axes, keepdim=True) + unit.mean(axes, keepdim=True)
        amount = per_sample(draw["mix"], unit) * mix
        unit = (unit + amount * (rendered - unit)).clamp(1e-4, 1)
        unit = unit ** torch.exp(gamma * per_sample(draw["gamma"], unit))
        mean = unit.mean(axes, keepdim=True)
        unit = (unit - mean) * torch.exp(contrast * per_sample(draw["contrast"], unit)) + mean
        return from_unit(unit)

    def describe(self) -> dict[str, float]:
        mix, gamma, contrast = (float(v.detach()) for v in self.strengths())
        return {"mix": mix, "gamma": gamma, "contrast": contrast}

"""Mask-warp lever: which shapes the generator is asked to draw, learned by the upper level.

The new masks come from the `mask_augment` pipeline (albumentations, on the CPU, outside the
graph). This lever adds a differentiable warp on top: a random similarity transform (scale,
rotation, translation) plus a smooth random displacement field, applied by grid sampling to the
(soft) masks, so that the validation loss reaches the warp's magnitudes:

    scale = exp(s_scale * u), angle = s_rotate * u, shift = s_translate * u, u ~ U(-1, 1)
    displacement = s_elastic * upsample(N(0, 1) on a coarse grid)

with every s = softplus(raw) learned. The warped masks are both the generator's input and the
synthetic pairs' targets, so images and labels move together. 2D only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genseg_cli.mlo.levers import SyntheticLever, inverse_softplus

NAMES = ("scale", "rotate", "translate", "elastic")


class MaskWarpLever(SyntheticLever):
    """Learned magnitudes of a random warp of the new masks.

    `scale` (log-scale), `rotate` (radians), `translate` (fraction of the half-width) and
    `elastic` (displacement, same unit) are the starting magnitudes; `grid` the coarse noise
    grid of the displacement field (larger: less smooth).
    """

    def __init__(
        self,
        *,
        scale: float = 0.05,
        rotate: float = 0.1,
        translate: float = 0.05,
        elastic: float = 0.02,
        grid: int = 6,
        **channels,
    ) -> None:
        super().__init__(**channels)
        if self.dims != 2:
            raise ValueError("mlo.levers: mask_warp supports 2D data only; drop it for 3D runs")
        starts = {"scale": scale, "rotate": rotate, "translate": translate, "elastic": elastic}
        bad = {k: v for k, v in starts.items() if v <= 0}
        if bad:
            raise ValueError(f"mlo.mask_warp magnitudes must be positive, got {bad}")
        self.raw = nn.Parameter(torch.tensor([inverse_softplus(starts[k]) for k in NAMES]))
        self.grid = int(grid)

    def magnitudes(self) -> Tensor:
        return F.softplus(self.raw)

    def draw(self, n: int) -> dict[str, Tensor]:
        return {"u": torch.rand(n, 4) * 2 - 1, "noise": torch.randn(n, 2, self.grid, self.grid)}

    def masks(self, masks: Tensor, draw: dict[str, Tensor]) -> Tensor:
        scale, rotate, translate, elastic = self.magnitudes()
        u = draw["u"].to(masks.device, masks.dtype)
        factor = torch.exp(scale * u[:, 0])
        angle = rotate * u[:, 1]
        cos, sin = torch.cos(angle) * factor, torch.sin(angle) * factor
        theta = torch.stack(
            [
                torch.stack([cos, -sin, translate * u[:, 2]], dim=1),
                torch.stack([sin, cos, translate * u[:, 3]], dim=1),
            ],
            dim=1,
        )
        grid = F.affine_grid(theta, list(masks.shape), align_corners=False)
        noise = draw["noise"].to(masks.device, masks.dtype)
        field = F.interpolate(noise, size=masks.shape[-2:], mode="bicubic", align_corners=False)
        grid = grid + elastic * field.permute(0, 2, 3, 1)
        warped = F.grid_sample(masks, grid, mode="bilinear", align_corners=False)
        return warped.clamp(0, 1)

    def describe(self) -> dict[str, float]:
        return dict(zip(NAMES, (float(v) for v in self.magnitudes().detach()), strict=True))

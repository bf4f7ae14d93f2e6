"""A template for a new upper-level lever: copy this file, rename the class, change `images`
and/or `masks`, add a node to conf/mlo/default.yaml, and name it in `mlo.levers`.

This one works as it is (`mlo.levers=[template_lever]`): it shifts every synthetic image's
brightness by a random amount whose spread the upper level learns. Rules a lever keeps:
- draw its randomness in `draw(n)` on the CPU with torch's global generator, never inside
  `masks`/`images` (every pass of one step must see the same pairs);
- keep `masks` in [0, 1] and `images` in [-1, 1], differentiable in the lever's parameters;
- map raw parameters through softplus/sigmoid so a magnitude never changes sign;
- report its magnitudes in `describe` (they go to history.csv and metrics.json);
- add a test like tests/mlo/test_levers.py's numerical-derivative check.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genseg_cli.mlo.levers import SyntheticLever, inverse_softplus, per_sample


class TemplateLever(SyntheticLever):
    """Random brightness shift with a learned spread (in units of the [-1, 1] range)."""

    def __init__(self, *, spread: float = 0.05, **channels) -> None:
        super().__init__(**channels)  # dims, mask_channels, image_channels
        self.raw_spread = nn.Parameter(torch.tensor(inverse_softplus(spread)))

    def draw(self, n: int) -> Tensor:
        return torch.randn(n)

    def images(self, images: Tensor, draw: Tensor) -> Tensor:
        shift = F.softplus(self.raw_spread) * per_sample(draw, images)
        return (images + shift).clamp(-1, 1)

    def describe(self) -> dict[str, float]:
        return {"spread": float(F.softplus(self.raw_spread).detach())}

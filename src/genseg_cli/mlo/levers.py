"""Upper-level levers on the synthetic pairs: parameters that shape what the segmenter is shown.

GenSeg's upper level moves whatever reaches the validation loss only through the synthetic
pairs. Besides the generator's architecture (alpha), its weights and lambda, a *lever* is a small
module between the new masks and the segmenter:

    new masks --lever.masks--> masks' --generator--> images --lever.images--> images'

whose parameters are moved along d L_val(W'(lever)) / d lever like alpha. A lever's randomness
(which warp, which appearance) is drawn once per step by `draw(n)` and reused by every pass of
that step, so the unrolled look-ahead and the segmenter's own update see the same pairs, and the
hypergradient is the reparameterised one (the draw is fixed, the magnitudes are the variables).

Levers are named in `mlo.levers` (e.g. `mlo.levers=[appearance,mask_warp]`), each built from its
node in conf/mlo (`mlo.appearance`, `mlo.mask_warp`, `mlo.template_lever`); writing one: see
`genseg_cli.mlo.lever_template`.
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig
from torch import Tensor, nn

from genseg_cli.core.config import instantiate_explained
from genseg_cli.core.errors import GensegError


def inverse_softplus(value: float) -> float:
    """The raw parameter whose softplus is `value` (> 0): magnitudes start where configured."""
    return value + math.log(-math.expm1(-value))


class SyntheticLever(nn.Module):
    """Base of every lever: identity on masks and images unless a subclass overrides one.

    `dims` is the number of spatial dimensions (2 or 3) of the run's data; `mask_channels` and
    `image_channels` what the generator reads and writes.
    """

    def __init__(self, *, dims: int, mask_channels: int, image_channels: int) -> None:
        super().__init__()
        self.dims, self.mask_channels, self.image_channels = dims, mask_channels, image_channels

    def draw(self, n: int) -> Any:
        """This step's randomness for n pairs, on the CPU (CPU and CUDA runs draw alike)."""
        return None

    def masks(self, masks: Tensor, draw: Any) -> Tensor:
        """The generator's input masks, also the synthetic pairs' targets; in [0, 1]."""
        return masks

    def images(self, images: Tensor, draw: Any) -> Tensor:
        """The synthetic images the segmenter sees; in [-1, 1]."""
        return images

    def describe(self) -> dict[str, float]:
        """The lever's current magnitudes by name, for history.csv and metrics.json."""
        return {}


def build_levers(
    mlo: DictConfig, dims: int, mask_channels: int, image_channels: int
) -> nn.ModuleList:
    """The levers named in `mlo.levers`, each from its node `mlo.<name>` (refused if missing)."""
    names = list(mlo.get("levers") or [])
    levers = nn.ModuleList()
    for name in names:
        node = mlo.get(name)
        if not isinstance(node, DictConfig) or "_target_" not in node:
            known = sorted(
                k for k, v in mlo.items() if isinstance(v, DictConfig) and "_target_" in v
            )
            raise ValueError(
                f"mlo.levers names '{name}', which has no lever config mlo.{name}; "
                f"known levers: {', '.join(known)}"
            )
        # the constructor's refusal of a setting (ValueError, its message names its own key) or of
        # an unknown key (TypeError) as one line; anything else is a bug and keeps its traceback
        lever = instantiate_explained(
            node,
            user_errors=(ValueError, TypeError, GensegError),
            dims=dims,
            mask_channels=mask_channels,
            image_channels=image_channels,
        )
        if not isinstance(lever, SyntheticLever):
            raise ValueError(f"mlo.{name}._target_ must build a SyntheticLever, got {type(lever)}")
        lever.lever_name = name
        levers.append(lever)
    return levers


def apply_masks(levers: nn.ModuleList, masks: Tensor, draws: list) -> Tensor:
    """`masks` through every lever's mask transform, in `mlo.levers` order."""
    for lever, draw in zip(levers, draws, strict=True):
        masks = lever.masks(masks, draw)
    return masks


def apply_images(levers: nn.ModuleList, images: Tensor, draws: list) -> Tensor:
    """`images` through every lever's image transform, in `mlo.levers` order."""
    for lever, draw in zip(levers, draws, strict=True):
        images = lever.images(images, draw)
    return images


def describe_levers(levers: nn.ModuleList) -> dict[str, float]:
    """Every lever's magnitudes as `lever/<name>/<magnitude>` columns."""
    return {
        f"lever/{lever.lever_name}/{key}": value
        for lever in levers
        for key, value in lever.describe().items()
    }


def as_unit(images: Tensor) -> Tensor:
    """[-1, 1] images as [0, 1] values."""
    return (images + 1) / 2


def from_unit(values: Tensor) -> Tensor:
    return values.clamp(0, 1) * 2 - 1


def per_sample(values: Tensor, like: Tensor) -> Tensor:
    """A (n,) tensor shaped to broadcast over `like` (n, C, *spatial)."""
    return values.to(like.device, like.dtype).view(-1, *([1] * (like.dim() - 1)))

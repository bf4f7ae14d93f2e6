"""A template for a new generator recipe: copy this file, rename the class, fill in the parts.

This one is complete and runs (`genseg train method=separate generator=template`): a small
convolutional mask-to-image network trained with an L1 loss to the real image only, no critic.
It is the simplest recipe that satisfies the interface, and an ablation of pix2pix's
adversarial term. To add your own generator (a diffusion model, a VAE, a WGAN that makes image
and mask together):

1. Subclass `GeneratorRecipe` (genseg_cli.generators.base) in a module of this package.
2. In `__init__`, build `self.generator` (an nn.Module: masks (N, mask_channels, *size) in {0, 1}
   -> images (N, image_channels, *size) in [-1, 1]) and whatever trains it, on `runtime.device`.
   `shape` gives the channels and size; `config` is your `conf/generator/<name>.yaml`.
3. Implement `train_step` (one update on real pairs; override `learns_from_unlabeled` to get the
   pool's unlabeled images as well), `set_learning_rate` and `networks`; override
   `stateful` when you own optimisers (a resumed run must get them back), `upper_parameters`
   when the upper level should learn something of yours (genseg moves these along the
   hypergradient of the validation loss), `freeze` when frozen must mean more than eval mode.
4. Write `conf/generator/<name>.yaml` with `_target_: genseg_cli.generators.<module>.<Class>`,
   a `name`, and your settings. `method=separate|genseg generator=<name>` then uses it.
5. A generator that makes image and mask together (no mask input): set `makes_masks = True`
   and override `pairs(masks, exact)` to return as many (images, binary masks) pairs of its own
   as `masks` holds, `preview_pairs` for the preview grids, and `pretrain_step` (the default
   calls `synthesise(masks)`); `supported_dims = (2,)` if it cannot make volumes. The methods
   ask every recipe for pairs, so `separate`, TSTR and `genseg generate` use it unchanged;
   `method=genseg` refuses it before training (`genseg_cli.generators.wgan` is the example).
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from genseg_cli.core.runtime import Runtime
from genseg_cli.data.spec import DataSpec
from genseg_cli.generators.base import GeneratorRecipe

CONV = {2: nn.Conv2d, 3: nn.Conv3d}


class TemplateRecipe(GeneratorRecipe):
    """Mask -> image with a few same-size convolutions, trained by L1 to the real image.

    Config keys: `width` (channels of the hidden layers), `depth` (hidden layers).
    """

    name = "template"

    def __init__(self, *, config: DictConfig, spec: DataSpec, runtime: Runtime, lr: float) -> None:
        super().__init__(config=config, spec=spec, runtime=runtime, lr=lr)
        conv, width = CONV[spec.dims], int(config.get("width", 16))
        layers: list[nn.Module] = []
        channels = spec.mask_channels
        for _ in range(int(config.get("depth", 3))):
            layers += [conv(channels, width, 3, padding=1), nn.LeakyReLU(0.2)]
            channels = width
        # tanh: images live in [-1, 1], the range the segmenter's real inputs have
        layers += [conv(channels, spec.image_channels, 3, padding=1), nn.Tanh()]
        self.generator = nn.Sequential(*layers).to(runtime.device)
        self.optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.lr)

    def train_step(
        self, masks: Tensor, images: Tensor, fake: Tensor, unlabeled: Tensor | None = None
    ) -> dict[str, float]:
        # `unlabeled`: the pool's images without masks when `learns_from_unlabeled` says True
        # (it does not here); a recipe with an unconditional term would use them
        self.optimizer.zero_grad(set_to_none=True)
        loss = (fake.float() - images).abs().mean()
        loss.backward()
        self.optimizer.step()
        return {"loss/G_l1": float(loss.detach())}

    def set_learning_rate(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    def stateful(self) -> dict:
        return {**self.networks(), "g_optimizer": self.optimizer}

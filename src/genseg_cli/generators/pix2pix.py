"""pix2pix as a generator recipe: a U-Net generator (searchable or fixed kernels), a PatchGAN
critic, the adversarial loss and lambda_L1 * L1 to the real image (Isola et al., 2017).

`conf/generator/searchable.yaml` (GenSeg's generator: up-sampling layers mix 4/6/8-kernel
transposed convolutions by softmax(alpha), alpha being upper-level parameters) and
`conf/generator/pix2pix_fixed.yaml` (one kernel, no alpha) both build this recipe.
"""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor, nn

from genseg_cli.core.runtime import Runtime
from genseg_cli.data.spec import DataSpec
from genseg_cli.generators.base import GeneratorRecipe
from genseg_cli.nets.losses import GANLoss


def pix2pix_adam(params, lr: float) -> torch.optim.Adam:
    """Adam with pix2pix's betas (0.5, 0.999), for every generator-side optimiser; fused (one
    kernel per step instead of a loop over tensors: about 2x faster on CPU, same update)."""
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999), fused=True)


class Pix2PixRecipe(GeneratorRecipe):
    """Generator G and PatchGAN D; D then G per step, G's architecture weights never trained here.

    Config keys: `model` (the generator network, `_target_` and widths), `discriminator`,
    `gan_loss` (lsgan | vanilla), `lambda_l1`.
    """

    name = "pix2pix"

    def __init__(self, *, config: DictConfig, spec: DataSpec, runtime: Runtime, lr: float) -> None:
        super().__init__(config=config, spec=spec, runtime=runtime, lr=lr)
        device = runtime.device
        # G before D: the order in which their weights draw from the seeded generator
        self.generator = instantiate(
            config.model,
            in_channels=spec.mask_channels,
            out_channels=spec.image_channels,
            image_size=spec.model_size,
        ).to(device)
        self.discriminator = instantiate(
            config.discriminator,
            in_channels=spec.mask_channels + spec.image_channels,
            dims=spec.dims,
        ).to(device)
        self.gan_loss = GANLoss(config.gan_loss)
        self.lambda_l1 = float(config.lambda_l1)
        self.g_optimizer = pix2pix_adam(self.generator.weight_parameters(), self.lr)
        self.d_optimizer = pix2pix_adam(self.discriminator.parameters(), self.lr)

    def discriminator_update(self, masks: Tensor, images: Tensor, fake: Tensor) -> float:
        self.d_optimizer.zero_grad(set_to_none=True)
        with self.runtime.autocast():
            real_score = self.discriminator(masks, images)
            fake_score = self.discriminator(masks, fake.detach())
        loss = 0.5 * (
            self.gan_loss(real_score.float(), True) + self.gan_loss(fake_score.float(), False)
        )
        loss.backward()
        self.d_optimizer.step()
        return float(loss.detach())

    def generator_update(self, masks: Tensor, images: Tensor, fake: Tensor) -> dict[str, float]:
        """Adversarial + lambda_L1 * L1 step on G's weights (never on the architecture)."""
        self.discriminator.requires_grad_(False)  # D is only a critic here
        self.g_optimizer.zero_grad(set_to_none=True)
        with self.runtime.autocast():
            score = self.discriminator(masks, fake)
        adversarial = self.gan_loss(score.float(), True)
        l1 = (fake.float() - images).abs().mean()
        (adversarial + self.lambda_l1 * l1).backward()
        self.g_optimizer.step()
        self.discriminator.requires_grad_(True)
        return {"loss/G_gan": float(adversarial.detach()), "loss/G_l1": float(l1.detach())}

    def train_step(self, masks: Tensor, images: Tensor, fake: Tensor) -> dict[str, float]:
        return {
            "loss/D": self.discriminator_update(masks, images, fake),
            **self.generator_update(masks, images, fake),
        }

    def set_learning_rate(self, lr: float) -> None:
        for optimizer in (self.g_optimizer, self.d_optimizer):
            for group in optimizer.param_groups:
                group["lr"] = lr

    def freeze(self) -> None:
        """Weights and batch-norm running statistics fixed, but G still normalises with each
        batch's statistics, as it does in genseg (train mode; no running statistics are updated),
        and dropout stays on: pix2pix's only noise source. So separate and genseg make the
        segmenter's synthetic images the same way, and genseg against separate measures the
        feedback alone."""
        super().freeze()
        self.generator.train()
        for child in self.generator.modules():
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                child.track_running_stats = False  # batch statistics, nothing recorded

    def weight_parameters(self) -> list[nn.Parameter]:
        return self.generator.weight_parameters()

    def upper_parameters(self) -> list[nn.Parameter]:
        return self.generator.arch_parameters()

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def stateful(self) -> dict:
        return {
            **self.networks(),
            "g_optimizer": self.g_optimizer,
            "d_optimizer": self.d_optimizer,
        }

    def describe(self) -> dict:
        return {**super().describe(), "architecture": self.generator.derive()}

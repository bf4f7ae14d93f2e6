"""WGAN-GP as a generator recipe that makes its own masks: image and mask drawn together from
noise, the paper's augmentation comparator (GenSeg, Fig. 5: "WGAN").

Written from Gulrajani et al., "Improved Training of Wasserstein GANs" (NeurIPS 2017), Algorithm
1: per iteration a critic step on real pairs against generated ones, loss
D(fake) - D(real) + gp_weight * (||grad D(x_hat)||_2 - 1)^2 at x_hat between them, Adam with
betas (0, 0.9); the generator steps (loss -D(fake)) once every `critic_steps` critic steps. The
labelled train pairs are the real data; a pair is one tensor (image, mask mapped to [-1, 1]), so
the critic judges whether the mask fits the image. The segmenter gets the generator's pairs
with the mask thresholded at 0.5 (`pairs`), as GenSeg's comparison uses them.

Where this differs from the paper's Algorithm 1, and why: each critic step sees the training
step's one real batch, and `method.pretrain.steps` counts critic steps (the generator takes
steps / critic_steps), because the methods hand a recipe one real batch per step; the learning
rate is the method's `pretrain.lr`, like every recipe's. 2D data only (the networks are 2D).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor, nn

from genseg_cli.core.errors import GensegError
from genseg_cli.core.runtime import Runtime
from genseg_cli.data.spec import DataSpec
from genseg_cli.generators.base import GeneratorRecipe
from genseg_cli.nets.wgan import gradient_penalty

BETAS = (0.0, 0.9)  # WGAN-GP's Adam: no momentum, which the critic's moving target dislikes
PREVIEW_SEED = 0  # previews show the same noise every time and draw nothing from the run's seed


def binary(soft: Tensor) -> Tensor:
    """A soft mask as a training target: > 0.5 for one channel, one-hot of the argmax else."""
    if soft.shape[1] == 1:
        return (soft > 0.5).to(soft.dtype)
    return F.one_hot(soft.argmax(1), soft.shape[1]).movedim(-1, 1).to(soft.dtype)


class WGANRecipe(GeneratorRecipe):
    """Generator G(z) -> (image, mask) and critic D(image, mask), trained by WGAN-GP.

    Config keys: `model` (the generator: `latent` size of z, `base_width`, `max_width`),
    `discriminator` (the critic: `base_width`; it shares the generator's `max_width`),
    `critic_steps` (critic steps per generator step), `gp_weight` (the penalty's lambda).
    """

    name = "wgan"
    makes_masks = True
    supported_dims = (2,)

    def __init__(self, *, config: DictConfig, spec: DataSpec, runtime: Runtime, lr: float) -> None:
        super().__init__(config=config, spec=spec, runtime=runtime, lr=lr)
        if spec.dims != 2:
            raise GensegError(
                "generator=wgan makes 2D images; 3D datasets train with generator=searchable"
            )
        size = int(spec.model_size)
        self.generator = instantiate(
            config.model,
            image_channels=spec.image_channels,
            mask_channels=spec.mask_channels,
            image_size=size,
        ).to(runtime.device)
        self.critic = instantiate(
            config.discriminator,
            in_channels=spec.image_channels + spec.mask_channels,
            image_size=size,
            max_width=int(config.model.max_width),
        ).to(runtime.device)
        self.latent = int(config.model.latent)
        self.critic_steps = int(config.critic_steps)
        self.gp_weight = float(config.gp_weight)
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.lr, betas=BETAS)
        self.d_optimizer = torch.optim.Adam(self.critic.parameters(), lr=self.lr, betas=BETAS)

    # ----- pairs as the critic sees them ------------------------------------------------------
    @staticmethod
    def joint(images: Tensor, masks: Tensor) -> Tensor:
        """One tensor per pair: the image in [-1, 1] beside the mask mapped to [-1, 1]."""
        return torch.cat([images.float(), masks.float() * 2 - 1], 1)

    def generated(self, n: int) -> Tensor:
        """n generated pairs as the critic sees them (soft masks), in the autograd graph."""
        z = torch.randn(n, self.latent, device=self.runtime.device)
        images, soft = self.generator.split(self.generator(z))
        return self.joint(images, soft)

    def critic_updates(self) -> int:
        """Critic steps taken, from its optimiser's own count (so it survives a resume)."""
        for state in self.d_optimizer.state.values():
            return int(state["step"])
        return 0

    # ----- training -------------------------------------------------------------------------
    def pretrain_step(
        self, masks: Tensor, images: Tensor, unlabeled: Tensor | None = None
    ) -> dict[str, float]:
        real = self.joint(images, masks)
        with torch.no_grad():
            fake = self.generated(real.shape[0])
        self.d_optimizer.zero_grad(set_to_none=True)
        real_score, fake_score = self.critic(real).mean(), self.critic(fake).mean()
        penalty = gradient_penalty(self.critic, real, fake)
        (fake_score - real_score + self.gp_weight * penalty).backward()
        self.d_optimizer.step()
        logs = {
            "loss/D_wasserstein": float((real_score - fake_score).detach()),
            "loss/D_gp": float(penalty.detach()),
        }
        if self.critic_updates() % self.critic_steps == 0:
            self.critic.requires_grad_(False)  # the critic only judges here
            self.g_optimizer.zero_grad(set_to_none=True)
            loss = -self.critic(self.generated(real.shape[0])).mean()
            loss.backward()
            self.g_optimizer.step()
            self.critic.requires_grad_(True)
            logs["loss/G"] = float(loss.detach())
        return logs

    def train_step(
        self, masks: Tensor, images: Tensor, fake: Tensor, unlabeled: Tensor | None = None
    ) -> dict[str, float]:
        """The same iteration as in pre-training; `fake` (images for given masks) has no
        meaning for a recipe that makes its own masks."""
        return self.pretrain_step(masks, images)

    def set_learning_rate(self, lr: float) -> None:
        for optimizer in (self.g_optimizer, self.d_optimizer):
            for group in optimizer.param_groups:
                group["lr"] = lr

    # ----- synthesis ------------------------------------------------------------------------
    def synthesise(self, masks: Tensor, exact: bool = False) -> Tensor:
        raise GensegError(
            "generator=wgan makes its own masks and has no images for given ones; a method "
            "uses its pairs (method=separate)"
        )

    def _pairs_from(self, z: Tensor, exact: bool) -> tuple[Tensor, Tensor]:
        if exact:
            logits = self.generator(z)
        else:
            with self.runtime.autocast():
                logits = self.generator(z)
        images, soft = self.generator.split(logits.float())
        if self.runtime.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, binary(soft)

    def pairs(self, masks: Tensor, exact: bool = False) -> tuple[Tensor, Tensor]:
        """As many generated pairs as `masks` has masks (their content is not used)."""
        z = torch.randn(masks.shape[0], self.latent, device=self.runtime.device)
        return self._pairs_from(z, exact)

    @torch.no_grad()
    def preview_pairs(self, masks: Tensor) -> tuple[Tensor, Tensor]:
        seeded = torch.Generator().manual_seed(PREVIEW_SEED)
        z = torch.randn(masks.shape[0], self.latent, generator=seeded).to(self.runtime.device)
        was_training = self.generator.training
        self.generator.eval()
        out = self._pairs_from(z, exact=False)
        self.generator.train(was_training)
        return out

    def preview(self, masks: Tensor) -> Tensor:
        return self.preview_pairs(masks)[0]

    # ----- state ----------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "critic": self.critic}

    def stateful(self) -> dict:
        return {**self.networks(), "g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer}

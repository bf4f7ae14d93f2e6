"""pix2pix as a generator recipe: a U-Net generator (searchable or fixed kernels), a PatchGAN
critic, the adversarial loss and lambda_L1 * L1 to the real image (Isola et al., 2017); as
options, feature matching on the critic's activations (Wang et al., 2018, pix2pixHD) and a
realism term from unlabeled images: a second, unconditional PatchGAN that tells the pool's
unlabeled images from synthetic ones, so the generator learns the look of many more images than
the few labelled pairs show; and an appearance code beside the mask, trained as a cVAE-GAN
(`generator.model.style_dim`, `genseg_cli.generators.style_code`).

`conf/generator/searchable.yaml` (GenSeg's generator: up-sampling layers mix 4/6/8-kernel
transposed convolutions by softmax(alpha), alpha being upper-level parameters) and
`conf/generator/pix2pix_fixed.yaml` (one kernel, no alpha) both build this recipe.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor, nn

from genseg_cli.core.runtime import Runtime
from genseg_cli.data.spec import DataSpec
from genseg_cli.generators.base import GeneratorRecipe
from genseg_cli.generators.style_code import Reconstruction, build_style_code
from genseg_cli.mlo.pseudo_trust import mixed_derivative, step_tangent
from genseg_cli.nets.losses import GANLoss, weighted_mean, wide


def pix2pix_adam(params: Iterable[nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam with pix2pix's betas (0.5, 0.999), for every generator-side optimiser; fused (one
    kernel per step instead of a loop over tensors: about 2x faster on CPU, same update)."""
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999), fused=True)


class Pix2PixRecipe(GeneratorRecipe):
    """Generator G and PatchGAN D; D then G per step, G's architecture weights never trained here.

    Config keys: `model` (the generator network, `_target_` and widths), `discriminator`,
    `gan_loss` (lsgan | vanilla), `lambda_l1`; optional `lambda_fm` (weight of the L1 distance
    between D's activations on real and synthetic pairs, mean over layers; 0: off) and
    `unlabeled_realism` (weight of the unconditional critic's adversarial term; 0: off, and no
    critic is built, so the other networks draw the same initial weights either way);
    `model.style_dim` and `lambda_kl`: an appearance code and its encoder
    (`genseg_cli.generators.style_code`; 0: off, and no encoder is built).
    A step may weigh its pairs (`weights`, one per pair: pseudo-labelled pairs beside real ones);
    the conditional critic's and G's terms are then weighted means over the pairs.
    """

    name = "pix2pix"
    # its G step gives d theta'/d(pair weights) (`generator_update`'s `direction`): the upper
    # level can learn the pseudo pairs' weight (generator.pseudo_pairs.learn_weight)
    tangent_along_weights = True

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
        self.lambda_fm = float(config.get("lambda_fm", 0.0))
        self.unlabeled_realism = float(config.get("unlabeled_realism", 0.0))
        self.g_optimizer = pix2pix_adam(self.generator.weight_parameters(), self.lr)
        self.d_optimizer = pix2pix_adam(self.discriminator.parameters(), self.lr)
        self.image_critic: nn.Module | None = None
        self.tangent: list[Tensor] | None = None  # the last G step's, when asked for
        if self.unlabeled_realism > 0:  # built last: G's and D's initial weights stay the same
            self.image_critic = instantiate(
                config.discriminator, in_channels=spec.image_channels, dims=spec.dims
            ).to(device)
            self.critic_optimizer = pix2pix_adam(self.image_critic.parameters(), self.lr)
        # the appearance encoder, after every other network for the same reason
        self.style = build_style_code(
            config, spec, runtime, lambda params: pix2pix_adam(params, self.lr)
        )

    @property
    def learns_from_unlabeled(self) -> bool:
        return self.image_critic is not None

    @property
    def weighs_pairs(self) -> bool:
        return True

    def adversarial(self, score: Tensor, real: bool, weights: Tensor | None) -> Tensor:
        """The GAN loss of critic scores; with `weights`, each pair's own loss, weighted."""
        if weights is None:
            return self.gan_loss(wide(score), real)
        per_pair = torch.stack([self.gan_loss(wide(s), real) for s in score.split(1)])
        return weighted_mean(per_pair, weights)

    def critic_update(
        self,
        critic: nn.Module,
        optimizer: torch.optim.Optimizer,
        masks: Tensor | None,
        real: Tensor,
        fake: Tensor,
        weights: Tensor | None = None,
        rec: Tensor | None = None,
    ) -> float:
        """One least-squares (or vanilla) GAN step of `critic`: `real` images against `fake`
        ones, both beside `masks` (None: an image-only critic); `weights`: one per pair; `rec`:
        a second set of synthetic images (the appearance code's), the fake term their mean."""
        optimizer.zero_grad(set_to_none=True)
        with self.runtime.autocast():
            real_score = critic(masks, real)
            fake_score = critic(masks, fake.detach())
            rec_score = critic(masks, rec.detach()) if rec is not None else None
        fake_term = self.adversarial(fake_score, False, weights)
        if rec_score is not None:
            fake_term = 0.5 * (fake_term + self.adversarial(rec_score, False, weights))
        loss = 0.5 * (self.adversarial(real_score, True, weights) + fake_term)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def discriminator_update(
        self,
        masks: Tensor,
        images: Tensor,
        fake: Tensor,
        weights: Tensor | None = None,
        rec: Tensor | None = None,
    ) -> float:
        """pix2pix's conditional critic: real pairs against synthetic ones (and `rec`)."""
        return self.critic_update(
            self.discriminator, self.d_optimizer, masks, images, fake, weights, rec
        )

    def image_critic_update(self, unlabeled: Tensor, fake: Tensor) -> float:
        """The unconditional critic: unlabeled real images against synthetic ones."""
        return self.critic_update(self.image_critic, self.critic_optimizer, None, unlabeled, fake)

    def generator_loss(
        self,
        masks: Tensor,
        images: Tensor,
        fake: Tensor,
        realism: bool = False,
        weights: Tensor | None = None,
        rec: Reconstruction | None = None,
    ) -> tuple[Tensor, dict[str, float]]:
        """G's loss: adversarial + lambda_L1 * L1 (+ lambda_fm * feature matching, +
        unlabeled_realism * the image critic's term when `realism`), weighted means over the
        pairs with `weights`; and what history.csv logs. With `rec` (the appearance code's
        reconstruction) the paired terms judge rec, and `style_terms` join."""
        paired = fake if rec is None else rec.images
        with self.runtime.autocast():
            fake_features = self.discriminator.features(masks, paired)
            if self.lambda_fm > 0:
                with torch.no_grad():
                    real_features = self.discriminator.features(masks, images)
        adversarial = self.adversarial(fake_features[-1], True, weights)
        l1 = self.l1(paired, images, weights)
        total = adversarial + self.lambda_l1 * l1
        logs = {"loss/G_gan": float(adversarial.detach()), "loss/G_l1": float(l1.detach())}
        if rec is not None:
            extra, more = self.style_terms(masks, images, fake, rec, weights)
            total = total + extra
            logs.update(more)
        if self.lambda_fm > 0:
            pairs = zip(fake_features[:-1], real_features[:-1], strict=True)
            if weights is None:
                gaps = [(wide(f) - wide(r)).abs().mean() for f, r in pairs]
            else:
                gaps = [
                    weighted_mean((wide(f) - wide(r)).abs().flatten(1).mean(1), weights)
                    for f, r in pairs
                ]
            matching = torch.stack(gaps).mean()
            total = total + self.lambda_fm * matching
            logs["loss/G_fm"] = float(matching.detach())
        if realism:
            with self.runtime.autocast():
                score = self.image_critic(None, fake)  # the prior's images: what is synthesised
            unconditional = self.gan_loss(wide(score), True)
            total = total + self.unlabeled_realism * unconditional
            logs["loss/G_unlabeled"] = float(unconditional.detach())
        return total, logs

    def l1(self, synthetic: Tensor, images: Tensor, weights: Tensor | None) -> Tensor:
        """Mean absolute difference to the real images; per pair, weighted, with `weights`."""
        if weights is None:
            return (wide(synthetic) - images).abs().mean()
        return weighted_mean((wide(synthetic) - images).abs().flatten(1).mean(1), weights)

    def style_terms(
        self,
        masks: Tensor,
        images: Tensor,
        fake: Tensor,
        rec: Reconstruction,
        weights: Tensor | None,
    ) -> tuple[Tensor, dict[str, float]]:
        """The cVAE-GAN's additions: the critic's term on the prior's images `fake` (what the
        segmenter sees) and lambda_kl * KL of E's Gaussians; and the prior's L1, logged only."""
        with self.runtime.autocast():
            score = self.discriminator(masks, fake)
        prior = self.adversarial(score, True, weights)
        kl = self.style.kl(rec, weights)
        with torch.no_grad():
            prior_l1 = self.l1(fake, images, weights)
        logs = {
            "loss/G_gan_prior": float(prior.detach()),
            "loss/G_kl": float(kl.detach()),
            "loss/G_l1_prior": float(prior_l1),
        }
        return prior + self.style.lambda_kl * kl, logs

    def generator_update(
        self,
        masks: Tensor,
        images: Tensor,
        fake: Tensor,
        realism: bool = False,
        weights: Tensor | None = None,
        direction: Tensor | None = None,
        rec: Reconstruction | None = None,
    ) -> dict[str, float]:
        """One step of `generator_loss` on G's weights, never the architecture, and on the
        appearance encoder's with `rec` (it trains on G's loss). With `direction`
        (one entry per pair), `self.tangent` becomes d theta'/d eps of this step for the weights
        `weights + eps * direction` (`genseg_cli.mlo.pseudo_trust`); else None."""
        critics = [self.discriminator, *([self.image_critic] if realism else [])]
        for critic in critics:
            critic.requires_grad_(False)  # critics only judge here
        self.g_optimizer.zero_grad(set_to_none=True)
        if rec is not None:
            self.style.optimizer.zero_grad(set_to_none=True)
        if direction is not None:  # a leaf, so that the loss's derivative in it can be taken
            weights = weights.detach().requires_grad_(True)
        total, logs = self.generator_loss(masks, images, fake, realism, weights, rec)
        params = self.generator.weight_parameters()
        mixed = (
            mixed_derivative(total, weights, direction, params) if direction is not None else None
        )
        total.backward()
        self.tangent = step_tangent(self.g_optimizer, mixed) if mixed is not None else None
        self.g_optimizer.step()
        if rec is not None:
            self.style.optimizer.step()
        for critic in critics:
            critic.requires_grad_(True)
        return logs

    def train_step(
        self,
        masks: Tensor,
        images: Tensor,
        fake: Tensor,
        unlabeled: Tensor | None = None,
        weights: Tensor | None = None,
        direction: Tensor | None = None,
    ) -> dict[str, float]:
        """D (and the image critic, given unlabeled images), then G; `weights`: one per pair;
        `direction`: see `generator_update` (the critics' steps are not differentiated). With an
        appearance code, E encodes `images` and G reconstructs them first (`style_code`)."""
        style = self.style
        rec = style.reconstruct(self.generator, masks, images) if style is not None else None
        rec_images = rec.images if rec is not None else None
        losses = {"loss/D": self.discriminator_update(masks, images, fake, weights, rec_images)}
        realism = self.image_critic is not None and unlabeled is not None
        if realism:
            losses["loss/D_unlabeled"] = self.image_critic_update(unlabeled, fake)
        update = self.generator_update(masks, images, fake, realism, weights, direction, rec)
        return {**losses, **update}

    def set_learning_rate(self, lr: float) -> None:
        critic = [self.critic_optimizer] if self.image_critic is not None else []
        style = [self.style.optimizer] if self.style is not None else []
        for optimizer in (self.g_optimizer, self.d_optimizer, *critic, *style):
            for group in optimizer.param_groups:
                group["lr"] = lr

    def freeze(self) -> None:
        """Weights and batch-norm running statistics fixed, but G still normalises with each
        batch's statistics, as it does in genseg (train mode; no running statistics are updated),
        and dropout stays on: pix2pix's only noise source. So separate and genseg make the
        segmenter's synthetic images the same way, and genseg against separate measures the
        feedback alone."""
        super().freeze()
        if self.style is not None:
            self.style.freeze()
        self.generator.train()
        for child in self.generator.modules():
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                child.track_running_stats = False  # batch statistics, nothing recorded

    @torch.no_grad()
    def preview(self, masks: Tensor) -> Tensor:
        """With an appearance code, the same codes at every preview (torch's stream untouched)."""
        if self.style is None:
            return super().preview(masks)
        with self.style.fixed_codes():
            return super().preview(masks)

    def weight_parameters(self) -> list[nn.Parameter]:
        """G's weights: the appearance encoder is no upper-level parameter."""
        return self.generator.weight_parameters()

    def upper_parameters(self) -> list[nn.Parameter]:
        return self.generator.arch_parameters()

    def networks(self) -> dict[str, nn.Module]:
        critic = {"image_critic": self.image_critic} if self.image_critic is not None else {}
        style = {"style_encoder": self.style.encoder} if self.style is not None else {}
        nets = {"generator": self.generator, "discriminator": self.discriminator}
        return {**nets, **critic, **style}

    def stateful(self) -> dict:
        critic = {"critic_optimizer": self.critic_optimizer} if self.learns_from_unlabeled else {}
        style = {"style_optimizer": self.style.optimizer} if self.style is not None else {}
        return {
            **self.networks(),
            "g_optimizer": self.g_optimizer,
            "d_optimizer": self.d_optimizer,
            **critic,
            **style,
        }

    def describe(self) -> dict:
        style = self.style.describe() if self.style is not None else {}
        return {**super().describe(), "architecture": self.generator.derive(), **style}

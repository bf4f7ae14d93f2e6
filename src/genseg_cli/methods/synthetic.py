"""Shared by the methods that train on synthetic pairs (separate, genseg): the generator, its
PatchGAN, pix2pix pre-training (cached per split), synthetic batches and preview grids."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from genseg_cli.data.photometric import PhotometricJitter
from genseg_cli.engine.files import save_torch
from genseg_cli.methods.base import Method, TrainingContext
from genseg_cli.nets.discriminators import GANLoss
from genseg_cli.report.previews import save_preview

log = logging.getLogger(__name__)


class SyntheticDataMethod(Method):
    """A segmentation method that also owns a mask-to-image generator G and a discriminator D.

    `generator` is the composed `conf/generator/<name>.yaml`; `pretrain` holds `steps`, `lr` and
    `cache_dir`; `synthetic_weight` is lambda in L(real) + lambda * L(synthetic). `image_size`
    is an int (square 2D images) or a volume shape (3D); `mask_channels` is 1 for binary masks,
    background + classes for one-hot label maps. `synthetic_jitter` ({brightness, contrast, p},
    or None) gives the synthetic images the photometric jitter the real ones get.
    """

    needs_new_masks = True

    def __init__(
        self,
        *,
        generator: DictConfig,
        image_channels: int,
        image_size: int | Sequence[int],
        pretrain: DictConfig,
        mask_channels: int = 1,
        synthetic_weight: float = 1.0,
        synthetic_jitter: DictConfig | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.generator_cfg = generator
        self.synthetic_weight = float(synthetic_weight)
        self.jitter = PhotometricJitter(**synthetic_jitter) if synthetic_jitter else None
        self.pretrain_cfg = pretrain
        device = self.runtime.device
        size = int(image_size) if isinstance(image_size, int) else tuple(int(s) for s in image_size)
        dims = 2 if isinstance(size, int) else len(size)
        self.generator = instantiate(
            generator.model,
            in_channels=mask_channels,
            out_channels=image_channels,
            image_size=size,
        ).to(device)
        self.discriminator = instantiate(
            generator.discriminator, in_channels=mask_channels + image_channels, dims=dims
        ).to(device)
        self.gan_loss = GANLoss(generator.gan_loss)
        self.lambda_l1 = float(generator.lambda_l1)
        self.g_optimizer = self._adam(self.generator.weight_parameters(), pretrain.lr)
        self.d_optimizer = self._adam(self.discriminator.parameters(), pretrain.lr)
        self.preview_masks: Tensor | None = None
        self.reference: dict[str, Tensor] = {}

    @staticmethod
    def _adam(params, lr: float) -> torch.optim.Adam:
        return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))  # pix2pix's betas

    # ----- pix2pix level: D then G on real pairs --------------------------------------------
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

    def gan_step(self, masks: Tensor, images: Tensor, fake: Tensor) -> dict[str, float]:
        return {
            "loss/D": self.discriminator_update(masks, images, fake),
            **self.generator_update(masks, images, fake),
        }

    def synthesise(self, masks: Tensor) -> Tensor:
        """Generator images for `masks`, in the segmenter's memory format."""
        with self.runtime.autocast():
            images = self.generator(masks).float()
        if self.runtime.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def draw_jitter(self, n: int) -> tuple[Tensor, Tensor] | None:
        """Jitter parameters for n synthetic images (None without jitter); draw once per use so
        that every pass over the same synthetic batch sees the same images."""
        return self.jitter.draw(n) if self.jitter is not None else None

    def jittered(self, images: Tensor, params: tuple[Tensor, Tensor] | None) -> Tensor:
        """`images` with the photometric jitter `params` (unchanged when None)."""
        return images if params is None else self.jitter(images, params)

    # ----- pre-training ---------------------------------------------------------------------
    def _cache_path(self, context: TrainingContext) -> Path:
        recipe = {
            "data": context.cache_key,
            "generator": OmegaConf.to_container(self.generator_cfg, resolve=True),
            "steps": int(self.pretrain_cfg.steps),
            "lr": float(self.pretrain_cfg.lr),
        }
        digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
        return Path(self.pretrain_cfg.cache_dir) / f"{digest}.pt"

    def pretrain(self, context: TrainingContext) -> dict:
        """pix2pix on the real train pairs for pretrain.steps, or load the same from the cache."""
        steps = int(self.pretrain_cfg.steps)
        cache = self._cache_path(context) if self.pretrain_cfg.get("cache_dir") else None
        if cache is not None and cache.is_file():
            state = torch.load(cache, map_location=self.runtime.device)
            self.generator.load_state_dict(state["generator"])
            self.discriminator.load_state_dict(state["discriminator"])
            log.info("pre-trained generator loaded from %s", cache)
            return {"pretrain_cached": True}
        started = time.perf_counter()
        self.generator.train()
        for i, batch in enumerate(context.real_batches(steps), start=1):
            images, masks = self.to_device(batch)
            losses = self.gan_step(masks, images, self.synthesise(masks))
            if i % 100 == 0 or i == steps:
                log.info(
                    "pretrain %d/%d %s",
                    i,
                    steps,
                    " ".join(f"{k}={v:.4f}" for k, v in losses.items()),
                )
        if cache is not None:
            save_torch(
                cache,
                {
                    "generator": self.generator.state_dict(),
                    "discriminator": self.discriminator.state_dict(),
                },
            )
        return {"pretrain_cached": False, "pretrain_time_s": time.perf_counter() - started}

    def prepare(self, context: TrainingContext) -> None:
        self.preview_masks = context.preview_masks.to(self.runtime.device)
        self.reference = {k: v.to(self.runtime.device) for k, v in context.train_batch.items()}
        self.save_preview(context.run_dir / "synthetic_start.png")
        self.pretrain_info = self.pretrain(context) if int(self.pretrain_cfg.steps) > 0 else {}
        self.save_preview(context.run_dir / "synthetic_pretrained.png")

    @torch.no_grad()
    def save_preview(self, path: Path) -> None:
        was_training = self.generator.training
        self.generator.eval()
        synthetic = self.synthesise(self.preview_masks)
        self.generator.train(was_training)
        save_preview(
            path, self.preview_masks, synthetic, self.reference["mask"], self.reference["image"]
        )

    def stateful(self) -> dict:
        return {
            **super().stateful(),
            "generator": self.generator,
            "discriminator": self.discriminator,
            "g_optimizer": self.g_optimizer,
            "d_optimizer": self.d_optimizer,
        }

    def finish(self, run_dir: Path) -> dict:
        self.save_preview(run_dir / "synthetic_end.png")
        save_torch(
            run_dir / "checkpoints" / "generator.pt",
            {
                "generator": self.generator.state_dict(),
                "discriminator": self.discriminator.state_dict(),
                "config": OmegaConf.to_container(self.generator_cfg, resolve=True),
            },
        )
        return {
            "generator": {
                "name": self.generator_cfg.name,
                "architecture": self.generator.derive(),
                **self.pretrain_info,
            }
        }

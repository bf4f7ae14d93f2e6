"""An appearance code for the pix2pix recipe: a cVAE-GAN as in BicycleGAN (Zhu et al., "Toward
Multimodal Image-to-Image Translation", NeurIPS 2017).

A mask says where the object is, not how the image looks: a mask-to-image generator whose only
noise is dropout explains the L1 term to the real image by the mean image (every synthetic image
gets the same blurred background). With `generator.model.style_dim > 0` the generator also takes
a code z (tiled beside the mask at its input), and an encoder E maps the real image to a Gaussian
over z. The recipe's step then adds:

    rec = G(mask, mu + sigma * eps),  (mu, log sigma^2) = E(image)    (the encoded reconstruction)
    L_G += adversarial(fake) + lambda_kl * KL(N(mu, sigma) || N(0, I))
    L1 and the paired adversarial (and feature-matching) terms judge rec, not fake
    L_D = 0.5 * (real + 0.5 * (rec + fake))

`fake` are the images from random codes z ~ N(0, I) that the methods hand the step: what the
segmenter sees, so the critic judges them too. E trains with G on G's loss, with its own Adam.
Synthesis everywhere (`synthesise`, `pairs`, TSTR, `genseg generate`) draws z from the prior,
one per image; previews use the same fixed codes at every preview (`fixed_codes`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from genseg_cli.core.runtime import Runtime, forked_rng
from genseg_cli.data.spec import DataSpec
from genseg_cli.nets.losses import weighted_mean, wide
from genseg_cli.nets.style import StyleEncoder, encoder_layers

# the optimiser for E's parameters (the recipe's own kind, at its learning rate)
Optimiser = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
PREVIEW_SEED = 20171204  # the previews' codes: the same images at every preview of a run


def style_dim(config: DictConfig) -> int:
    """`generator.model.style_dim` (0 when the key is absent: no code)."""
    model = config.get("model")
    return int(model.get("style_dim", 0) or 0) if isinstance(model, DictConfig) else 0


@dataclass
class Reconstruction:
    """G's images from the codes E gave the real images, and E's Gaussians."""

    images: Tensor
    mu: Tensor
    logvar: Tensor


def kl_per_pair(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) of each pair, summed over the code's dimensions (n,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


class StyleCode:
    """E, its optimiser and the KL weight; the recipe builds it after its other networks, so
    their initial weights are those of a run without the code."""

    def __init__(
        self, *, config: DictConfig, spec: DataSpec, runtime: Runtime, optimizer: Optimiser
    ) -> None:
        self.dim = style_dim(config)
        self.lambda_kl = float(config.get("lambda_kl", 0.01))
        self.runtime = runtime
        # E's widths follow G's encoder: base_width, doubling, at most 4 * base_width
        base = int(config.model.get("base_width", 64))
        self.encoder = StyleEncoder(
            in_channels=spec.image_channels,
            style_dim=self.dim,
            base_width=base,
            max_width=min(int(config.model.get("max_width", 512)), 4 * base),
            n_layers=encoder_layers(spec.spatial),
            dims=spec.dims,
        ).to(runtime.device)
        self.optimizer = optimizer(self.encoder.parameters())

    def reconstruct(self, generator: nn.Module, masks: Tensor, images: Tensor) -> Reconstruction:
        """rec = G(masks, mu + sigma * eps) with (mu, logvar) = E(images), in the graph of both
        networks (eps from torch's global generator, like G's dropout)."""
        with self.runtime.autocast():
            mu, logvar = self.encoder(images)
            mu, logvar = wide(mu), wide(logvar)
            code = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            rec = generator(masks, code)
        return Reconstruction(wide(rec), mu, logvar)

    def kl(self, rec: Reconstruction, weights: Tensor | None) -> Tensor:
        """The KL term: per pair, then the (weighted) mean over the pairs."""
        return weighted_mean(kl_per_pair(rec.mu, rec.logvar), weights)

    @contextlib.contextmanager
    def fixed_codes(self) -> Iterator[None]:
        """Inside, codes drawn from a fixed seed; torch's global stream untouched outside."""
        with forked_rng(self.runtime.device, PREVIEW_SEED):
            yield

    def freeze(self) -> None:
        self.encoder.requires_grad_(False)
        self.encoder.eval()

    def describe(self) -> dict:
        return {"style_dim": self.dim, "lambda_kl": self.lambda_kl}


def build_style_code(
    config: DictConfig, spec: DataSpec, runtime: Runtime, optimizer: Optimiser
) -> StyleCode | None:
    """The recipe's appearance code, or None with `generator.model.style_dim` 0 (or absent)."""
    if not style_dim(config):
        return None
    return StyleCode(config=config, spec=spec, runtime=runtime, optimizer=optimizer)

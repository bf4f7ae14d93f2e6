"""The generator recipe: everything a method needs from a mask-to-image generator.

A recipe owns a generator network and whatever trains it (a discriminator and adversarial losses
for pix2pix; nothing else for a plain reconstruction recipe). `separate` and `genseg` talk only
to this interface, so a new generator (a diffusion model, a VAE, a WGAN that makes image and mask
together) is a new recipe and a `conf/generator/<name>.yaml` whose `_target_` names it; no method
changes. `genseg_cli.generators.template` is a commented example to start from.

The methods ask a recipe for synthetic pairs, never for images alone: `pairs(masks)` gives
(images, masks). A mask-conditioned recipe makes images for the new masks the run drew; a recipe
that makes its own masks (`makes_masks = True`: a WGAN drawing image and mask from noise) returns
as many pairs of its own and only counts the masks it was handed.

The lifecycle, as the methods drive it:
    recipe = build_recipe(cfg.generator, spec, runtime, pretrain.lr)
    recipe.pretrain_step(masks, images[, unlabeled]) * pretrain.steps   # real pairs, first
    recipe.set_learning_rate(end_to_end_lr)                # genseg: slower once the loop starts
    fake = recipe.synthesise(masks)                        # autocast, for the segmenter
    images, masks = recipe.pairs(new_masks)                # separate, TSTR, genseg generate
    recipe.train_step(masks, images, fake[, unlabeled])    # genseg: keeps training on real pairs
    recipe.synthesise(masks, exact=True)                   # fp32 in the graph: hypergradient path
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import torch
from hydra.utils import get_class
from omegaconf import DictConfig
from torch import Tensor, nn

from genseg_cli.core.runtime import Runtime, forked_rng
from genseg_cli.data.spec import DataSpec

PREVIEW_SEED = 0  # the noise (dropout) of preview images: the same draw at every preview


@contextlib.contextmanager
def statistics_kept(module: nn.Module) -> Iterator[None]:
    """Batch-norm layers normalise as their mode says, but record no running statistics."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    tracked = [m.track_running_stats for m in norms]
    for norm in norms:
        norm.track_running_stats = False
    try:
        yield
    finally:
        for norm, track in zip(norms, tracked, strict=True):
            norm.track_running_stats = track


class GeneratorRecipe(ABC):
    """A mask-to-image generator and its own training.

    `generator` is an nn.Module mapping masks (N, spec.mask_channels, *spec.spatial) in {0, 1}
    to images (N, spec.image_channels, *spec.spatial) in [-1, 1]. `stateful()` names every
    object with a state_dict that a resumed run needs; `networks()` the subset a pre-training
    cache and generator.pt keep.
    """

    name = "recipe"
    # True: the recipe draws its own masks with its images (pairs from noise); methods whose
    # upper level differentiates through images made for given masks (genseg) refuse it
    makes_masks = False
    supported_dims: tuple[int, ...] = (2, 3)  # 2: images, 3: volumes (pre-flight checks it)

    def __init__(self, *, config: DictConfig, spec: DataSpec, runtime: Runtime, lr: float) -> None:
        self.config = config
        self.lr = float(lr)  # pre-training learning rate of every optimiser the recipe owns
        self.spec = spec  # channels, model size and dimensionality of the run's data
        self.runtime = runtime

    generator: nn.Module
    # whether `train_step` takes a `direction` over the pairs' weights and then keeps the G
    # step's d theta'/d eps in `self.tangent` (the upper level learning the pseudo pairs' weight)
    tangent_along_weights: bool = False

    @property
    def learns_from_unlabeled(self) -> bool:
        """Whether `train_step` uses unlabeled images (the methods then hand it a batch of the
        pool's unlabeled images with each step); a recipe without such a term ignores them."""
        return False

    @property
    def weighs_pairs(self) -> bool:
        """Whether `train_step` takes `weights` (one per pair, e.g. pseudo-labelled pairs weighing
        less than real ones); the methods pass them only to a recipe that does."""
        return False

    # ----- training --------------------------------------------------------------------------
    @abstractmethod
    def train_step(
        self, masks: Tensor, images: Tensor, fake: Tensor, unlabeled: Tensor | None = None
    ) -> dict[str, float]:
        """One update of the generator (and its critics) on real pairs; `fake` is
        `synthesise(masks)` from this step, so a method can share one forward pass;
        `unlabeled`: images without masks, or None; passed only when `learns_from_unlabeled`,
        so a recipe without such a term may leave the argument out."""

    def pretrain_step(
        self,
        masks: Tensor,
        images: Tensor,
        unlabeled: Tensor | None = None,
        weights: Tensor | None = None,
    ) -> dict[str, float]:
        """One pre-training update on real pairs (by default the same as a training step)."""
        return self.update(masks, images, self.synthesise(masks), unlabeled, weights)

    def update(
        self,
        masks: Tensor,
        images: Tensor,
        fake: Tensor,
        unlabeled: Tensor | None = None,
        weights: Tensor | None = None,
        direction: Tensor | None = None,
    ) -> dict[str, float]:
        """`train_step` as the methods call it: the unlabeled images go only to a recipe that
        uses them, per-pair `weights` only to one that `weighs_pairs` and a tangent `direction`
        (over the pairs' weights) only when given, to one with `tangent_along_weights`, so
        recipes written before these arguments keep working."""
        extra = {"weights": weights} if weights is not None and self.weighs_pairs else {}
        if direction is not None:
            extra["direction"] = direction
        if self.learns_from_unlabeled and unlabeled is not None:
            return self.train_step(masks, images, fake, unlabeled, **extra)
        return self.train_step(masks, images, fake, **extra)

    @abstractmethod
    def set_learning_rate(self, lr: float) -> None:
        """The learning rate of every optimiser the recipe owns (end-to-end phase)."""

    def freeze(self) -> None:
        """No more updates (separate): weights and normalisation statistics fixed."""
        self.generator.requires_grad_(False)
        self.generator.eval()

    # ----- synthesis -------------------------------------------------------------------------
    def synthesise(self, masks: Tensor, exact: bool = False) -> Tensor:
        """Images for `masks` in the segmenter's memory format. `exact`: fp32, no autocast, for
        the hypergradient path (the upper level differentiates through these images)."""
        if exact:
            images = self.generator(masks)
        else:
            with self.runtime.autocast():
                images = self.generator(masks).float()
        if self.runtime.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def pairs(self, masks: Tensor, exact: bool = False) -> tuple[Tensor, Tensor]:
        """(images, masks) for the segmenter, one pair per mask of `masks` (N, mask_channels,
        *spatial): here the images `synthesise` makes for those masks; a recipe that
        `makes_masks` returns N pairs of its own, its masks binary (one-hot for label maps)."""
        return self.synthesise(masks, exact=exact), masks

    @torch.no_grad()
    def preview(self, masks: Tensor) -> Tensor:
        """Images for preview grids and the grid score, made as the segmenter's are: the
        generator in its present mode (pix2pix's keeps batch statistics and dropout in
        synthesis), in batches of the run's batch size. Running statistics are not updated and
        the noise comes from a fixed seed on a forked stream, so a preview never changes a run."""
        size = max(1, int(self.spec.batch_size))
        with statistics_kept(self.generator), forked_rng(self.runtime.device, PREVIEW_SEED):
            chunks = [self.synthesise(masks[i : i + size]) for i in range(0, len(masks), size)]
        return torch.cat(chunks)

    def preview_pairs(self, masks: Tensor) -> tuple[Tensor, Tensor]:
        """(images, masks) for preview grids: `preview`'s images for `masks`; a recipe that
        makes its own masks shows pairs of its own (the same ones at every preview)."""
        return self.preview(masks), masks

    # ----- parameters the levels above may move ----------------------------------------------
    def weight_parameters(self) -> list[nn.Parameter]:
        """The generator's weights (what `mlo.generator_weights` lets the hypergradient move)."""
        return list(self.generator.parameters())

    def upper_parameters(self) -> list[nn.Parameter]:
        """Parameters that only the upper level trains (e.g. architecture weights); none here."""
        return []

    # ----- state -----------------------------------------------------------------------------
    @abstractmethod
    def networks(self) -> dict[str, nn.Module]:
        """The networks (no optimisers): what generator.pt holds."""

    def stateful(self) -> dict[str, Any]:
        """Everything with a state_dict that a resumed run must get back (and what the
        pre-training cache holds, so that a run from it goes on as one that pre-trained)."""
        return self.networks()

    def state_dict(self) -> dict:
        """`stateful()`'s states, as Method and UnlabeledObjective give theirs (the pre-training
        cache holds this)."""
        return {key: part.state_dict() for key, part in self.stateful().items()}

    def load_state_dict(self, state: dict) -> None:
        for key, part in self.stateful().items():
            part.load_state_dict(state[key])

    def load_networks(self, state: dict) -> None:
        for key, module in self.networks().items():
            module.load_state_dict(state[key])

    def describe(self) -> dict:
        """What metrics.json says about the generator."""
        return {"name": self.config.get("name", self.name)}


def build_recipe(
    config: DictConfig, spec: DataSpec, runtime: Runtime, lr: float
) -> GeneratorRecipe:
    """The recipe that `config._target_` names. Configs written before recipes existed (no
    `_target_`, a `model` and a `discriminator`) are pix2pix recipes."""
    target = config.get("_target_", "genseg_cli.generators.pix2pix.Pix2PixRecipe")
    return get_class(target)(config=config, spec=spec, runtime=runtime, lr=lr)

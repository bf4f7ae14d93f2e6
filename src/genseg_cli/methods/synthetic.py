"""Shared by the methods that train on synthetic pairs (separate, genseg): a generator recipe
(`genseg_cli.generators`), its pre-training (cached per split), synthetic batches and previews.

The methods talk to the generator only through the recipe interface, so any recipe named by
`conf/generator/<name>.yaml` works with both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from genseg_cli.core.files import load_torch, save_torch
from genseg_cli.core.progress import item_progress
from genseg_cli.core.runtime import forked_rng
from genseg_cli.data.photometric import PhotometricJitter
from genseg_cli.data.streams import LABELLED, NEW_MASKS
from genseg_cli.generators.base import GeneratorRecipe, build_recipe
from genseg_cli.generators.previews import grid_scores, save_preview
from genseg_cli.generators.pseudo_pairs import build_pseudo_pairs
from genseg_cli.methods.base import Method, TrainingContext

log = logging.getLogger(__name__)


class SyntheticDataMethod(Method):
    """A segmentation method that also owns a mask-to-image generator recipe.

    `generator` is the composed `conf/generator/<name>.yaml`; `pretrain` holds `steps`, `lr` and
    `cache_dir`; `synthetic_weight` is lambda in L(real) + lambda * L(synthetic); the recipe is
    built for the run's DataSpec (channels, model size, dimensionality). `synthetic_jitter`
    ({brightness, contrast, p}, or None) gives the synthetic images the photometric jitter the
    real ones get. `generator.pseudo_pairs` adds the pool's pseudo-labelled pairs to the
    generator's updates (`genseg_cli.generators.pseudo_pairs`); `generator.grid_score` records
    the checkerboard check of its images (`genseg_cli.evaluation.grid_score`) in metrics.json.
    """

    streams = (LABELLED, NEW_MASKS)
    trains_generator = False  # whether the generator keeps learning in the loop (genseg)

    def __init__(
        self,
        *,
        generator: DictConfig,
        pretrain: DictConfig,
        synthetic_weight: float = 1.0,
        synthetic_jitter: DictConfig | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.generator_cfg = generator
        self.synthetic_weight = float(synthetic_weight)
        self.jitter = PhotometricJitter(**synthetic_jitter) if synthetic_jitter else None
        self.pretrain_cfg = pretrain
        self.recipe: GeneratorRecipe = build_recipe(generator, self.spec, self.runtime, pretrain.lr)
        self.pseudo = build_pseudo_pairs(
            generator.get("pseudo_pairs"),
            self.unlabeled,
            self.runtime,
            weighs=self.recipe.weighs_pairs,
            trains_end_to_end=self.trains_generator,
            recipe_name=str(generator.get("name", self.recipe.name)),
        )
        self.grid: dict[str, float] = {}
        self.preview_masks: Tensor | None = None
        self.reference: dict[str, Tensor] = {}
        self.pretrain_info: dict = {}

    @property
    def generator(self) -> nn.Module:
        """The recipe's mask-to-image network."""
        return self.recipe.generator

    def synthesise(self, masks: Tensor) -> Tensor:
        """Generator images for `masks`, in the segmenter's memory format."""
        return self.recipe.synthesise(masks)

    def synthetic_pairs(self, masks: Tensor) -> tuple[Tensor, Tensor]:
        """(images, masks) from the recipe for the drawn new `masks`: the generator's images for
        them, or as many pairs of the recipe's own when it makes its masks (`makes_masks`)."""
        return self.recipe.pairs(masks)

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
            "generator": cache_settings(self.generator_cfg),
            "steps": int(self.pretrain_cfg.steps),
            "lr": float(self.pretrain_cfg.lr),
            # the cache holds the optimisers' moments beside the weights, so that a run from the
            # cache goes on exactly as one that pre-trained (files of the weights alone differ)
            "holds": "networks and optimisers",
        }
        if self.recipe.learns_from_unlabeled or self.pseudo_pretraining:
            recipe["unlabeled"] = context.unlabeled_key  # then the unlabeled images shape G too
        if self.pseudo_pretraining:
            recipe["teacher"] = self.pseudo.digest()
        digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
        return Path(self.pretrain_cfg.cache_dir) / f"{digest}.pt"

    def pretrain(self, context: TrainingContext) -> dict:
        """The recipe's pre-training on the real train pairs for pretrain.steps, or its result
        loaded from the cache (same split, recipe, steps and learning rate)."""
        steps = int(self.pretrain_cfg.steps)
        cache = self._cache_path(context) if self.pretrain_cfg.get("cache_dir") else None
        if cache is not None and cache.is_file():
            self.recipe.load_state_dict(load_torch(cache, map_location=self.runtime.device))
            log.info("pre-trained generator loaded from %s", cache)
            return {"pretrain_cached": True}
        # the pre-training draws from torch's global generators (dropout, initial noise); a run
        # that loads the cache does not, so without a fork the runs after a cold and a warm cache
        # would follow different random streams for the same seed
        with forked_rng(self.runtime.device):
            seconds = self._pretrain_steps(context, steps)
        if cache is not None:
            save_torch(cache, self.recipe.state_dict())
        return {"pretrain_cached": False, "pretrain_time_s": seconds}

    def _pretrain_steps(self, context: TrainingContext, steps: int) -> float:
        started = time.perf_counter()
        self.generator.train()
        unlabeled = None
        wanted = self.recipe.learns_from_unlabeled or self.pseudo_pretraining
        if wanted and context.unlabeled_batches is not None:
            unlabeled = iter(context.unlabeled_batches(steps))
        with item_progress(context.progress) as bar:
            task = bar.add_task("pre-training the generator", total=steps)
            for i, batch in enumerate(context.real_batches(steps), start=1):
                images, masks = self.to_device(batch)
                extra = None
                if unlabeled is not None:
                    extra = next(unlabeled)["unlabeled_image"].to(self.runtime.device)
                losses = self.pretrain_update(masks, images, extra)
                bar.advance(task)
                if i % 100 == 0 or i == steps:
                    losses_text = " ".join(f"{k}={v:.4f}" for k, v in losses.items())
                    log.info("pretrain %d/%d %s", i, steps, losses_text)
        return time.perf_counter() - started

    @property
    def pseudo_pretraining(self) -> bool:
        """Whether pseudo-labelled pairs join the pre-training (a trained teacher only)."""
        return self.pseudo is not None and self.pseudo.trained

    def pretrain_update(
        self, masks: Tensor, images: Tensor, pool: Tensor | None
    ) -> dict[str, float]:
        """One pre-training step on the real pairs, the pool's images `pool` going to the
        recipe's realism term and, with pseudo pairs, to the teacher."""
        unlabeled = pool if self.recipe.learns_from_unlabeled else None
        if not self.pseudo_pretraining or pool is None:
            return self.recipe.pretrain_step(masks, images, unlabeled)
        masks, images, weights, logs = self.pseudo.join(
            masks, images, pool, self.recipe.weighs_pairs
        )
        extra = {"weights": weights} if weights is not None else {}
        return {**self.recipe.pretrain_step(masks, images, unlabeled, **extra), **logs}

    def generator_update(
        self, masks: Tensor, images: Tensor, fake: Tensor, batch: dict, tangent: bool = False
    ) -> dict[str, float]:
        """The recipe's update in the loop on the step's real pairs (`fake`: the generator's
        images for `masks`), with the pool's pseudo-labelled pairs when they are on. `tangent`:
        the recipe also keeps d theta'/dw of its G step for the pseudo pairs' weight w
        (`recipe.tangent`, a recipe with `tangent_along_weights`); None when none joined."""
        unlabeled = self.unlabeled_images(batch)
        if self.pseudo is None or unlabeled is None:
            return self.recipe.update(masks, images, fake, unlabeled)
        n = masks.shape[0]
        masks, images, weights, logs = self.pseudo.join(
            masks, images, unlabeled, self.recipe.weighs_pairs
        )
        if masks.shape[0] > n:
            fake = torch.cat([fake, self.synthesise(masks[n:])])
        direction = None  # d/dw of the pair weights: 0 for a real pair, 1 for a pool pair
        if tangent and weights is not None:
            direction = (torch.arange(masks.shape[0], device=weights.device) >= n).to(weights.dtype)
        return {**self.recipe.update(masks, images, fake, unlabeled, weights, direction), **logs}

    def measure_grid(self, when: str) -> str:
        """With `generator.grid_score`, the grid score of the generator's images for every real
        train mask (as the previews make them) and of the real images, kept for metrics.json;
        returns what the preview's title adds."""
        if not self.generator_cfg.get("grid_score", False):
            return ""
        synthetic, real = grid_scores(
            lambda m: self.recipe.preview_pairs(m)[0],
            self.reference["mask"],
            self.reference["image"],
        )
        self.grid.update({when: synthetic, "real": real})
        return f"; grid score {synthetic:.2f} (real images {real:.2f})"

    def prepare(self, context: TrainingContext) -> None:
        self.preview_masks = context.preview_masks.to(self.runtime.device)
        self.reference = {k: v.to(self.runtime.device) for k, v in context.train_batch.items()}
        self.save_preview(context.run_dir / "synthetic_start.png", "before training (step 0)")
        steps = int(self.pretrain_cfg.steps)
        self.pretrain_info = self.pretrain(context) if steps > 0 else {}
        when = f"after {steps} pre-training steps" if steps > 0 else "no pre-training"
        when += self.measure_grid("pretrained")
        self.save_preview(context.run_dir / "synthetic_pretrained.png", when)

    def save_preview(self, path: Path, title: str) -> None:
        synthetic, masks = self.recipe.preview_pairs(self.preview_masks)
        reference = self.reference
        save_preview(path, masks, synthetic, reference["mask"], reference["image"], title)

    def stateful(self) -> dict:
        return {**super().stateful(), **self.recipe.stateful()}

    def state_dict(self) -> dict:
        pseudo = {"pseudo_pairs": self.pseudo.state_dict()} if self.pseudo is not None else {}
        return {**super().state_dict(), **pseudo}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.pseudo is not None and "pseudo_pairs" in state:
            self.pseudo.load_state_dict(state["pseudo_pairs"])

    def finish(self, run_dir: Path) -> dict:
        when = f"end of training (step {self.updates_done()})" + self.measure_grid("end")
        self.save_preview(run_dir / "synthetic_end.png", when)
        save_torch(
            run_dir / "checkpoints" / "generator.pt",
            {
                **{k: m.state_dict() for k, m in self.recipe.networks().items()},
                "config": OmegaConf.to_container(self.generator_cfg, resolve=True),
            },
        )
        extra = {"grid_score": self.grid} if self.grid else {}
        if self.pseudo is not None:
            extra["pseudo_pairs"] = self.pseudo.describe()
        return {"generator": {**self.recipe.describe(), **self.pretrain_info, **extra}}


def cache_settings(generator: DictConfig) -> dict:
    """The generator settings that shape a pre-trained generator (the cache's key): options at
    the value that turns them off are left out, as are measurements, so that a generator cached
    before an option existed stays valid."""
    settings = OmegaConf.to_container(generator, resolve=True)
    settings.pop("grid_score", None)  # a measurement only
    pseudo = settings.get("pseudo_pairs")
    if isinstance(pseudo, dict):
        pseudo.pop("learn_weight", None)  # the upper level's, after the pre-training
        if not float(pseudo.get("weight") or 0.0) > 0:
            settings.pop("pseudo_pairs")
    model = settings.get("model")
    if isinstance(model, dict) and list(model.get("upsample_ops") or []) == ["transposed"]:
        model.pop("upsample_ops")
    if isinstance(model, dict) and not model.get("balanced_phases", True):
        model.pop("balanced_phases")
    if isinstance(model, dict) and model.get("skips_dropped", 1) == 0:
        model.pop("skips_dropped")
    if isinstance(model, dict) and not model.get("style_dim"):  # no appearance code
        model.pop("style_dim", None)
        settings.pop("lambda_kl", None)
    return settings

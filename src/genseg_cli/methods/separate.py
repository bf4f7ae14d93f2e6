"""The paper's "Separate" ablation: pre-train the generator, freeze it, then train the segmenter
on real + lambda * synthetic pairs. No feedback from segmentation to the generator."""

from __future__ import annotations

import torch
from torch.profiler import record_function

from genseg_cli.methods.base import GENERATOR_FORWARD, TrainingContext
from genseg_cli.methods.synthetic import SyntheticDataMethod


class Separate(SyntheticDataMethod):
    """Frozen pre-trained generator + segmentation on real and synthetic pairs."""

    name = "separate"

    def prepare(self, context: TrainingContext) -> None:
        super().prepare(context)
        self.recipe.freeze()

    def train_step(self, batch: dict) -> dict[str, float]:
        images, masks = self.to_device(batch)
        new_masks = batch["new_mask"].to(self.runtime.device)
        with torch.no_grad(), record_function(GENERATOR_FORWARD):
            # the recipe's pairs: images for the drawn masks, or pairs it makes whole (wgan)
            synthetic, new_masks = self.synthetic_pairs(new_masks)
            synthetic = self.jittered(synthetic, self.draw_jitter(new_masks.shape[0]))
        return self.segmentation_update(
            images,
            masks,
            synthetic,
            new_masks,
            self.synthetic_weight,
            unlabeled=self.unlabeled_images(batch),
        )

"""What every training method shares: the segmenter, its optimiser and one supervised update.

A method is built from `conf/method/<name>.yaml` (`_target_` names its class) and driven by the
training loop (`genseg_cli.engine.loop`) through `train_step(batch) -> dict of losses`. Methods
return what they compute instead of keeping it on `self`, so their networks can also be called
functionally (torch.func) by the multi-level optimisation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from torch.profiler import record_function

from genseg_cli.core.runtime import Runtime
from genseg_cli.data.spec import DataSpec
from genseg_cli.data.streams import LABELLED, LABELLED_PLAIN, UNLABELED, check_streams
from genseg_cli.nets.losses import real_plus_synthetic_loss
from genseg_cli.semisup.base import UnlabeledObjective

# Profiler labels (torch.profiler.record_function; free when no profiler runs) that
# scripts/profile_methods.py sums into its where-the-time-goes table.
SEGMENTER_UPDATE = "segmenter update"
UNLABELED_PREPARE = "unlabeled: pseudo labels"
GENERATOR_FORWARD = "generator forward"
GAN_STEP = "generator GAN step"
UPPER_STEP = "upper step"
SAMPLE_WEIGHTS = "per-sample weights"


@dataclass
class TrainingContext:
    """What the loop hands a method before training.

    `train_batch` / `val_batch`: all real train / validation pairs at model resolution, not
    augmented; `preview_masks`: fixed new masks for before/after pictures; `real_batches(n)`:
    n batches of augmented real pairs (for pre-training); `cache_key`: identifies the data a
    pre-trained network saw, so a later run on the same split can reuse it; `progress`: whether
    long preparations (generator pre-training) draw a progress bar (`trainer.progress`);
    `unlabeled_batches(n)`: n batches of the split's unlabeled images (None when it has none),
    for a generator that learns realism from them; `unlabeled_key` identifies those images.
    """

    run_dir: Path
    train_batch: dict[str, torch.Tensor]
    val_batch: dict[str, torch.Tensor]
    preview_masks: torch.Tensor
    real_batches: Callable[[int], Iterable[dict]]
    cache_key: str
    progress: bool = False
    unlabeled_batches: Callable[[int], Iterable[dict]] | None = None
    unlabeled_key: str = ""


class Method:
    """Base of all methods: owns the segmentation update (optimiser, scheduler, AMP scaler).

    Subclasses implement `train_step`. `loss` is a module mapping (logits, masks) to a scalar.
    """

    name = "method"
    # the batch streams this method trains on (genseg_cli.data.streams); the loop builds these
    streams: tuple[str, ...] = (LABELLED,)

    def __init__(
        self,
        *,
        segmenter: nn.Module,
        loss: nn.Module | DictConfig,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None,
        runtime: Runtime,
        spec: DataSpec,
        grad_clip: float | None = None,
        name: str | None = None,
        augment_real: bool = True,
        unlabeled: UnlabeledObjective | None = None,
    ) -> None:
        self.segmenter = segmenter
        # methods built with _recursive_=false receive the loss as a config
        self.loss = instantiate(loss) if isinstance(loss, DictConfig) else loss
        self.runtime = runtime
        self.spec = spec  # the run's data as the networks see it
        self.grad_clip = grad_clip
        if not augment_real:  # the real pairs skip the augment pipeline
            self.streams = tuple(LABELLED_PLAIN if s == LABELLED else s for s in self.streams)
        # an objective on unlabeled images (ssl=...) joins every segmenter update
        self.unlabeled = unlabeled
        if unlabeled is not None:
            self.streams = (*self.streams, UNLABELED)
            unlabeled.bind(segmenter, runtime)
        check_streams(self.streams)
        self.optimizer = optimizer(segmenter.parameters())
        self.scheduler = scheduler(self.optimizer) if scheduler is not None else None
        self.scaler = runtime.grad_scaler()
        if name:
            self.name = name

    @property
    def steps_on_validation(self) -> bool:
        """True when the scheduler is stepped with the validation score (reduce-on-plateau)."""
        return isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    def to_device(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        images = batch["image"].to(self.runtime.device, non_blocking=True)
        masks = batch["mask"].to(self.runtime.device, non_blocking=True)
        if self.runtime.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, masks

    def unlabeled_images(self, batch: dict) -> torch.Tensor | None:
        """The batch's unlabeled images on the device (None without an unlabeled objective)."""
        if self.unlabeled is None:
            return None
        images = batch["unlabeled_image"].to(self.runtime.device, non_blocking=True)
        if self.runtime.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def segmentation_update(
        self,
        images: torch.Tensor,
        masks: torch.Tensor,
        synthetic: torch.Tensor | None = None,
        new_masks: torch.Tensor | None = None,
        synthetic_weight: float = 0.0,
        unlabeled: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """One optimiser step of the segmenter on real pairs, plus synthetic pairs when given
        (L = L(real) + synthetic_weight * L(synthetic)), plus the unlabeled objective's ramped
        loss on `unlabeled` images; one forward pass over all of them, so batch-norm statistics
        are shared. Returns the losses ("loss/seg": the supervised part)."""
        with record_function(SEGMENTER_UPDATE):
            return self._segmentation_update(
                images, masks, synthetic, new_masks, synthetic_weight, unlabeled
            )

    def _segmentation_update(
        self,
        images: torch.Tensor,
        masks: torch.Tensor,
        synthetic: torch.Tensor | None,
        new_masks: torch.Tensor | None,
        synthetic_weight: float,
        unlabeled: torch.Tensor | None,
    ) -> dict[str, float]:
        self.segmenter.train()
        self.optimizer.zero_grad(set_to_none=True)
        n_real = images.shape[0]
        if synthetic is not None:
            images, masks = torch.cat([images, synthetic]), torch.cat([masks, new_masks])
        n_labelled, context = images.shape[0], None
        if unlabeled is not None and self.unlabeled is not None:
            with record_function(UNLABELED_PREPARE):
                student, context = self.unlabeled.prepare(
                    self.segmenter, unlabeled, images[:n_real], masks[:n_real]
                )
            if self.runtime.channels_last:
                student = student.contiguous(memory_format=torch.channels_last)
            images = torch.cat([images, student])
        with self.runtime.autocast():
            logits = self.segmenter(images)
        labelled = logits if context is None else logits[:n_labelled]
        loss = real_plus_synthetic_loss(self.loss, labelled, masks, n_real, synthetic_weight)
        losses = {"loss/seg": float(loss.detach())}
        if context is not None:
            term = self.unlabeled.labelled_term(labelled[:n_real], masks[:n_real], context)
            if term is not None:  # an objective's own term on the real pairs (MCF)
                loss = loss + term[0]
                losses.update(term[1])
            unlabeled_loss, logs = self.unlabeled.loss(logits[n_labelled:], context)
            weight = self.unlabeled.weight()
            loss = loss + weight * unlabeled_loss
            losses.update(logs, **{"loss/unlabeled": float(unlabeled_loss.detach())})
            losses["ssl/weight"] = weight
        self.scaler.scale(loss).backward()
        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.segmenter.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None and not self.steps_on_validation:
            self.scheduler.step()
        if context is not None:
            losses.update(self.unlabeled.after_step(self.segmenter, context))
        return losses

    def updates_done(self) -> int:
        """Optimiser steps the segmenter has taken, read from the optimiser's own state (Adam,
        AdamW and RMSprop count them), so it survives a resume; 0 before the first step or for an
        optimiser that keeps no count."""
        for state in self.optimizer.state.values():
            if "step" in state:
                return int(state["step"])
        return 0

    def on_validation(self, score: float) -> None:
        """Called by the loop after each validation with the mean validation Dice."""
        if self.steps_on_validation:
            self.scheduler.step(score)

    def prepare(self, context: TrainingContext) -> None:
        """Called once before the first step (pre-training, previews); nothing for the baseline."""

    def train_step(self, batch: dict) -> dict[str, float]:
        raise NotImplementedError

    def finish(self, run_dir: Path) -> dict:
        """Called after the last step; returns what the method adds to metrics.json."""
        return {}

    def stateful(self) -> dict[str, Any]:
        """Everything with a state_dict that a resumed run must get back (None entries skipped)."""
        return {
            "segmenter": self.segmenter,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "scaler": self.scaler,
            "unlabeled": self.unlabeled,
        }

    def state_dict(self) -> dict:
        return {k: v.state_dict() for k, v in self.stateful().items() if v is not None}

    def load_state_dict(self, state: dict) -> None:
        for key, obj in self.stateful().items():
            if obj is not None:
                obj.load_state_dict(state[key])

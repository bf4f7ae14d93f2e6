"""What every training method shares: the segmenter, its optimiser and one supervised update.

A method is built from `conf/method/<name>.yaml` (`_target_` names its class) and driven by the
training loop (`genseg_cli.engine.loop`) through `train_step(batch) -> dict of losses`. Methods
return what they compute instead of keeping it on `self`, so their networks can also be called
functionally (torch.func) by the multi-level optimisation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from genseg_cli.engine.device import Runtime


class Method:
    """Base of all methods: owns the segmentation update (optimiser, scheduler, AMP scaler).

    Subclasses implement `train_step`. `loss` is a module mapping (logits, masks) to a scalar.
    """

    name = "method"

    def __init__(
        self,
        *,
        segmenter: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None,
        runtime: Runtime,
        grad_clip: float | None = None,
        name: str | None = None,
    ) -> None:
        self.segmenter = segmenter
        self.loss = loss
        self.runtime = runtime
        self.grad_clip = grad_clip
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

    def segmentation_update(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """One optimiser step of the segmenter on (images, masks); returns the detached loss."""
        self.segmenter.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self.runtime.autocast():
            logits = self.segmenter(images)
        loss = self.loss(logits, masks)
        self.scaler.scale(loss).backward()
        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.segmenter.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None and not self.steps_on_validation:
            self.scheduler.step()
        return loss.detach()

    def on_validation(self, score: float) -> None:
        """Called by the loop after each validation with the mean validation Dice."""
        if self.steps_on_validation:
            self.scheduler.step(score)

    def train_step(self, batch: dict) -> dict[str, float]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {
            "segmenter": self.segmenter.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
        }

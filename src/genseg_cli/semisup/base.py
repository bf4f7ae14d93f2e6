"""The interface of an unlabeled-image objective and what every objective shares.

A method that has an objective asks the loop for the unlabeled stream too, and each segmenter
update does, in this order:

    student_inputs, context = objective.prepare(segmenter, unlabeled, images, masks)  # no grad
    logits = segmenter(cat([labelled inputs, student_inputs]))    # one pass: shared BN stats
    loss = supervised(logits[:n]) + objective.labelled_term(real pairs' logits, masks, context)
    loss += objective.weight() * objective.loss(logits[n:], context)
    ... backward, optimiser step ...
    objective.after_step(segmenter, context)   # EMA teacher, a second network's own update

The weight ramps up as w * exp(-5 (1 - t)^2), t the share of `ramp_up * total_steps` done
(Laine and Aila, 2017), so that pseudo labels from a young network count little.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genseg_cli.core.runtime import Runtime


def probabilities(logits: Tensor) -> Tensor:
    """Per-pixel class probabilities: sigmoid of one binary channel, softmax over classes."""
    return torch.sigmoid(logits) if logits.shape[1] == 1 else logits.softmax(1)


def hard_labels(probs: Tensor) -> tuple[Tensor, Tensor]:
    """(pseudo labels shaped like the network's target, confidence per pixel N x 1 x ...)."""
    if probs.shape[1] == 1:
        labels = (probs > 0.5).float()
        return labels, torch.where(labels > 0, probs, 1 - probs)
    confidence, index = probs.max(1, keepdim=True)
    return torch.zeros_like(probs).scatter_(1, index, 1.0), confidence


def pixel_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Per-pixel cross-entropy (N x 1 x ...) against hard or soft targets of the same shape."""
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits.float(), targets, reduction="none")
    return -(targets * logits.float().log_softmax(1)).sum(1, keepdim=True)


def masked_soft_dice(logits: Tensor, targets: Tensor, mask: Tensor, smooth: float = 1.0) -> Tensor:
    """1 - soft Dice over the pixels where `mask` is 1, pooled over the batch, mean over channels.

    Pseudo labels of small structures are mostly background: cross-entropy alone rewards a
    network that predicts less and less foreground (confirmation bias towards background), while
    Dice weighs the foreground's overlap whatever its area (the pseudo-label loss of SSL4MIS's
    cross teaching). Binary logits (one channel) score the foreground channel only.
    """
    probs = probabilities(logits.float()) * mask
    targets = targets * mask
    dims = (0, *range(2, logits.ndim))  # batch and space, per channel
    overlap = (probs * targets).sum(dims)
    total = probs.sum(dims) + targets.sum(dims)
    return (1.0 - (2.0 * overlap + smooth) / (total + smooth)).mean()


class UnlabeledObjective(ABC):
    """An unsupervised loss on unlabeled images with a ramped weight.

    weight: the weight at full ramp; ramp_up: share of the training steps over which it ramps
    (0: full weight from the first step); total_steps: the run's training steps.
    """

    name = "objective"

    def __init__(
        self, *, weight: float, ramp_up: float, total_steps: int, name: str | None = None
    ) -> None:
        if weight < 0 or not 0 <= ramp_up <= 1:
            raise ValueError(
                f"ssl.weight={weight} must be >= 0 and ssl.ramp_up={ramp_up} in [0, 1]"
            )
        self.max_weight = float(weight)
        self.ramp_steps = float(ramp_up) * int(total_steps)
        self.steps_done = 0
        if name:
            self.name = name

    def bind(self, segmenter: nn.Module, runtime: Runtime) -> None:  # noqa: B027
        """Called once the method has its segmenter (teachers are copies of it)."""
        self.runtime = runtime

    def weight(self) -> float:
        """The ramped weight of this step."""
        if self.ramp_steps <= 0:
            return self.max_weight
        t = min(1.0, self.steps_done / self.ramp_steps)
        return self.max_weight * math.exp(-5.0 * (1.0 - t) ** 2)

    @abstractmethod
    def prepare(
        self, segmenter: nn.Module, unlabeled: Tensor, images: Tensor, masks: Tensor
    ) -> tuple[Tensor, dict[str, Any]]:
        """(the student's inputs for this step, what `loss` needs); runs without gradients."""

    def labelled_term(
        self, logits: Tensor, masks: Tensor, context: dict[str, Any]
    ) -> tuple[Tensor, dict[str, float]] | None:
        """Called before `loss` with the segmenter's logits on the step's real labelled pairs
        (in the graph) and their masks: (an unramped term for the segmenter's loss, logs), or
        None. Most objectives have none; MCF reviews where its two networks disagree here, and
        an objective may keep the logits in `context` for `loss`."""
        return None

    @abstractmethod
    def loss(self, logits: Tensor, context: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        """(the unweighted unlabeled loss from the student's logits on its inputs, logs)."""

    def after_step(self, segmenter: nn.Module, context: dict[str, Any]) -> dict[str, float]:
        """After the segmenter's optimiser step; counts steps (the ramp) by default."""
        self.steps_done += 1
        return {}

    def stateful(self) -> dict[str, Any]:
        """Objects with a state_dict that a resumed run needs (teachers, their optimisers)."""
        return {}

    def state_dict(self) -> dict:
        state = {k: v.state_dict() for k, v in self.stateful().items()}
        return {**state, "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        for key, obj in self.stateful().items():
            obj.load_state_dict(state[key])
        self.steps_done = int(state["steps_done"])

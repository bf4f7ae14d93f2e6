"""FixMatch for segmentation (Sohn et al., 2020; as UniMatch adapts it, Yang et al., 2023).

Pseudo labels come from the weak view (the unlabeled stream as the augment group delivers it),
predicted by an EMA teacher (default: it is steadier than the young student, which learns
slowly from its own early labels), by the student itself in eval mode, or by a finished run's frozen
segmenter (`pseudo_labels="run"`: self-training with a trained teacher, as in Noisy Student and
ST++; `conf/ssl/self_training.yaml`). The student learns them on
a strong view: appearance perturbation plus CutMix between the batch's images. Only pixels
whose pseudo label is confident (probability >= threshold) count; the loss is averaged over all
pixels, so a young network with few confident pixels gets a small loss; `dice_weight` > 0 adds
a soft Dice over the confident pixels, which keeps small foreground structures from fading
(`semisup.base.masked_soft_dice`). UniMatch's feature
perturbation stream (`feature_dropout` > 0): the student also predicts the weak view with
dropout on its encoder features and learns the same pseudo labels (2D smp backbones).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genseg_cli.core.errors import GensegError
from genseg_cli.core.runtime import Runtime
from genseg_cli.semisup.base import (
    UnlabeledObjective,
    hard_labels,
    masked_soft_dice,
    pixel_loss,
    probabilities,
)
from genseg_cli.semisup.ema import EmaTeacher
from genseg_cli.semisup.perturb import StrongPerturbation, cutmix, cutmix_boxes

PSEUDO_LABELS = ("ema", "student", "run")


class FixMatch(UnlabeledObjective):
    """Weak-to-strong pseudo labelling with a confidence threshold.

    threshold: minimum confidence of a pseudo-labelled pixel; pseudo_labels: ema | student |
    run (the frozen `teacher` network, which the loop loads from `ssl.teacher_run`);
    ema_decay: the teacher's decay; cutmix: probability that an image gets a box of another;
    feature_dropout: dropout rate on the encoder's features for UniMatch's extra stream (0: off);
    dice_weight: weight of a soft Dice on the confident pixels beside their cross-entropy;
    perturbation: the strong view's appearance changes (StrongPerturbation).
    """

    name = "fixmatch"

    def __init__(
        self,
        *,
        threshold: float = 0.9,
        pseudo_labels: str = "ema",
        ema_decay: float = 0.99,
        cutmix: float = 0.5,
        feature_dropout: float = 0.0,
        dice_weight: float = 0.0,
        perturbation: dict | None = None,
        teacher: nn.Module | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if pseudo_labels not in PSEUDO_LABELS:
            raise ValueError(f"ssl.pseudo_labels={pseudo_labels!r} must be one of {PSEUDO_LABELS}")
        if not 0.0 <= threshold <= 1.0 or not 0.0 <= feature_dropout < 1.0 or dice_weight < 0:
            raise ValueError(
                "ssl.threshold must lie in [0, 1], ssl.feature_dropout in [0, 1) and "
                "ssl.dice_weight must be >= 0"
            )
        self.threshold = float(threshold)
        self.pseudo_labels = pseudo_labels
        self.ema_decay = float(ema_decay)
        self.cutmix_p = float(cutmix)
        self.feature_dropout = float(feature_dropout)
        self.dice_weight = float(dice_weight)
        self.perturb = StrongPerturbation(**(perturbation or {}))
        self.teacher: EmaTeacher | None = None
        if (pseudo_labels == "run") != (teacher is not None):
            raise ValueError(
                "ssl.pseudo_labels=run needs a trained teacher (ssl.teacher_run=RUN_DIR), and "
                "ssl.teacher_run needs ssl.pseudo_labels=run"
            )
        self.trained_teacher = teacher.eval().requires_grad_(False) if teacher is not None else None

    def bind(self, segmenter: nn.Module, runtime: Runtime) -> None:
        super().bind(segmenter, runtime)
        if self.pseudo_labels == "ema":
            self.teacher = EmaTeacher(segmenter, self.ema_decay)
        if self.feature_dropout and not all(
            hasattr(segmenter, part) for part in ("encoder", "decoder", "segmentation_head")
        ):
            raise GensegError(
                "ssl.feature_dropout needs an encoder-decoder backbone (the 2D smp ones); "
                "set ssl.feature_dropout=0 for this backbone"
            )

    @torch.no_grad()
    def _weak_predictions(self, segmenter: nn.Module, unlabeled: Tensor) -> Tensor:
        with self.runtime.autocast():
            if self.trained_teacher is not None:
                return probabilities(self.trained_teacher(unlabeled).float())
            if self.teacher is not None:
                return probabilities(self.teacher(unlabeled).float())
            was_training = segmenter.training
            segmenter.eval()
            logits = segmenter(unlabeled).float()
            segmenter.train(was_training)
        return probabilities(logits)

    @torch.no_grad()
    def prepare(
        self, segmenter: nn.Module, unlabeled: Tensor, images: Tensor, masks: Tensor
    ) -> tuple[Tensor, dict[str, Any]]:
        labels, confidence = hard_labels(self._weak_predictions(segmenter, unlabeled))
        boxes, partner = cutmix_boxes(unlabeled.shape[0], tuple(unlabeled.shape[2:]), self.cutmix_p)
        strong = cutmix(self.perturb(unlabeled), boxes, partner)
        context = {
            "labels": cutmix(labels, boxes, partner),
            "confident": (cutmix(confidence, boxes, partner) >= self.threshold).float(),
            "weak": unlabeled,
            "weak_labels": labels,
            "weak_confident": (confidence >= self.threshold).float(),
            "segmenter": segmenter,
        }
        return strong, context

    def _feature_perturbed(self, segmenter: nn.Module, images: Tensor) -> Tensor:
        features = segmenter.encoder(images)
        # the input itself (features[0]) stays; every deeper feature map loses channels at random
        dropped = [features[0]] + [F.dropout2d(f, self.feature_dropout) for f in features[1:]]
        return segmenter.segmentation_head(segmenter.decoder(dropped))

    def pseudo_label_loss(self, logits: Tensor, labels: Tensor, confident: Tensor) -> Tensor:
        """Cross-entropy on the confident pixels, plus their soft Dice when dice_weight > 0."""
        loss = (pixel_loss(logits, labels) * confident).mean()
        if self.dice_weight:
            loss = loss + self.dice_weight * masked_soft_dice(logits, labels, confident)
        return loss

    def loss(self, logits: Tensor, context: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        strong = self.pseudo_label_loss(logits, context["labels"], context["confident"])
        logs = {"ssl/confident": float(context["confident"].mean())}
        if not self.feature_dropout:
            return strong, logs
        with self.runtime.autocast():
            perturbed = self._feature_perturbed(context["segmenter"], context["weak"])
        fp = self.pseudo_label_loss(perturbed, context["weak_labels"], context["weak_confident"])
        return 0.5 * (strong + fp), logs

    def after_step(self, segmenter: nn.Module, context: dict[str, Any]) -> dict[str, float]:
        if self.teacher is not None:
            self.teacher.update(segmenter)
        return super().after_step(segmenter, context)

    def stateful(self) -> dict[str, Any]:
        return {"teacher": self.teacher} if self.teacher is not None else {}

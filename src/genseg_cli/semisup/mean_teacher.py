"""Mean Teacher (Tarvainen and Valpola, 2017): an EMA of the student is the teacher; the student's
probabilities on a strongly perturbed view must match the teacher's on the weak view (MSE)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from genseg_cli.core.runtime import Runtime
from genseg_cli.semisup.base import UnlabeledObjective, probabilities
from genseg_cli.semisup.ema import EmaTeacher
from genseg_cli.semisup.perturb import StrongPerturbation


class MeanTeacher(UnlabeledObjective):
    """Consistency between an EMA teacher (weak view) and the student (strong view).

    ema_decay: the teacher's decay; perturbation: the strong view's settings (StrongPerturbation).
    """

    name = "mean_teacher"

    def __init__(self, *, ema_decay: float = 0.99, perturbation: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.ema_decay = float(ema_decay)
        self.perturb = StrongPerturbation(**(perturbation or {}))

    def bind(self, segmenter: nn.Module, runtime: Runtime) -> None:
        super().bind(segmenter, runtime)
        self.teacher = EmaTeacher(segmenter, self.ema_decay)

    @torch.no_grad()
    def prepare(
        self, segmenter: nn.Module, unlabeled: Tensor, images: Tensor, masks: Tensor
    ) -> tuple[Tensor, dict[str, Any]]:
        with self.runtime.autocast():
            target = probabilities(self.teacher(unlabeled).float())
        return self.perturb(unlabeled), {"target": target}

    def loss(self, logits: Tensor, context: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        consistency = (probabilities(logits.float()) - context["target"]).pow(2).mean()
        return consistency, {}

    def after_step(self, segmenter: nn.Module, context: dict[str, Any]) -> dict[str, float]:
        self.teacher.update(segmenter)
        return super().after_step(segmenter, context)

    def stateful(self) -> dict[str, Any]:
        return {"teacher": self.teacher}

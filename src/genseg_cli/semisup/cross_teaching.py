"""Cross Teaching between a CNN and a Transformer (Luo et al., MIDL 2022), GenSeg's CTBCT row.

The method's segmenter (the CNN that is evaluated) and a partner network from the backbone
registry (`ssl.partner`, a Transformer by default) both learn the labelled pairs; on unlabeled
images each learns the other's hard pseudo labels. The two architectures make different errors,
so each corrects the other more than a copy of itself would. Both see the same strong view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor, nn

from genseg_cli.core.runtime import Runtime
from genseg_cli.nets.losses import SegmentationLoss
from genseg_cli.nets.segmenters import build_segmenter
from genseg_cli.semisup.base import UnlabeledObjective, hard_labels, probabilities
from genseg_cli.semisup.perturb import StrongPerturbation


class CrossTeaching(UnlabeledObjective):
    """A partner network; cross pseudo-label supervision with the segmentation loss.

    partner: a backbone config (conf/backbone/<name>.yaml); optimizer: a partial optimiser for
    the partner (the run's own by default); dims: 2 or 3.
    """

    name = "cross_teaching"

    def __init__(
        self,
        *,
        partner: DictConfig,
        optimizer: Callable[..., torch.optim.Optimizer],
        dims: int = 2,
        perturbation: dict | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.partner_cfg = partner
        # a partial optimiser, or its config when the group is built with _recursive_=false
        self.make_optimizer = (
            instantiate(optimizer) if isinstance(optimizer, DictConfig) else optimizer
        )
        self.dims = int(dims)
        self.perturb = StrongPerturbation(**(perturbation or {}))
        self.criterion = SegmentationLoss()

    def bind(self, segmenter: nn.Module, runtime: Runtime) -> None:
        super().bind(segmenter, runtime)
        self.partner = runtime.prepare(build_segmenter(self.partner_cfg, self.dims))
        self.partner_optimizer = self.make_optimizer(self.partner.parameters())

    @torch.no_grad()
    def prepare(
        self, segmenter: nn.Module, unlabeled: Tensor, images: Tensor, masks: Tensor
    ) -> tuple[Tensor, dict[str, Any]]:
        strong = self.perturb(unlabeled)
        self.partner.train()
        with self.runtime.autocast():
            partner_logits = self.partner(strong).float()
        labels, _ = hard_labels(probabilities(partner_logits))
        return strong, {"labels": labels, "strong": strong, "images": images, "masks": masks}

    def loss(self, logits: Tensor, context: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        context["student_labels"] = hard_labels(probabilities(logits.detach().float()))[0]
        return self.criterion(logits.float(), context["labels"]), {}

    def after_step(self, segmenter: nn.Module, context: dict[str, Any]) -> dict[str, float]:
        """The partner's own step: its supervised loss plus the segmenter's pseudo labels."""
        n = context["images"].shape[0]
        self.partner.train()
        self.partner_optimizer.zero_grad(set_to_none=True)
        with self.runtime.autocast():
            logits = self.partner(torch.cat([context["images"], context["strong"]])).float()
        supervised = self.criterion(logits[:n], context["masks"])
        taught = self.criterion(logits[n:], context["student_labels"])
        (supervised + self.weight() * taught).backward()
        self.partner_optimizer.step()
        logs = {"ssl/partner_seg": float(supervised.detach())}
        return {**logs, **super().after_step(segmenter, context)}

    def stateful(self) -> dict[str, Any]:
        return {"partner": self.partner, "partner_optimizer": self.partner_optimizer}

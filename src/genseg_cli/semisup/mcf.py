"""The Mutual Correction Framework (Wang et al., "MCF: Mutual Correction Framework for
Semi-Supervised Medical Image Segmentation", CVPR 2023), one of GenSeg's semi-supervised
comparators (its Fig. 6).

Two subnets of different architecture learn side by side: the method's segmenter (the one that
is evaluated) and a partner from the backbone registry (`ssl.partner`; U-Net++ by default, whose
nested decoder differs from the U-Net's), each with its own optimiser. Per step:
- both learn the labelled pairs (the segmenter with the method's loss, the partner with
  cross-entropy + Dice);
- contrastive difference review (CDR): on the labelled pairs, the pixels where the two subnets'
  hard predictions disagree are reviewed: each subnet's squared error between its foreground
  probability and the true mask, averaged over those pixels, weighted by `review_weight` (not
  ramped);
- dynamic competitive pseudo-label generation (DCPLG): the subnet with the lower Dice loss on
  this step's labelled pairs is the better one; its probabilities on the unlabeled images,
  sharpened with temperature `temperature` (p^(1/T), renormalised), are the target of the other
  subnet's probabilities (mean squared error, weighted by the ramped `weight`). Only the worse
  subnet learns from the unlabeled images in a step.

Where this differs from the paper, and why: the two subnets are 2D (or 3D) networks from the
backbone registry instead of V-Net and a ResNet-34 V-Net, so that MCF runs with the backbone the
other methods use; the segmenter's supervised loss is the method's (as for every objective); the
review's squared error is taken on the foreground probability itself (the authors' code passes
it through a softmax over a spatial axis first, which the paper does not describe); the labelled
and unlabeled images go through each subnet in one batch, as in the paper, but the segmenter's
batch also holds the method's synthetic pairs when it has them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from genseg_cli.semisup.base import masked_soft_dice, probabilities
from genseg_cli.semisup.cross_teaching import CrossTeaching


def disagreement(first: Tensor, second: Tensor) -> Tensor:
    """Pixels (N x 1 x ...) where the hard predictions of two logits differ."""
    if first.shape[1] == 1:
        return ((first > 0) != (second > 0)).float()
    return (first.argmax(1, keepdim=True) != second.argmax(1, keepdim=True)).float()


def reviewed_error(logits: Tensor, masks: Tensor, region: Tensor) -> Tensor:
    """Squared error of the probabilities to the masks, mean over the pixels of `region`."""
    error = (probabilities(logits.float()) - masks).pow(2).mean(1, keepdim=True)
    return (error * region).sum() / (region.sum() + 1e-16)


def sharpened(probs: Tensor, temperature: float) -> Tensor:
    """p^(1/T) renormalised over the classes (a binary channel is the class pair (1 - p, p))."""
    if probs.shape[1] == 1:
        up, down = probs.pow(1 / temperature), (1 - probs).pow(1 / temperature)
        return up / (up + down).clamp_min(1e-12)
    powered = probs.pow(1 / temperature)
    return powered / powered.sum(1, keepdim=True).clamp_min(1e-12)


def dice_loss(logits: Tensor, masks: Tensor) -> float:
    """1 - soft Dice over the batch: how DCPLG ranks the two subnets."""
    return float(masked_soft_dice(logits.detach(), masks, torch.ones_like(masks[:, :1])))


class MutualCorrection(CrossTeaching):
    """MCF's two subnets: the segmenter and a partner (built, with its optimiser, as cross
    teaching builds its partner).

    partner: a backbone config; optimizer: a partial optimiser for the partner; dims: 2 or 3;
    review_weight: the weight of CDR's reviewed error; temperature: DCPLG's sharpening.
    """

    name = "mcf"

    def __init__(self, *, review_weight: float = 0.5, temperature: float = 0.1, **kwargs) -> None:
        super().__init__(**kwargs)
        if review_weight < 0 or temperature <= 0:
            raise ValueError(
                f"ssl.review_weight={review_weight} must be >= 0 and ssl.temperature="
                f"{temperature} above 0"
            )
        self.review_weight = float(review_weight)
        self.temperature = float(temperature)

    def prepare(
        self, segmenter: nn.Module, unlabeled: Tensor, images: Tensor, masks: Tensor
    ) -> tuple[Tensor, dict[str, Any]]:
        """The partner's pass over the labelled and unlabeled images, kept in the graph for its
        own update after the segmenter's; the segmenter's inputs are the unlabeled images."""
        n = images.shape[0]
        self.partner.train()
        with torch.enable_grad(), self.runtime.autocast():
            logits = self.partner(torch.cat([images, unlabeled])).float()
        context = {
            "masks": masks,
            "partner_labelled": logits[:n],
            "partner_unlabeled": logits[n:],
            "partner_dice": dice_loss(logits[:n], masks),
        }
        return unlabeled, context

    def labelled_term(
        self, logits: Tensor, masks: Tensor, context: dict[str, Any]
    ) -> tuple[Tensor, dict[str, float]]:
        """CDR for the segmenter, and DCPLG's ranking of the two subnets on this batch."""
        region = disagreement(logits.detach(), context["partner_labelled"].detach())
        context["review"] = region
        segmenter_dice = dice_loss(logits, masks)
        context["segmenter_leads"] = segmenter_dice < context["partner_dice"]
        review = reviewed_error(logits, masks, region)
        logs = {
            "ssl/disagreement": float(region.mean()),
            "ssl/segmenter_leads": float(context["segmenter_leads"]),
        }
        return self.review_weight * review, logs

    def consistency(self, logits: Tensor, context: dict[str, Any]) -> Tensor:
        """The segmenter's squared distance to the partner's sharpened pseudo labels."""
        target = sharpened(probabilities(context["partner_unlabeled"].detach()), self.temperature)
        return (probabilities(logits.float()) - target).pow(2).mean()

    def loss(self, logits: Tensor, context: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        """The segmenter learns the partner's pseudo labels only when the partner leads."""
        context["segmenter_probs"] = probabilities(logits.detach().float())
        consistency = self.consistency(logits, context)
        learns = 0.0 if context["segmenter_leads"] else 1.0
        return learns * consistency, {"ssl/consistency": float(consistency.detach())}

    def after_step(self, segmenter: nn.Module, context: dict[str, Any]) -> dict[str, float]:
        """The partner's update: its supervised loss and review, plus the segmenter's sharpened
        pseudo labels when the segmenter leads."""
        labelled, masks = context["partner_labelled"], context["masks"]
        supervised = self.criterion(labelled, masks)
        review = reviewed_error(labelled, masks, context["review"])
        total = supervised + self.review_weight * review
        if context["segmenter_leads"]:
            target = sharpened(context["segmenter_probs"], self.temperature)
            taught = (probabilities(context["partner_unlabeled"]) - target).pow(2).mean()
            total = total + self.weight() * taught
        self.partner_optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.partner_optimizer.step()
        logs = {"ssl/partner_seg": float(supervised.detach())}
        return {**logs, **super(CrossTeaching, self).after_step(segmenter, context)}

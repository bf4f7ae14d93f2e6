"""Deep Co-Training (Qiao et al., "Deep Co-Training for Semi-Supervised Image Recognition", ECCV
2018), adapted to segmentation: one of GenSeg's semi-supervised comparators (its Fig. 6, "DCT").

Two networks, the method's segmenter and a partner (`ssl.partner`: by default the run's own
backbone, a second copy with its own initial weights, as the paper's two views are), each with its
optimiser. Per step, on D = the labelled pairs and the unlabeled images:
- both learn the labelled pairs (the segmenter with the method's loss, the partner with
  cross-entropy + Dice);
- co-training: on the unlabeled images the two networks' per-pixel class distributions agree,
  by their Jensen-Shannon divergence H((p1 + p2) / 2) - (H(p1) + H(p2)) / 2 (L_cot);
- view difference: each network makes FGSM adversarial examples of D against itself,
  g_i(x) = clip(x + epsilon * sign(grad_x CE(p_i(x), y))), y the mask on labelled images and p_i's
  own hard prediction on unlabeled ones; the other network must not be fooled by them: it predicts
  on g_i(x) what network i predicts on the clean x, L_dif = H(p1(x), p2(g1(x))) +
  H(p2(x), p1(g2(x))). So the two views are trained to differ exactly where adversarial
  examples would make them agree on a mistake.
The unlabeled loss is L_cot + view_difference * L_dif with the ramped `weight` (the paper's
lambda_cot; view_difference is lambda_dif / lambda_cot), both ramped alike as in the paper.

Where this differs from the paper, and why: classification losses become per-pixel ones (mean
over pixels), with a binary mask read as the class pair (background, foreground); the segmenter's
supervised loss is the method's and the partner's is cross-entropy + Dice, the project's
segmentation loss; each network takes its own optimiser step on its share of the joint loss
(the paper takes one step on the sum: the gradients are the same, since each term's gradient
reaches a network only through that network's outputs, all computed before either step);
epsilon is in the images' [-1, 1] range (the paper's 0.02 on [0, 1] is 0.04 here). Making g1
costs the segmenter an extra forward pass in training mode, which also moves its batch-norm
running statistics, as the paper's implementation does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from genseg_cli.semisup.base import hard_labels, pixel_loss, probabilities
from genseg_cli.semisup.cross_teaching import CrossTeaching


def class_probabilities(logits: Tensor) -> Tensor:
    """Per-pixel class distributions; one binary channel becomes (1 - p, p)."""
    probs = probabilities(logits.float())
    return torch.cat([1 - probs, probs], 1) if probs.shape[1] == 1 else probs


def entropy(probs: Tensor) -> Tensor:
    """Per-pixel entropy over the class axis."""
    return -(probs * probs.clamp_min(1e-8).log()).sum(1)


def jensen_shannon(first: Tensor, second: Tensor) -> Tensor:
    """DCT's co-training loss between two logits, mean over pixels."""
    p, q = class_probabilities(first), class_probabilities(second)
    return (entropy((p + q) / 2) - (entropy(p) + entropy(q)) / 2).mean()


def soft_cross_entropy(target_logits: Tensor, logits: Tensor) -> Tensor:
    """H(p_target, p(logits)) per pixel, mean over pixels; gradients reach both sides."""
    target = probabilities(target_logits.float())
    return pixel_loss(logits, target).mean()


class DeepCoTraining(CrossTeaching):
    """Two networks with co-training and view-difference losses (the partner built, with its
    optimiser, as cross teaching builds its partner).

    partner: a backbone config; optimizer: a partial optimiser for the partner; dims: 2 or 3;
    epsilon: FGSM's step in image units; view_difference: lambda_dif / lambda_cot.
    """

    name = "dct"

    def __init__(self, *, epsilon: float = 0.04, view_difference: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        if epsilon <= 0 or view_difference < 0:
            raise ValueError(
                f"ssl.epsilon={epsilon} must be > 0 and ssl.view_difference={view_difference} >= 0"
            )
        self.epsilon = float(epsilon)
        self.view_difference = float(view_difference)

    def adversarial(self, network: nn.Module, images: Tensor, masks: Tensor) -> Tensor:
        """FGSM examples of `images` (labelled ones first, `masks` theirs) against `network`;
        the network's pass runs in training mode, its weights get no gradient."""
        n = masks.shape[0]
        inputs = images.detach().clone().requires_grad_(True)
        with torch.enable_grad(), self.runtime.autocast():
            logits = network(inputs).float()
        targets = torch.cat([masks, hard_labels(probabilities(logits[n:].detach()))[0]])
        (grad,) = torch.autograd.grad(pixel_loss(logits, targets).mean(), inputs)
        return (images + self.epsilon * grad.sign()).clamp(-1, 1).detach()

    def prepare(
        self, segmenter: nn.Module, unlabeled: Tensor, images: Tensor, masks: Tensor
    ) -> tuple[Tensor, dict[str, Any]]:
        """Both networks' adversarial examples, and the partner's passes over D and over the
        segmenter's adversarial examples (kept in the graph for its own update). The
        segmenter's inputs: the unlabeled images, then the partner's adversarial examples."""
        everything = torch.cat([images, unlabeled])
        self.partner.train()
        partner_adversarial = self.adversarial(self.partner, everything, masks)
        segmenter_adversarial = self.adversarial(segmenter, everything, masks)
        with torch.enable_grad(), self.runtime.autocast():
            partner = self.partner(torch.cat([everything, segmenter_adversarial])).float()
        d = everything.shape[0]
        context = {
            "masks": masks,
            "n": images.shape[0],
            "m": unlabeled.shape[0],
            "partner_clean": partner[:d],
            "partner_on_adversarial": partner[d:],
        }
        return torch.cat([unlabeled, partner_adversarial]), context

    def labelled_term(
        self, logits: Tensor, masks: Tensor, context: dict[str, Any]
    ) -> tuple[Tensor, dict[str, float]] | None:
        context["segmenter_labelled"] = logits  # its clean predictions on D start with these
        return None

    def loss(self, logits: Tensor, context: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        """The segmenter's share: L_cot against the partner's unlabeled predictions, and L_dif:
        not fooled by the partner's adversarial examples, and its clean predictions as the
        target of the partner's on its own adversarial examples."""
        n, m = context["n"], context["m"]
        on_unlabeled, on_partner_adversarial = logits[:m], logits[m:]
        partner_clean = context["partner_clean"].detach()
        clean = torch.cat([context["segmenter_labelled"], on_unlabeled])
        cot = jensen_shannon(on_unlabeled, partner_clean[n:])
        resist = soft_cross_entropy(partner_clean, on_partner_adversarial)
        teach = soft_cross_entropy(clean, context["partner_on_adversarial"].detach())
        context.update(
            clean=clean.detach(), on_unlabeled=on_unlabeled.detach(),
            on_partner_adversarial=on_partner_adversarial.detach(),
        )  # fmt: skip
        logs = {"ssl/cot": float(cot.detach()), "ssl/dif": float((resist + teach).detach())}
        return cot + self.view_difference * (resist + teach), logs

    def after_step(self, segmenter: nn.Module, context: dict[str, Any]) -> dict[str, float]:
        """The partner's share of the same losses, the segmenter's outputs held fixed."""
        n, clean = context["n"], context["partner_clean"]
        supervised = self.criterion(clean[:n], context["masks"])
        cot = jensen_shannon(clean[n:], context["on_unlabeled"])
        resist = soft_cross_entropy(context["clean"], context["partner_on_adversarial"])
        teach = soft_cross_entropy(clean, context["on_partner_adversarial"])
        total = supervised + self.weight() * (cot + self.view_difference * (resist + teach))
        self.partner_optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.partner_optimizer.step()
        logs = {"ssl/partner_seg": float(supervised.detach())}
        return {**logs, **super(CrossTeaching, self).after_step(segmenter, context)}

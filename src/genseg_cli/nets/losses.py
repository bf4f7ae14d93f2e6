"""Segmentation loss: binary cross-entropy + soft Dice on logits (segmentation-models-pytorch)."""

from __future__ import annotations

import torch
from segmentation_models_pytorch.losses import DiceLoss, SoftBCEWithLogitsLoss
from torch import nn


class SegmentationLoss(nn.Module):
    """bce_weight * BCE + dice_weight * soft Dice, for single-channel logits.

    >>> loss = SegmentationLoss(bce_weight=1.0, dice_weight=1.0)
    >>> loss(torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8)).item() > 0
    True
    """

    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 1.0) -> None:
        super().__init__()
        self.bce_weight, self.dice_weight = bce_weight, dice_weight
        self.bce = SoftBCEWithLogitsLoss()
        self.dice = DiceLoss(mode="binary", from_logits=True)

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        if logits.dtype in (torch.float16, torch.bfloat16):  # losses in fp32 under autocast
            logits = logits.float()
        return self.bce_weight * self.bce(logits, masks) + self.dice_weight * self.dice(
            logits, masks
        )

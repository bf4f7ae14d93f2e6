"""Segmentation loss: cross-entropy + soft Dice on logits (segmentation-models-pytorch).

Binary data (one logit channel, {0,1} masks) uses BCE; multi-class data (one logit per class,
one-hot masks with background first) uses softmax cross-entropy and a multi-class soft Dice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.losses import DiceLoss, SoftBCEWithLogitsLoss
from torch import nn


class SegmentationLoss(nn.Module):
    """bce_weight * cross-entropy + dice_weight * soft Dice; the mode follows the logits.

    >>> loss = SegmentationLoss(bce_weight=1.0, dice_weight=1.0)
    >>> loss(torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8)).item() > 0
    True
    >>> loss(torch.zeros(2, 3, 4, 8, 8), F.one_hot(torch.zeros(2, 4, 8, 8).long(), 3)
    ...      .movedim(-1, 1).float()).item() > 0
    True
    """

    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 1.0) -> None:
        super().__init__()
        self.bce_weight, self.dice_weight = bce_weight, dice_weight
        self.bce = SoftBCEWithLogitsLoss()
        self.dice = DiceLoss(mode="binary", from_logits=True)
        self.multiclass_dice = DiceLoss(mode="multiclass", from_logits=True)

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        if logits.dtype in (torch.float16, torch.bfloat16):  # losses in fp32 under autocast
            logits = logits.float()
        if logits.shape[1] == 1:
            return self.bce_weight * self.bce(logits, masks) + self.dice_weight * self.dice(
                logits, masks
            )
        labels = masks.argmax(dim=1)  # one-hot -> class index per pixel/voxel
        return self.bce_weight * F.cross_entropy(
            logits, labels
        ) + self.dice_weight * self.multiclass_dice(logits, labels)

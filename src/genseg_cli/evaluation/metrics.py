"""Dice and IoU of binary masks. An empty prediction of an empty mask scores 1 (correct "none")."""

from __future__ import annotations

import numpy as np
import torch


def dice_iou(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Dice and IoU of two boolean masks of the same shape.

    >>> dice_iou(np.array([1, 1, 0, 0], bool), np.array([1, 0, 0, 0], bool))
    (0.6666666666666666, 0.5)
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and mask {target.shape} differ in shape")
    pred, target = pred.astype(bool), target.astype(bool)
    inter = float(np.logical_and(pred, target).sum())
    total = float(pred.sum() + target.sum())
    if total == 0:
        return 1.0, 1.0
    return 2.0 * inter / total, inter / (total - inter)


def batch_dice(logits: torch.Tensor, masks: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-image Dice of thresholded logits (N,1,H,W) against {0,1} masks, same empty-mask rule."""
    pred = torch.sigmoid(logits.float()) > threshold
    target = masks > 0.5
    inter = (pred & target).flatten(1).sum(1).float()
    total = (pred.flatten(1).sum(1) + target.flatten(1).sum(1)).float()
    return torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))

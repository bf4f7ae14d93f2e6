"""Dice, IoU and HD95 of segmentations. An empty prediction of an empty mask scores Dice 1
(correct "none"); HD95 is undefined (NaN) when either side is empty."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

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


def hd95(pred: np.ndarray, target: np.ndarray, spacing: Sequence[float] | None = None) -> float:
    """95th-percentile symmetric Hausdorff distance (in mm with `spacing`) of two boolean masks,
    by MONAI; NaN when either mask is empty.

    >>> a = np.zeros((8, 8, 8), bool); a[2:5, 2:5, 2:5] = True
    >>> hd95(a, np.roll(a, 1, axis=0))
    1.0
    """
    from monai.metrics import compute_hausdorff_distance

    if not pred.any() or not target.any():
        return float("nan")
    as_batch = [torch.from_numpy(m.astype(np.float32))[None, None] for m in (pred, target)]
    with warnings.catch_warnings():  # MONAI 1.5+ warns about its own internal argument
        warnings.simplefilter("ignore", FutureWarning)
        distance = compute_hausdorff_distance(
            *as_batch,
            include_background=True,
            percentile=95,
            spacing=list(spacing) if spacing is not None else None,
        )
    return float(distance.item())


def class_scores(
    pred: np.ndarray,
    target: np.ndarray,
    class_names: Sequence[str],
    spacing: Sequence[float] | None = None,
) -> dict[str, float]:
    """Per foreground class (label 1, 2, ... named `class_names`) Dice, IoU and HD95 of two label
    maps, plus `dice`/`iou`/`hd95`: their means over classes (HD95 over the defined ones)."""
    row: dict[str, float] = {}
    for label, name in enumerate(class_names, start=1):
        p, t = pred == label, target == label
        row[f"dice_{name}"], row[f"iou_{name}"] = dice_iou(p, t)
        row[f"hd95_{name}"] = hd95(p, t, spacing)
    for metric in ("dice", "iou", "hd95"):
        values = [row[f"{metric}_{name}"] for name in class_names]
        defined = [v for v in values if not np.isnan(v)]
        row[metric] = float(np.mean(defined)) if defined else float("nan")
    return row


def batch_dice(logits: torch.Tensor, masks: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-item Dice of logits against masks, same empty-mask rule. One channel: thresholded
    sigmoid against {0,1}; several: argmax against one-hot, averaged over foreground classes."""
    if logits.shape[1] == 1:
        pred = torch.sigmoid(logits.float()) > threshold
        target = masks > 0.5
    else:
        channels = logits.shape[1]
        pred = torch.nn.functional.one_hot(logits.argmax(1), channels).movedim(-1, 1)[:, 1:]
        target = masks[:, 1:] > 0.5
        pred = pred.bool()
    dims = tuple(range(2, pred.ndim))
    inter = (pred & target).sum(dims).float()
    total = (pred.sum(dims) + target.sum(dims)).float()
    dice = torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))
    return dice.mean(1)

"""Scoring a trained segmenter on a set of pairs: per-image Dice/IoU and their summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from genseg_cli.data.dataset import Pair, resize_pair, to_tensor
from genseg_cli.engine.device import Runtime
from genseg_cli.evaluation.metrics import dice_iou


@torch.no_grad()
def predict_logits(
    model: nn.Module, pairs: list[Pair], image_size: int, runtime: Runtime, batch_size: int = 16
) -> list[torch.Tensor]:
    """Logits (1 x size x size, fp32, CPU) of each pair's image at model resolution."""
    model.eval()
    out: list[torch.Tensor] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        images = torch.stack([to_tensor(resize_pair(p, image_size)[0]) for p in chunk])
        images = images.to(runtime.device)
        if runtime.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with runtime.autocast():
            logits = model(images)
        out.extend(logits.float().cpu())
    return out


def to_size(logit: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Logits (1 x h x w) resized bilinearly to an image's own (height, width)."""
    return F.interpolate(logit[None], size=tuple(shape), mode="bilinear", align_corners=False)[0]


def score_pairs(
    logits: list[torch.Tensor],
    pairs: list[Pair],
    resolution: str = "original",
    threshold: float = 0.5,
) -> pd.DataFrame:
    """Per-image Dice and IoU. `original`: logits resized to each image's size (bilinear) before
    thresholding, against the original mask; `model`: both compared at model resolution."""
    rows = []
    for logit, pair in zip(logits, pairs, strict=True):
        if resolution == "original":
            logit = to_size(logit, pair.mask.shape)
            target = pair.mask
        elif resolution == "model":
            target = resize_pair(pair, logit.shape[-1])[1].astype(bool)
        else:
            raise ValueError(f"evaluation.resolution={resolution} is not 'original' or 'model'")
        pred = (torch.sigmoid(logit[0]) > threshold).numpy()
        dice, iou = dice_iou(pred, target)
        rows.append({"id": pair.id, "dice": dice, "iou": iou})
    return pd.DataFrame(rows, columns=["id", "dice", "iou"])


def summarise(scores: pd.DataFrame) -> dict[str, float]:
    """Mean and (population) standard deviation of Dice and IoU over images."""
    return {
        "n": len(scores),
        "dice_mean": float(np.mean(scores["dice"])),
        "dice_std": float(np.std(scores["dice"])),
        "iou_mean": float(np.mean(scores["iou"])),
        "iou_std": float(np.std(scores["iou"])),
    }


def evaluate_model(
    model: nn.Module,
    pairs: list[Pair],
    image_size: int,
    runtime: Runtime,
    resolution: str = "original",
    threshold: float = 0.5,
    batch_size: int = 16,
) -> pd.DataFrame:
    """Predict and score `pairs` in one call."""
    logits = predict_logits(model, pairs, image_size, runtime, batch_size)
    return score_pairs(logits, pairs, resolution, threshold)

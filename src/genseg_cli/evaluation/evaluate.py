"""Scoring a trained segmenter on a set of pairs: per-image Dice/IoU and their summary.

2D pairs are binary (Dice and IoU per image); 3D volumes are multi-class (Dice, IoU and HD95 per
class and their mean per volume). Either way `dice` and `iou` are the headline columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from genseg_cli.data.dataset import Pair
from genseg_cli.data.samples import ModelSize, model_input, model_target
from genseg_cli.data.volumes import Volume
from genseg_cli.engine.device import Runtime
from genseg_cli.evaluation.metrics import class_scores, dice_iou


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    pairs: Sequence[Pair | Volume],
    image_size: ModelSize,
    runtime: Runtime,
    batch_size: int = 16,
) -> list[torch.Tensor]:
    """Logits (classes x model size, fp32, CPU) of each pair's image at model resolution."""
    model.eval()
    out: list[torch.Tensor] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        images = torch.stack([model_input(p, image_size) for p in chunk]).to(runtime.device)
        if runtime.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with runtime.autocast():
            logits = model(images)
        out.extend(logits.float().cpu())
    return out


def to_size(logit: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Logits (C x spatial) resized (bi/trilinear) to a pair's own spatial shape."""
    mode = "bilinear" if len(shape) == 2 else "trilinear"
    return F.interpolate(logit[None], size=tuple(shape), mode=mode, align_corners=False)[0]


def to_labels(logit: torch.Tensor, threshold: float = 0.5) -> np.ndarray:
    """Logits (C x spatial) -> prediction: a boolean mask for one channel, else a label map."""
    if logit.shape[0] == 1:
        return (torch.sigmoid(logit[0]) > threshold).numpy()
    return logit.argmax(0).numpy().astype(np.uint8)


def score_pairs(
    logits: list[torch.Tensor],
    pairs: Sequence[Pair | Volume],
    resolution: str = "original",
    threshold: float = 0.5,
    class_names: Sequence[str] = ("foreground",),
) -> pd.DataFrame:
    """Per-pair scores. `original`: logits resized to each pair's own size (bi/trilinear) before
    thresholding, against the original mask; `model`: both compared at model resolution.
    Volumes get Dice/IoU/HD95 (mm) per class of `class_names` as well as their means."""
    if resolution not in ("original", "model"):
        raise ValueError(f"evaluation.resolution={resolution} is not 'original' or 'model'")
    rows = []
    for logit, pair in zip(logits, pairs, strict=True):
        if resolution == "original":
            pred, target = to_labels(to_size(logit, pair.mask.shape), threshold), pair.mask
        else:
            pred, target = to_labels(logit, threshold), model_target(pair, tuple(logit.shape[1:]))
        if isinstance(pair, Volume):
            spacing = pair.spacing if resolution == "original" else None
            rows.append({"id": pair.id, **class_scores(pred, target, class_names, spacing)})
        else:
            dice, iou = dice_iou(pred, target)
            rows.append({"id": pair.id, "dice": dice, "iou": iou})
    frame = pd.DataFrame(rows)
    return frame if rows else pd.DataFrame(columns=["id", "dice", "iou"])


def summarise(scores: pd.DataFrame) -> dict[str, float]:
    """Mean and (population) standard deviation over pairs of Dice, IoU and, where present,
    HD95 and the per-class columns (NaN HD95s, from empty masks, are left out and counted)."""
    summary: dict[str, float] = {"n": len(scores)}
    for column in scores.columns:
        if column == "id" or not pd.api.types.is_numeric_dtype(scores[column]):
            continue
        values = scores[column].to_numpy(dtype=float)
        defined = values[~np.isnan(values)]
        summary[f"{column}_mean"] = float(np.mean(defined)) if defined.size else float("nan")
        summary[f"{column}_std"] = float(np.std(defined)) if defined.size else float("nan")
        if defined.size < values.size:
            summary[f"{column}_undefined"] = int(values.size - defined.size)
    return summary


def evaluate_model(
    model: nn.Module,
    pairs: Sequence[Pair | Volume],
    image_size: ModelSize,
    runtime: Runtime,
    resolution: str = "original",
    threshold: float = 0.5,
    batch_size: int = 16,
    class_names: Sequence[str] = ("foreground",),
) -> pd.DataFrame:
    """Predict and score `pairs` in one call."""
    logits = predict_logits(model, pairs, image_size, runtime, batch_size)
    return score_pairs(logits, pairs, resolution, threshold, class_names)

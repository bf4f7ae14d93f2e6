"""Scoring a trained segmenter on a set of samples: per-sample Dice/IoU and their summary.

How a prediction is scored follows the spec's mask kind: binary masks (2D) get Dice and IoU per
image; label maps (3D) get Dice, IoU and HD95 per class and their mean per volume. Either way
`dice` and `iou` are the headline columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from genseg_cli.core.runtime import Runtime
from genseg_cli.data.samples import Sample
from genseg_cli.data.spec import DataSpec
from genseg_cli.evaluation.metrics import class_scores, dice_iou


def binary_scores(
    pred: np.ndarray,
    target: np.ndarray,
    class_names: Sequence[str],
    spacing: Sequence[float] | None = None,
) -> dict[str, float]:
    """Dice and IoU of a binary prediction (one class; no HD95, so no spacing)."""
    dice, iou = dice_iou(pred, target)
    return {"dice": dice, "iou": iou}


# where predictions are compared with masks: each image's own size, or the network's input size
RESOLUTIONS = ("original", "model")
# how a prediction is scored, by the codec's mask kind (see SampleCodec.mask_kind)
Scorer = Callable[[np.ndarray, np.ndarray, Sequence[str], Sequence[float] | None], dict]
SCORERS: dict[str, Scorer] = {"binary": binary_scores, "label_map": class_scores}


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    samples: Sequence[Sample],
    spec: DataSpec,
    runtime: Runtime,
    batch_size: int = 16,
) -> list[torch.Tensor]:
    """Logits (classes x model size, fp32, CPU) of each sample's image at model resolution."""
    model.eval()
    out: list[torch.Tensor] = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        images = torch.stack([spec.codec.model_input(s, spec) for s in chunk])
        images = images.to(runtime.device)
        if runtime.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with runtime.autocast():
            logits = model(images)
        out.extend(logits.float().cpu())
    return out


def to_size(logit: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Logits (C x spatial) resized (bi/trilinear) to a sample's own spatial shape."""
    mode = "bilinear" if len(shape) == 2 else "trilinear"
    return F.interpolate(logit[None], size=tuple(shape), mode=mode, align_corners=False)[0]


def to_labels(logit: torch.Tensor, threshold: float = 0.5) -> np.ndarray:
    """Logits (C x spatial) -> prediction: a boolean mask for one channel, else a label map."""
    if logit.shape[0] == 1:
        return (torch.sigmoid(logit[0]) > threshold).numpy()
    return logit.argmax(0).numpy().astype(np.uint8)


def score_pairs(
    logits: list[torch.Tensor],
    samples: Sequence[Sample],
    spec: DataSpec,
    resolution: str = "original",
    threshold: float = 0.5,
) -> pd.DataFrame:
    """Per-sample scores. `original`: logits resized to each sample's own size (bi/trilinear)
    before thresholding, against the original mask; `model`: both compared at model resolution.
    Label maps get Dice/IoU/HD95 (mm) per class of `spec.class_names` as well as their means."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"evaluation.resolution={resolution} is not 'original' or 'model'")
    score = SCORERS[spec.codec.mask_kind]
    rows = []
    for logit, sample in zip(logits, samples, strict=True):
        if resolution == "original":
            pred, target = to_labels(to_size(logit, sample.shape), threshold), sample.mask
            spacing = sample.spacing
        else:
            pred = to_labels(logit, threshold)
            target = spec.codec.model_target(sample, tuple(logit.shape[1:]))
            spacing = None  # model resolution has no physical voxel size
        rows.append({"id": sample.id, **score(pred, target, spec.class_names, spacing)})
    frame = pd.DataFrame(rows)
    return frame if rows else pd.DataFrame(columns=["id", "dice", "iou"])


def summarise(scores: pd.DataFrame) -> dict[str, float]:
    """Mean and (population) standard deviation over samples of Dice, IoU and, where present,
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
    samples: Sequence[Sample],
    spec: DataSpec,
    runtime: Runtime,
    resolution: str = "original",
    threshold: float = 0.5,
    batch_size: int = 16,
) -> pd.DataFrame:
    """Predict and score `samples` in one call."""
    logits = predict_logits(model, samples, spec, runtime, batch_size)
    return score_pairs(logits, samples, spec, resolution, threshold)

"""The losses: segmentation (cross-entropy + soft Dice), the GAN loss, real + synthetic mixing.

Segmentation: binary data (one logit channel, {0,1} masks) uses BCE; multi-class data (one logit
per class, one-hot masks with background first) uses softmax cross-entropy and a multi-class soft
Dice (segmentation-models-pytorch). ``GANLoss`` is the adversarial loss on the logits of
``genseg_cli.nets.discriminators.PatchDiscriminator``. ``real_plus_synthetic_loss`` weighs the
synthetic part of a mixed batch, for the segmenter's training step and for the hypergradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.losses import DiceLoss, SoftBCEWithLogitsLoss
from torch import Tensor, nn

__all__ = [
    "GAN_MODES",
    "GANLoss",
    "SegmentationLoss",
    "per_sample_losses",
    "real_plus_synthetic_loss",
]

GAN_MODES = ("vanilla", "lsgan")


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


class GANLoss(nn.Module):
    """Adversarial loss on discriminator logits against an all-real or all-fake target.

    ``"vanilla"``: binary cross-entropy with logits (the original GAN); ``"lsgan"``: mean
    squared error to 1 / 0 (least-squares GAN, steadier gradients).

    >>> loss = GANLoss("vanilla")
    >>> round(loss(torch.zeros(1, 1, 4, 4), target_is_real=True).item(), 4)  # log 2
    0.6931
    """

    def __init__(self, mode: str = "lsgan") -> None:
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"unknown GAN loss mode {mode!r}; choose one of {list(GAN_MODES)}")
        self.mode = mode

    def forward(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        """``gan_loss(disc(mask, fake), target_is_real=False)`` -> scalar loss."""
        prediction = wide(prediction)  # losses in fp32 under autocast; fp64 stays fp64
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(prediction, target)
        return F.mse_loss(prediction, target)


def per_sample_losses(loss: nn.Module, logits: Tensor, masks: Tensor) -> Tensor:
    """The loss of each item on its own (its Dice term over its own pixels), shape (n,)."""
    return torch.stack([loss(logits[i : i + 1], masks[i : i + 1]) for i in range(len(logits))])


def real_plus_synthetic_loss(
    loss: nn.Module, logits: Tensor, masks: Tensor, n_real: int, synthetic_weight: float | Tensor
) -> Tensor:
    """L(real) + lambda * L(synthetic) for logits of a batch whose first `n_real` items are real.

    A `synthetic_weight` of shape (n_synthetic,) weighs each synthetic pair's own loss:
    L(real) + mean_i(w_i * l_i) (per-sample weights, `genseg_cli.mlo.sample_weights`).

    >>> loss = SegmentationLoss()
    >>> logits, masks = torch.zeros(3, 1, 4, 4), torch.ones(3, 1, 4, 4)
    >>> bool(real_plus_synthetic_loss(loss, logits, masks, 3, 0.5) == loss(logits, masks))
    True
    """
    real = loss(logits[:n_real], masks[:n_real])
    if logits.shape[0] == n_real:
        return real
    if isinstance(synthetic_weight, Tensor) and synthetic_weight.ndim == 1:
        per_sample = per_sample_losses(loss, logits[n_real:], masks[n_real:])
        return real + (synthetic_weight * per_sample).mean()
    return real + synthetic_weight * loss(logits[n_real:], masks[n_real:])


def weighted_mean(per_sample: Tensor, weights: Tensor | None) -> Tensor:
    """sum(w_i * l_i) / sum(w_i) of per-pair losses (n,); the plain mean when `weights` is None."""
    if weights is None:
        return per_sample.mean()
    return (weights * per_sample).sum() / weights.sum()


def wide(x: Tensor) -> Tensor:
    """fp32 for an autocast pass's half-precision output; fp32 and fp64 as they are (the
    pseudo weight's tangent is checked in fp64)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x

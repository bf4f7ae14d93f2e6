"""The losses: segmentation, GAN, and the real + synthetic mix of a segmenter's batch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genseg_cli.nets.losses import GANLoss, SegmentationLoss, real_plus_synthetic_loss


def one_hot(labels: torch.Tensor, channels: int = 3) -> torch.Tensor:
    return F.one_hot(labels, channels).movedim(-1, 1).float()


def test_binary_loss_is_lower_for_the_right_answer():
    loss = SegmentationLoss()
    masks = (torch.rand(2, 1, 8, 8) > 0.5).float()
    assert loss(masks * 20 - 10, masks) < loss(-(masks * 20 - 10), masks)


def test_multiclass_loss_is_cross_entropy_plus_dice_on_volumes():
    loss = SegmentationLoss(bce_weight=1.0, dice_weight=0.0)
    labels = torch.randint(0, 3, (2, 4, 6, 4))
    logits = torch.randn(2, 3, 4, 6, 4, requires_grad=True)
    value = loss(logits, one_hot(labels))
    assert torch.allclose(value, F.cross_entropy(logits, labels))
    value.backward()
    assert logits.grad.abs().sum() > 0
    full = SegmentationLoss()
    assert full(one_hot(labels) * 20, one_hot(labels)) < full(logits.detach(), one_hot(labels))


# --- GANLoss ----------------------------------------------------------------------------------


def test_lsgan_is_zero_on_its_target_and_squared_error_otherwise():
    loss = GANLoss("lsgan")
    assert loss(torch.ones(2, 1, 5, 5), target_is_real=True).item() == 0.0
    assert loss(torch.zeros(2, 1, 5, 5), target_is_real=False).item() == 0.0
    pred = torch.tensor([[[[0.5, 2.0]]]])
    assert loss(pred, target_is_real=True).item() == pytest.approx((0.25 + 1.0) / 2)
    assert loss(pred, target_is_real=False).item() == pytest.approx((0.25 + 4.0) / 2)
    assert GANLoss().mode == "lsgan"


def test_vanilla_matches_bce_with_logits_by_hand():
    torch.manual_seed(0)
    logits = torch.randn(3, 1, 4, 4) * 3
    loss = GANLoss("vanilla")
    p = torch.sigmoid(logits)
    real_by_hand = -torch.log(p).mean()
    fake_by_hand = -torch.log(1 - p).mean()
    torch.testing.assert_close(loss(logits, target_is_real=True), real_by_hand)
    torch.testing.assert_close(loss(logits, target_is_real=False), fake_by_hand)
    torch.testing.assert_close(
        loss(logits, True), F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    )


def test_loss_is_float32_scalar_with_gradient_for_half_predictions():
    pred = torch.randn(2, 1, 3, 3).half().requires_grad_()
    out = GANLoss("vanilla")(pred, target_is_real=False)
    assert out.ndim == 0 and out.dtype == torch.float32
    out.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_double_predictions_keep_double_precision():
    # numerical derivative checks run in fp64: a cast to fp32 here would cap their accuracy
    pred = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    for mode in ("lsgan", "vanilla"):
        assert GANLoss(mode)(pred, target_is_real=True).dtype == torch.float64


def test_unknown_mode_raises_listing_both():
    with pytest.raises(ValueError, match="vanilla.*lsgan"):
        GANLoss("wgan")


# --- real_plus_synthetic_loss ----------------------------------------------------------------


class RecordingLoss(torch.nn.Module):
    """Mean squared error that records the batch sizes it was called on."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self.calls.append(logits.shape[0])
        return ((logits - masks) ** 2).mean()


def test_real_plus_synthetic_is_real_loss_plus_weighted_synthetic_loss():
    torch.manual_seed(0)
    logits, masks = torch.randn(5, 1, 4, 4), torch.rand(5, 1, 4, 4)
    loss = RecordingLoss()
    value = real_plus_synthetic_loss(loss, logits, masks, 2, 0.25)
    by_hand = ((logits[:2] - masks[:2]) ** 2).mean() + 0.25 * ((logits[2:] - masks[2:]) ** 2).mean()
    torch.testing.assert_close(value, by_hand)
    assert loss.calls == [2, 3]  # real first, each part averaged on its own


def test_an_all_real_batch_is_the_plain_loss():
    logits, masks = torch.randn(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    loss = RecordingLoss()
    assert torch.equal(real_plus_synthetic_loss(loss, logits, masks, 3, 0.5), loss(logits, masks))
    assert loss.calls == [3, 3]  # no call on an empty synthetic slice


def test_a_learned_synthetic_weight_gets_the_synthetic_loss_as_gradient():
    logits, masks = torch.randn(4, 1, 4, 4), torch.rand(4, 1, 4, 4)
    weight = torch.tensor(0.5, requires_grad=True)
    loss = SegmentationLoss()
    real_plus_synthetic_loss(loss, logits, masks, 1, weight).backward()
    torch.testing.assert_close(weight.grad, loss(logits[1:], masks[1:]))

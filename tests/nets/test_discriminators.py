"""PatchGAN discriminator on (mask, image) pairs and the GAN loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genseg_cli.nets.discriminators import GANLoss, PatchDiscriminator


@pytest.mark.parametrize(("size", "n_layers", "side"), [(64, 3, 6), (256, 3, 30), (64, 2, 14)])
@pytest.mark.parametrize("image_channels", [1, 3])
def test_output_is_one_logit_map(size, n_layers, side, image_channels):
    disc = PatchDiscriminator(in_channels=1 + image_channels, base_width=4, n_layers=n_layers)
    out = disc(torch.rand(2, 1, size, size), torch.rand(2, image_channels, size, size) * 2 - 1)
    assert out.shape == (2, 1, side, side)


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_gradients_reach_the_image_and_every_weight(norm):
    disc = PatchDiscriminator(in_channels=2, base_width=4, norm=norm)
    image = torch.rand(2, 1, 64, 64, requires_grad=True)
    GANLoss()(disc(torch.rand(2, 1, 64, 64), image), target_is_real=True).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is not None for p in disc.parameters())


def test_channel_mismatch_and_bad_options_raise():
    disc = PatchDiscriminator(in_channels=4, base_width=4)
    with pytest.raises(ValueError, match="mask channels \\+ image channels"):
        disc(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="spatial"):
        disc(torch.rand(1, 1, 32, 32), torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="norm"):
        PatchDiscriminator(in_channels=2, norm="layer")


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


def test_unknown_mode_raises_listing_both():
    with pytest.raises(ValueError, match="vanilla.*lsgan"):
        GANLoss("wgan")

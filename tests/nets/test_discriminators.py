"""PatchGAN discriminator on (mask, image) pairs."""

from __future__ import annotations

import pytest
import torch

from genseg_cli.nets.discriminators import PatchDiscriminator
from genseg_cli.nets.losses import GANLoss


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


# --- 3D (volumes) -----------------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_3d_output_is_one_logit_volume_and_backward_works(norm):
    # (16, 24, 16) with 2 stride-2 layers: /4 then two stride-1 4-kernels, -1 each.
    disc = PatchDiscriminator(in_channels=3 + 1, base_width=4, n_layers=2, norm=norm, dims=3)
    assert disc.dims == 3
    kinds = {type(m) for m in disc.modules()}
    assert torch.nn.Conv3d in kinds and torch.nn.Conv2d not in kinds
    if norm != "none":
        assert (torch.nn.BatchNorm3d if norm == "batch" else torch.nn.InstanceNorm3d) in kinds
    image = torch.rand(2, 1, 16, 24, 16, requires_grad=True)
    out = disc(torch.rand(2, 3, 16, 24, 16), image)
    assert out.shape == (2, 1, 2, 4, 2)
    GANLoss()(out, target_is_real=False).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in disc.parameters())


def test_3d_default_depth_keeps_the_2d_receptive_field_design():
    # Same layer list as in 2D, one spatial dim more: 32 -> 16 -> 8 -> 4 -> 3 -> 2 per side.
    flat = PatchDiscriminator(in_channels=2, base_width=4)
    vol = PatchDiscriminator(in_channels=2, base_width=4, dims=3)
    assert list(flat.state_dict()) == list(vol.state_dict())
    for (name, p2), p3 in zip(flat.state_dict().items(), vol.state_dict().values(), strict=True):
        # 4x4 kernels become 4x4x4; biases and norm statistics keep their shape.
        assert p3.shape == ((*p2.shape, 4) if p2.ndim == 4 else p2.shape), name
    assert vol(torch.rand(1, 1, 32, 32, 32), torch.rand(1, 1, 32, 32, 32)).shape == (1, 1, 2, 2, 2)


def test_3d_bad_inputs_and_dims_raise():
    disc = PatchDiscriminator(in_channels=2, base_width=4, n_layers=2, dims=3)
    with pytest.raises(ValueError, match="5-dim"):
        disc(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="spatial"):
        disc(torch.rand(1, 1, 16, 16, 16), torch.rand(1, 1, 16, 24, 16))
    with pytest.raises(ValueError, match="dims must be 2"):
        PatchDiscriminator(in_channels=2, dims=1)
    with pytest.raises(ValueError, match="4-dim"):
        PatchDiscriminator(in_channels=2)(torch.rand(1, 1, 8, 8, 8), torch.rand(1, 1, 8, 8, 8))

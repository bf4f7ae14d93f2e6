"""The appearance code at the network level: the generator's `style_dim` (z tiled beside the mask
at its input) and the encoder E (`genseg_cli.nets.style`), on images and volumes."""

from __future__ import annotations

import pytest
import torch

from genseg_cli.nets.generators import MaskToImageGenerator
from genseg_cli.nets.style import StyleEncoder, encoder_layers
from tests.nets.test_generators import DIMS, masks_for, tiny_of


@pytest.mark.parametrize("dims", DIMS)
def test_style_dim_0_is_the_generator_without_the_key(dims):
    torch.manual_seed(0)
    plain = tiny_of(dims)
    torch.manual_seed(0)
    off = tiny_of(dims, style_dim=0)
    a, b = plain.state_dict(), off.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    x = masks_for(plain)
    torch.manual_seed(1)
    first = plain(x)
    torch.manual_seed(1)
    assert torch.equal(first, off(x))
    with pytest.raises(ValueError, match="no appearance code"):
        off(x, torch.zeros(x.shape[0], 4))


@pytest.mark.parametrize("dims", DIMS)
def test_the_code_joins_the_input_and_changes_the_image(dims):
    gen = tiny_of(dims, style_dim=4, dropout=0.0)
    first = next(iter(gen.encoder.values())).op
    assert first.in_channels == gen.in_channels + 4  # the mask's channels, then the code's
    gen.eval()
    x = masks_for(gen)
    z = torch.randn(x.shape[0], 4)
    assert torch.equal(gen(x, z), gen(x, z))
    assert not torch.allclose(gen(x, z), gen(x, -z))
    torch.manual_seed(3)
    drawn = gen(x)  # z ~ N(0, I) from torch's global generator
    torch.manual_seed(3)
    assert torch.equal(drawn, gen(x, torch.randn(x.shape[0], 4)))
    assert not torch.equal(drawn, gen(x))
    with pytest.raises(ValueError, match=r"style must be \(N, style_dim\)"):
        gen(x, torch.zeros(x.shape[0], 3))


def test_a_negative_style_dim_is_refused():
    with pytest.raises(ValueError, match="style_dim must be >= 0"):
        MaskToImageGenerator(image_size=32, base_width=4, style_dim=-1)


@pytest.mark.parametrize(("dims", "shape"), [(2, (2, 3, 32, 32)), (3, (1, 1, 16, 24, 16))])
def test_the_encoder_gives_a_gaussian_per_image_and_learns(dims, shape):
    enc = StyleEncoder(
        in_channels=shape[1], style_dim=5, base_width=4, n_layers=encoder_layers(shape[2:]),
        dims=dims,
    )  # fmt: skip
    image = torch.rand(shape) * 2 - 1
    mu, logvar = enc(image)
    assert mu.shape == logvar.shape == (shape[0], 5)
    (mu.sum() + logvar.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
    with pytest.raises(ValueError, match=f"{dims}D StyleEncoder"):
        enc(image[0])


def test_the_encoders_depth_leaves_every_side_at_least_two():
    assert encoder_layers((256, 256)) == 4
    assert encoder_layers((16, 24, 16)) == 3
    assert encoder_layers((8, 8)) == 2
    assert encoder_layers((2, 2)) == 1

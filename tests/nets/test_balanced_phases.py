"""Transposed kernels with balanced phases: a flat input comes out flat (no checkerboard grid),
in plain and mixed layers, 2D and 3D; the option is off by default, survives the generator's
config, keys its pre-training cache, and gradients reach the raw kernels through it."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from genseg_cli.core.config import compose
from genseg_cli.evaluation.grid_score import grid_score
from genseg_cli.methods.synthetic import cache_settings
from genseg_cli.nets.generators import MaskToImageGenerator
from genseg_cli.nets.mixed_conv import MixedConv, MixedUpsample, strided_op
from genseg_cli.nets.strided_conv import balance_phases, plain_strided_conv


def interior_spread(out: torch.Tensor, margin: int = 4) -> float:
    """The largest spread (max - min) of one output channel away from the border."""
    inner = out[(..., *(slice(margin, -margin),) * (out.ndim - 2))]
    flat = inner.flatten(2)
    return float((flat.amax(-1) - flat.amin(-1)).max())


def flat_input(dims: int, channels: int = 4, size: int = 12) -> torch.Tensor:
    return torch.full((1, channels, *(size,) * dims), 0.7)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("k", [4, 6, 8])
def test_a_balanced_kernel_maps_a_flat_input_to_a_flat_output(dims, k):
    torch.manual_seed(0)
    plain = plain_strided_conv(4, 3, k, transposed=True, bias=True, dims=dims)
    balanced = plain_strided_conv(4, 3, k, transposed=True, bias=True, dims=dims, balanced=True)
    balanced.load_state_dict(plain.state_dict())  # same parameters and keys
    with torch.no_grad():
        assert interior_spread(plain(flat_input(dims))) > 1e-2  # the grid
        assert interior_spread(balanced(flat_input(dims))) < 1e-5


def test_balancing_is_a_projection_that_keeps_each_phase_pair_sum():
    torch.manual_seed(1)
    w = torch.randn(3, 2, 6, 6, dtype=torch.float64)
    once = balance_phases(w, 2)
    torch.testing.assert_close(balance_phases(once, 2), once)  # idempotent
    phases = once.reshape(3, 2, 3, 2, 3, 2).sum(dim=(2, 4))  # (in, out, 2, 2)
    torch.testing.assert_close(phases, phases[..., :1, :1].expand_as(phases))
    # the mean phase sum (what a flat input is multiplied by) is the raw kernel's
    torch.testing.assert_close(once.sum(dim=(2, 3)), w.sum(dim=(2, 3)))
    # a kernel already balanced is left as it is
    bilinear = torch.tensor([0.25, 0.75, 0.75, 0.25], dtype=torch.float64)
    kernel = torch.outer(bilinear, bilinear).expand(2, 2, 4, 4)
    torch.testing.assert_close(balance_phases(kernel, 2), kernel)


@pytest.mark.parametrize("resize", [(), ("bilinear",)])
def test_a_mixed_layer_balances_the_mixture_and_its_alpha_still_learns(resize):
    torch.manual_seed(2)
    op = strided_op(4, 3, (4, 6, 8), transposed=True, bias=False, resize=resize, balanced=True)
    assert isinstance(op, MixedUpsample if resize else MixedConv) and op.balanced
    with torch.no_grad():
        op.alpha.copy_(torch.randn_like(op.alpha))
        assert interior_spread(op(flat_input(2))) < 1e-5
    x = torch.randn(1, 4, 8, 8)
    grads = torch.autograd.grad(op(x).square().mean(), [op.alpha, op.weight_k6])
    assert all(bool(g.abs().sum() > 0) for g in grads)
    off = strided_op(4, 3, (4, 6, 8), transposed=True, bias=False, resize=resize)
    off.load_state_dict(op.state_dict())
    with torch.no_grad():
        assert interior_spread(off(flat_input(2))) > 1e-2


def test_encoder_convolutions_are_never_balanced():
    op = strided_op(4, 3, (4, 6), transposed=False, bias=False, balanced=True)
    assert not op.balanced
    plain = plain_strided_conv(4, 3, 4, transposed=False, bias=False, balanced=True)
    assert type(plain) is torch.nn.Conv2d


def generator(balanced: bool, **kw) -> MaskToImageGenerator:
    torch.manual_seed(0)
    return MaskToImageGenerator(image_size=32, base_width=8, balanced_phases=balanced, **kw)


@pytest.mark.parametrize("kernels", [(4,), (4, 6, 8)])
def test_the_generator_draws_no_grid_with_balanced_phases(kernels):
    """A mask that is flat over most of the image: the default generator's image carries the
    transposed convolutions' grid at initialisation, the balanced one's does not."""
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 12:20, 10:22] = 1.0
    grids = {}
    for balanced in (False, True):
        gen = generator(balanced, up_kernels=kernels).eval()
        with torch.no_grad():
            grids[balanced] = grid_score(gen(mask))
    assert grids[True] < 0.0 and grids[False] > grids[True] + 1.0  # 0: no excess at the peaks


def test_the_option_is_off_by_default_and_changes_nothing_then():
    cfg = compose("train", ["method=genseg"])
    assert cfg.generator.model.balanced_phases is False
    assert (
        compose("train", ["method=separate", "generator=pix2pix_fixed"]).generator.model[
            "balanced_phases"
        ]
        is False
    )
    masks = torch.rand(2, 1, 32, 32)
    a, b = generator(False).eval(), MaskToImageGenerator(image_size=32, base_width=8).eval()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(a(masks), b(masks), rtol=0, atol=0)
    on = compose("train", ["method=genseg", "generator.model.balanced_phases=true"])
    gen = instantiate(on.generator.model, in_channels=1, out_channels=3, image_size=32)
    assert all(op.balanced for _, op in gen._mixed_ops())


def test_the_pretraining_cache_tells_balanced_from_plain_generators():
    plain = cache_settings(compose("train", ["method=genseg"]).generator)
    assert "balanced_phases" not in plain["model"]  # a cache made before the option stays valid
    on = cache_settings(
        compose("train", ["method=genseg", "generator.model.balanced_phases=true"]).generator
    )
    assert on["model"]["balanced_phases"] is True

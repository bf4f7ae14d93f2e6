"""Resize-then-convolve candidates beside the transposed ones: the default search space and its
numbers stay exactly as they are, the new candidates join the mixture only when asked for, and
they draw no checkerboard where transposed convolutions do."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from genseg_cli.core.config import compose
from genseg_cli.evaluation.grid_score import grid_score
from genseg_cli.nets.generators import MaskToImageGenerator
from genseg_cli.nets.mixed_conv import MixedConv, MixedUpsample, check_upsample_ops

# the default generator (conf/generator/searchable.yaml, CPU profile widths) at 16 px from seed
# 0: its initial weights and its outputs for fixed masks and alphas, computed with the code that
# had no resize candidates; any change to the default's draws or arithmetic changes them
WEIGHTS_SHA256 = "9f02a5d1c24a96e7bb66f437a79b93a3696a0b2a8d8b912bde2c4c161b9cb5d2"
EVAL_SHA256, EVAL_SUM = "2c69ad44b2f15e65", 1.3047340861303383
TRAIN_SHA256, TRAIN_SUM = "6be6fd61e354dfe7", 40.8677671852638


def default_generator() -> MaskToImageGenerator:
    cfg = compose("train", ["method=genseg"])
    torch.manual_seed(0)
    return instantiate(cfg.generator.model, in_channels=1, out_channels=3, image_size=16)


def digest(x: torch.Tensor) -> str:
    return hashlib.sha256(x.detach().contiguous().numpy().tobytes()).hexdigest()[:16]


def test_the_default_generator_draws_and_computes_exactly_as_before():
    gen = default_generator()
    h = hashlib.sha256()
    for name, p in gen.state_dict().items():
        h.update(name.encode())
        h.update(p.detach().contiguous().numpy().tobytes())
    assert h.hexdigest() == WEIGHTS_SHA256
    with torch.no_grad():
        for i, alpha in enumerate(gen.arch_parameters()):
            alpha.copy_(torch.tensor([0.3, -0.2, 0.1]) * (i + 1))
    masks = (torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    gen.eval()
    with torch.no_grad():
        out_eval = gen(masks)
    gen.train()
    torch.manual_seed(3)  # dropout's draws
    with torch.no_grad():
        out_train = gen(masks)
    assert float(out_eval.double().sum()) == pytest.approx(EVAL_SUM, rel=1e-6)
    assert float(out_train.double().sum()) == pytest.approx(TRAIN_SUM, rel=1e-6)
    assert (digest(out_eval), digest(out_train)) == (EVAL_SHA256, TRAIN_SHA256)


def test_the_default_search_space_is_the_transposed_kernels_alone():
    gen = default_generator()
    assert all(type(op) is MixedConv for _, op in gen._mixed_ops())
    assert {tuple(e["candidates"]) for e in gen.derive()} == {("convT k4", "convT k6", "convT k8")}
    cfg = compose("train", ["method=genseg"])
    assert list(cfg.generator.model.upsample_ops) == ["transposed"]


def test_resize_candidates_join_every_decoder_layers_mixture():
    gen = MaskToImageGenerator(
        image_size=32, base_width=8, up_kernels=(4, 6), upsample_ops=("transposed", "nearest")
    )
    assert gen(torch.rand(2, 1, 32, 32)).shape == (2, 1, 32, 32)
    layers = gen.derive()
    assert len(layers) == gen.depth
    assert all(e["candidates"] == ["convT k4", "convT k6", "nearest k3"] for e in layers)
    # a fixed generator (one kernel) with a resize candidate has something to search
    fixed = MaskToImageGenerator(
        image_size=32, base_width=8, up_kernels=(4,), upsample_ops=("transposed", "bilinear")
    )
    assert fixed.searchable and len(fixed.arch_parameters()) == fixed.depth
    volume = MaskToImageGenerator(
        in_channels=3,
        image_size=(16, 16, 16),
        base_width=4,
        upsample_ops=("transposed", "bilinear"),
    )
    assert volume(torch.rand(1, 3, 16, 16, 16)).shape == (1, 1, 16, 16, 16)


def test_the_alpha_reaches_the_resize_candidates():
    op = MixedUpsample(4, 2, (4,), ("nearest", "bilinear"), bias=True)
    out = op(torch.randn(1, 4, 8, 8)).square().mean()
    (grad,) = torch.autograd.grad(out, [op.alpha])
    assert grad.shape == (3,) and bool((grad != 0).all())


def test_a_bilinear_resize_candidate_draws_no_grid_where_a_transposed_one_does():
    """One up-sampling layer on a smooth feature map: the transposed k4 layer's output carries
    the period-2 grid, the bilinear-resize layer's does not."""
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    smooth = torch.stack([torch.sin(yy / 7 + c) + torch.cos(xx / 9 - c) for c in range(4)])[None]
    op = MixedUpsample(4, 1, (4,), ("bilinear",), bias=False)
    with torch.no_grad():
        op.alpha.copy_(torch.tensor([20.0, -20.0]))
        transposed = op(smooth)
        op.alpha.copy_(torch.tensor([-20.0, 20.0]))
        resized = op(smooth)
    assert grid_score(transposed) > grid_score(resized) + 1.0
    # the candidate is what it says: a bilinear up-sampling by 2, then its 3x3 convolution
    up = F.interpolate(smooth, scale_factor=2, mode="bilinear", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(resized, op.resize_convs["bilinear"](up))


@pytest.mark.parametrize("ops", [("nearest",), ("transposed", "cubic"), ("transposed",) * 2])
def test_upsample_ops_without_transposed_unknown_or_repeated_are_refused(ops):
    with pytest.raises(ValueError, match="upsample_ops"):
        check_upsample_ops(ops)

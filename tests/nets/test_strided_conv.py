"""Stride-2 convolutions: on CPU, 3D ones pad explicitly to dodge a oneDNN gradient bug.

With implicit padding, oneDNN's CPU weight gradient of 8-kernel 3D convolutions on small volumes
is inf / NaN or off by orders of magnitude (PyTorch 2.14, x86). Every test here compares with
oneDNN switched off, which computes the reference gradient.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from genseg_cli.nets.generators import MaskToImageGenerator
from genseg_cli.nets.mixed_conv import MixedConv

SHAPE_3D = (16, 24, 16)


def tiny3d(**kw) -> MaskToImageGenerator:
    """A volume generator small enough for CPU tests: one-hot 3-class masks in."""
    kw.setdefault("base_width", 4)
    return MaskToImageGenerator(in_channels=3, image_size=SHAPE_3D, max_width=16, **kw)


def one_hot_volumes(n: int, classes: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n, *SHAPE_3D), generator=g)
    return F.one_hot(labels, classes).movedim(-1, 1).float()


def grads_with_and_without_onednn(loss, params) -> list[list[torch.Tensor]]:
    """Gradients of ``loss()`` by the default CPU backend, then with oneDNN off (reference)."""
    out = []
    for enabled in (True, False):
        with warnings.catch_warnings():  # flags() warns about TF32 on Intel GPUs
            warnings.simplefilter("ignore", UserWarning)
            with torch.backends.mkldnn.flags(enabled=enabled):
                out.append(list(torch.autograd.grad(loss(), params)))
    return out


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    ("transposed", "c_in", "c_out", "size"),
    [(True, 16, 4, (4, 6, 4)), (True, 32, 16, (4, 6, 4)), (False, 16, 4, (8, 8, 8))],
)
def test_3d_mixed_conv_weight_gradient_is_right_on_small_volumes(
    transposed, c_in, c_out, size, channels_last
):
    # With implicit padding, oneDNN's CPU weight gradient of these 8-kernel convs is inf/NaN
    # or off by orders of magnitude (also for channels_last_3d inputs, e.g. one_hot().movedim).
    torch.manual_seed(0)
    op = MixedConv(c_in, c_out, (4, 6, 8), transposed=transposed, bias=True, dims=3)
    params = [op.alpha, op.weight_k8, op.weight_k4]
    for _ in range(3):
        x = torch.randn(2, c_in, *size)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        got, want = grads_with_and_without_onednn(lambda x=x: op(x).sin().sum(), params)
        for g, w in zip(got, want, strict=True):
            assert torch.isfinite(g).all()
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


def test_3d_generator_weight_gradients_are_right_on_cpu():
    # Plain (single-kernel) layers are 3D convs too: they need the same care as MixedConv.
    torch.manual_seed(0)
    gen = tiny3d(base_width=8, up_kernels=(8,), down_kernels=(8,), dropout=0.0)
    assert not gen.searchable
    assert isinstance(gen.decoder["up1"].op, torch.nn.ConvTranspose3d)
    m = one_hot_volumes(2)  # one_hot().movedim: a channels_last_3d batch
    target = torch.rand(2, 1, *SHAPE_3D)
    params = list(gen.parameters())
    got, want = grads_with_and_without_onednn(lambda: F.l1_loss(gen(m), target), params)
    for (name, _), g, w in zip(gen.named_parameters(), got, want, strict=True):
        assert torch.isfinite(g).all(), name
        torch.testing.assert_close(g, w, rtol=1e-3, atol=1e-6, msg=name)


def test_3d_plain_layers_compute_what_nn_conv3d_does():
    torch.manual_seed(0)
    gen = tiny3d(up_kernels=(6,), down_kernels=(6,))
    for block in [*gen.encoder.values(), *gen.decoder.values()]:
        op = block.op
        x = torch.randn(1, op.in_channels, 4, 6, 4)
        base = torch.nn.ConvTranspose3d if op.transposed else torch.nn.Conv3d
        torch.testing.assert_close(op(x), base.forward(op, x))

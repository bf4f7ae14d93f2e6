"""The searchable op: a fused softmax(alpha)-weighted mix of stride-2 convolutions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genseg_cli.nets.mixed_conv import MixedConv, check_kernels, strided_op
from genseg_cli.nets.strided_conv import StridedConv3d, StridedConvTranspose3d

# Per (dims): in/out channels, candidate kernels, alphas and the input's shape.
MIXED_CASES = {
    2: (5, 3, (2, 4, 6, 8), [0.3, -1.0, 0.7, 0.1], (2, 5, 8, 8)),
    3: (3, 2, (2, 4, 6), [0.3, -1.0, 0.7], (2, 3, 4, 6, 8)),
}
CONV_FN = {
    (2, False): F.conv2d,
    (2, True): F.conv_transpose2d,
    (3, False): F.conv3d,
    (3, True): F.conv_transpose3d,
}


@pytest.mark.parametrize(
    ("dims", "transposed", "out_shape"),
    [
        (2, True, (2, 3, 16, 16)),
        (2, False, (2, 3, 4, 4)),
        (3, True, (2, 2, 8, 12, 16)),
        (3, False, (2, 2, 2, 3, 4)),
    ],
)
def test_mixed_conv_equals_weighted_sum_of_candidate_ops(dims, transposed, out_shape):
    c_in, c_out, kernels, alpha, x_shape = MIXED_CASES[dims]
    torch.manual_seed(0)
    op = MixedConv(c_in, c_out, kernels, transposed=transposed, bias=True, dims=dims).double()
    with torch.no_grad():
        op.alpha.copy_(torch.tensor(alpha))
        for k in op.kernels:
            getattr(op, f"bias_k{k}").normal_()
    # nn.ConvTranspose / nn.Conv weight layouts
    channels = (c_in, c_out) if transposed else (c_out, c_in)
    assert op.weight_k6.shape == (*channels, *(6,) * dims)
    x = torch.randn(*x_shape, dtype=torch.double)
    conv = CONV_FN[dims, transposed]
    mix = torch.softmax(op.alpha, 0)
    expected = sum(
        mix[i] * conv(x, getattr(op, f"weight_k{k}"), getattr(op, f"bias_k{k}"), 2, (k - 2) // 2)
        for i, k in enumerate(op.kernels)
    )
    out = op(x)
    assert out.shape == out_shape
    torch.testing.assert_close(out, expected)
    # ... and so is its gradient w.r.t. alpha
    (g_fused,) = torch.autograd.grad((out**2).sum(), op.alpha)
    assert g_fused.abs().sum() > 0
    alpha = op.alpha.detach().clone().requires_grad_()
    mix = torch.softmax(alpha, 0)
    expected = sum(
        mix[i]
        * conv(
            x,
            getattr(op, f"weight_k{k}").detach(),
            getattr(op, f"bias_k{k}").detach(),
            2,
            (k - 2) // 2,
        )
        for i, k in enumerate(op.kernels)
    )
    (g_separate,) = torch.autograd.grad((expected**2).sum(), alpha)
    torch.testing.assert_close(g_fused, g_separate)


def test_mixed_conv_rejects_other_dims():
    with pytest.raises(ValueError, match="dims must be 2"):
        MixedConv(2, 2, (2, 4), transposed=True, bias=False, dims=1)


@pytest.mark.parametrize(
    ("dims", "transposed", "plain"),
    [
        (2, False, nn.Conv2d),
        (2, True, nn.ConvTranspose2d),
        (3, False, StridedConv3d),
        (3, True, StridedConvTranspose3d),
    ],
)
def test_strided_op_is_plain_for_one_kernel_and_mixed_for_more(dims, transposed, plain):
    one = strided_op(4, 2, (6,), transposed=transposed, bias=False, dims=dims)
    assert type(one) is plain and one.padding == (2,) * dims and one.stride == (2,) * dims
    assert one.bias is None and not any(n.endswith("alpha") for n, _ in one.named_parameters())
    mixed = strided_op(4, 2, (4, 6), transposed=transposed, bias=True, dims=dims)
    assert isinstance(mixed, MixedConv) and mixed.kernels == (4, 6) and mixed.dims == dims
    assert [n for n, _ in mixed.named_parameters()] == [
        "weight_k4",
        "bias_k4",
        "weight_k6",
        "bias_k6",
        "alpha",
    ]


@pytest.mark.parametrize(
    ("kernels", "match"), [((), "at least one"), ((4, 5), "even"), ((0,), "even"), ((4, 4), "dup")]
)
def test_check_kernels_rejects_what_cannot_halve_exactly(kernels, match):
    with pytest.raises(ValueError, match=rf"up_kernels .*{match}"):
        check_kernels(kernels, "up_kernels")


def test_check_kernels_keeps_the_order_given():
    # alpha[i] weighs kernels[i]: reordering would scramble a checkpoint's mixture.
    assert check_kernels([8, 2, 4], "up_kernels") == (8, 2, 4)

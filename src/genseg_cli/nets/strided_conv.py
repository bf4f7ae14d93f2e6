"""Stride-2 (transposed) convolutions, with a CPU path for 3D that avoids a oneDNN bug.

With implicit ``padding``, oneDNN's CPU weight gradient of 8-kernel 3D convolutions on small
volumes is garbage (inf / NaN; seen with PyTorch 2.14 on x86), and a U-Net's inner layers always
see small volumes. On CPU the 3D convolutions here therefore pad explicitly (or crop, when
transposed) instead: the same result, and a weight gradient that matches oneDNN-off.

>>> import torch
>>> conv = STRIDED_CONV[3](2, 4, kernel_size=8, stride=2, padding=3)
>>> conv(torch.randn(1, 2, 4, 6, 4)).shape
torch.Size([1, 4, 2, 3, 2])
>>> plain_strided_conv(4, 2, 6, transposed=True, bias=False, dims=2)
ConvTranspose2d(4, 2, kernel_size=(6, 6), stride=(2, 2), padding=(2, 2), bias=False)
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "BALANCED_CONV_T",
    "STRIDED_CONV",
    "STRIDED_CONV_T",
    "StridedConv3d",
    "StridedConvTranspose3d",
    "balance_phases",
    "plain_strided_conv",
    "strided_conv",
]

_CONV_FN = {2: F.conv2d, 3: F.conv3d}
_CONV_T_FN = {2: F.conv_transpose2d, 3: F.conv_transpose3d}


def strided_conv(
    x: Tensor, weight: Tensor, bias: Tensor | None, *, transposed: bool, padding: int, dims: int
) -> Tensor:
    """Stride-2 (transposed) convolution with ``dims`` (2 or 3) spatial dims.

    3D on CPU pads explicitly (crops, transposed) instead of passing ``padding``: see the
    module docstring for the oneDNN bug this works around.
    """
    conv = (_CONV_T_FN if transposed else _CONV_FN)[dims]
    if dims == 2 or padding == 0 or x.device.type != "cpu":
        return conv(x, weight, bias, stride=2, padding=padding)
    if not transposed:
        return conv(F.pad(x, (padding,) * 2 * dims), weight, bias, stride=2)
    p = padding
    return conv(x, weight, bias, stride=2)[..., p:-p, p:-p, p:-p]


class StridedConv3d(nn.Conv3d):
    """Stride-2 ``nn.Conv3d`` (same parameters and state_dict keys) computed by ``strided_conv``.

    Only for stride 2 and equal padding on every side: the padding is read from ``padding[0]``.
    """

    def forward(self, x: Tensor) -> Tensor:
        return strided_conv(
            x, self.weight, self.bias, transposed=False, padding=self.padding[0], dims=3
        )


class StridedConvTranspose3d(nn.ConvTranspose3d):
    """Stride-2 ``nn.ConvTranspose3d`` (same parameters and keys) computed by ``strided_conv``."""

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if output_size is not None:  # never from this package; keep PyTorch's meaning
            return super().forward(x, output_size)
        return strided_conv(
            x, self.weight, self.bias, transposed=True, padding=self.padding[0], dims=3
        )


def balance_phases(kernel: Tensor, dims: int) -> Tensor:
    """A stride-2 transposed kernel (in, out, *k, k even) whose 2**dims phases sum alike.

    Each output pixel of a stride-2 transposed convolution takes the taps of one phase (tap
    index mod 2 along each dim); where the phases of a kernel sum differently, a flat input comes
    out as a period-2 pattern, the checkerboard grid (Odena et al., 2016). Subtracting from each
    tap its phase's excess over the mean phase sum, shared evenly by the phase's taps, is the
    orthogonal projection onto kernels that map a flat input to a flat output; it is linear, so
    gradients pass through it.
    """
    half = [s // 2 for s in kernel.shape[2:]]
    split = kernel.reshape(*kernel.shape[:2], *(n for h in half for n in (h, 2)))
    taps = tuple(2 + 2 * i for i in range(dims))  # the within-phase tap axes
    sums = split.sum(dim=taps, keepdim=True)
    excess = sums - sums.mean(dim=tuple(t + 1 for t in taps), keepdim=True)
    return (split - excess / math.prod(half)).reshape(kernel.shape)


class BalancedConvTranspose2d(nn.ConvTranspose2d):
    """Stride-2 ``nn.ConvTranspose2d`` (same parameters and keys) whose kernel is used with its
    phases balanced (``balance_phases``): a flat input gives a flat output, no grid."""

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if output_size is not None:
            raise ValueError("a balanced transposed convolution takes no output_size")
        weight = balance_phases(self.weight, 2)
        return strided_conv(x, weight, self.bias, transposed=True, padding=self.padding[0], dims=2)


class BalancedConvTranspose3d(StridedConvTranspose3d):
    """``StridedConvTranspose3d`` whose kernel is used with its phases balanced."""

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if output_size is not None:
            raise ValueError("a balanced transposed convolution takes no output_size")
        weight = balance_phases(self.weight, 3)
        return strided_conv(x, weight, self.bias, transposed=True, padding=self.padding[0], dims=3)


# Stride-2 layer classes per number of spatial dimensions (2D needs no workaround).
STRIDED_CONV: dict[int, type[nn.Module]] = {2: nn.Conv2d, 3: StridedConv3d}
STRIDED_CONV_T: dict[int, type[nn.Module]] = {2: nn.ConvTranspose2d, 3: StridedConvTranspose3d}
BALANCED_CONV_T: dict[int, type[nn.Module]] = {
    2: BalancedConvTranspose2d,
    3: BalancedConvTranspose3d,
}


def plain_strided_conv(
    in_ch: int,
    out_ch: int,
    k: int,
    *,
    transposed: bool,
    bias: bool,
    dims: int = 2,
    balanced: bool = False,
) -> nn.Module:
    """A stride-2 (transposed) ``k``-kernel conv; padding (k-2)//2 halves (doubles) sizes.
    ``balanced``: a transposed one uses its kernel with balanced phases (no grid)."""
    if transposed:
        cls = (BALANCED_CONV_T if balanced else STRIDED_CONV_T)[dims]
    else:
        cls = STRIDED_CONV[dims]
    return cls(in_ch, out_ch, kernel_size=k, stride=2, padding=(k - 2) // 2, bias=bias)

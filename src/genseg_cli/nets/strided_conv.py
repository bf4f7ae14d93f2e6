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

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "STRIDED_CONV",
    "STRIDED_CONV_T",
    "StridedConv3d",
    "StridedConvTranspose3d",
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


# Stride-2 layer classes per number of spatial dimensions (2D needs no workaround).
STRIDED_CONV: dict[int, type[nn.Module]] = {2: nn.Conv2d, 3: StridedConv3d}
STRIDED_CONV_T: dict[int, type[nn.Module]] = {2: nn.ConvTranspose2d, 3: StridedConvTranspose3d}


def plain_strided_conv(
    in_ch: int, out_ch: int, k: int, *, transposed: bool, bias: bool, dims: int = 2
) -> nn.Module:
    """A stride-2 (transposed) ``k``-kernel conv; padding (k-2)//2 halves (doubles) sizes."""
    cls = (STRIDED_CONV_T if transposed else STRIDED_CONV)[dims]
    return cls(in_ch, out_ch, kernel_size=k, stride=2, padding=(k - 2) // 2, bias=bias)

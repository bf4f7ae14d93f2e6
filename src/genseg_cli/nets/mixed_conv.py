"""The searchable up-/down-sampling op: a softmax(alpha)-weighted mix of stride-2 convolutions.

GenSeg's upper level searches the generator's architecture DARTS-style: each searchable layer is
a ``MixedConv`` over candidate kernel sizes, whose ``alpha`` is an ordinary ``nn.Parameter``
that a hypergradient reaches through ``torch.func.functional_call``. A layer with a single
candidate has nothing to search and is a plain convolution (``strided_op``).

>>> import torch
>>> op = strided_op(8, 4, (4, 6, 8), transposed=True, bias=False)
>>> type(op).__name__, op(torch.randn(1, 8, 5, 5)).shape
('MixedConv', torch.Size([1, 4, 10, 10]))
>>> type(strided_op(8, 4, (4,), transposed=True, bias=False)).__name__
'ConvTranspose2d'
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genseg_cli.nets.layers import check_dims
from genseg_cli.nets.strided_conv import balance_phases, plain_strided_conv, strided_conv

__all__ = [
    "UPSAMPLE_OPS",
    "MixedConv",
    "MixedUpsample",
    "check_kernels",
    "check_upsample_ops",
    "strided_op",
]

# The decoder's candidate kinds: stride-2 transposed convolutions, and up-sampling by 2 (nearest
# or bilinear) followed by a 3x3 convolution, which draws no checkerboard grid (Odena et al. 2016)
UPSAMPLE_OPS = ("transposed", "nearest", "bilinear")


def check_kernels(kernels: Sequence[int], what: str) -> tuple[int, ...]:
    """Validate candidate kernel sizes; only even sizes halve/double a size exactly."""
    out = tuple(int(k) for k in kernels)
    if not out:
        raise ValueError(f"{what} must list at least one kernel size, got {list(kernels)}")
    bad = [k for k in out if k < 2 or k % 2]
    if bad:
        raise ValueError(
            f"{what} must be even and >= 2 (stride 2, padding (k-2)//2 keeps sizes exact), "
            f"got {list(out)}"
        )
    if len(set(out)) != len(out):
        raise ValueError(f"{what} has duplicate kernel sizes: {list(out)}")
    return out


def check_upsample_ops(ops: Sequence[str]) -> tuple[str, ...]:
    """Validate the decoder's candidate kinds: known, unique, the transposed ones among them."""
    out = tuple(str(op) for op in ops)
    unknown = [op for op in out if op not in UPSAMPLE_OPS]
    if unknown or len(set(out)) != len(out) or "transposed" not in out:
        raise ValueError(
            f"upsample_ops must list transposed and any of {list(UPSAMPLE_OPS[1:])}, each once, "
            f"got {list(out)}"
        )
    return out


class MixedConv(nn.Module):
    """softmax(alpha)-weighted sum of stride-2 (transposed) convolutions with kernels ``kernels``.

    A (transposed) convolution is linear in its kernel, and with padding (k-2)//2 a k-kernel
    equals the largest kernel zero-padded symmetrically. The weighted sum of the candidate
    outputs is therefore computed exactly as ONE convolution with the weighted sum of the
    padded kernels: same result and gradients, a third of the convolution cost. ``dims=3``
    does the same with 3D kernels on volumes (N,C,D,H,W).

    >>> op = MixedConv(8, 4, (4, 6, 8), transposed=True, bias=False)
    >>> op(torch.randn(1, 8, 5, 5)).shape
    torch.Size([1, 4, 10, 10])
    >>> MixedConv(8, 4, (2, 4), transposed=False, bias=True, dims=3)(
    ...     torch.randn(1, 8, 4, 6, 8)).shape
    torch.Size([1, 4, 2, 3, 4])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernels: Sequence[int],
        *,
        transposed: bool,
        bias: bool,
        dims: int = 2,
        balanced: bool = False,
    ) -> None:
        super().__init__()
        self.kernels = check_kernels(kernels, "kernels")
        self.transposed = transposed
        # transposed: the folded kernel's phases balanced (strided_conv.balance_phases)
        self.balanced = bool(balanced) and transposed
        self.dims = check_dims(dims)
        self.k_max = max(self.kernels)
        for k in self.kernels:
            # Same layout as nn.ConvTranspose{2,3}d / nn.Conv{2,3}d so the init matches theirs.
            ref = plain_strided_conv(
                in_channels, out_channels, k, transposed=transposed, bias=bias, dims=dims
            )
            self.register_parameter(f"weight_k{k}", ref.weight)
            self.register_parameter(f"bias_k{k}", ref.bias)
        # Zeros: the search starts from the uniform mixture.
        self.alpha = nn.Parameter(torch.zeros(len(self.kernels)))
        # softmax(alpha / temperature): below 1, the same step of alpha moves the mixture more
        self.temperature = 1.0

    @property
    def name(self) -> str:
        return "convT" if self.transposed else "conv"

    def candidate_weights(self) -> Tensor:
        """Mixture weights softmax(alpha / temperature), differentiable w.r.t. alpha."""
        return torch.softmax(self.alpha / self.temperature, dim=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.folded(x, self.candidate_weights())

    def folded(self, x: Tensor, mix: Tensor) -> Tensor:
        """The kernels' weighted sum, ``mix[i]`` weighing ``kernels[i]``, as one convolution."""
        # Largest kernel first, then scale-before-pad: the elementwise work on these large
        # kernels is a real share of the cost when the feature maps are small.
        order = sorted(range(len(self.kernels)), key=lambda i: -self.kernels[i])
        kernel = bias = None
        for i in order:
            k = self.kernels[i]
            p = (self.k_max - k) // 2
            w = mix[i] * getattr(self, f"weight_k{k}")
            # F.pad takes (before, after) per spatial dim: pad every one of them.
            w = F.pad(w, (p, p) * self.dims) if p else w
            kernel = w if kernel is None else kernel + w
            b = getattr(self, f"bias_k{k}")
            if b is not None:
                bias = mix[i] * b if bias is None else bias + mix[i] * b
        pad = (self.k_max - 2) // 2
        if self.balanced:  # the mixture's phases, not each candidate's: one projection
            kernel = balance_phases(kernel, self.dims)
        return strided_conv(
            x, kernel, bias, transposed=self.transposed, padding=pad, dims=self.dims
        )

    def candidate_names(self) -> list[str]:
        """The candidates in the order of ``alpha``, e.g. ``["convT k4", "convT k6"]``."""
        return [f"{self.name} k{k}" for k in self.kernels]

    def derive(self) -> tuple[str, list[float]]:
        """The argmax candidate as ``"convT k6"`` and the mixture weights as floats."""
        weights = self.candidate_weights().detach().cpu().tolist()
        best = max(range(len(weights)), key=weights.__getitem__)
        return self.candidate_names()[best], weights


class MixedUpsample(MixedConv):
    """An up-sampling ``MixedConv`` whose mixture also holds resize-then-convolve candidates:
    ``resize`` names up-sampling modes (``"nearest"``, ``"bilinear"``), each followed by its own
    3x3 convolution. One ``alpha`` weighs the transposed kernels first, then these.

    >>> op = MixedUpsample(8, 4, (4, 6), ("nearest", "bilinear"), bias=True)
    >>> op(torch.randn(1, 8, 5, 5)).shape, op.candidate_names()
    (torch.Size([1, 4, 10, 10]), ['convT k4', 'convT k6', 'nearest k3', 'bilinear k3'])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernels: Sequence[int],
        resize: Sequence[str],
        *,
        bias: bool,
        dims: int = 2,
        balanced: bool = False,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernels, transposed=True, bias=bias, dims=dims,
            balanced=balanced,
        )  # fmt: skip
        self.resize = tuple(resize)
        conv = nn.Conv2d if self.dims == 2 else nn.Conv3d
        self.resize_convs = nn.ModuleDict(
            {mode: conv(in_channels, out_channels, 3, padding=1, bias=bias) for mode in self.resize}
        )
        self.alpha = nn.Parameter(torch.zeros(len(self.kernels) + len(self.resize)))

    def forward(self, x: Tensor) -> Tensor:
        mix = self.candidate_weights()
        n = len(self.kernels)
        out = self.folded(x, mix[:n])
        for i, mode in enumerate(self.resize):
            if mode == "nearest":
                up = F.interpolate(x, scale_factor=2, mode="nearest")
            else:
                linear = "bilinear" if self.dims == 2 else "trilinear"
                up = F.interpolate(x, scale_factor=2, mode=linear, align_corners=False)
            out = out + mix[n + i] * self.resize_convs[mode](up)
        return out

    def candidate_names(self) -> list[str]:
        return [*super().candidate_names(), *(f"{mode} k3" for mode in self.resize)]


def strided_op(
    in_ch: int,
    out_ch: int,
    kernels: tuple[int, ...],
    *,
    transposed: bool,
    bias: bool,
    dims: int = 2,
    resize: tuple[str, ...] = (),
    balanced: bool = False,
) -> nn.Module:
    """A ``MixedConv`` over ``kernels``, or a plain stride-2 conv when there is one kernel; with
    ``resize`` modes (up-sampling only), a ``MixedUpsample`` over both kinds. ``balanced``:
    transposed kernels are used with balanced phases (no checkerboard grid on flat input)."""
    if resize and transposed:
        return MixedUpsample(
            in_ch, out_ch, kernels, resize, bias=bias, dims=dims, balanced=balanced
        )
    if len(kernels) == 1:  # nothing to search: a plain layer, no alpha
        return plain_strided_conv(
            in_ch, out_ch, kernels[0], transposed=transposed, bias=bias, dims=dims,
            balanced=balanced,
        )  # fmt: skip
    return MixedConv(
        in_ch, out_ch, kernels, transposed=transposed, bias=bias, dims=dims, balanced=balanced
    )

"""Mask-to-image U-Net generator whose up-sampling layers are searchable (DARTS-style).

GenSeg's upper level optimises the generator *architecture*: every decoder up-sampling layer
(and, optionally, every encoder down-sampling layer) is a softmax(alpha)-weighted mixture of
strided convolutions with different kernel sizes. The alphas are ordinary ``nn.Parameter``s
owned by the module, so a hypergradient can reach them through ``torch.func.functional_call``.
The mixed op itself lives in ``genseg_cli.nets.mixed_conv``.

The same network works on images (N,C,H,W) and on volumes (N,C,D,H,W): an ``image_size`` of
three ints builds the 3D variant.

With ``style_dim > 0`` the generator also takes an appearance code z (BicycleGAN's "add to
input": z tiled over the image and concatenated to the mask's channels; Zhu et al., NeurIPS
2017), drawn from N(0, I) when none is given; ``genseg_cli.nets.style`` encodes one from an image.

>>> gen = MaskToImageGenerator(out_channels=3, image_size=64, base_width=16)
>>> gen(torch.rand(2, 1, 64, 64)).shape
torch.Size([2, 3, 64, 64])
>>> [name for name, _ in gen.named_arch_parameters()][:1]
['decoder.up0.op.alpha']
>>> vol = MaskToImageGenerator(in_channels=3, image_size=(16, 24, 16), base_width=4)
>>> vol(torch.rand(1, 3, 16, 24, 16)).shape
torch.Size([1, 1, 16, 24, 16])
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from genseg_cli.nets.layers import DIMS, norm_layer
from genseg_cli.nets.mixed_conv import MixedConv, check_kernels, check_upsample_ops, strided_op

__all__ = ["MaskToImageGenerator"]

# The norms the generator accepts: pix2pix's two (the discriminator also accepts "none").
NORMS = ("batch", "instance")


def _square_depth(image_size: int, bottleneck_size: int) -> int:
    """Stride-2 layers from a square ``image_size`` down to exactly ``bottleneck_size``."""
    ratio = image_size / bottleneck_size if bottleneck_size > 0 else 0.0
    depth = round(math.log2(ratio)) if ratio >= 1 else 0
    if depth < 1 or bottleneck_size * 2**depth != image_size:
        raise ValueError(
            f"image_size ({image_size}) must be bottleneck_size ({bottleneck_size}) times a "
            f"power of two >= 2, e.g. image_size {bottleneck_size * 64} for bottleneck "
            f"{bottleneck_size}"
        )
    return depth


def _suggest_shape(shape: tuple[int, ...], bottleneck_size: int) -> tuple[int, ...]:
    """A valid shape near ``shape``: smallest dim = bottleneck * 2**depth, others multiples."""
    b = bottleneck_size
    depth = max(1, round(math.log2(max(min(shape) / b, 1.0))))
    unit, smallest = 2**depth, b * 2**depth
    # The smallest dim(s) pin the depth; the others round to a multiple of 2**depth above it.
    return tuple(
        smallest if s == min(shape) else max(smallest, unit * round(s / unit)) for s in shape
    )


def _shape_depth(shape: tuple[int, ...], bottleneck_size: int) -> int:
    """Stride-2 layers for a (possibly non-square) shape: its smallest dim reaches exactly
    ``bottleneck_size`` and every dim halves exactly that many times.

    The square rule of ``_square_depth`` applied to the smallest dim, so that ``(s, s)`` and
    ``s`` accept the same sizes.
    """
    if bottleneck_size < 1:
        raise ValueError(f"bottleneck_size must be >= 1, got {bottleneck_size}")
    smallest = min(shape)
    ratio = smallest / bottleneck_size
    depth = round(math.log2(ratio)) if ratio >= 1 else 0
    exact = depth >= 1 and bottleneck_size * 2**depth == smallest
    if exact and all(s % 2**depth == 0 for s in shape):
        return depth
    raise ValueError(
        f"image_size {shape} does not fit bottleneck_size ({bottleneck_size}): its smallest dim "
        f"({smallest}) must be bottleneck_size times a power of two >= 2 (2**depth), and every "
        f"dim a multiple of 2**depth; e.g. image_size {_suggest_shape(shape, bottleneck_size)}"
    )


def _spatial_shape(image_size: Sequence[int]) -> tuple[int, ...]:
    """A spatial-shape ``image_size`` as a tuple of 2 (image) or 3 (volume) ints."""
    shape = tuple(operator.index(s) for s in image_size)
    if len(shape) not in DIMS:
        raise ValueError(
            f"image_size must be an int or 2 / 3 ints (an image or a volume), got {shape}"
        )
    return shape


class _Block(nn.Module):
    """pre-activation -> (mixed) strided conv -> post (norm / dropout / tanh)."""

    def __init__(self, act: nn.Module, op: nn.Module, post: Sequence[nn.Module]) -> None:
        super().__init__()
        self.act = act
        self.op = op
        self.post = nn.Sequential(*post)

    def forward(self, x: Tensor) -> Tensor:
        return self.post(self.op(self.act(x)))


class MaskToImageGenerator(nn.Module):
    """pix2pix-style U-Net: mask (N,in_channels,*S) in [0,1] -> image (N,C,*S) in [-1,1].

    ``image_size`` is an int (a square image, S = (H, W)) or the spatial shape S itself: 2 ints
    for an image, 3 ints (D, H, W) for a volume, which builds 3D layers. ``in_channels`` may
    exceed 1 for a one-hot multi-class label map.

    ``depth = log2(min(S) / bottleneck_size)`` stride-2 layers down, as many up, with
    skip connections by concatenation; every dim of S must be a multiple of ``2**depth``.
    Decoder layers mix ``up_kernels`` transposed convs; encoder layers mix ``down_kernels``
    convs when ``search_down`` (else they use the first of them). A layer with a single
    candidate is a plain convolution and owns no alpha. ``upsample_ops`` beyond
    ``"transposed"`` (``"nearest"``, ``"bilinear"``) add resize-then-convolve candidates to every
    decoder layer's mixture, which then always owns an alpha. ``balanced_phases``: every decoder
    layer uses its transposed kernel with balanced phases, so flat regions come out flat, without
    the checkerboard grid (``genseg_cli.nets.strided_conv.balance_phases``). ``skips_dropped``:
    the number of outermost skip connections left out (0: pix2pix's U-Net); without them the
    finest decoder layers see no full-resolution encoder features, so the mask's edge cannot be
    copied into the image as a traced outline.

    >>> gen = MaskToImageGenerator(image_size=32, base_width=8, up_kernels=(4, 6, 8))
    >>> gen.searchable, len(gen.arch_parameters())
    (True, 4)
    >>> gen.derive()[0]["op"]
    'convT k4'
    >>> vol = MaskToImageGenerator(in_channels=3, image_size=(16, 24, 16), base_width=4)
    >>> vol.dims, vol.spatial_shape, vol.depth
    (3, (16, 24, 16), 3)
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 1,
        image_size: int | Sequence[int] = 128,
        base_width: int = 64,
        max_width: int = 512,
        bottleneck_size: int = 2,
        norm: str = "batch",
        dropout: float = 0.5,
        up_kernels: Sequence[int] = (4, 6, 8),
        down_kernels: Sequence[int] = (4,),
        search_down: bool = False,
        arch_temperature: float = 1.0,
        upsample_ops: Sequence[str] = ("transposed",),
        style_dim: int = 0,
        balanced_phases: bool = False,
        skips_dropped: int = 0,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {list(NORMS)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if operator.index(style_dim) < 0:
            raise ValueError(f"style_dim must be >= 0 (0: no appearance code), got {style_dim}")
        if isinstance(image_size, Sequence):
            shape = _spatial_shape(image_size)
            depth = _shape_depth(shape, bottleneck_size)
            image_size = shape
        else:  # an int: today's square image, with today's checks and message
            depth = _square_depth(image_size, bottleneck_size)
            shape = (image_size, image_size)
        dims = len(shape)
        if not 0 <= operator.index(skips_dropped) <= depth - 1:
            raise ValueError(
                f"skips_dropped must be in [0, {depth - 1}] for a {depth}-level U-Net, "
                f"got {skips_dropped}"
            )
        self.skips_dropped = int(skips_dropped)
        up = check_kernels(up_kernels, "up_kernels")
        down = check_kernels(down_kernels, "down_kernels")
        resize = tuple(op for op in check_upsample_ops(upsample_ops) if op != "transposed")
        # Without search the encoder is plain: its first candidate (k4 by default, as pix2pix).
        down = down if search_down else down[:1]
        self.depth = depth
        self.image_size = image_size  # as given: an int or a tuple
        self.spatial_shape: tuple[int, ...] = shape
        self.dims = dims
        self.in_channels, self.out_channels = in_channels, out_channels
        self.style_dim = int(style_dim)
        widths = [min(base_width * 2**i, max_width) for i in range(depth)]
        # Conv biases are redundant right before a BatchNorm (it subtracts the mean).
        biased = norm != "batch"

        encoder: dict[str, nn.Module] = {}
        for i in range(depth):
            first, inner = i == 0, i == depth - 1
            # the first layer also reads the tiled appearance code (none: style_dim 0)
            c_in = in_channels + self.style_dim if first else widths[i - 1]
            # The innermost map may be 1x1 or 2x2: normalising it would erase it.
            has_norm = not (first or inner)
            op = strided_op(
                c_in, widths[i], down, transposed=False, bias=not has_norm or biased, dims=dims
            )
            act = nn.Identity() if first else nn.LeakyReLU(0.2)
            post = [norm_layer(norm, widths[i], dims)] if has_norm else []
            encoder[f"down{i}"] = _Block(act, op, post)
        self.encoder = nn.ModuleDict(encoder)

        decoder: dict[str, nn.Module] = {}
        for i in range(depth):
            inner, last = i == depth - 1, i == 0
            c_in = widths[i] if inner or i < self.skips_dropped else 2 * widths[i]
            c_out = out_channels if last else widths[i - 1]
            op = strided_op(
                c_in, c_out, up, transposed=True, bias=last or biased, dims=dims, resize=resize,
                balanced=balanced_phases,
            )  # fmt: skip
            if last:
                post: list[nn.Module] = [nn.Tanh()]
            else:
                post = [norm_layer(norm, c_out, dims)]
                # Dropout is pix2pix's noise source, on the three innermost decoder layers.
                if dropout > 0 and i >= depth - 3:
                    post.append(nn.Dropout(dropout))
            decoder[f"up{i}"] = _Block(nn.ReLU(), op, post)
        self.decoder = nn.ModuleDict(decoder)
        if arch_temperature <= 0:
            raise ValueError(f"arch_temperature must be positive, got {arch_temperature}")
        for _, op in self._mixed_ops():
            op.temperature = float(arch_temperature)
        self._init_weights()

    def _init_weights(self) -> None:
        # pix2pix initialisation: N(0, 0.02) kernels, N(1, 0.02) norm scales, zero biases.
        arch = {id(p) for p in self.arch_parameters()}
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d | nn.BatchNorm3d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(
                module,
                nn.Conv2d | nn.Conv3d | nn.ConvTranspose2d | nn.ConvTranspose3d | MixedConv,
            ):
                for name, p in module.named_parameters(recurse=False):
                    if id(p) in arch:
                        continue
                    if name.startswith("weight"):
                        nn.init.normal_(p, 0.0, 0.02)
                    else:
                        nn.init.zeros_(p)

    def forward(self, mask: Tensor, style: Tensor | None = None) -> Tensor:
        """``gen(mask)`` -> image in [-1, 1] with ``out_channels`` channels. ``style``: the
        (N, style_dim) appearance codes; None draws them from N(0, I) (torch's global generator,
        as dropout does); only a generator built with ``style_dim > 0`` takes one."""
        skips: list[Tensor] = []
        h = mask if self.style_dim == 0 and style is None else self._with_style(mask, style)
        for block in self.encoder.values():
            h = block(h)
            skips.append(h)
        ups = list(self.decoder.values())
        h = ups[-1](skips[-1])
        for i in range(self.depth - 2, -1, -1):
            h = ups[i](h if i < self.skips_dropped else torch.cat([h, skips[i]], dim=1))
        return h

    def _with_style(self, mask: Tensor, style: Tensor | None) -> Tensor:
        """``mask`` with the codes tiled over its spatial dims as extra channels."""
        n = mask.shape[0]
        if self.style_dim == 0:
            raise ValueError("this generator has no appearance code (style_dim=0); pass no style")
        if style is None:
            style = torch.randn(n, self.style_dim, device=mask.device, dtype=mask.dtype)
        if tuple(style.shape) != (n, self.style_dim):
            raise ValueError(
                f"style must be (N, style_dim) = ({n}, {self.style_dim}), got {tuple(style.shape)}"
            )
        tiled = style.to(mask.dtype).view(n, self.style_dim, *[1] * self.dims)
        return torch.cat([mask, tiled.expand(-1, -1, *mask.shape[2:])], dim=1)

    def _mixed_ops(self) -> Iterator[tuple[str, MixedConv]]:
        for name, module in self.named_modules():
            if isinstance(module, MixedConv):
                yield name, module

    def named_arch_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """(name, alpha) pairs, names as in ``named_parameters()``, e.g. 'decoder.up3.op.alpha'."""
        for name, op in self._mixed_ops():
            yield f"{name}.alpha", op.alpha

    def arch_parameters(self) -> list[nn.Parameter]:
        """The alphas only: ``torch.optim.Adam(gen.arch_parameters(), lr=3e-4)``."""
        return [p for _, p in self.named_arch_parameters()]

    def named_weight_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """(name, parameter) for every parameter that is not an alpha."""
        arch = {id(p) for p in self.arch_parameters()}
        for name, p in self.named_parameters():
            if id(p) not in arch:
                yield name, p

    def weight_parameters(self) -> list[nn.Parameter]:
        """Everything but the alphas: ``torch.optim.Adam(gen.weight_parameters(), lr=2e-4)``."""
        return [p for _, p in self.named_weight_parameters()]

    @property
    def searchable(self) -> bool:
        """True when at least one layer mixes more than one candidate op."""
        return any(True for _ in self._mixed_ops())

    def derive(self) -> list[dict]:
        """Per searchable layer, the chosen op and the mixture weights.

        >>> layer = MaskToImageGenerator(image_size=8, base_width=4).derive()[0]
        >>> layer["layer"], layer["op"], [round(w, 3) for w in layer["weights"]]
        ('up0', 'convT k4', [0.333, 0.333, 0.333])
        """
        out = []
        for name, op in self._mixed_ops():
            choice, weights = op.derive()
            # 'decoder.up3.op' -> 'up3'
            out.append(
                {
                    "layer": name.split(".")[1],
                    "op": choice,
                    "weights": weights,
                    "candidates": op.candidate_names(),
                }
            )
        return out

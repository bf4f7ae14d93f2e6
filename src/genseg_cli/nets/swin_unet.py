"""SwinUnet (Cao et al. 2021, "Swin-Unet: Unet-like Pure Transformer for Medical Image
Segmentation"): a U-shaped network made of Swin Transformer blocks only, no convolutions but the
patch embedding and the 1x1 output projection.

Encoder: timm's Swin-T (4x4 patch embedding, four stages of shifted-window blocks with patch
merging between them: C, 2C, 4C and 8C channels at 1/4, 1/8, 1/16 and 1/32 of the input; the last
stage is the bottleneck). Decoder: its mirror image. Each level up expands the patches (a linear
layer doubles the channels, which are then spread over 2x2 new tokens: twice the resolution, half
the channels), concatenates the encoder stage of the same resolution (the skip connection), maps
the concatenation back to the level's width with a linear layer and runs Swin blocks. A last 4x
patch expanding returns to the input size; a 1x1 projection gives one logit map per class.

Every stage's side (input side / 4, / 8, / 16, / 32) must split into whole windows or be at most
one window (then the stage attends globally, as Swin-T's last stage does at 224 px). With the
paper's 7-token windows that is 224 and 448 px; with 8-token windows 32, 64, 128, 256, 512 px.
`window_size=None` takes 7 where it fits, else 8; other sizes are refused before any layer is
built.
"""

from __future__ import annotations

from collections.abc import Sequence

import timm
import torch
from timm.models.swin_transformer import SwinTransformerStage
from torch import Tensor, nn

from genseg_cli.core.errors import GensegError

PATCH_SIZE = 4  # Swin-T's patch embedding: 4x4 pixels per token
PAPER_WINDOW = 7  # Swin-T's window; tiles 224 px (stages of 56, 28, 14, 7 tokens)
# tiles the powers of two that the profiles use (64, 128, 256 px) where 7 cannot
FALLBACK_WINDOW = 8
LARGEST_LISTED_SIZE = 1024  # the refusal lists the sizes that work up to here
# the timm model whose ImageNet weights `encoder_weights="imagenet"` fetches
TIMM_SWIN_T = "swin_tiny_patch4_window7_224"


def stage_sides(img_size: int, stages: int) -> list[int]:
    """Tokens along one side in each encoder stage (the decoder has the same, mirrored)."""
    return [img_size // PATCH_SIZE // 2**i for i in range(stages)]


def window_fits(img_size: int, window: int, stages: int = 4) -> bool:
    """Whether `window` tiles every stage: each side is a multiple of it, or at most one window
    (timm then shrinks the window to the side and does not shift it)."""
    if img_size % (PATCH_SIZE * 2 ** (stages - 1)) != 0:
        return False
    return all(side % window == 0 or side <= window for side in stage_sides(img_size, stages))


def choose_window(img_size: int, window_size: int | None, stages: int = 4) -> int:
    """The window for `img_size`: `window_size` if given, else 7 (the paper's) or 8, whichever
    tiles every stage first; a one-line GensegError listing the sizes that work otherwise."""
    candidates = [window_size] if window_size else [PAPER_WINDOW, FALLBACK_WINDOW]
    for window in candidates:
        if window_fits(img_size, window, stages):
            return window
    step = PATCH_SIZE * 2 ** (stages - 1)
    sizes = [
        str(size)
        for size in range(step, LARGEST_LISTED_SIZE + 1, step)
        if any(window_fits(size, window, stages) for window in candidates)
    ]
    windows = " or ".join(str(w) for w in candidates)
    raise GensegError(
        f"backbone=swin_unet cannot use data.image_size={img_size}: its {windows}-token windows "
        f"must tile every stage; sizes that work: {', '.join(sizes)}"
    )


def drop_path_rates(rate: float, depths: Sequence[int]) -> list[list[float]]:
    """Stochastic depth rising linearly from 0 to `rate` over all blocks, split per stage."""
    rates = torch.linspace(0, rate, sum(depths)).tolist()
    starts = [sum(depths[:i]) for i in range(len(depths))]
    return [rates[start : start + depth] for start, depth in zip(starts, depths, strict=True)]


class PatchExpand(nn.Module):
    """Patch expanding, the inverse of patch merging: a linear layer widens each token to
    factor^2 * out_dim channels, which are spread over a factor x factor block of new tokens.
    Tokens are channels-last, (B, H, W, C) -> (B, factor*H, factor*W, out_dim)."""

    def __init__(self, dim: int, out_dim: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.expand = nn.Linear(dim, out_dim * factor**2, bias=False)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, tokens: Tensor) -> Tensor:
        batch, height, width, _ = tokens.shape
        f = self.factor
        tokens = self.expand(tokens).reshape(batch, height, width, f, f, -1)
        tokens = tokens.permute(0, 1, 3, 2, 4, 5).reshape(batch, height * f, width * f, -1)
        return self.norm(tokens)


class DecoderLevel(nn.Module):
    """One level up: expand the deeper tokens, fuse them with the encoder's skip tokens of the
    same resolution (concatenation, then a linear layer back to `dim`), then Swin blocks."""

    def __init__(self, dim: int, side: int, depth: int, heads: int, **block_args) -> None:
        super().__init__()
        self.expand = PatchExpand(2 * dim, dim, factor=2)
        self.fuse = nn.Linear(2 * dim, dim)
        self.blocks = SwinTransformerStage(
            dim=dim,
            out_dim=dim,
            input_resolution=(side, side),
            depth=depth,
            downsample=False,
            num_heads=heads,
            **block_args,
        )

    def forward(self, tokens: Tensor, skip: Tensor) -> Tensor:
        tokens = self.fuse(torch.cat([self.expand(tokens), skip], dim=-1))
        return self.blocks(tokens)


class SwinUnet(nn.Module):
    """SwinUnet for square images of side `img_size` (see the module docstring for the sizes).

    in_channels: image channels; classes: output maps (1 for binary masks); embed_dim, depths,
    num_heads: the encoder (Swin-T: 96, (2, 2, 6, 2), (3, 6, 12, 24)); decoder_depths: Swin blocks
    per decoder level, deepest first (default: the encoder's below the bottleneck, mirrored);
    window_size: tokens per window side (None: 7 where it fits, else 8); encoder_weights:
    "imagenet" loads timm's ImageNet Swin-T into the encoder (a download; Swin-T sizes only),
    None starts from random weights.

    >>> net = SwinUnet(in_channels=1, classes=1, img_size=64, embed_dim=24)
    >>> net(torch.zeros(1, 1, 64, 64)).shape
    torch.Size([1, 1, 64, 64])
    """

    def __init__(
        self,
        *,
        in_channels: int,
        classes: int,
        img_size: int = 224,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        decoder_depths: Sequence[int] | None = None,
        window_size: int | None = None,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.1,
        encoder_weights: str | None = None,
    ) -> None:
        super().__init__()
        depths, num_heads = [int(d) for d in depths], [int(h) for h in num_heads]
        stages = len(depths)
        window = choose_window(int(img_size), window_size, stages)
        if encoder_weights not in (None, "imagenet"):
            raise GensegError(
                f"backbone=swin_unet: encoder_weights={encoder_weights} is not known; "
                "use imagenet (timm's Swin-T) or null"
            )
        self.img_size, self.window_size = int(img_size), window
        self.encoder = timm.create_model(
            TIMM_SWIN_T,
            pretrained=encoder_weights == "imagenet",
            img_size=self.img_size,
            in_chans=in_channels,
            num_classes=0,
            embed_dim=embed_dim,
            depths=depths,
            num_heads=num_heads,
            window_size=window,
            mlp_ratio=mlp_ratio,
            drop_path_rate=drop_path_rate,
        )
        # deepest level first, mirroring the encoder stages below the bottleneck
        decoder_depths = [int(d) for d in decoder_depths or depths[-2::-1]]
        if len(decoder_depths) != stages - 1:
            raise GensegError(
                f"backbone=swin_unet: decoder_depths needs {stages - 1} entries (one per encoder "
                f"stage below the bottleneck), got {decoder_depths}"
            )
        sides = stage_sides(self.img_size, stages)
        # shallowest level first for the rising schedule, then back to deepest first: the
        # deepest level drops most, as in the encoder
        rates = drop_path_rates(drop_path_rate, decoder_depths[::-1])[::-1]
        self.decoder = nn.ModuleList(
            DecoderLevel(
                dim=embed_dim * 2**level,
                side=sides[level],
                depth=depth,
                heads=num_heads[level],
                window_size=window,
                mlp_ratio=mlp_ratio,
                drop_path=level_rates,
            )
            for level, depth, level_rates in zip(
                range(stages - 2, -1, -1), decoder_depths, rates, strict=True
            )
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.final_expand = PatchExpand(embed_dim, embed_dim, factor=PATCH_SIZE)
        self.head = nn.Conv2d(embed_dim, classes, kernel_size=1)

    def forward(self, images: Tensor) -> Tensor:
        tokens = self.encoder.patch_embed(images)  # (B, H/4, W/4, C), channels last
        skips = []
        for stage in self.encoder.layers:
            tokens = stage(tokens)
            skips.append(tokens)
        tokens = self.encoder.norm(skips.pop())  # the bottleneck
        for level in self.decoder:
            tokens = level(tokens, skips.pop())
        tokens = self.final_expand(self.norm(tokens))
        return self.head(tokens.permute(0, 3, 1, 2))

"""A spectral check of the checkerboard grid that stride-2 transposed convolutions draw.

A transposed convolution whose kernel size does not divide evenly by its stride adds a pattern of
period 2 to its output (Odena et al., 2016, "Deconvolution and Checkerboard Artifacts"); the
layer before it adds one of period 4, and so on. In the 2D spectrum of an H x W image such a
pattern is a peak at the frequencies (u, v) with u in {0, H/4, H/2, 3H/4} and v likewise, (0, 0)
aside. The score of an image is log10(the power at those peaks / the power their neighbourhoods
predict there), a peak's neighbourhood being the mean power two and three bins from it along its
row or along its column (the larger), after removing the image's mean and a Hann window (which
keeps the image's border and its smooth content from leaking into the peaks). 0: the peaks are
no stronger than their neighbourhoods (natural images sit near 0); 1: ten times stronger.

>>> import torch
>>> smooth = torch.linspace(-1, 1, 64).expand(1, 1, 64, 64)
>>> checker = smooth + 0.2 * (torch.arange(64) % 2).expand(64, 64) * 2 - 0.2
>>> grid_score(smooth) < 0.5 < 2.0 < grid_score(checker)
True
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["MIN_SIZE", "grid_score", "grid_scores"]

MIN_SIZE = 16  # the quarter-frequency peak's neighbours (3 bins away) stay clear of (0, 0)
EPS = 1e-20  # an all-flat image has no power anywhere: its score is 0, not nan


def _planes(images: Tensor) -> Tensor:
    """(N, C, H, W) images, or (N, C, D, H, W) volumes by their middle slice, as float64."""
    if images.ndim == 5:
        images = images[:, :, images.shape[2] // 2]
    if images.ndim != 4:
        raise ValueError(f"grid_score takes (N, C, H, W) images, got shape {tuple(images.shape)}")
    h, w = images.shape[-2:]
    if min(h, w) < MIN_SIZE:
        raise ValueError(f"grid_score needs images of at least {MIN_SIZE} px, got {h} x {w}")
    return images.detach().to("cpu", torch.float64)


def _beside(size: int, centre: int) -> list[int]:
    return [(centre + d) % size for d in (-3, -2, 2, 3)]


def grid_scores(images: Tensor) -> Tensor:
    """The score of each image (N,), its channels' power spectra summed."""
    x = _planes(images)
    h, w = x.shape[-2:]
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    window = torch.outer(torch.hann_window(h, periodic=True, dtype=x.dtype),
                         torch.hann_window(w, periodic=True, dtype=x.dtype))  # fmt: skip
    power = torch.fft.fft2(x * window).abs().square().sum(1)  # N, H, W
    rows = sorted({0, h // 4, h // 2, 3 * h // 4})
    cols = sorted({0, w // 4, w // 2, 3 * w // 4})
    peaks, expected = [], []
    for u in rows:
        for v in cols:
            if u == 0 and v == 0:
                continue
            # the peak's row and column two and three bins away, the larger of the two: an image
            # that varies along one axis only has all its power on that axis' line
            along_v = power[:, u][:, _beside(w, v)].mean(1)
            along_u = power[:, _beside(h, u)][:, :, v].mean(1)
            peaks.append(power[:, u, v])
            expected.append(torch.maximum(along_u, along_v))
    ratio = (torch.stack(peaks, 1).sum(1) + EPS) / (torch.stack(expected, 1).sum(1) + EPS)
    return torch.log10(ratio).float()


def grid_score(images: Tensor) -> float:
    """The mean grid score of a batch of images (see the module's docstring)."""
    return float(grid_scores(images).mean())

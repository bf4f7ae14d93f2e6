"""The grid score: high where a transposed convolution's checkerboard lies on an image, near zero
on smooth images, noise and real images, and refusing inputs it cannot score."""

from __future__ import annotations

import pytest
import torch

from genseg_cli.evaluation.grid_score import grid_score, grid_scores


def smooth(n: int = 64) -> torch.Tensor:
    """A blob on a gentle ramp: what a blurred synthetic image looks like without a grid."""
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    blob = torch.exp(-((yy - 30.0) ** 2 + (xx - 20.0) ** 2) / 200)
    return (blob + xx / n - 0.5).expand(2, 3, n, n).clone()


def checkerboard(n: int = 64, strength: float = 0.05) -> torch.Tensor:
    """The smooth image with a faint period-2 checkerboard on top."""
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    return smooth(n) + strength * ((yy % 2) ^ (xx % 2)).float()


def test_a_checkerboard_scores_high_and_a_smooth_image_low():
    assert grid_score(checkerboard()) > 3.0
    assert abs(grid_score(smooth())) < 0.5
    torch.manual_seed(0)
    assert abs(grid_score(torch.randn(8, 1, 64, 64))) < 0.5


def test_a_transposed_convolutions_period_four_grid_counts_too():
    n = 64
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    period4 = ((yy % 4 == 0) | (xx % 4 == 0)).float() * 0.05
    assert grid_score(smooth(n) + period4) > 2.0


def test_the_score_is_per_image_and_volumes_score_their_middle_slice():
    batch = torch.cat([smooth()[:1], checkerboard()[:1]])
    low, high = grid_scores(batch).tolist()
    assert low < 0.5 < 3.0 < high
    volume = checkerboard()[:1].unsqueeze(2).expand(1, 3, 5, 64, 64)
    assert grid_score(volume) == pytest.approx(grid_score(checkerboard()[:1]))


def test_images_too_small_or_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match="at least 16"):
        grid_score(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="N, C, H, W"):
        grid_score(torch.zeros(8, 8))
    assert grid_score(torch.zeros(1, 1, 32, 32)) == 0.0  # flat: no power anywhere

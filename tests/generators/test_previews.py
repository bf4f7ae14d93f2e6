"""Preview grids of synthetic pairs: column titles, the step in the title, nearest real image."""

from __future__ import annotations

import torch

from genseg_cli.generators.previews import COLUMNS, nearest_real, preview_figure, save_preview


def pairs(n: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    masks = torch.zeros(n, 1, 16, 16)
    for i in range(n):
        masks[i, :, : 4 * (i + 1)] = 1  # a band growing with i: each mask nearest to itself
    return masks, torch.rand(n, channels, 16, 16) * 2 - 1


def test_preview_has_column_titles_and_the_step() -> None:
    masks, images = pairs(3, 3)
    fig = preview_figure(masks, images, masks, images, "end of training (step 1500)")
    axes = fig.get_axes()
    assert len(axes) == 3 * 3
    assert [ax.get_title() for ax in axes[:3]] == list(COLUMNS)
    assert fig._suptitle is not None and "step 1500" in fig._suptitle.get_text()


def test_nearest_real_image_is_the_one_with_the_closest_mask() -> None:
    masks, _ = pairs(3, 1)
    assert nearest_real(masks.flip(0), masks).tolist() == [2, 1, 0]


def test_save_preview_writes_a_png_for_volumes_too(tmp_path) -> None:
    volumes = torch.zeros(2, 3, 4, 8, 8)  # one-hot label maps of two classes
    volumes[:, 0] = 1
    images = torch.rand(2, 1, 4, 8, 8)
    path = save_preview(tmp_path / "grid.png", volumes, images, volumes, images, "step 0")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""Preview grids of synthetic data: new mask | synthetic image | nearest real image.

Volumes are shown by their middle slice along the first spatial axis; one-hot label maps are
drawn as grey levels (background black, the last class white). `grid_scores` gives the
checkerboard check of the generator's images beside the real ones' (`generator.grid_score`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from genseg_cli.evaluation.grid_score import grid_score

COLUMNS = ("new mask", "synthetic image", "nearest real image")


def foreground(masks: Tensor) -> Tensor:
    """Foreground channels of masks: a binary mask itself, a one-hot map without background."""
    return masks if masks.shape[1] == 1 else masks[:, 1:]


def nearest_real(masks: Tensor, real_masks: Tensor) -> Tensor:
    """Index of the real mask with the highest foreground IoU to each of `masks`."""
    a = foreground(masks).flatten(1)[:, None, :] > 0.5
    b = foreground(real_masks).flatten(1)[None, :, :] > 0.5
    inter = (a & b).sum(-1).float()
    union = (a | b).sum(-1).float().clamp_min(1)
    return (inter / union).argmax(dim=1)


def middle_slice(x: Tensor) -> Tensor:
    """N,C,D,H,W -> N,C,H,W at D // 2; 2D batches pass through."""
    return x[:, :, x.shape[2] // 2] if x.ndim == 5 else x


def mask_as_image(masks: Tensor, channels: int) -> Tensor:
    """Masks drawn in the image range [-1, 1] with `channels` channels."""
    if masks.shape[1] == 1:
        grey = masks
    else:  # label index scaled to [0, 1]
        grey = masks.argmax(1, keepdim=True).float() / (masks.shape[1] - 1)
    return grey.expand(-1, channels, *grey.shape[2:]) * 2 - 1


def preview_figure(
    masks: Tensor, synthetic: Tensor, real_masks: Tensor, real_images: Tensor, title: str = ""
) -> Figure:
    """One row per mask: the mask, its synthetic image, the real image whose mask is nearest;
    column titles on top and `title` (when and after how many steps) above them."""
    real = real_images[nearest_real(masks, real_masks)]
    channels = synthetic.shape[1]
    shown = [mask_as_image(masks.float(), channels), synthetic.float(), real.float()]
    tiles = [((middle_slice(x).detach().cpu() + 1) / 2).clamp(0, 1) for x in shown]
    rows = tiles[0].shape[0]
    fig = Figure(figsize=(3 * 1.8, rows * 1.8 + (0.5 if title else 0.3)), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 3, squeeze=False)
    for col, name in enumerate(COLUMNS):
        axes[0][col].set_title(name, fontsize=9)
        for row in range(rows):
            image = tiles[col][row]
            ax = axes[row][col]
            if image.shape[0] == 1:
                ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:  # colour images: the first three channels as RGB
                ax.imshow(image[:3].permute(1, 2, 0).numpy())
            ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save_preview(
    path: Path,
    masks: Tensor,
    synthetic: Tensor,
    real_masks: Tensor,
    real_images: Tensor,
    title: str = "",
) -> Path:
    """The preview figure of `preview_figure`, written to `path` (a PNG)."""
    fig = preview_figure(masks, synthetic, real_masks, real_images, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


@torch.no_grad()
def grid_scores(
    make: Callable[[Tensor], Tensor], masks: Tensor, real_images: Tensor, batch: int = 16
) -> tuple[float, float]:
    """(grid score of the images `make` draws for `masks`, in batches of `batch`; grid score
    of `real_images`), `make` being what the previews show (the recipe's preview images)."""
    synthetic = torch.cat(
        [make(masks[i : i + batch]).float().cpu() for i in range(0, len(masks), batch)]
    )
    return grid_score(synthetic), grid_score(real_images)

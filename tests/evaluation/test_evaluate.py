import numpy as np
import pytest
import torch

from genseg_cli.data.samples import Sample
from genseg_cli.data.spec import DataSpec
from genseg_cli.evaluation.evaluate import score_pairs

SPEC = DataSpec("folder", 2, 32, 3, 1, ("foreground",), batch_size=2, num_workers=0)


def disc_pair(height: int, width: int) -> Sample:
    """A non-square image with a centred elliptic lesion."""
    yy, xx = np.mgrid[:height, :width]
    mask = ((yy - height / 2) / (height / 4)) ** 2 + ((xx - width / 2) / (width / 4)) ** 2 < 1
    image = np.repeat((mask * 200 + 20).astype(np.uint8)[..., None], 3, axis=2)
    return Sample("IMD001", image, mask)


def logits_of(mask: np.ndarray) -> torch.Tensor:
    """Confident logits (1 x H x W) that threshold to `mask`."""
    return torch.from_numpy(np.where(mask, 8.0, -8.0)).float()[None]


@pytest.mark.parametrize("resolution", ["original", "model"])
def test_score_pairs_2d_at_both_resolutions(resolution):
    pair = disc_pair(90, 120)
    square = np.zeros((32, 32), bool)
    yy, xx = np.mgrid[:32, :32]
    square[((yy - 16) / 8) ** 2 + ((xx - 16) / 8) ** 2 < 1] = True  # the lesion at model size
    perfect = score_pairs([logits_of(square)], [pair], SPEC, resolution)
    assert perfect.loc[0, "dice"] > 0.95
    empty = score_pairs([logits_of(np.zeros_like(square))], [pair], SPEC, resolution)
    assert empty.loc[0, "dice"] == 0.0


def test_score_pairs_rejects_unknown_resolution():
    with pytest.raises(ValueError, match="resolution=native"):
        score_pairs([logits_of(np.zeros((8, 8), bool))], [disc_pair(8, 8)], SPEC, "native")

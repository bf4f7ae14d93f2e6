"""`generator.model.skips_dropped`: the U-Net without its outermost skip connections, so the
finest decoder layers cannot copy the mask's edge into the image; off (0), pix2pix's U-Net."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from genseg_cli.core.config import compose
from genseg_cli.methods.synthetic import cache_settings
from genseg_cli.nets.generators import MaskToImageGenerator


def generator(**kw: object) -> MaskToImageGenerator:
    torch.manual_seed(0)
    return MaskToImageGenerator(image_size=32, base_width=8, **kw)


def test_off_by_default_and_then_the_same_network() -> None:
    for overrides in (["method=genseg"], ["method=separate", "generator=pix2pix_fixed"]):
        assert compose("train", overrides).generator.model.skips_dropped == 0
    a, b = generator(skips_dropped=0).eval(), generator().eval()
    masks = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(a(masks), b(masks), rtol=0, atol=0)


@pytest.mark.parametrize("dropped", [1, 2])
def test_the_finest_decoder_layers_see_no_encoder_features(dropped: int) -> None:
    """With k skips dropped, the output does not move when the k outermost encoder layers'
    outputs are changed while the deeper features stay (their only path was the skip)."""
    gen = generator(skips_dropped=dropped).eval()
    masks = torch.rand(2, 1, 32, 32)
    blocks = list(gen.encoder.values())
    ups = list(gen.decoder.values())

    with torch.no_grad():
        plain = gen(masks)
        # the outermost encoder outputs + 1, the next encoder layer fed the original ones
        feed = [masks]
        for block in blocks:
            feed.append(block(feed[-1]))
        skips = [f + 1.0 if i < dropped else f for i, f in enumerate(feed[1:])]
        h = ups[-1](skips[-1])
        for i in range(gen.depth - 2, -1, -1):
            h = ups[i](h if i < dropped else torch.cat([h, skips[i]], dim=1))
    torch.testing.assert_close(h, plain, rtol=0, atol=0)


def test_out_of_range_is_refused_naming_the_range() -> None:
    with pytest.raises(ValueError, match=r"skips_dropped must be in \[0, 3\]"):
        generator(skips_dropped=4)


def test_volumes_too() -> None:
    gen = MaskToImageGenerator(image_size=(16, 16, 16), base_width=4, skips_dropped=1)
    assert gen(torch.rand(1, 1, 16, 16, 16)).shape == (1, 1, 16, 16, 16)


def test_the_config_builds_it_and_the_cache_tells_it_apart() -> None:
    on = compose("train", ["method=genseg", "generator.model.skips_dropped=1"])
    gen = instantiate(on.generator.model, in_channels=1, out_channels=3, image_size=32)
    assert gen.skips_dropped == 1
    plain = cache_settings(compose("train", ["method=genseg"]).generator)
    assert "skips_dropped" not in plain["model"]  # a cache made before the option stays valid
    assert cache_settings(on.generator)["model"]["skips_dropped"] == 1

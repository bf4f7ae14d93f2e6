"""The paper's named backbones: SwinUnet, SwinUNETR (2D and 3D) and DeepLab v3 with ResNet-50.

Each trains a few steps on a tiny input on the CPU, keeps the input's spatial shape, has one
output per class, and loads a local state dict; SwinUnet refuses sizes its windows cannot tile.
"""

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from genseg_cli.core.config import compose
from genseg_cli.core.errors import GensegError
from genseg_cli.nets.losses import SegmentationLoss
from genseg_cli.nets.segmenters import build_segmenter
from genseg_cli.nets.swin_unet import choose_window

# small versions of each (name, overrides, dims, input shape without the batch)
SMALL_SWIN_UNET = ["backbone.model.embed_dim=24", "backbone.model.depths=[2,2,2,2]"]
CASES = {
    "swin_unet": (["backbone=swin_unet", "data.image_size=64", *SMALL_SWIN_UNET], 2, (1, 64, 64)),
    "swin_unetr_2d": (
        ["backbone=swin_unetr", "data.image_size=64", "backbone.model.feature_size=12"],
        2,
        (1, 64, 64),
    ),
    "swin_unetr_3d": (
        ["backbone=swin_unetr", "dataset=hippocampus", "backbone.volume_model.feature_size=12"],
        3,
        (1, 32, 32, 64),  # the smallest volume with more than one voxel at 1/32 (no extra padding)
    ),
    "deeplabv3_r50": (["backbone=deeplabv3_r50", "data.image_size=64"], 2, (1, 64, 64)),
}


def train_steps(net: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor, steps: int):
    """Losses of `steps` AdamW steps on one batch (binary masks: BCE+Dice, else cross-entropy)."""
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        logits = net(images)
        if masks.shape[1] == 1:
            loss = SegmentationLoss()(logits, masks)
        else:
            loss = F.cross_entropy(logits, masks.argmax(1))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return logits, losses


@pytest.mark.parametrize("case", sorted(CASES))
def test_new_backbone_trains_and_keeps_the_input_shape(case):
    overrides, dims, shape = CASES[case]
    cfg = compose("train", ["profile=debug", *overrides])
    torch.manual_seed(0)
    net = build_segmenter(cfg.backbone, dims).train()
    classes = int(cfg.dataset.get("mask_channels", 1))
    images = torch.randn(2, *shape)
    # a fixed blob per image: something learnable within a few steps
    masks = torch.zeros(2, classes, *shape[1:])
    masks[(slice(None), slice(classes - 1, classes), *[slice(4, 20)] * dims)] = 1
    if classes > 1:
        masks[:, 0] = 1 - masks[:, 1:].sum(1)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    logits, losses = train_steps(net, images, masks, steps=2)
    assert logits.shape == (2, classes, *shape[1:])
    # every parameter is on the loss's path (a dropped skip or decoder level would leave some
    # without a gradient) and the optimizer moved it
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, f"no gradient reaches {missing[:5]}"
    assert any(not torch.equal(p, before[n]) for n, p in net.named_parameters())
    assert losses[-1] < losses[0], losses


@pytest.mark.parametrize("case", sorted(CASES))
def test_new_backbone_loads_a_local_state_dict(case, tmp_path: Path):
    overrides, dims, _ = CASES[case]
    source = build_segmenter(compose("train", ["profile=debug", *overrides]).backbone, dims)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    cfg = compose("train", ["profile=debug", *overrides, f"backbone.weights={tmp_path}/w.pt"])
    loaded = build_segmenter(cfg.backbone, dims)
    for (name, a), b in zip(source.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_swin_unet_has_one_output_per_class_and_mirrors_the_encoder():
    overrides, _, _ = CASES["swin_unet"]
    cfg = compose("train", ["profile=debug", *overrides, "+dataset.mask_channels=3"])
    cfg.backbone.model.depths = [2, 2, 6, 2]
    net = build_segmenter(cfg.backbone).eval()
    logits = net(torch.randn(1, 1, 64, 64))
    assert logits.shape == (1, 3, 64, 64)
    # Swin blocks per decoder level, deepest first: the encoder's [2, 2, 6] mirrored
    assert [len(level.blocks.blocks) for level in net.decoder] == [6, 2, 2]
    assert [level.blocks.dim for level in net.decoder] == [96, 48, 24]
    # each level reads its skip connection: the fusing layer's weights on the encoder's half of
    # the concatenation get a gradient
    logits.square().sum().backward()
    for level in net.decoder:
        skip_half = level.fuse.weight.grad[:, level.fuse.out_features :]
        assert skip_half.abs().sum() > 0


@pytest.mark.parametrize(("size", "window"), [(224, 7), (448, 7), (32, 8), (64, 8), (128, 8)])
def test_swin_unet_takes_the_papers_window_where_it_fits(size, window):
    assert choose_window(size, None) == window


def test_swin_unet_builds_at_the_papers_224_px_with_7_token_windows():
    cfg = compose("train", ["backbone=swin_unet", "data.image_size=224", *SMALL_SWIN_UNET])
    net = build_segmenter(cfg.backbone)
    windows = {block.window_size for stage in net.encoder.layers for block in stage.blocks}
    assert windows == {(7, 7)}  # 56, 28, 14, 7 tokens: the last stage is one window


@pytest.mark.parametrize("size", [96, 100, 192, 384])
def test_swin_unet_refuses_a_size_its_windows_cannot_tile(size):
    cfg = compose("train", ["backbone=swin_unet", f"data.image_size={size}"])
    with pytest.raises(GensegError) as err:
        build_segmenter(cfg.backbone)
    message = str(err.value)
    assert "\n" not in message
    assert f"data.image_size={size}" in message
    assert "sizes that work: 32, 64, 128, 224, 256, 448, 512" in message


def test_swin_unet_with_a_fixed_window_lists_the_sizes_for_that_window():
    cfg = compose("train", ["backbone=swin_unet", "backbone.model.window_size=7"])
    with pytest.raises(GensegError, match=r"image_size=128: its 7-token .* work: 224, 448, 672"):
        build_segmenter(cfg.backbone)


def test_swin_unetr_pads_sides_that_are_not_multiples_of_32():
    """32 x 48 x 32 runs as 32 x 64 x 32; MONAI alone refuses it."""
    cfg = compose("train", ["dataset=hippocampus", "backbone=swin_unetr"])
    cfg.backbone.volume_model.feature_size = 12
    net = build_segmenter(cfg.backbone, dims=3).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 1, *cfg.dataset.volume_shape)).shape == (1, 3, 32, 48, 32)


def test_swin_unetr_trains_where_its_bottleneck_would_be_one_pixel():
    """32 px runs padded to 64: MONAI's instance norm refuses a 1 x 1 bottleneck in training."""
    cfg = compose("train", ["backbone=swin_unetr", "backbone.model.feature_size=12"])
    net = build_segmenter(cfg.backbone).train()
    logits = net(torch.randn(2, 1, 32, 32))
    assert logits.shape == (2, 1, 32, 32)
    logits.sum().backward()


def test_deeplabv3_is_deeplabv3_r50_under_its_earlier_name():
    old, new = (
        compose("train", [f"backbone={n}"]).backbone for n in ("deeplabv3", "deeplabv3_r50")
    )
    assert (old.name, new.name) == ("deeplabv3", "deeplabv3_r50")
    assert old.model == new.model and new.model.encoder_name == "resnet50"

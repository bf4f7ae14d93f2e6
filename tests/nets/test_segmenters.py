from pathlib import Path

import pytest
import torch

from genseg_cli.core.config import compose, conf_dir
from genseg_cli.core.errors import GensegError
from genseg_cli.nets.losses import SegmentationLoss
from genseg_cli.nets.segmenters import build_segmenter

BACKBONES = sorted(p.stem for p in (conf_dir() / "backbone").glob("*.yaml"))


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("dataset", ["jsrt", "ph2"])
def test_every_backbone_runs_forward_and_backward(name, dataset):
    cfg = compose("train", [f"backbone={name}", f"dataset={dataset}", "profile=debug"])
    net = build_segmenter(cfg.backbone)
    x = torch.randn(2, cfg.dataset.channels, cfg.data.image_size, cfg.data.image_size)
    logits = net(x)
    assert logits.shape == (2, 1, cfg.data.image_size, cfg.data.image_size)
    SegmentationLoss()(logits, torch.ones_like(logits)).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_download_of_encoder_weights_is_refused():
    cfg = compose("train", ["backbone.model.encoder_weights=imagenet"])
    with pytest.raises(GensegError, match=r"backbone\.model\.encoder_weights=imagenet .*download"):
        build_segmenter(cfg.backbone)
    cfg = compose("train", ["dataset=hippocampus", "+backbone.volume_model.encoder_weights=x"])
    with pytest.raises(GensegError, match=r"backbone\.volume_model\.encoder_weights=x"):
        build_segmenter(cfg.backbone, dims=3)


def test_local_weights_are_loaded(tmp_path: Path):
    cfg = compose("train", ["profile=debug"])
    source = build_segmenter(cfg.backbone)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    loaded = build_segmenter(
        compose("train", ["profile=debug", f"backbone.weights={tmp_path}/w.pt"]).backbone
    )
    for a, b in zip(source.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_missing_or_foreign_weights_are_explained(tmp_path: Path):
    cfg = compose("train", ["profile=debug", f"backbone.weights={tmp_path}/none.pt"])
    with pytest.raises(GensegError, match="does not exist"):
        build_segmenter(cfg.backbone)
    torch.save({"foo.weight": torch.zeros(1)}, tmp_path / "foreign.pt")
    cfg = compose("train", ["profile=debug", f"backbone.weights={tmp_path}/foreign.pt"])
    with pytest.raises(GensegError, match="another architecture"):
        build_segmenter(cfg.backbone)


def test_loss_decreases_towards_the_target():
    loss = SegmentationLoss()
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:6, 2:6] = 1
    assert loss(target * 20 - 10, target) < loss(torch.zeros_like(target), target)


def test_unet_has_a_3d_version_for_volumes():
    cfg = compose("train", ["dataset=hippocampus", "backbone=unet"])
    net = build_segmenter(cfg.backbone, dims=3).eval()
    assert net(torch.zeros(1, 1, 16, 16, 16)).shape == (1, 3, 16, 16, 16)


def test_a_2d_only_backbone_is_refused_for_volumes():
    cfg = compose("train", ["dataset=hippocampus", "backbone=deeplabv3"])
    with pytest.raises(GensegError, match="no 3D version.*backbone=unet"):
        build_segmenter(cfg.backbone, dims=3)

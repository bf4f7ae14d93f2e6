from pathlib import Path

import pytest
import torch
from torch import nn

from genseg_cli.core.config import compose, conf_dir
from genseg_cli.core.errors import GensegError
from genseg_cli.nets import segmenters, swin_unet
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


@pytest.mark.parametrize("name", [b for b in BACKBONES if b != "swin_unetr"])
def test_encoder_weights_pass_through_to_the_network(name, monkeypatch):
    """`backbone.encoder_weights=imagenet` reaches the smp/genseg network (which downloads; here
    the network is not built)."""
    built = []
    monkeypatch.setattr(
        segmenters,
        "instantiate_explained",
        lambda network, **kwargs: built.append(network) or nn.Linear(1, 1),
    )
    build_segmenter(
        compose("train", [f"backbone={name}", "backbone.encoder_weights=imagenet"]).backbone
    )
    assert built[0].encoder_weights == "imagenet"
    assert compose("train", [f"backbone={name}"]).backbone.model.encoder_weights is None


def test_swin_unet_asks_timm_for_its_imagenet_swin_t(monkeypatch):
    calls = []
    create = swin_unet.timm.create_model

    def offline_create(name, pretrained=False, **kwargs):
        calls.append((name, pretrained))
        return create(name, pretrained=False, **kwargs)

    monkeypatch.setattr(swin_unet.timm, "create_model", offline_create)
    small = ["backbone.model.embed_dim=24", "data.image_size=64"]
    for weights in ("imagenet", "null"):
        cfg = compose(
            "train", ["backbone=swin_unet", f"backbone.encoder_weights={weights}", *small]
        )
        build_segmenter(cfg.backbone)
    assert calls == [(swin_unet.TIMM_SWIN_T, True), (swin_unet.TIMM_SWIN_T, False)]
    cfg = compose("train", ["backbone=swin_unet", "backbone.encoder_weights=foo", *small])
    with pytest.raises(GensegError, match="encoder_weights=foo is not known"):
        build_segmenter(cfg.backbone)


@pytest.mark.parametrize(
    ("name", "dataset", "dims"), [("swin_unetr", "jsrt", 2), ("unet", "hippocampus", 3)]
)
def test_encoder_weights_are_refused_where_there_is_no_pretrained_encoder(name, dataset, dims):
    cfg = compose(
        "train", [f"backbone={name}", f"dataset={dataset}", "backbone.encoder_weights=imagenet"]
    )
    with pytest.raises(
        GensegError, match=rf"encoder_weights=imagenet: backbone '{name}'.*backbone\.weights=PATH"
    ):
        build_segmenter(cfg.backbone, dims)


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

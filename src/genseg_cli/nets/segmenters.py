"""Segmentation backbones: any network named by a config (smp, MONAI, or genseg's own).

`conf/backbone/<name>.yaml` holds `model` (a `_target_` with its keyword arguments: an smp
architecture, `genseg_cli.nets.swin_unet.SwinUnet`, ...), optionally `volume_model` (the
backbone's 3D version, e.g. MONAI's UNet, used when the dataset is 3D), `weights` (an optional
local file for the whole network) and `encoder_weights` (null, or e.g. `imagenet`: smp/timm then
download the encoder's pretrained weights when the network is built; only for users with
internet, and only networks whose config takes `encoder_weights` accept it).
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from genseg_cli.core.config import conf_dir, instantiate_explained
from genseg_cli.core.errors import GensegError


def build_segmenter(backbone: DictConfig, dims: int = 2) -> nn.Module:
    """Build the 2D (or, with dims=3, the 3D) network of a backbone config and load its local
    weights if given.

    >>> net = build_segmenter(compose("train", ["backbone=unet"]).backbone)
    >>> net(torch.zeros(1, 1, 64, 64)).shape
    torch.Size([1, 1, 64, 64])
    """
    network = network_config(backbone, dims)
    if backbone.get("encoder_weights") and "encoder_weights" not in network:
        key = "volume_model" if dims == 3 else "model"
        raise GensegError(
            f"backbone.encoder_weights={backbone.encoder_weights}: backbone '{backbone.name}' "
            f"({key}) has no pretrained encoder to fetch; give a local state dict with "
            "backbone.weights=PATH"
        )
    # a GensegError of the constructor (e.g. SwinUnet refusing data.image_size) is already the
    # one line the user should read
    model = instantiate_explained(network)
    if backbone.get("weights"):
        load_weights(model, Path(backbone.weights))
    return model


def network_config(backbone: DictConfig, dims: int) -> DictConfig:
    """`backbone.model` for images, `backbone.volume_model` for volumes (an error if absent)."""
    if dims != 3:
        return backbone.model
    if not backbone.get("volume_model"):
        with3d = [path.stem for path in sorted((conf_dir() / "backbone").glob("*.yaml"))
                  if "volume_model:" in path.read_text()]  # fmt: skip
        raise GensegError(
            f"backbone '{backbone.name}' has no 3D version (no volume_model in its config); "
            f"3D datasets train with backbone={' or backbone='.join(with3d)}"
        )
    return backbone.volume_model


def load_weights(model: nn.Module, path: Path) -> None:
    """Load a state_dict file (.pt/.pth/.safetensors, or a genseg checkpoint) into `model`."""
    if not path.is_file():
        raise GensegError(f"backbone.weights={path} does not exist; give a local weights file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state) if isinstance(state, dict) else state
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing and len(missing) == len(model.state_dict()):
        raise GensegError(f"{path} holds no weights of this backbone (every key is missing)")
    if unexpected:
        raise GensegError(
            f"{path} has {len(unexpected)} keys this backbone lacks "
            f"(e.g. {', '.join(unexpected[:3])}); is it for another architecture?"
        )

"""Writing image-mask pairs: the standard layout, or an nnU-Net v2 raw dataset."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from genseg_cli.engine.files import write_json
from genseg_cli.errors import GensegError

NNUNET_NAME = re.compile(r"^Dataset\d{3}_[A-Za-z0-9_-]+$")


def to_uint8_image(image: np.ndarray) -> Image.Image:
    """float CxHxW in [-1, 1] -> an L or RGB PIL image."""
    pixels = np.clip((image + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    return Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)


class PairWriter:
    """Writes pairs into `out` in `fmt` ("standard" or "nnunet"); `close()` writes metadata.

    >>> writer = PairWriter(Path("synthetic"), "nnunet", channels=1)
    >>> writer.add("syn_00000", image, mask); writer.close()
    """

    def __init__(self, out: Path, fmt: str, channels: int) -> None:
        if fmt not in ("standard", "nnunet"):
            raise GensegError(f"format={fmt} is not one of standard, nnunet")
        if out.exists() and any(out.iterdir()):
            raise GensegError(f"{out} is not empty; choose a new out=... (nothing was written)")
        self.out, self.fmt, self.channels, self.ids = out, fmt, channels, []
        images, masks = ("imagesTr", "labelsTr") if fmt == "nnunet" else ("images", "masks")
        self.image_dir, self.mask_dir = out / images, out / masks
        self.image_dir.mkdir(parents=True)
        self.mask_dir.mkdir(parents=True)

    def add(self, key: str, image: np.ndarray, mask: np.ndarray) -> None:
        """image: float CxHxW in [-1, 1]; mask: {0, 1} HxW."""
        suffix = "_0000" if self.fmt == "nnunet" else ""  # nnU-Net's channel index
        to_uint8_image(image).save(self.image_dir / f"{key}{suffix}.png")
        scale = 1 if self.fmt == "nnunet" else 255  # nnU-Net labels are consecutive integers
        Image.fromarray((mask > 0).astype(np.uint8) * scale).save(self.mask_dir / f"{key}.png")
        self.ids.append(key)

    def close(self, description: str) -> None:
        if self.fmt != "nnunet":
            return
        channels = {"0": "L"} if self.channels == 1 else {"0": "R", "1": "G", "2": "B"}
        write_json(
            self.out / "dataset.json",
            {
                "channel_names": channels,
                "labels": {"background": 0, "target": 1},
                "numTraining": len(self.ids),
                "file_ending": ".png",
                "description": description,
            },
        )

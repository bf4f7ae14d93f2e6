"""Writing synthetic pairs: 2D image-mask pairs (PNG) or 3D image-label volumes (NIfTI), each in
genseg's own layout or as an nnU-Net v2 raw dataset."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from genseg_cli.core.errors import GensegError
from genseg_cli.core.files import refuse_non_empty, write_json

NNUNET_NAME = re.compile(r"^Dataset\d{3}_[A-Za-z0-9_-]+$")
FORMATS = ("standard", "nnunet")
NIFTI = ".nii.gz"


def prepare_out(out: Path, fmt: str) -> None:
    """Refuse an unknown format or a non-empty `out` before anything is written.

    >>> prepare_out(Path("synthetic"), "nnunet")
    """
    if fmt not in FORMATS:
        raise GensegError(f"format={fmt} is not one of {', '.join(FORMATS)}")
    refuse_non_empty(out, "out")


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
        prepare_out(out, fmt)
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


def write_nifti(
    path: Path, data: np.ndarray, affine: np.ndarray | None = None, header: object | None = None
) -> None:
    """Save `data` as NIfTI with its own dtype; `header` (e.g. the input's) keeps orientation
    codes and units, while its scaling is reset so stored values are read back unchanged.

    >>> write_nifti(Path("labels.nii.gz"), labels.astype(np.uint8), source.affine, source.header)
    """
    import nibabel as nib

    image = nib.Nifti1Image(data, np.eye(4) if affine is None else affine, header=header)
    image.set_data_dtype(data.dtype)  # a copied header would otherwise impose its own dtype
    image.header.set_slope_inter(1.0, 0.0)
    nib.save(image, str(path))


def channels_last(image: np.ndarray) -> np.ndarray:
    """C x D x H x W -> D x H x W for one channel, else D x H x W x C (MSD's 4D modalities)."""
    return image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)


class VolumeWriter:
    """Writes 3D image-label pairs into `out` as NIfTI: `fmt` "standard" is the Medical
    Segmentation Decathlon layout (imagesTr/<key>.nii.gz, labelsTr/<key>.nii.gz, dataset.json
    with a training list), "nnunet" the nnU-Net v2 raw layout (imagesTr/<key>_0000.nii.gz, one
    file per channel). Images are stored as float32 in the generator's range [-1, 1]: MRI has no
    physical unit to map back to, and both tools normalise intensities themselves. Volumes are
    at the network's shape with an identity affine (1 mm voxels): they were never in a scanner.

    >>> writer = VolumeWriter(Path("Dataset902_SynHippo"), "nnunet", 1, ["anterior", "posterior"])
    >>> writer.add("syn_00000", image, labels); writer.close("synthetic hippocampus")
    """

    def __init__(self, out: Path, fmt: str, channels: int, classes: Sequence[str]) -> None:
        prepare_out(out, fmt)
        self.out, self.fmt, self.channels, self.ids = out, fmt, channels, []
        self.labels = {"0": "background", **{str(i): c for i, c in enumerate(classes, 1)}}
        self.image_dir, self.label_dir = out / "imagesTr", out / "labelsTr"
        self.image_dir.mkdir(parents=True)
        self.label_dir.mkdir(parents=True)

    def add(self, key: str, image: np.ndarray, labels: np.ndarray) -> None:
        """image: float C x D x H x W in [-1, 1]; labels: integers 0..n_classes, D x H x W."""
        image = image.astype(np.float32)
        if self.fmt == "nnunet":  # nnU-Net: one file per channel, suffixed with its index
            for c, channel in enumerate(image):
                write_nifti(self.image_dir / f"{key}_{c:04d}{NIFTI}", channel)
        else:
            write_nifti(self.image_dir / f"{key}{NIFTI}", channels_last(image))
        write_nifti(self.label_dir / f"{key}{NIFTI}", labels.astype(np.uint8))
        self.ids.append(key)

    def close(self, description: str) -> None:
        """Write dataset.json in the format's own schema."""
        names = {str(c): "synthetic" for c in range(self.channels)}  # not "CT": no HU scale
        if self.fmt == "nnunet":
            meta = {
                "channel_names": names,
                "labels": {name: int(value) for value, name in self.labels.items()},
                "numTraining": len(self.ids),
                "file_ending": NIFTI,
                "description": description,
            }
        else:
            meta = {
                "name": self.out.name,
                "description": description,
                "tensorImageSize": "3D" if self.channels == 1 else "4D",
                "modality": names,
                "labels": self.labels,
                "numTraining": len(self.ids),
                "numTest": 0,
                "training": [
                    {"image": f"./imagesTr/{k}{NIFTI}", "label": f"./labelsTr/{k}{NIFTI}"}
                    for k in self.ids
                ],
                "test": [],
            }
        write_json(self.out / "dataset.json", meta)

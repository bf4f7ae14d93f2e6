"""3D image/label volumes (MSD layout) and the torch Dataset that feeds them to a network.

The 3D twin of `genseg_cli.data.dataset`: volumes are read with nibabel, intensities mapped to
[-1, 1] (the generator's tanh range) by per-volume percentiles, and each volume is resampled
once to the network's input shape (`dataset.volume_shape`, trilinear for images, nearest for
labels) and kept in memory. Items have the same keys as 2D items; masks are one-hot over
background + classes, so generators, losses and metrics see the label map as channels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from genseg_cli.errors import DataContractError

NIFTI_SUFFIXES = (".nii.gz", ".nii")


@dataclass
class Volume:
    """One volume at original resolution: intensities (float32), labels (uint8), voxel spacing."""

    id: str
    image: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, ...]

    @property
    def mask(self) -> np.ndarray:
        """The label map, under the name 2D pairs use (shapes, nearest-real lookups)."""
        return self.labels


def volume_id(path: Path) -> str:
    """'hippocampus_001.nii.gz' -> 'hippocampus_001'."""
    for suffix in NIFTI_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def index_volumes(folder: Path) -> dict[str, Path]:
    """id -> NIfTI file of a folder; MSD's '._*' resource forks are skipped."""
    if not folder.is_dir():
        raise DataContractError(f"{folder} is not a folder of NIfTI volumes")
    index: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.name.endswith(NIFTI_SUFFIXES) or path.name.startswith("."):
            continue
        key = volume_id(path)
        if key in index:
            raise DataContractError(
                f"{folder}: {index[key].name} and {path.name} share the id '{key}'; keep one"
            )
        index[key] = path
    return index


def read_volume(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """Voxel array (first three axes) and voxel spacing in mm, with the file named on failure."""
    import nibabel as nib

    try:
        image = nib.load(path)
        data = np.asarray(image.dataobj)
    except Exception as err:  # nibabel raises many types for broken files
        raise DataContractError(f"{path}: cannot read NIfTI ({err}); re-download it") from err
    if data.ndim == 4:  # MSD images of several modalities: this project uses the first
        data = data[..., 0]
    if data.ndim != 3:
        raise DataContractError(f"{path}: expected a 3D volume, got shape {data.shape}")
    return data, tuple(float(z) for z in image.header.get_zooms()[:3])


def load_volumes(root: Path, ids: Sequence[str]) -> list[Volume]:
    """Read the volumes `ids` of an MSD-layout folder (imagesTr/, labelsTr/)."""
    images, labels = index_volumes(root / "imagesTr"), index_volumes(root / "labelsTr")
    volumes = []
    for i in ids:
        image, spacing = read_volume(images[i])
        label, _ = read_volume(labels[i])
        volumes.append(Volume(i, image.astype(np.float32), label.astype(np.uint8), spacing))
    return volumes


def normalise_intensity(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Clip to the volume's own percentiles and map linearly to [-1, 1] (MRI has no fixed unit).

    >>> normalise_intensity(np.arange(1000, dtype=np.float32)).min()
    -1.0
    """
    lo, hi = np.percentile(image, [low, high])
    scaled = (np.clip(image, lo, hi) - lo) / max(hi - lo, 1e-6)
    return (scaled * 2 - 1).astype(np.float32)


def resize_volume(volume: Volume, shape: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Image (1 x shape float in [-1, 1], trilinear) and labels (shape, int64, nearest)."""
    image = torch.from_numpy(normalise_intensity(volume.image))[None, None]
    labels = torch.from_numpy(volume.labels.astype(np.int64))[None, None].float()
    size = tuple(int(s) for s in shape)
    image = F.interpolate(image, size=size, mode="trilinear", align_corners=False)[0]
    labels = F.interpolate(labels, size=size, mode="nearest")[0, 0].long()
    return image, labels


def one_hot(labels: torch.Tensor, channels: int) -> torch.Tensor:
    """Label map (spatial) -> float one-hot (channels x spatial), background first."""
    return F.one_hot(labels.long(), channels).movedim(-1, 0).float().contiguous()


LabelTransform = Callable[[dict], dict]


def plain_tensor(data) -> torch.Tensor:
    """A torch.Tensor from a MONAI MetaTensor (whose metadata would follow it into batches)."""
    return data.as_tensor() if hasattr(data, "as_tensor") else torch.as_tensor(data)


def augment_labels(labels: torch.Tensor, pipeline: LabelTransform | None) -> torch.Tensor:
    """A new label map from `labels` (spatial, int): moved by a MONAI dictionary pipeline on
    key "label" (nearest interpolation keeps it a label map), rounded back to integers."""
    if pipeline is None:
        return labels.clone()
    moved = pipeline({"label": labels[None].float()})["label"]
    return plain_tensor(moved)[0].round().long()


class VolumeDataset(Dataset):
    """Volumes at network shape, optionally augmented (MONAI dictionary transforms on "image"
    and "label" together); items match `SegmentationDataset`'s keys.

    >>> ds = VolumeDataset(volumes, shape=(32, 48, 32), mask_channels=3)
    >>> ds[0]["image"].shape, ds[0]["mask"].shape
    (torch.Size([1, 32, 48, 32]), torch.Size([3, 32, 48, 32]))
    """

    def __init__(
        self,
        volumes: list[Volume],
        shape: Sequence[int],
        mask_channels: int,
        transform: LabelTransform | None = None,
        mask_pipeline: LabelTransform | None = None,
        with_new_masks: bool = False,
    ):
        if mask_channels < 2:
            raise ValueError("3D masks are one-hot over background + classes: mask_channels >= 2")
        self.ids = [v.id for v in volumes]
        self.items = [resize_volume(v, shape) for v in volumes]
        self.mask_channels = mask_channels
        self.transform = transform
        self.mask_pipeline = mask_pipeline
        self.with_new_masks = with_new_masks

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        image, labels = self.items[index]
        if self.transform is not None:
            out = self.transform({"image": image.clone(), "label": labels[None].float()})
            image = plain_tensor(out["image"]).float()
            labels = plain_tensor(out["label"])[0].round().long()
        item = {
            "image": image.contiguous(),
            "mask": one_hot(labels, self.mask_channels),
            "id": self.ids[index],
        }
        if self.with_new_masks:
            new_labels = augment_labels(self.items[index][1], self.mask_pipeline)
            item["new_mask"] = one_hot(new_labels, self.mask_channels)
        return item

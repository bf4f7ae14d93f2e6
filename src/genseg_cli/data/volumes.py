"""3D image/label volumes: the MSD layout (imagesTr/, labelsTr/), NIfTI files, MONAI
augmentation, and resampling to the network's input shape.

The 3D twin of `genseg_cli.data.images`: volumes are read with nibabel, intensities mapped to
[-1, 1] (the generator's tanh range) by per-volume percentiles, and each volume is resampled
once to the network's input shape (`dataset.volume_shape`, trilinear for images, nearest for
labels) and kept in memory. Masks are one-hot over background + classes, so generators, losses
and metrics see the label map as channels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from genseg_cli.core.errors import DataContractError
from genseg_cli.data.contract import (
    ContractReport,
    PairFacts,
    check_label_values,
    check_msd_labels,
)
from genseg_cli.data.samples import Sample, SampleCodec
from genseg_cli.data.writers import VolumeWriter, write_nifti

if TYPE_CHECKING:
    from genseg_cli.data.spec import DataSpec

NIFTI_SUFFIXES = (".nii.gz", ".nii")


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


def load_volumes(root: Path, ids: Sequence[str]) -> list[Sample]:
    """Read the volumes `ids` of an MSD-layout folder (imagesTr/, labelsTr/)."""
    images, labels = index_volumes(root / "imagesTr"), index_volumes(root / "labelsTr")
    volumes = []
    for i in ids:
        image, spacing = read_volume(images[i])
        label, _ = read_volume(labels[i])
        volumes.append(Sample(i, image.astype(np.float32), label.astype(np.uint8), spacing))
    return volumes


def normalise_intensity(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Clip to the volume's own percentiles and map linearly to [-1, 1] (MRI has no fixed unit).

    >>> normalise_intensity(np.arange(1000, dtype=np.float32)).min()
    -1.0
    """
    lo, hi = np.percentile(image, [low, high])
    scaled = (np.clip(image, lo, hi) - lo) / max(hi - lo, 1e-6)
    return (scaled * 2 - 1).astype(np.float32)


def resize_volume(volume: Sample, shape: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Image (1 x shape float in [-1, 1], trilinear) and labels (shape, int64, nearest)."""
    image = torch.from_numpy(normalise_intensity(volume.image))[None, None]
    labels = torch.from_numpy(volume.mask.astype(np.int64))[None, None].float()
    size = tuple(int(s) for s in shape)
    image = F.interpolate(image, size=size, mode="trilinear", align_corners=False)[0]
    labels = F.interpolate(labels, size=size, mode="nearest")[0, 0].long()
    return image, labels


def one_hot(labels: torch.Tensor, channels: int) -> torch.Tensor:
    """Label map (spatial) -> float one-hot (channels x spatial), background first."""
    return F.one_hot(labels.long(), channels).movedim(-1, 0).float().contiguous()


LabelTransform = Callable[[dict], dict]


def plain_tensor(data: object) -> torch.Tensor:
    """A torch.Tensor from a MONAI MetaTensor (whose metadata would follow it into batches)."""
    return data.as_tensor() if hasattr(data, "as_tensor") else torch.as_tensor(data)


def augment_labels(labels: torch.Tensor, pipeline: LabelTransform | None) -> torch.Tensor:
    """A new label map from `labels` (spatial, int): moved by a MONAI dictionary pipeline on
    key "label" (nearest interpolation keeps it a label map), rounded back to integers."""
    if pipeline is None:
        return labels.clone()
    moved = pipeline({"label": labels[None].float()})["label"]
    return plain_tensor(moved)[0].round().long()


class VolumeCodec(SampleCodec):
    """3D volumes: NIfTI images (float32 D x H x W) with label maps (uint8, 0..n classes).

    >>> item = SampleDataset(load_volumes(root, ["hippocampus_001"]), spec)[0]
    >>> item["image"].shape, item["mask"].shape
    (torch.Size([1, 32, 48, 32]), torch.Size([3, 32, 48, 32]))
    """

    dims = 3
    folders = ("imagesTr", "labelsTr")
    pipeline_key = "volume_pipeline"
    mask_kind = "label_map"
    inputs = f"NIfTI volumes ({', '.join(NIFTI_SUFFIXES)})"

    def index(self, folder: Path) -> dict[str, Path]:
        return index_volumes(folder)

    def count_pairs(self, root: Path) -> int:
        return len(list((root / self.folders[0]).glob("*.nii.gz")))

    def inspect(self, image: Path, mask: Path) -> PairFacts:
        import nibabel as nib

        try:
            image_shape = nib.load(image).shape
            labels = np.asarray(nib.load(mask).dataobj)
        except Exception as err:  # nibabel raises many types for broken files
            raise DataContractError(f"cannot read {image.name}/{mask.name}: {err}") from err
        return PairFacts(
            modes=[f"label {int(v)}" for v in np.unique(labels)],
            image_size=tuple(image_shape[:3]),
            mask_size=tuple(labels.shape[:3]),
            empty=not labels.any(),
            foreground=float((labels > 0).mean()),
        )

    def check_entry(
        self, entry: DictConfig, report: ContractReport, root: Path, check_modes: bool
    ) -> None:
        check_label_values(entry, report.modes, root)
        check_msd_labels(entry, root)

    def folder_entry(self, run_entry: DictConfig) -> DictConfig:
        # a folder's label maps must hold the run's own classes
        return run_entry

    def load(self, root: Path, ids: Sequence[str], channels: int) -> list[Sample]:
        return load_volumes(root, ids)

    def input_files(self, folder: Path) -> list[Path]:
        return sorted(index_volumes(folder).values()) if folder.is_dir() else []

    def read_input(self, path: Path, spec: DataSpec) -> Sample:
        image, spacing = read_volume(path)
        labels = np.zeros(image.shape, np.uint8)  # never read: prediction only needs the image
        return Sample(volume_id(path), image.astype(np.float32), labels, spacing)

    def write_prediction(
        self, prediction: np.ndarray, sample: Sample, source: Path, out: Path
    ) -> None:
        """A uint8 label map named like its input, with the input's affine and header."""
        import nibabel as nib

        original = nib.load(source)
        write_nifti(
            out / source.name, prediction.astype(np.uint8), original.affine, original.header
        )

    def writer(self, out: Path, fmt: str, spec: DataSpec) -> VolumeWriter:
        return VolumeWriter(out, fmt, spec.image_channels, spec.class_names)

    def model_contract(self, spec: DataSpec) -> dict:
        channels, spatial = spec.image_channels, " x ".join(str(s) for s in spec.spatial)
        classes = ["background", *spec.class_names]
        return {
            "input": f"float32 N x {channels} x {spatial}: each volume clipped to its own "
            "0.5-99.5th intensity percentiles, mapped linearly to [-1, 1], resized (trilinear)",
            "output": f"float32 N x {len(classes)} x {spatial} logits; resized (trilinear) to "
            "the volume's shape, argmax over channels is the label map (index into classes)",
            "classes": classes,
        }

    def validate(self, spec: DataSpec) -> None:
        if spec.mask_channels < 2:
            raise ValueError("3D masks are one-hot over background + classes: mask_channels >= 2")

    def model_pair(self, sample: Sample, spec: DataSpec) -> tuple[torch.Tensor, torch.Tensor]:
        return resize_volume(sample, spec.spatial)

    def model_target(self, sample: Sample, shape: Sequence[int]) -> np.ndarray:
        return resize_volume(sample, shape)[1].numpy()

    def augment(
        self, image: torch.Tensor, mask: torch.Tensor, transform: LabelTransform
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = transform({"image": image.clone(), "label": mask[None].float()})
        return plain_tensor(out["image"]).float(), plain_tensor(out["label"])[0].round().long()

    def image_tensor(self, image: torch.Tensor) -> torch.Tensor:
        return image.contiguous()

    def mask_tensor(self, mask: torch.Tensor, spec: DataSpec) -> torch.Tensor:
        return one_hot(mask, spec.mask_channels)

    def new_mask(
        self, mask: torch.Tensor, pipeline: LabelTransform | None, spec: DataSpec
    ) -> torch.Tensor:
        # nearest resampling keeps the labels; the clamp only guards one_hot against a pipeline
        # configured with another interpolation
        return augment_labels(mask, pipeline).clamp(0, spec.mask_channels - 1)

    def mask_array(self, mask: torch.Tensor) -> np.ndarray:
        return mask.numpy().astype(np.uint8)

    def seed_pipeline(self, pipeline: Any, seed: int) -> None:
        pipeline.set_random_state(seed=seed)


VOLUMES = VolumeCodec()

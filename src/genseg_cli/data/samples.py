"""One sample type for 2D and 3D data, and the codec interface that hides the difference.

A `Sample` is one labelled image (2D) or volume (3D) at original resolution. Everything that
depends on dimensionality (folder layout, file formats, resizing to the network's input,
augmentation library, contract checks, prediction files, synthetic-pair writers, the deployed
model's input contract) sits behind a `SampleCodec`: `genseg_cli.data.images.IMAGES` for 2D,
`genseg_cli.data.volumes.VOLUMES` for 3D, chosen by `DataSpec.codec` (or `codecs.codec_for`).
Callers outside `genseg_cli.data` never branch on dimensionality; they ask the codec.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from omegaconf import DictConfig

from genseg_cli.data.contract import ContractReport, PairFacts, check_folder

if TYPE_CHECKING:
    from genseg_cli.data.spec import DataSpec

# a codec's own in-memory form of an image or a mask at model size (numpy in 2D, torch in 3D)
Native = Any


@dataclass
class Sample:
    """One image and its mask at original resolution.

    2D: image uint8 H x W x C, mask bool H x W, no spacing. 3D: image float32 D x H x W
    (intensities as stored), mask uint8 D x H x W (0 background, 1..n the classes), spacing
    the voxel size in mm. A sample read for prediction has an all-background mask.
    """

    id: str
    image: np.ndarray
    mask: np.ndarray
    spacing: tuple[float, ...] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """The spatial shape (the mask's): H x W, or D x H x W."""
        return tuple(self.mask.shape)


class SampleWriter(Protocol):
    """Writes synthetic pairs into a folder: `add` one pair at a time, then `close`."""

    def add(self, key: str, image: np.ndarray, mask: np.ndarray) -> None: ...

    def close(self, description: str) -> None: ...


class SampleCodec(ABC):
    """Everything about samples that differs between 2D images and 3D volumes.

    Class attributes: `dims`; `folders`, a dataset root's image and mask folders; `pipeline_key`,
    the augmentation config's key for this codec's library; `mask_kind`, "binary" (one {0, 1}
    channel) or "label_map" (one-hot background + classes), which decides how predictions are
    scored; `inputs`, what `genseg predict` reads, for messages.
    """

    dims: int
    folders: tuple[str, str]
    pipeline_key: str
    mask_kind: str
    inputs: str

    # --- dataset folders --------------------------------------------------------------------

    def is_present(self, root: Path) -> bool:
        """Whether `root` holds this layout's image folder."""
        return (root / self.folders[0]).is_dir()

    @abstractmethod
    def index(self, folder: Path) -> dict[str, Path]:
        """id -> file of one folder of images, masks or label maps."""

    def ids(self, root: Path) -> list[str]:
        """Sorted ids of a dataset root's images."""
        return sorted(self.index(root / self.folders[0]))

    @abstractmethod
    def count_pairs(self, root: Path) -> int:
        """How many pairs a dataset root holds, cheaply (for `genseg data list`)."""

    def check(self, root: Path) -> ContractReport:
        """Check every pair of a dataset root against the contract and report what is wrong."""
        images, masks = self.index(root / self.folders[0]), self.index(root / self.folders[1])
        return check_folder(root, images, masks, self.inspect)

    @abstractmethod
    def inspect(self, image: Path, mask: Path) -> PairFacts:
        """What the contract check needs of one pair; DataContractError when unreadable."""

    @abstractmethod
    def check_entry(
        self, entry: DictConfig, report: ContractReport, root: Path, check_modes: bool
    ) -> None:
        """The contract checks that need the registry entry (image modes against its channels
        when `check_modes`, label values against its classes); raise with the fix."""

    @abstractmethod
    def folder_entry(self, run_entry: DictConfig) -> DictConfig:
        """The registry entry a user's folder is checked against when a run scores it."""

    @abstractmethod
    def load(self, root: Path, ids: Sequence[str], channels: int) -> list[Sample]:
        """Read the samples `ids` of a dataset root (2D images converted to `channels`)."""

    # --- prediction and synthetic pairs -----------------------------------------------------

    @abstractmethod
    def input_files(self, folder: Path) -> list[Path]:
        """The files `genseg predict` reads from `folder`, in prediction order."""

    @abstractmethod
    def read_input(self, path: Path, spec: DataSpec) -> Sample:
        """An unlabelled sample (all-background mask) from one input file."""

    @abstractmethod
    def write_prediction(
        self, prediction: np.ndarray, sample: Sample, source: Path, out: Path
    ) -> None:
        """Write a prediction at the sample's own shape (bool mask or label map) into `out`."""

    @abstractmethod
    def writer(self, out: Path, fmt: str, spec: DataSpec) -> SampleWriter:
        """A writer of synthetic pairs into `out` in format `fmt` ("standard" or "nnunet")."""

    @abstractmethod
    def model_contract(self, spec: DataSpec) -> dict:
        """What a deployed segmenter takes and returns, in words (model.json)."""

    # --- network tensors --------------------------------------------------------------------

    def validate(self, spec: DataSpec) -> None:  # noqa: B027 - optional hook, nothing by default
        """Refuse a spec this codec cannot feed a network with."""

    @abstractmethod
    def model_pair(self, sample: Sample, spec: DataSpec) -> tuple[Native, Native]:
        """Image and mask resized to the model size, in the codec's own form."""

    def model_input(self, sample: Sample, spec: DataSpec) -> torch.Tensor:
        """The sample's image as the network sees it (C x spatial, float in [-1, 1])."""
        return self.image_tensor(self.model_pair(sample, spec)[0])

    @abstractmethod
    def model_target(self, sample: Sample, shape: Sequence[int]) -> np.ndarray:
        """The sample's mask (bool) or label map resized to `shape`, for scoring there."""

    @abstractmethod
    def augment(self, image: Native, mask: Native, transform: Any) -> tuple[Native, Native]:
        """Image and mask moved together by an augmentation pipeline."""

    @abstractmethod
    def image_tensor(self, image: Native) -> torch.Tensor:
        """An image at model size as a network input (C x spatial, float)."""

    @abstractmethod
    def mask_tensor(self, mask: Native, spec: DataSpec) -> torch.Tensor:
        """A mask at model size as a network target (mask_channels x spatial, float)."""

    @abstractmethod
    def new_mask(self, mask: Native, pipeline: Any, spec: DataSpec) -> Native:
        """A new mask made from `mask` by a mask-augmentation pipeline (or a copy without)."""

    @abstractmethod
    def mask_array(self, mask: Native) -> np.ndarray:
        """A mask at model size as a writer stores it (uint8 {0, 1} or label values)."""

    @abstractmethod
    def seed_pipeline(self, pipeline: Any, seed: int) -> None:
        """Seed an augmentation pipeline's own random generator."""

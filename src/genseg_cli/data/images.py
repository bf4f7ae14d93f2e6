"""2D image/mask pairs: the standard layout (images/<id>.<ext>, masks/<id>.png), PNG/JPG files,
albumentations, and resizing to the model's square input.

Images are resized once to the model's square input (data.image_size) and kept in memory: the
label budgets of this project are tens to hundreds of images. Network inputs are float in [-1, 1]
(the range a tanh generator produces too), masks float {0, 1} in one channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import albumentations as A
import cv2
import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image

from genseg_cli.data.contract import ContractReport, PairFacts, check_channels, grey_and_colour
from genseg_cli.data.io import index_folder, open_image, read_image, read_mask, read_mask_file
from genseg_cli.data.mask_augment import augment_mask
from genseg_cli.data.registry import GENERIC, dataset_spec
from genseg_cli.data.samples import Sample, SampleCodec
from genseg_cli.data.writers import PairWriter

if TYPE_CHECKING:
    from genseg_cli.data.spec import DataSpec


def _size(group: tuple[list[str], str]) -> int:
    return len(group[0])


def load_pairs(root: Path, ids: Sequence[str], channels: int) -> list[Sample]:
    """Read the pairs `ids` of a standard-layout folder."""
    images, masks = index_folder(root / "images"), index_folder(root / "masks")
    return [Sample(i, read_image(images[i], channels), read_mask(masks[i])) for i in ids]


def resize_pair(pair: Sample, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Image (uint8 size x size x C, area/linear resampling) and mask (uint8 {0,1}, nearest)."""
    interp = cv2.INTER_AREA if max(pair.image.shape[:2]) > size else cv2.INTER_LINEAR
    image = cv2.resize(pair.image, (size, size), interpolation=interp)
    if image.ndim == 2:
        image = image[..., None]
    mask = cv2.resize(pair.mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    return image, mask


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWxC -> float CxHxW in [-1, 1].

    The arithmetic is numpy's (the same float32 values as torch's, bit for bit): a small torch
    op on the CPU goes through torch's thread pool, which on a 16-core GPU host cost ~4 ms per
    image under cProfile, the larger part of a training step's time there."""
    chw = np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.float32)
    return torch.from_numpy(chw / np.float32(127.5) - np.float32(1.0))


def square_side(shape: Sequence[int]) -> int:
    """The side of a square 2D shape (the model's input and its logits are square)."""
    return int(shape[-1])


class ImageCodec(SampleCodec):
    """2D pairs: PNG/JPG images (uint8 H x W x C) with binary masks (bool H x W; stored 0/255 or
    0/1).

    >>> item = SampleDataset(load_pairs(root, ["case00"], 1), spec)[0]  # spec.model_size 128
    >>> item["image"].shape, item["mask"].shape
    (torch.Size([1, 128, 128]), torch.Size([1, 128, 128]))
    """

    dims = 2
    folders = ("images", "masks")
    pipeline_key = "pipeline"
    mask_kind = "binary"
    inputs = "images (.png, .jpg, ...)"

    def index(self, folder: Path) -> dict[str, Path]:
        return index_folder(folder)

    def count_pairs(self, root: Path) -> int:
        images, masks = (self.index(root / folder) for folder in self.folders)
        return len(images.keys() & masks.keys())

    def check(self, root: Path) -> ContractReport:
        report = super().check(root)
        grey, colour = grey_and_colour(report)
        if grey and colour:  # no dataset.channels reads both without converting some silently
            # name the fewer kind: the odd ones out, most likely the mistake
            (few, kind), (most, other) = sorted([(grey, "grey"), (colour, "colour")], key=_size)
            names = index_folder(root / "images")
            shown = ", ".join(names[i].name for i in few[:10])
            more = f" and {len(few) - 10} more" if len(few) > 10 else ""
            one = len(few) == 1
            report.other_problems.append(
                f"{len(few)} {kind} image{'' if one else 's'} among {len(most)} {other} ones "
                f"({shown}{more}): convert {'it' if one else 'them'} to {other} so that every "
                "image has the same channels"
            )
        return report

    def inspect(self, image: Path, mask: Path) -> PairFacts:
        picture, stored = open_image(image), read_mask_file(mask)
        height, width = stored.foreground.shape
        return PairFacts(
            modes=[picture.mode],
            image_size=picture.size,
            mask_size=(width, height),
            empty=not stored.foreground.any(),
            foreground=float(stored.foreground.mean()),
            convention=stored.convention,
            grey_rgb=stored.grey_rgb,
        )

    def check_entry(
        self, entry: DictConfig, report: ContractReport, root: Path, check_modes: bool
    ) -> None:
        if check_modes:
            check_channels(entry, report, root)

    def folder_entry(self, run_entry: DictConfig) -> DictConfig:
        # binary masks carry no classes to check: the generic entry, whose messages fit a folder
        return dataset_spec(GENERIC)

    def load(self, root: Path, ids: Sequence[str], channels: int) -> list[Sample]:
        return load_pairs(root, list(ids), channels)

    def input_files(self, folder: Path) -> list[Path]:
        images = index_folder(folder)
        return [images[i] for i in sorted(images)]

    def read_input(self, path: Path, spec: DataSpec) -> Sample:
        image = read_image(path, spec.image_channels)
        return Sample(path.stem, image, np.zeros(image.shape[:2], bool))

    def write_prediction(
        self, prediction: np.ndarray, sample: Sample, source: Path, out: Path
    ) -> None:
        """A 0/255 PNG mask named after the image's id."""
        Image.fromarray((prediction * 255).astype(np.uint8)).save(out / f"{sample.id}.png")

    def writer(self, out: Path, fmt: str, spec: DataSpec) -> PairWriter:
        return PairWriter(out, fmt, spec.image_channels)

    def model_contract(self, spec: DataSpec) -> dict:
        channels, size = spec.image_channels, square_side(spec.spatial)
        return {
            "input": f"float32 N x {channels} x {size} x {size}, pixel values v in 0..255 "
            "mapped to v / 127.5 - 1, image resized to the square input",
            "output": "float32 N x 1 x H x W logits; sigmoid(logit) > threshold is the mask",
        }

    def model_pair(self, sample: Sample, spec: DataSpec) -> tuple[np.ndarray, np.ndarray]:
        return resize_pair(sample, square_side(spec.spatial))

    def model_target(self, sample: Sample, shape: Sequence[int]) -> np.ndarray:
        return resize_pair(sample, square_side(shape))[1].astype(bool)

    def augment(
        self, image: np.ndarray, mask: np.ndarray, transform: A.Compose
    ) -> tuple[np.ndarray, np.ndarray]:
        out = transform(image=image, mask=mask)
        image, mask = out["image"], out["mask"]
        if image.ndim == 2:  # some albumentations ops drop a singleton channel axis
            image = image[..., None]
        return image, mask

    def image_tensor(self, image: np.ndarray) -> torch.Tensor:
        return to_tensor(image)

    def mask_tensor(self, mask: np.ndarray, spec: DataSpec) -> torch.Tensor:
        return torch.from_numpy(mask.astype(np.float32)[None])  # numpy: see to_tensor

    def new_mask(self, mask: np.ndarray, pipeline: A.Compose | None, spec: DataSpec) -> np.ndarray:
        return augment_mask(mask, pipeline)

    def mask_array(self, mask: np.ndarray) -> np.ndarray:
        return mask

    def seed_pipeline(self, pipeline: A.Compose, seed: int) -> None:
        pipeline.set_random_seed(seed)


IMAGES = ImageCodec()

"""`genseg generate run_dir=RUN n=500 out=DIR [format=standard|nnunet]`: synthetic pairs.

Masks are made by the run's mask_augment pipeline from its own training masks; images by its
trained generator (separate or genseg runs). 2D runs write PNG pairs (images/, masks/);
`format=nnunet` writes an nnU-Net v2 raw dataset (imagesTr/<case>_0000.png, labelsTr/<case>.png
with labels 0/1, dataset.json). 3D runs write NIfTI volumes at the network's shape: by default
in the Medical Segmentation Decathlon layout (imagesTr/, labelsTr/, dataset.json), with
`format=nnunet` in nnU-Net v2's (imagesTr/<case>_0000.nii.gz); labels are 0 background, 1..n the
dataset's classes. nnU-Net wants its folder named DatasetXXX_Name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from genseg_cli.data.dataset import load_pairs, resize_pair
from genseg_cli.data.mask_augment import augment_mask
from genseg_cli.data.registry import class_names, dataset_root, mask_channels
from genseg_cli.data.samples import model_size
from genseg_cli.data.volumes import augment_labels, load_volumes, one_hot, resize_volume
from genseg_cli.data.writers import NNUNET_NAME, PairWriter, VolumeWriter
from genseg_cli.engine.loop import instantiate_pipeline
from genseg_cli.engine.restore import TrainedRun, load_generator, load_run
from genseg_cli.errors import GensegError
from genseg_cli.stages.arguments import REQUIRED, parse_key_values

log = logging.getLogger(__name__)
ARGS = {
    "run_dir": REQUIRED,
    "out": REQUIRED,
    "n": 500,
    "format": "standard",
    "seed": 0,
    "batch_size": 16,
    "device": "auto",
}

# One new mask per call: (the generator's input, C x spatial float; the mask to write)
MaskSource = Callable[[], tuple[torch.Tensor, np.ndarray]]


def generate_pairs(args: list[str]) -> Path:
    """Write `n` synthetic pairs of a finished separate/genseg run into `out`.

    >>> generate_pairs(["run_dir=outputs/runs/jsrt/genseg/n9_s0", "n=5", "out=synthetic"])
    PosixPath('synthetic')
    """
    opts = parse_key_values("generate", args, ARGS)
    if int(opts.n) < 1:
        raise GensegError(f"n={opts.n}: ask for at least one pair")
    run = load_run(opts.run_dir, opts.device)
    generator = load_generator(run)
    out = Path(opts.out).expanduser()
    if opts.format == "nnunet" and not NNUNET_NAME.match(out.name):
        log.warning("nnU-Net expects the folder to be named DatasetXXX_Name, not %s", out.name)
    writer = make_writer(run, out, str(opts.format))  # refuses a non-empty out before any work
    new_mask = mask_source(run, int(opts.seed))
    for start in range(0, int(opts.n), int(opts.batch_size)):
        count = min(int(opts.batch_size), int(opts.n) - start)
        made = [new_mask() for _ in range(count)]
        with torch.no_grad():
            images = generator(torch.stack([m[0] for m in made]).to(run.runtime.device))
        for i, (image, (_, mask)) in enumerate(
            zip(images.float().cpu().numpy(), made, strict=True)
        ):
            writer.add(f"syn_{start + i:05d}", image, mask)
    writer.close(f"synthetic pairs from genseg run {run.run_dir}")
    return out


def make_writer(run: TrainedRun, out: Path, fmt: str) -> PairWriter | VolumeWriter:
    """PNG pairs for a 2D run, NIfTI volumes for a 3D run."""
    channels = int(run.cfg.dataset.channels)
    if int(run.cfg.dataset.dims) == 3:
        return VolumeWriter(out, fmt, channels, class_names(run.cfg.dataset))
    return PairWriter(out, fmt, channels)


def mask_source(run: TrainedRun, seed: int) -> MaskSource:
    """New masks from the run's training masks, for its dimensionality."""
    return volume_masks(run, seed) if int(run.cfg.dataset.dims) == 3 else image_masks(run, seed)


def image_masks(run: TrainedRun, seed: int) -> MaskSource:
    """2D: a random training mask at model size, moved by the albumentations pipeline; the
    generator sees it as 1 x S x S {0, 1}, the writer gets it as uint8 S x S."""
    size = int(run.cfg.data.image_size)
    root = dataset_root(run.cfg.dataset, run.cfg.paths.data_dir)
    pairs = load_pairs(root, run.splits["train"], int(run.cfg.dataset.channels))
    real = [resize_pair(p, size)[1] for p in pairs]
    pipeline = instantiate_pipeline(run.cfg.get("mask_augment"), seed)
    rng = np.random.default_rng(seed)

    def new_mask() -> tuple[torch.Tensor, np.ndarray]:
        mask = augment_mask(real[rng.integers(len(real))], pipeline)
        return torch.from_numpy(mask).float()[None], mask

    return new_mask


def volume_masks(run: TrainedRun, seed: int) -> MaskSource:
    """3D: a random training label map at model size, moved by the MONAI pipeline; the
    generator sees it one-hot (background + classes), the writer gets the uint8 label map."""
    channels = mask_channels(run.cfg.dataset)
    root = dataset_root(run.cfg.dataset, run.cfg.paths.data_dir)
    size = model_size(run.cfg)
    real = [resize_volume(v, size)[1] for v in load_volumes(root, run.splits["train"])]
    pipeline = instantiate_pipeline(run.cfg.get("mask_augment"), seed, dims=3)
    rng = np.random.default_rng(seed)

    def new_labels() -> tuple[torch.Tensor, np.ndarray]:
        labels = augment_labels(real[rng.integers(len(real))], pipeline)
        # nearest resampling keeps the labels; the clamp only guards one_hot against a pipeline
        # configured with another interpolation
        labels = labels.clamp(0, channels - 1)
        return one_hot(labels, channels), labels.numpy().astype(np.uint8)

    return new_labels


def main(args: list[str]) -> int:
    out = generate_pairs(args)
    log.info("wrote synthetic pairs to %s", out)
    return 0

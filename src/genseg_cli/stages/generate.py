"""`genseg generate run_dir=RUN n=500 out=DIR [format=standard|nnunet]`: synthetic pairs.

Masks are made by the run's mask_augment pipeline from its own training masks; images by its
trained generator (separate or genseg runs). A generator that makes its own masks (wgan) writes
its pairs, masks thresholded at 0.5. 2D runs write PNG pairs (images/, masks/);
`format=nnunet` writes an nnU-Net v2 raw dataset (imagesTr/<case>_0000.png, labelsTr/<case>.png
with labels 0/1, dataset.json). 3D runs write NIfTI volumes at the network's shape: by default
in the Medical Segmentation Decathlon layout (imagesTr/, labelsTr/, dataset.json), with
`format=nnunet` in nnU-Net v2's (imagesTr/<case>_0000.nii.gz); labels are 0 background, 1..n the
dataset's classes. nnU-Net wants its folder named DatasetXXX_Name.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from genseg_cli.core.files import refuse_non_empty
from genseg_cli.data.batches import MaskSource, new_masks
from genseg_cli.data.registry import dataset_root
from genseg_cli.data.writers import FORMATS, NNUNET_NAME
from genseg_cli.engine.restore import TrainedRun, load_recipe, load_run
from genseg_cli.stages.arguments import Arg, parse_key_values

log = logging.getLogger(__name__)
ARGS = {
    "run_dir": Arg(help="a finished separate or genseg run (it holds a trained generator)"),
    "out": Arg(help="a new or empty folder for the pairs"),
    "n": Arg(500, int, minimum=1, help="how many pairs to write"),
    "format": Arg(
        "standard", str, choices=FORMATS, help="standard: images/ + masks/; nnunet: nnU-Net v2 raw"
    ),
    "seed": Arg(0, int, help="seed of the new masks and the generator's noise"),
    "batch_size": Arg(16, int, minimum=1, help="pairs generated at once"),
    "device": Arg("auto", str, help="auto (CUDA when present), cpu, cuda or cuda:N"),
}
ABOUT = "Write synthetic image-mask pairs from the generator of a trained run."


def generate_pairs(args: list[str]) -> Path:
    """Write `n` synthetic pairs of a finished separate/genseg run into `out`.

    >>> generate_pairs(["run_dir=outputs/runs/jsrt/genseg/n9_s0", "n=5", "out=synthetic"])
    PosixPath('synthetic')
    """
    opts = parse_key_values("generate", args, ARGS, ABOUT)
    out = Path(opts.out).expanduser()
    refuse_non_empty(out, "out")  # before the run is even opened
    run = load_run(opts.run_dir, opts.device)
    recipe = load_recipe(run)
    if opts.format == "nnunet" and not NNUNET_NAME.match(out.name):
        log.warning("nnU-Net expects the folder to be named DatasetXXX_Name, not %s", out.name)
    # PNG pairs for a 2D run, NIfTI volumes for a 3D run; refuses a non-empty out before any work
    writer = run.spec.codec.writer(out, str(opts.format), run.spec)
    new_mask = mask_source(run, int(opts.seed))
    for start in range(0, int(opts.n), int(opts.batch_size)):
        count = min(int(opts.batch_size), int(opts.n) - start)
        drawn = torch.stack([new_mask()[0] for _ in range(count)]).to(run.runtime.device)
        with torch.no_grad():  # images for the drawn masks, or the generator's own pairs (wgan)
            images, masks = recipe.pairs(drawn, exact=True)
        for i, (image, mask) in enumerate(zip(images.float().cpu(), masks.cpu(), strict=True)):
            writer.add(f"syn_{start + i:05d}", image.numpy(), label_map(mask))
    writer.close(f"synthetic pairs from genseg run {run.run_dir}")
    return out


def label_map(mask: torch.Tensor) -> np.ndarray:
    """A mask tensor (mask_channels x spatial) as writers store it: {0, 1} for one channel, the
    class index for a one-hot label map."""
    labels = mask[0] > 0.5 if mask.shape[0] == 1 else mask.argmax(0)
    return labels.numpy().astype(np.uint8)


def mask_source(run: TrainedRun, seed: int) -> MaskSource:
    """New masks made by the run's mask_augment group from its own training masks."""
    spec = run.spec
    root = dataset_root(run.cfg.dataset, run.cfg.paths.data_dir)
    train = spec.codec.load(root, run.splits["train"], spec.image_channels)
    return new_masks(train, spec, run.cfg.get("mask_augment"), seed)


def main(args: list[str]) -> int:
    out = generate_pairs(args)
    log.info("wrote synthetic pairs to %s", out)
    return 0

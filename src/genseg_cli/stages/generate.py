"""`genseg generate run_dir=RUN n=500 out=DIR [format=standard|nnunet]`: synthetic pairs.

Masks are made by the run's mask_augment pipeline from its own training masks; images by its
trained generator (separate or genseg runs). `format=nnunet` writes an nnU-Net v2 raw dataset
(imagesTr/<case>_0000.png, labelsTr/<case>.png with labels 0/1, dataset.json); nnU-Net wants
its folder named DatasetXXX_Name.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from genseg_cli.data.dataset import load_pairs, resize_pair
from genseg_cli.data.mask_augment import augment_mask
from genseg_cli.data.registry import dataset_root
from genseg_cli.data.writers import NNUNET_NAME, PairWriter
from genseg_cli.engine.loop import instantiate_pipeline
from genseg_cli.engine.restore import load_generator, load_run
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


def generate_pairs(args: list[str]) -> Path:
    opts = parse_key_values("generate", args, ARGS)
    if int(opts.n) < 1:
        raise GensegError(f"n={opts.n}: ask for at least one pair")
    run = load_run(opts.run_dir, opts.device)
    generator = load_generator(run)
    out = Path(opts.out).expanduser()
    if opts.format == "nnunet" and not NNUNET_NAME.match(out.name):
        log.warning("nnU-Net expects the folder to be named DatasetXXX_Name, not %s", out.name)
    writer = PairWriter(out, str(opts.format), int(run.cfg.dataset.channels))
    size = int(run.cfg.data.image_size)
    root = dataset_root(run.cfg.dataset, run.cfg.paths.data_dir)
    real_masks = [
        resize_pair(p, size)[1]
        for p in load_pairs(root, run.splits["train"], int(run.cfg.dataset.channels))
    ]
    pipeline = instantiate_pipeline(run.cfg.get("mask_augment"), int(opts.seed))
    rng = np.random.default_rng(int(opts.seed))
    for start in range(0, int(opts.n), int(opts.batch_size)):
        count = min(int(opts.batch_size), int(opts.n) - start)
        masks = np.stack(
            [
                augment_mask(real_masks[rng.integers(len(real_masks))], pipeline)
                for _ in range(count)
            ]
        )
        with torch.no_grad():
            images = generator(torch.from_numpy(masks).float()[:, None].to(run.runtime.device))
        for i, (image, mask) in enumerate(zip(images.float().cpu().numpy(), masks, strict=True)):
            writer.add(f"syn_{start + i:05d}", image, mask)
    writer.close(f"synthetic pairs from genseg run {run.run_dir}")
    return out


def main(args: list[str]) -> int:
    out = generate_pairs(args)
    log.info("wrote synthetic pairs to %s", out)
    return 0

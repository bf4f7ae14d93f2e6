"""`genseg predict run_dir=RUN input=DIR output=DIR [export=torchscript|onnx]`.

Writes one PNG mask (0/255, the image's own size) per image of `input`. With `export`, also writes
a deployable copy of the segmenter into `output` (model.ts or model.onnx, plus model.json with
the input contract) and checks that it reproduces PyTorch's logits.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genseg_cli.data.dataset import Pair
from genseg_cli.data.io import index_folder, read_image
from genseg_cli.engine.restore import load_run
from genseg_cli.errors import GensegError
from genseg_cli.evaluation.evaluate import predict_logits, to_size
from genseg_cli.evaluation.export import export_segmenter
from genseg_cli.stages.arguments import REQUIRED, parse_key_values

log = logging.getLogger(__name__)
ARGS = {
    "run_dir": REQUIRED,
    "input": REQUIRED,
    "output": REQUIRED,
    "export": None,
    "threshold": None,
    "device": "auto",
    "batch_size": 16,
}


def predict_folder(args: list[str]) -> dict:
    opts = parse_key_values("predict", args, ARGS)
    run = load_run(opts.run_dir, opts.device)
    images = index_folder(Path(opts.input).expanduser())
    if not images:
        raise GensegError(f"no images (.png, .jpg, ...) in {opts.input}")
    out = Path(opts.output).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    channels, size = int(run.cfg.dataset.channels), int(run.cfg.data.image_size)
    threshold = float(
        opts.threshold if opts.threshold is not None else run.cfg.evaluation.threshold
    )
    ids = sorted(images)
    for start in range(0, len(ids), int(opts.batch_size)):  # bounded memory for big folders
        chunk = ids[start : start + int(opts.batch_size)]
        pairs = [Pair(i, read_image(images[i], channels), np.zeros((1, 1), bool)) for i in chunk]
        for pair, logit in zip(
            pairs, predict_logits(run.segmenter, pairs, size, run.runtime), strict=True
        ):
            mask = logits_to_mask(logit, pair.image.shape[:2], threshold)
            Image.fromarray(mask).save(out / f"{pair.id}.png")
    result = {"n_masks": len(ids), "output": str(out)}
    if opts.export:
        result["export"] = export_segmenter(run, out, str(opts.export))
    return result


def logits_to_mask(logit, shape: tuple[int, int], threshold: float) -> np.ndarray:
    """Logits at model size -> uint8 0/255 mask at `shape` (bilinear, then threshold)."""
    return ((torch.sigmoid(to_size(logit, shape)[0]) > threshold).numpy() * 255).astype(np.uint8)


def main(args: list[str]) -> int:
    result = predict_folder(args)
    log.info("wrote %d masks to %s", result["n_masks"], result["output"])
    if "export" in result:
        e = result["export"]
        log.info(
            "exported %s (max |logit difference| to PyTorch: %.2e)", e["path"], e["max_abs_diff"]
        )
    return 0

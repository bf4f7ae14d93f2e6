"""`genseg predict run_dir=RUN input=DIR output=DIR [export=torchscript|onnx]`.

2D runs: one PNG mask (0/255, the image's own size) per image of `input`. 3D runs: one NIfTI
label map (uint8, 0 background, 1..n the dataset's classes) per volume of `input`, with the
volume's own shape, affine and header. With `export`, also writes a deployable copy of the
segmenter into `output` (model.ts or model.onnx, plus model.json with the input contract) and
checks that it reproduces PyTorch's logits.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genseg_cli.data.dataset import Pair
from genseg_cli.data.io import index_folder, read_image
from genseg_cli.data.samples import model_size
from genseg_cli.data.volumes import NIFTI_SUFFIXES, Volume, index_volumes, read_volume, volume_id
from genseg_cli.data.writers import write_nifti
from genseg_cli.engine.restore import TrainedRun, load_run
from genseg_cli.errors import GensegError
from genseg_cli.evaluation.evaluate import predict_logits, to_labels, to_size
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
    """Predict every image (2D run) or volume (3D run) of `input` into `output`.

    >>> predict_folder(["run_dir=outputs/runs/hippocampus/separate/n10_s0", "input=new",
    ...                 "output=labels"])
    {'n_masks': 2, 'output': 'labels'}
    """
    opts = parse_key_values("predict", args, ARGS)
    run = load_run(opts.run_dir, opts.device)
    folder, out = Path(opts.input).expanduser(), Path(opts.output).expanduser()
    threshold = float(
        opts.threshold if opts.threshold is not None else run.cfg.evaluation.threshold
    )
    predict = predict_volumes if int(run.cfg.dataset.dims) == 3 else predict_images
    n = predict(run, folder, out, threshold, int(opts.batch_size))
    result = {"n_masks": n, "output": str(out)}
    if opts.export:
        result["export"] = export_segmenter(run, out, str(opts.export))
    return result


def predict_images(
    run: TrainedRun, folder: Path, out: Path, threshold: float, batch_size: int
) -> int:
    """One PNG mask per image of `folder` (a 2D run); returns how many were written."""
    images = index_folder(folder)
    if not images:
        raise GensegError(f"no images (.png, .jpg, ...) in {folder}")
    out.mkdir(parents=True, exist_ok=True)
    channels, size = int(run.cfg.dataset.channels), int(run.cfg.data.image_size)
    ids = sorted(images)
    for start in range(0, len(ids), batch_size):  # bounded memory for big folders
        chunk = ids[start : start + batch_size]
        pairs = [Pair(i, read_image(images[i], channels), np.zeros((1, 1), bool)) for i in chunk]
        for pair, logit in zip(
            pairs, predict_logits(run.segmenter, pairs, size, run.runtime), strict=True
        ):
            mask = logits_to_mask(logit, pair.image.shape[:2], threshold)
            Image.fromarray(mask).save(out / f"{pair.id}.png")
    return len(ids)


def nifti_files(folder: Path, run: TrainedRun) -> list[Path]:
    """The NIfTI volumes of `folder`, sorted; a clear error when there are none."""
    files = sorted(index_volumes(folder).values()) if folder.is_dir() else []
    if not files:
        raise GensegError(
            f"no NIfTI volumes ({', '.join(NIFTI_SUFFIXES)}) in {folder}; run "
            f"{run.run_dir} is 3D ({run.cfg.dataset.name}) and predicts from a folder of volumes"
        )
    return files


def predict_volumes(
    run: TrainedRun, folder: Path, out: Path, threshold: float, batch_size: int
) -> int:
    """One NIfTI label map per volume of `folder` (a 3D run), named like its input, with the
    input's shape, affine and header; returns how many were written. Multi-class logits are
    arg-maxed; `threshold` only matters for a single-channel (binary) segmenter."""
    import nibabel as nib

    files = nifti_files(folder, run)
    out.mkdir(parents=True, exist_ok=True)
    size = model_size(run.cfg)
    for start in range(0, len(files), batch_size):  # bounded memory for big folders
        chunk = files[start : start + batch_size]
        volumes = [as_volume(path) for path in chunk]
        logits = predict_logits(run.segmenter, volumes, size, run.runtime, batch_size)
        for path, volume, logit in zip(chunk, volumes, logits, strict=True):
            labels = to_labels(to_size(logit, volume.image.shape), threshold).astype(np.uint8)
            source = nib.load(path)
            write_nifti(out / path.name, labels, source.affine, source.header)
    return len(files)


def as_volume(path: Path) -> Volume:
    """An unlabelled volume (for prediction) from a NIfTI file."""
    image, spacing = read_volume(path)
    labels = np.zeros(image.shape, np.uint8)  # never read: prediction only needs the image
    return Volume(volume_id(path), image.astype(np.float32), labels, spacing)


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

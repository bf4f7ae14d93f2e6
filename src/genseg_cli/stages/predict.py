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

from genseg_cli.core.errors import GensegError
from genseg_cli.engine.restore import TrainedRun, load_run
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
    n = predict_files(run, folder, out, threshold, int(opts.batch_size))
    result = {"n_masks": n, "output": str(out)}
    if opts.export:
        result["export"] = export_segmenter(
            run.segmenter,
            run.spec,
            out,
            str(opts.export),
            float(run.cfg.evaluation.threshold),
            str(run.cfg.backbone.name),
        )
    return result


def predict_files(
    run: TrainedRun, folder: Path, out: Path, threshold: float, batch_size: int
) -> int:
    """One prediction per input file of `folder`, at the input's own shape, written by the run's
    codec (a 0/255 PNG per image; a uint8 NIfTI label map per volume, named like its input, with
    its affine and header); returns how many were written. Multi-class logits are arg-maxed;
    `threshold` only matters for a single-channel (binary) segmenter."""
    spec, codec = run.spec, run.spec.codec
    files = codec.input_files(folder)
    if not files:
        raise GensegError(
            f"no {codec.inputs} in {folder}; run {run.run_dir} is {spec.dims}D ({spec.name}) "
            "and predicts from a folder of them"
        )
    out.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(files), batch_size):  # bounded memory for big folders
        chunk = files[start : start + batch_size]
        samples = [codec.read_input(path, spec) for path in chunk]
        logits = predict_logits(run.segmenter, samples, spec, run.runtime, batch_size)
        for path, sample, logit in zip(chunk, samples, logits, strict=True):
            prediction = to_labels(to_size(logit, sample.shape), threshold)
            codec.write_prediction(prediction, sample, path, out)
    return len(files)


def main(args: list[str]) -> int:
    result = predict_folder(args)
    log.info("wrote %d masks to %s", result["n_masks"], result["output"])
    if "export" in result:
        e = result["export"]
        log.info(
            "exported %s (max |logit difference| to PyTorch: %.2e)", e["path"], e["max_abs_diff"]
        )
    return 0

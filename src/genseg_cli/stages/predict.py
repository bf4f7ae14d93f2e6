"""`genseg predict run_dir=RUN input=DIR|FILE output=DIR [export=torchscript|onnx]`.

2D runs: one PNG mask (0/255, the image's own size) per image of `input`. 3D runs: one NIfTI
label map (uint8, 0 background, 1..n the dataset's classes) per volume of `input`, with the
volume's own shape, affine and header. `input` is a folder or one file; `output` must be new or
empty. A file that cannot be read is skipped and named, the others are written, and the command
ends with exit code 2 listing the skipped files. With `export`, also writes a deployable copy of
the segmenter into `output` (model.ts or model.onnx, plus model.json with the input contract) and
checks that it reproduces PyTorch's logits. An nnU-Net run (method=nnunet) predicts through
nnU-Net's own predictor, each input at its own shape; it has no segmenter to export.
"""

from __future__ import annotations

import logging
from pathlib import Path

from genseg_cli.core.errors import DataContractError, GensegError
from genseg_cli.core.files import refuse_non_empty, require_writable
from genseg_cli.core.progress import item_progress
from genseg_cli.engine.restore import TrainedRun, load_run
from genseg_cli.evaluation.evaluate import to_labels, to_size
from genseg_cli.evaluation.export import export_segmenter
from genseg_cli.stages.arguments import Arg, check_device, parse_key_values

log = logging.getLogger(__name__)
EXPORTS = ("torchscript", "onnx")
ARGS = {
    "run_dir": Arg(help="a finished run; its best segmenter predicts"),
    "input": Arg(help="a folder of images (2D) or volumes (3D), or one file"),
    "output": Arg(help="a new or empty folder for the masks"),
    "export": Arg(
        None, str, choices=EXPORTS, help="also write the segmenter as model.ts or model.onnx"
    ),
    "threshold": Arg(
        None,
        float,
        between=(0.0, 1.0),
        help="binary masks: probability cut (default: the run's, 0.5)",
    ),
    "device": Arg("auto", str, help="auto (CUDA when present), cpu, cuda or cuda:N"),
    "batch_size": Arg(16, int, minimum=1, help="images predicted at once"),
}
ABOUT = "Segment new images with a trained run; optionally export the segmenter."
SHOWN = 10


def predict_folder(args: list[str]) -> dict:
    """Predict every image (2D run) or volume (3D run) of `input` into `output`.

    >>> predict_folder(["run_dir=outputs/runs/hippocampus/separate/n10_s0", "input=new",
    ...                 "output=labels"])
    {'n_masks': 2, 'output': 'labels', 'skipped': {}}
    """
    opts = parse_key_values("predict", args, ARGS, ABOUT)
    source, out = Path(opts.input).expanduser(), Path(opts.output).expanduser()
    if not source.exists():
        raise GensegError(f"input={source} does not exist; give a folder of images or one image")
    refuse_non_empty(out, "output")  # before any work, as generate does
    require_writable(out, "output")
    check_device("predict", str(opts.device))
    run = load_run(opts.run_dir, opts.device)
    if opts.export:
        run.network(f"export={opts.export}")  # a run without a segmenter: refused before work
    if source.is_file():
        check_input_kind(run, source)
    threshold = float(
        opts.threshold if opts.threshold is not None else run.cfg.evaluation.threshold
    )
    n, skipped = predict_files(run, source, out, threshold, int(opts.batch_size))
    result = {"n_masks": n, "output": str(out), "skipped": skipped}
    if opts.export:
        result["export"] = export_segmenter(
            run.network(f"export={opts.export}"),
            run.spec,
            out,
            str(opts.export),
            float(run.cfg.evaluation.threshold),
            str(run.cfg.backbone.name),
        )
    return result


def check_input_kind(run: TrainedRun, source: Path) -> None:
    """Refuse a file the run's codec does not read (a NIfTI volume for a 2D run, an image for
    a 3D one), saying what the run predicts from."""
    codec = run.spec.codec
    if source.resolve() not in {p.resolve() for p in codec.input_files(source.parent)}:
        raise GensegError(
            f"input={source} is not one of the {codec.inputs} that run {run.run_dir} "
            f"({run.spec.dims}D, {run.spec.name}) predicts from; give such a file or a folder"
        )


def input_files(run: TrainedRun, source: Path) -> list[Path]:
    """The files to predict: `source` itself, or the inputs of the folder `source`."""
    codec = run.spec.codec
    files = [source] if source.is_file() else codec.input_files(source)
    if not files:
        raise GensegError(
            f"no {codec.inputs} in {source}; run {run.run_dir} is {run.spec.dims}D "
            f"({run.spec.name}) and predicts from a folder of them or one of them"
        )
    return files


def predict_files(
    run: TrainedRun, source: Path, out: Path, threshold: float, batch_size: int
) -> tuple[int, dict[str, str]]:
    """One prediction per input file, at the input's own shape, written by the run's codec (a
    0/255 PNG per image; a uint8 NIfTI label map per volume, named like its input, with its
    affine and header). Returns how many were written and the skipped files with the reason.
    Multi-class logits are arg-maxed; `threshold` only matters for a binary segmenter."""
    spec, codec = run.spec, run.spec.codec
    files = input_files(run, source)
    out.mkdir(parents=True, exist_ok=True)
    written, skipped = 0, {}
    with item_progress() as bar:
        task = bar.add_task("predicting", total=len(files))
        for start in range(0, len(files), batch_size):  # bounded memory for big folders
            chunk, samples = [], []
            for path in files[start : start + batch_size]:
                try:
                    samples.append(codec.read_input(path, spec))
                    chunk.append(path)
                except DataContractError as err:  # one bad file must not cost the others
                    skipped[path.name] = str(err)
                    log.warning("skipped %s: %s", path, err)
            logits = run.logits(samples, batch_size)
            for path, sample, logit in zip(chunk, samples, logits, strict=True):
                prediction = to_labels(to_size(logit, sample.shape), threshold)
                codec.write_prediction(prediction, sample, path, out)
                written += 1
            bar.advance(task, len(files[start : start + batch_size]))
    return written, skipped


def main(args: list[str]) -> int:
    result = predict_folder(args)
    log.info("wrote %d masks to %s", result["n_masks"], result["output"])
    if "export" in result:
        e = result["export"]
        log.info(
            "exported %s (max |logit difference| to PyTorch: %.2e)", e["path"], e["max_abs_diff"]
        )
    skipped = result["skipped"]
    if skipped:
        names = ", ".join(list(skipped)[:SHOWN])
        more = f" and {len(skipped) - SHOWN} more" if len(skipped) > SHOWN else ""
        total = result["n_masks"] + len(skipped)
        raise GensegError(
            f"wrote {result['n_masks']} of {total} masks to {result['output']}; could not read "
            f"{len(skipped)} input files: {names}{more} (reasons above); replace or remove them "
            "and predict those again"
        )
    return 0

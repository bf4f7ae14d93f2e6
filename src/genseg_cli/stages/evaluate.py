"""`genseg evaluate run_dir=RUN [datasets=[...]]`: re-score a finished run's best segmenter.

Without `datasets`, the run's own test split and its out-of-domain sets are scored. Each entry
of `datasets` is a registry name (all of its pairs; the run's own dataset: its test split) or
a folder holding images/ and masks/ (for a 3D run: imagesTr/ and labelsTr/). Results go to
`<run>/evaluate/` (or `out=`) as metrics.json and per_image.csv, as after training.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from genseg_cli.core.errors import GensegError
from genseg_cli.core.files import write_csv, write_json
from genseg_cli.data.registry import dataset_root, dataset_spec
from genseg_cli.data.run_data import verified_ids
from genseg_cli.data.samples import Sample
from genseg_cli.engine.restore import TrainedRun, load_run
from genseg_cli.evaluation.evaluate import evaluate_model, summarise
from genseg_cli.evaluation.tables import print_results
from genseg_cli.stages.arguments import REQUIRED, parse_key_values

log = logging.getLogger(__name__)
ARGS = {"run_dir": REQUIRED, "datasets": None, "out": None, "resolution": None, "device": "auto"}


def resolve_set(run: TrainedRun, entry: str) -> tuple[str, list[Sample]]:
    """(name, samples) of one `datasets` entry, read for this run's network."""
    spec, codec = run.spec, run.spec.codec
    path = Path(entry).expanduser()
    if path.is_dir():
        # a user folder in the run's layout, checked as the codec says (label maps: against
        # the run's own classes)
        folder_entry = codec.folder_entry(run.cfg.dataset)
        ids = verified_ids(folder_entry, path.resolve())
        return path.name, codec.load(path, ids, spec.image_channels)
    registered = dataset_spec(entry)
    root = dataset_root(registered, run.cfg.paths.data_dir)
    ids = verified_ids(registered, root)
    if entry == run.cfg.dataset.name:
        return "test", codec.load(root, run.splits["test"], spec.image_channels)
    if not spec.accepts(registered):
        raise GensegError(
            f"dataset '{entry}' is {registered.dims}D but run {run.run_dir} is {spec.dims}D"
        )
    return entry, codec.load(root, ids, spec.image_channels)


def evaluate_run_dir(args: list[str]) -> dict:
    opts = parse_key_values("evaluate", args, ARGS)
    run = load_run(opts.run_dir, opts.device)
    entries = list(opts.datasets) if opts.datasets else [run.cfg.dataset.name, *run.cfg.dataset.ood]
    resolution = opts.resolution or run.cfg.evaluation.resolution
    sets, frames = {}, []
    for entry in entries:
        name, samples = resolve_set(run, str(entry))
        scores = evaluate_model(
            run.segmenter,
            samples,
            run.spec,
            run.runtime,
            resolution,
            float(run.cfg.evaluation.threshold),
            int(run.cfg.evaluation.batch_size),
        )
        sets[name] = summarise(scores)
        frames.append(scores.assign(set=name))
    out = Path(opts.out) if opts.out else run.run_dir / "evaluate"
    metrics = {
        "run": {
            **{k: run.cfg[k] for k in ("seed", "n_labeled")},
            "dataset": run.cfg.dataset.name,
            "method": run.cfg.method.name,
            "backbone": run.cfg.backbone.name,
            "resolution": resolution,
            "run_dir": str(run.run_dir),
        },
        "best_step": None,
        "val_dice": None,
        "test": sets.pop("test", None),
        "ood": sets,
    }
    write_json(out / "metrics.json", metrics)
    per_image = pd.concat(frames)
    write_csv(out / "per_image.csv", per_image[["set", *per_image.columns.drop("set")]])
    return metrics


def main(args: list[str]) -> int:
    metrics = evaluate_run_dir(args)
    print_results(metrics)
    return 0

"""`genseg evaluate run_dir=RUN [datasets=[...]] [out=DIR] [weights=kept|final]`: re-score a
finished run's kept segmenter, or with `weights=final` its last step's, beside the kept one.

Without `datasets`, the run's own test split and its out-of-domain sets (those in the data dir;
an absent one is named, not scored) are scored. Each entry
of `datasets` is a registry name (all of its pairs; the run's own dataset: its test split) or
a folder holding images/ and masks/ (for a 3D run: imagesTr/ and labelsTr/); one name needs no
brackets. Results (metrics.json and per_image.csv, as after training) go to a new folder per call,
`<run>/evaluate/<time>/`, so an earlier evaluation is never overwritten; with `out=DIR`, DIR must
not hold results already unless `overwrite=true`. Every argument and every set is checked before
any scoring. An nnU-Net run (method=nnunet) is scored through nnU-Net's own predictor from the
checkpoint its training scored, as training scored it (`weights=final`: checkpoint_final.pth).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from genseg_cli.core.errors import GensegError
from genseg_cli.core.files import require_writable, write_csv, write_json
from genseg_cli.core.progress import item_progress
from genseg_cli.data.registry import GENERIC, dataset_root, dataset_spec
from genseg_cli.data.run_data import absent_ood, verified_ids
from genseg_cli.data.samples import Sample
from genseg_cli.engine.final_weights import WEIGHTS, print_beside_kept, use_final_weights
from genseg_cli.engine.restore import TrainedRun, load_run
from genseg_cli.evaluation.evaluate import RESOLUTIONS, summarise
from genseg_cli.evaluation.tables import print_results
from genseg_cli.stages.arguments import Arg, check_device, parse_key_values

log = logging.getLogger(__name__)
ARGS = {
    "run_dir": Arg(help="a finished run; its best segmenter (an nnU-Net run: its fold) is scored"),
    "datasets": Arg(
        None,
        list,
        help="registry names or folders, e.g. [nlm_mc,/data/mine] (default: the "
        "run's test split and out-of-domain sets)",
    ),
    "out": Arg(None, str, help="results folder (default: <run>/evaluate/<time>/)"),
    "overwrite": Arg(False, bool, help="replace results already in out"),
    "resolution": Arg(
        None,
        str,
        choices=RESOLUTIONS,
        help="compare at each image's own size or the network's (default: the run's)",
    ),
    "device": Arg("auto", str, help="auto (CUDA when present), cpu, cuda or cuda:N"),
    "weights": Arg(
        "kept",
        str,
        choices=WEIGHTS,
        help="kept: the run's checkpoint (best.pt); final: its last step's, beside the kept "
        "(an nnU-Net run: checkpoint_final.pth)",
    ),
}
ABOUT = "Score a trained run on its test split, its out-of-domain sets or other data."
RESULTS = ("metrics.json", "per_image.csv")


def resolve_set(run: TrainedRun, entry: str) -> tuple[str, list[Sample]]:
    """(name, samples) of one `datasets` entry, read for this run's network."""
    spec, codec = run.spec, run.spec.codec
    own_root = dataset_root(run.cfg.dataset, run.cfg.paths.data_dir)
    path = Path(entry).expanduser()
    # the run's own data, by name or by its folder: only its test split, never the images it
    # was trained or validated on, and in-domain (a folder given by path is not out-of-domain)
    if entry == run.cfg.dataset.name or (path.is_dir() and path.resolve() == own_root):
        verified_ids(run.cfg.dataset, own_root)
        if entry != run.cfg.dataset.name:
            log.info("%s is the run's own dataset: scoring its test split, in-domain", path)
        return "test", codec.load(own_root, run.splits["test"], spec.image_channels)
    if path.is_dir():
        # a user folder in the run's layout, checked as the codec says (label maps: against
        # the run's own classes)
        folder_entry = codec.folder_entry(run.cfg.dataset)
        ids = verified_ids(folder_entry, path.resolve())
        return path.name, codec.load(path, ids, spec.image_channels)
    if "/" in entry or entry.startswith("."):
        raise GensegError(f"datasets: folder {path} does not exist; give a folder or a dataset")
    if entry == GENERIC:
        raise GensegError("datasets=folder: give the folder itself, e.g. datasets=[/path/to/set]")
    registered = dataset_spec(entry)
    if not spec.accepts(registered):
        raise GensegError(
            f"dataset '{entry}' is {registered.dims}D but run {run.run_dir} is {spec.dims}D"
        )
    root = dataset_root(registered, run.cfg.paths.data_dir)
    return entry, codec.load(root, verified_ids(registered, root), spec.image_channels)


def output_folder(run_dir: Path, out: str | None, overwrite: bool) -> Path:
    """Where this call writes: `out` (refused when it holds results, unless `overwrite`), else
    a new `<run>/evaluate/<time>` folder."""
    if out:
        folder = Path(out).expanduser()
        held = [name for name in RESULTS if (folder / name).exists()]
        if held and not overwrite:
            raise GensegError(
                f"out={folder} already holds {', '.join(held)}; choose another out=... or "
                "add overwrite=true (nothing was written)"
            )
        return folder
    base = run_dir / "evaluate" / time.strftime("%Y%m%d-%H%M%S")
    folder, n = base, 1
    while folder.exists():  # two calls in one second
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def score_sets(run: TrainedRun, sets: dict[str, list[Sample]], resolution: str) -> dict:
    """Per-image scores of every set, with a progress bar over its images."""
    frames = {}
    chunk = 4 * int(run.cfg.evaluation.batch_size)
    with item_progress() as bar:
        for name, samples in sets.items():
            task = bar.add_task(f"scoring {name}", total=len(samples))
            parts = []
            for start in range(0, len(samples), chunk):
                part = samples[start : start + chunk]
                threshold = float(run.cfg.evaluation.threshold)
                batch = int(run.cfg.evaluation.batch_size)
                parts.append(run.score(part, resolution, threshold, batch))
                bar.advance(task, len(part))
            frames[name] = pd.concat(parts, ignore_index=True)
    return frames


def evaluate_run_dir(args: list[str]) -> tuple[dict, Path]:
    """Score a run as the arguments say; returns metrics.json's content and where it went."""
    opts = parse_key_values("evaluate", args, ARGS, ABOUT)
    check_device("evaluate", str(opts.device))
    run = load_run(opts.run_dir, opts.device)
    step = use_final_weights(run) if opts.weights == "final" else None
    out = output_folder(run.run_dir, opts.out, bool(opts.overwrite))
    require_writable(out, "out")  # before the scoring, which can take minutes
    # by default the run's own sets; an absent out-of-domain set is said, not scored
    absent = {} if opts.datasets else absent_ood(run.cfg.dataset, run.cfg.paths.data_dir)
    ood = [name for name in run.cfg.dataset.ood if name not in absent]
    entries = opts.datasets or [run.cfg.dataset.name, *ood]
    resolution = opts.resolution or run.cfg.evaluation.resolution
    # every set is read and checked before the first is scored
    sets = dict(resolve_set(run, str(entry)) for entry in entries)
    frames = score_sets(run, sets, resolution)
    scores = {name: summarise(frame) for name, frame in frames.items()}
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
        "test": scores.pop("test", None),
        "ood": scores,
        "ood_absent": absent,
        "weights": opts.weights,
        "weights_step": step,
    }
    write_json(out / "metrics.json", metrics)
    per_image = pd.concat([frame.assign(set=name) for name, frame in frames.items()])
    write_csv(out / "per_image.csv", per_image[["set", *per_image.columns.drop("set")]])
    return metrics, out


def main(args: list[str]) -> int:
    metrics, out = evaluate_run_dir(args)
    print_results(metrics)
    if metrics["weights"] == "final":
        print_beside_kept(metrics)
    print(f"wrote {out / 'metrics.json'} and per_image.csv")
    return 0

"""Run folders written by hand (metrics.json, status.json, overrides.yaml) for report tests that
need many runs with chosen scores; the layout is the one `genseg train` writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from genseg_cli.report.collect import SkippedRun, collect_runs

OMIT = object()  # start_weights=OMIT: a run from before metrics.json recorded its start weights


def fake_run(
    folder: Path,
    *,
    method: str = "baseline",
    dataset: str = "jsrt",
    n_labeled: int = 9,
    seed: int = 0,
    dice: float = 0.8,
    ood: dict[str, float] | None = None,
    overrides: list[str] | None = None,
    start_weights: object = None,
    status: str = "done",
    reason: str | None = None,
    backbone: str = "unet",
    train_time_s: float = 60.0,
    mtime: float | None = None,
    with_metrics: bool | None = None,
) -> Path:
    """A run folder. `overrides` are written after method, dataset, n_labeled and seed; `mtime`
    sets metrics.json's modification time (the duplicates=newest rule); metrics.json is written
    for a done run unless `with_metrics` says otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    run = {
        "dataset": dataset,
        "method": method,
        "backbone": backbone,
        "n_labeled": n_labeled,
        "seed": seed,
        "n_unlabeled": 0,
    }
    if start_weights is not OMIT:
        run["start_weights"] = start_weights
    if status == "done" if with_metrics is None else with_metrics:
        metrics = {
            "run": run,
            "train_time_s": train_time_s,
            "prepare_time_s": 0.0,
            "test": {"dice_mean": dice, "iou_mean": dice * 0.9},
            "ood": {name: {"dice_mean": d, "iou_mean": d * 0.9} for name, d in (ood or {}).items()},
        }
        (folder / "metrics.json").write_text(json.dumps(metrics))
        if mtime is not None:
            os.utime(folder / "metrics.json", (mtime, mtime))
    details = {"status": status, **({"reason": reason} if reason else {})}
    (folder / "status.json").write_text(json.dumps(details))
    given = [f"method={method}", f"dataset={dataset}", f"n_labeled={n_labeled}", f"seed={seed}"]
    given += overrides or []
    (folder / "overrides.yaml").write_text("".join(f"- {o}\n" for o in given))
    return folder


def collect(sweep: Path, duplicates: str = "error") -> tuple[pd.DataFrame, list[SkippedRun]]:
    """collect_runs' runs table and skipped runs (most tests need no more)."""
    collected = collect_runs(sweep, duplicates)
    return collected.runs, collected.skipped

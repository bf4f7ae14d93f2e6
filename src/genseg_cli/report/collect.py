"""Find the run directories of a sweep and read the finished ones into one table.

A run directory is any directory that holds `metrics.json` or `status.json`. Only runs whose
status.json says `done` and whose metrics.json is readable count; every other run is returned
as a `SkippedRun` with the reason, so one broken run never stops a report.

A run trained with extra overrides (an ablation such as `mlo.generator_weights=true`) is a
variant of its method: its `method` label carries them, `genseg [mlo.generator_weights=true]`,
so that it is summarised on its own row instead of being averaged with the default runs.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

log = logging.getLogger("genseg.report")

RUN_FILES = ("metrics.json", "status.json")
KEYS = ["dataset", "backbone", "n_labeled", "method"]  # one summary row per combination
ID_COLUMNS = ["dataset", "n_labeled", "method", "backbone", "seed"]
# after the metrics: the generator diagnostic (test Dice of a segmenter trained on synthetic pairs
# only; never a column of the paired mean), cost, then what a run is (base_method: `method`
# without its variant)
TRAILING = ("tstr", "n_unlabeled", "train_time_s", "variant", "base_method", "run_dir")
OVERRIDES = "overrides.yaml"  # the command-line overrides a run was trained with
# overrides that do not make a variant: the identity of a run, the named setups (an experiment or
# profile fixes the recipe of every method in it), and where things live or how they are shown
NOT_VARIANT = {"dataset", "n_labeled", "method", "backbone", "seed", "experiment", "profile"}
NOT_VARIANT |= {"ssl"}  # the objective is part of the method's name (baseline+fixmatch)
NOT_VARIANT |= {"evaluation.ood"}  # which out-of-domain sets are scored, not how a run trains
NOT_VARIANT |= {"resume", "trainer.progress", "trainer.num_threads", "trainer.stop_after"}
NOT_VARIANT_PREFIXES = ("paths.", "hydra", "+hydra", "~hydra")


@dataclass(frozen=True)
class SkippedRun:
    """A run left out of the report, e.g. `SkippedRun(Path("sweep/3"), "status failed: OOM")`."""

    path: Path
    reason: str


class _Skip(Exception):
    """Raised while reading a run that cannot be used; the message is the reason."""


def find_run_dirs(sweep_dir: Path) -> list[Path]:
    """Every directory under `sweep_dir` (itself included) holding metrics.json or status.json.
    Symlinked folders are followed (a report over links to runs kept elsewhere), each real
    folder once, so a link cycle cannot loop.

    >>> find_run_dirs(Path("multirun/2025-01-01"))  # doctest: +SKIP
    [PosixPath('multirun/2025-01-01/0'), PosixPath('multirun/2025-01-01/1')]
    """
    found: set[Path] = set()
    seen: set[str] = set()
    for folder, subdirs, files in os.walk(sweep_dir, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subdirs[:] = []
            continue
        seen.add(real)
        if any(name in files for name in RUN_FILES):
            found.add(Path(folder))
    # a run's own sub-folders (e.g. <run>/evaluate/metrics.json) are not runs of their own
    return sorted(d for d in found if not any(parent in found for parent in d.parents))


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise _Skip(f"no {path.name}")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _Skip(f"{path.name} unreadable: {err}") from None


def run_variant(run_dir: Path) -> str:
    """The overrides that make a run a variant of its method, sorted and space-separated ("" for
    the method's defaults; also for runs without overrides.yaml).

    >>> run_variant(Path("sweep/ph2_unet_genseg_n40_s0"))  # doctest: +SKIP
    'mlo.arch_lr=1e-2 mlo.generator_weights=true'
    """
    path = run_dir / OVERRIDES
    if not path.is_file():
        return ""
    try:
        overrides = yaml.safe_load(path.read_text()) or []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise _Skip(f"{OVERRIDES} unreadable: {err}") from None
    if not isinstance(overrides, list):
        raise _Skip(f"{OVERRIDES} is not a list of overrides")
    kept = []
    for override in map(str, overrides):
        key = override.split("=", 1)[0].lstrip("+~")
        if key not in NOT_VARIANT and not key.startswith(NOT_VARIANT_PREFIXES):
            kept.append(override)
    return " ".join(sorted(kept))


def method_label(method: str, variant: str) -> str:
    """`genseg` or, for a variant, `genseg [mlo.generator_weights=true]`."""
    return f"{method} [{variant}]" if variant else method


def read_run(run_dir: Path) -> dict[str, Any]:
    """One row of the runs table for a finished run; raises _Skip with the reason otherwise."""
    status = _read_json(run_dir / "status.json")
    state = status.get("status") if isinstance(status, dict) else None
    if state != "done":
        reason = status.get("reason") if isinstance(status, dict) else None
        raise _Skip(f"status {state}" + (f": {reason}" if reason else ""))
    metrics = _read_json(run_dir / "metrics.json")
    try:
        run, test = metrics["run"], metrics["test"]
        row: dict[str, Any] = {col: run[col] for col in ID_COLUMNS}
        row["n_labeled"], row["seed"] = int(row["n_labeled"]), int(row["seed"])
        row["test_dice"], row["test_iou"] = float(test["dice_mean"]), float(test["iou_mean"])
        row.update(per_class_columns(test))
        for name, scores in sorted((metrics.get("ood") or {}).items()):
            row[f"{name}_dice"] = float(scores["dice_mean"])
            row[f"{name}_iou"] = float(scores["iou_mean"])
        row["train_time_s"] = float(metrics["train_time_s"]) + float(
            metrics.get("prepare_time_s") or 0.0
        )
    except (KeyError, TypeError, ValueError) as err:
        raise _Skip(f"metrics.json incomplete: {type(err).__name__} {err}") from None
    tstr = metrics.get("tstr")  # separate/genseg: train on synthetic, test on real
    row["tstr"] = float(tstr["test"]["dice_mean"]) if tstr else float("nan")
    # images used without labels (ssl=...); runs from before the unlabeled stream used none
    row["n_unlabeled"] = int(metrics["run"].get("n_unlabeled") or 0)
    row["variant"] = run_variant(run_dir)
    row["base_method"] = row["method"]
    row["method"] = method_label(row["method"], row["variant"])
    row["run_dir"] = str(run_dir)
    return row


def per_class_columns(test: dict) -> dict[str, float]:
    """Multi-class test scores as runs-table columns: test_<class>_dice / _iou, test_hd95."""
    columns = {}
    for key, value in test.items():
        metric, _, rest = key.partition("_")
        if metric in ("dice", "iou") and rest.endswith("_mean") and rest != "mean":
            columns[f"test_{rest[: -len('_mean')]}_{metric}"] = float(value)
    if "hd95_mean" in test:
        columns["test_hd95"] = float(test["hd95_mean"])
    return columns


def collect_runs(sweep_dir: Path | str) -> tuple[pd.DataFrame, list[SkippedRun]]:
    """Read every run under `sweep_dir`: one row per finished run, plus the skipped runs.

    >>> runs, skipped = collect_runs("multirun/2025-01-01")  # doctest: +SKIP
    >>> runs.columns[:7].tolist()
    ['dataset', 'n_labeled', 'method', 'backbone', 'seed', 'test_dice', 'test_iou']
    """
    rows: list[dict[str, Any]] = []
    skipped: list[SkippedRun] = []
    for run_dir in find_run_dirs(Path(sweep_dir)):
        try:
            rows.append(read_run(run_dir))
        except _Skip as err:
            skipped.append(SkippedRun(run_dir, str(err)))
    runs = pd.DataFrame(rows)
    if runs.empty:
        columns = [*ID_COLUMNS, "test_dice", "test_iou", *TRAILING]
        return pd.DataFrame(columns=columns), skipped
    first = [*ID_COLUMNS, "test_dice", "test_iou"]
    # multi-class: Dice/IoU per class, then HD95
    first += sorted(c for c in runs.columns if c.startswith("test_") and c not in first)
    first = [c for c in first if c != "test_hd95"] + (["test_hd95"] if "test_hd95" in first else [])
    ood = sorted(c for c in runs.columns if c not in first)
    ood = [c for c in ood if c not in TRAILING]
    runs = runs[[*first, *ood, *TRAILING]]
    dupes = runs.duplicated(ID_COLUMNS, keep=False)
    if dupes.any():
        log.warning("%d runs share dataset/budget/method/backbone/seed", int(dupes.sum()))
    return runs, skipped

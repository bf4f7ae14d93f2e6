"""Find the run directories of a sweep and read the finished ones into one table.

A run directory is any directory that holds `metrics.json` or `status.json`. Only runs whose
status.json says `done` and whose metrics.json is readable count; every other run is returned
as a `SkippedRun` with the reason, so one broken run never stops a report.

A run trained with extra overrides (an ablation such as `mlo.generator_weights=true`) is a
variant of its method: its `method` label carries them, `genseg [mlo.generator_weights=true]`,
so that it is summarised on its own row instead of being averaged with the default runs. Which
overrides count, which are shared by every run (and so named once, not in the labels), the setup
(profile / experiment) and the start weights: see `genseg_cli.report.grouping`.

Two finished runs of one config (dataset, backbone, setup, budget, method and variant, start
weights) and one seed are an error naming both folders, unless `duplicates="newest"` keeps the one
whose metrics.json was written last (the others are listed as skipped).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from genseg_cli.core.errors import GensegError
from genseg_cli.core.fingerprint import BLOCK_KEYS
from genseg_cli.report.grouping import (
    DEFAULT_SETUP,
    SCRATCH,
    BadRunFile,
    Shared,
    find_shared,
    method_label,
    read_overrides,
    setup_of,
    start_weights_of,
    variant_of,
    variant_overrides,
)

RUN_FILES = ("metrics.json", "status.json")
# the run's machine fingerprint (metrics.json machine), one column per field that decides the
# numbers; empty for runs made before runs recorded it
MACHINE_COLUMNS = tuple(f"machine_{key}" for key in BLOCK_KEYS)
# one summary row per combination; runs of two setups (profile / experiment) never share a row
KEYS = ["dataset", "backbone", "setup", "n_labeled", "method"]
ID_COLUMNS = ["dataset", "n_labeled", "method", "backbone", "seed"]
# after the metrics: the generator diagnostic (test Dice of a segmenter trained on synthetic pairs
# only; never a column of the paired mean), cost, then what a run is (base_method: `method`
# without its variant)
TRAILING = (
    "tstr",
    "n_unlabeled",
    "train_time_s",
    "setup",
    "start_weights",
    "variant",
    "base_method",
    "run_dir",
    *MACHINE_COLUMNS,
)
DUPLICATE_RULES = ("error", "newest")
_OVERRIDES = "_overrides"  # a row's variant-making overrides while the runs are read


@dataclass(frozen=True)
class SkippedRun:
    """A run left out of the report, e.g. `SkippedRun(Path("sweep/3"), "status failed: OOM")`."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Collected:
    """The finished runs (one row each), the runs left out, and what every run shares."""

    runs: pd.DataFrame
    skipped: list[SkippedRun] = field(default_factory=list)
    shared: Shared = field(default_factory=Shared)


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


def read_json(path: Path) -> Any:
    """A run's JSON file; _Skip with the reason when it is missing or unreadable."""
    if not path.is_file():
        raise _Skip(f"no {path.name}")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _Skip(f"{path.name} unreadable: {err}") from None


def read_run(run_dir: Path) -> dict[str, Any]:
    """One row of the runs table for a finished run; raises _Skip with the reason otherwise.
    The row's `method` is the base method here: collect_runs adds the variant once it knows what
    every run shares."""
    status = read_json(run_dir / "status.json")
    state = status.get("status") if isinstance(status, dict) else None
    if state != "done":
        reason = status.get("reason") if isinstance(status, dict) else None
        raise _Skip(f"status {state}" + (f": {reason}" if reason else ""))
    metrics = read_json(run_dir / "metrics.json")
    try:
        run, test = metrics["run"], metrics["test"]
        row: dict[str, Any] = {col: run[col] for col in ID_COLUMNS}
        row["n_labeled"], row["seed"] = int(row["n_labeled"]), int(row["seed"])
        row["test_dice"], row["test_iou"] = float(test["dice_mean"]), float(test["iou_mean"])
        row.update(per_class_columns(test))
        for name, scores in sorted((metrics.get("ood") or {}).items()):
            row[f"{name}_dice"] = float(scores["dice_mean"])
            row[f"{name}_iou"] = float(scores["iou_mean"])
        row.update(final_weight_columns(metrics.get("final")))
        row["train_time_s"] = float(metrics["train_time_s"]) + float(
            metrics.get("prepare_time_s") or 0.0
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise _Skip(f"metrics.json incomplete: {type(err).__name__} {err}") from None
    machine = metrics.get("machine") or {}
    row.update({f"machine_{key}": machine.get(key, "") for key in BLOCK_KEYS})
    tstr = metrics.get("tstr")  # separate/genseg: train on synthetic, test on real
    row["tstr"] = float(tstr["test"]["dice_mean"]) if tstr else float("nan")
    # images used without labels (ssl=...); runs from before the unlabeled stream used none
    row["n_unlabeled"] = int(run.get("n_unlabeled") or 0)
    try:
        overrides = read_overrides(run_dir)
    except BadRunFile as err:
        raise _Skip(str(err)) from None
    row["setup"] = setup_of(overrides)
    row["start_weights"] = start_weights_of(run, run_dir, overrides)
    row[_OVERRIDES] = variant_overrides(overrides)
    row["run_dir"] = str(run_dir)
    return row


def final_weight_columns(final: dict | None) -> dict[str, float]:
    """The last step's weights' scores (evaluation.final_weights) as `<set>_dice_final` and
    `<set>_iou_final`: a suffix after _dice, so no table takes them for a test set of their own."""
    if not final:
        return {}
    columns = {}
    for name, scores in [("test", final["test"]), *sorted((final.get("ood") or {}).items())]:
        columns[f"{name}_dice_final"] = float(scores["dice_mean"])
        columns[f"{name}_iou_final"] = float(scores["iou_mean"])
    return columns


def try_read_run(run_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """(the run's row, "") for a finished run, else (None, why it cannot be used)."""
    try:
        return read_run(run_dir), ""
    except _Skip as err:
        return None, str(err)


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


def _config_key(row: dict[str, Any]) -> tuple:
    """What makes two runs the same config and seed (before the variant labels exist)."""
    ids = tuple(row[c] for c in ("dataset", "backbone", "setup", "n_labeled", "method", "seed"))
    return (*ids, row["start_weights"], row[_OVERRIDES])


def _names(paths: list[str]) -> str:
    return ", ".join(paths[:-1]) + f" and {paths[-1]}"


def resolve_duplicates(
    rows: list[dict[str, Any]], rule: str
) -> tuple[list[dict[str, Any]], list[SkippedRun]]:
    """Rows without duplicate (config, seed) runs. rule "error": a GensegError naming the
    folders; "newest": the run whose metrics.json is newest is kept, the others are skipped."""
    if rule not in DUPLICATE_RULES:
        raise GensegError(f"duplicates={rule} is not one of {', '.join(DUPLICATE_RULES)}")
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_config_key(row), []).append(row)
    clashes = [g for g in groups.values() if len(g) > 1]
    if not clashes:
        return rows, []
    if rule == "error":
        first = clashes[0][0]
        what = (
            f"{first['dataset']} {first['backbone']} n_labeled={first['n_labeled']} "
            f"{first['method']} seed={first['seed']}"
        )
        more = f" ({len(clashes) - 1} more duplicated config(s))" if len(clashes) > 1 else ""
        raise GensegError(
            f"{len(clashes[0])} finished runs of one config and seed ({what}): "
            f"{_names([r['run_dir'] for r in clashes[0]])}{more}; remove one, report on a "
            "sub-folder, or pass duplicates=newest to keep the newest"
        )
    kept_ids: set[int] = set()
    skipped = []
    for group in groups.values():
        # newest metrics.json wins; the path breaks a tie so that the choice is repeatable
        newest = max(group, key=lambda r: (_mtime(r["run_dir"]), r["run_dir"]))
        kept_ids.add(id(newest))
        for row in group:
            if row is not newest:
                reason = f"duplicate of {newest['run_dir']} (older metrics.json; duplicates=newest)"
                skipped.append(SkippedRun(Path(row["run_dir"]), reason))
    return [r for r in rows if id(r) in kept_ids], skipped


def _mtime(run_dir: str) -> int:
    return (Path(run_dir) / "metrics.json").stat().st_mtime_ns


def label_rows(rows: list[dict[str, Any]]) -> Shared:
    """Find what every row shares, then give each row its variant and method label (in place)."""
    setups, weights = (r["setup"] for r in rows), (r["start_weights"] for r in rows)
    shared = find_shared([r[_OVERRIDES] for r in rows], setups, weights)
    for row in rows:
        row["variant"] = variant_of(row.pop(_OVERRIDES), row["start_weights"], shared)
        row["base_method"] = row["method"]
        row["method"] = method_label(row["method"], row["variant"])
    return shared


def collect_runs(sweep_dir: Path | str, duplicates: str = "error") -> Collected:
    """Read every run under `sweep_dir`: one row per finished run, the skipped runs and what every
    run shares (see genseg_cli.report.grouping). `duplicates`: "error" or "newest" (above).

    >>> collected = collect_runs("multirun/2025-01-01")  # doctest: +SKIP
    >>> collected.runs.columns[:7].tolist()  # doctest: +SKIP
    ['dataset', 'n_labeled', 'method', 'backbone', 'seed', 'test_dice', 'test_iou']
    """
    rows: list[dict[str, Any]] = []
    skipped: list[SkippedRun] = []
    for run_dir in find_run_dirs(Path(sweep_dir)):
        try:
            rows.append(read_run(run_dir))
        except _Skip as err:
            skipped.append(SkippedRun(run_dir, str(err)))
    rows, dropped = resolve_duplicates(rows, duplicates)
    skipped += dropped
    shared = label_rows(rows)
    runs = pd.DataFrame(rows)
    if runs.empty:
        columns = [*ID_COLUMNS, "test_dice", "test_iou", *TRAILING]
        return Collected(pd.DataFrame(columns=columns), skipped, shared)
    first = [*ID_COLUMNS, "test_dice", "test_iou"]
    # multi-class: Dice/IoU per class, then HD95
    first += sorted(c for c in runs.columns if c.startswith("test_") and c not in first)
    first = [c for c in first if c != "test_hd95"] + (["test_hd95"] if "test_hd95" in first else [])
    ood = sorted(c for c in runs.columns if c not in first)
    ood = [c for c in ood if c not in TRAILING]
    return Collected(runs[[*first, *ood, *TRAILING]], skipped, shared)


def collect_from_csv(path: Path | str) -> Collected:
    """The runs table of an earlier report (its runs.csv, e.g. one committed under results/), so
    that summaries, pairs and figures can be rebuilt by the current code after the run folders
    are gone. Columns that older reports did not write take their defaults (setup: the default
    profile, start weights: none, no variant); the overrides shared by every run were not
    recorded in runs.csv, so the header cannot name them."""
    path = Path(path)
    try:
        runs = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise GensegError(f"runs_csv={path} cannot be read: {err}") from None
    missing = [
        c
        for c in ("dataset", "n_labeled", "method", "backbone", "seed", "test_dice")
        if c not in runs.columns
    ]
    if missing:
        raise GensegError(
            f"runs_csv={path} is not a runs table of genseg report: no column {missing[0]}"
        )
    runs["variant"] = runs.get("variant", pd.Series("", index=runs.index)).fillna("").astype(str)
    if "base_method" not in runs.columns:
        runs["base_method"] = runs["method"]
    defaults = {"setup": DEFAULT_SETUP, "start_weights": SCRATCH, "n_unlabeled": 0}
    for column, value in defaults.items():
        if column not in runs.columns:
            runs[column] = value
    if "tstr" not in runs.columns:
        runs["tstr"] = float("nan")
    shared = find_shared([], runs["setup"].astype(str), runs["start_weights"].astype(str))
    first = [c for c in runs.columns if c not in TRAILING]
    return Collected(runs[[*first, *[c for c in TRAILING if c in runs.columns]]], [], shared)

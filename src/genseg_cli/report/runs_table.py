"""Every run folder under a directory, finished or not, as one row each (for `genseg runs`).

Unlike collect_runs, nothing is skipped: a failed, stopped or running run is listed with its
status. What a run is (dataset, method, budget, seed) comes from the first source that has it:
metrics.json (finished runs), config.yaml (written when training starts), .hydra/config.yaml
(written by Hydra before the pre-flight checks, so pre-flight failures have it too), then the
overrides. Variant labels follow the report's rules (genseg_cli.report.grouping), computed over
every listed run, so that `genseg runs` and `genseg report` name a run the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from genseg_cli.core.config import register_resolvers
from genseg_cli.report.collect import find_run_dirs
from genseg_cli.report.grouping import (
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

# status.json's words as shown; interrupted runs are resumable, shown as stopped
STATUS_NAMES = {"done": "done", "failed": "failed", "running": "running", "interrupted": "stopped"}
# the files a run writes first: the earliest one's time is when the run started
START_FILES = (".hydra/config.yaml", "overrides.yaml", "config.yaml", "splits.json", "status.json")


@dataclass
class RunEntry:
    """One run folder as `genseg runs` lists it (None: not known for this run)."""

    path: Path
    status: str
    reason: str = ""
    dataset: str = "?"
    method: str = "?"  # the method label, with its variant once labelled
    n_labeled: int | None = None
    seed: int | None = None
    test_dice: float | None = None
    test_iou: float | None = None
    headline: str = "dice"  # the dataset's headline metric (dataset.metric: dice or iou)
    train_time_s: float | None = None
    started: float | None = None  # POSIX time of the run's first file
    setup: str = ""
    start_weights: str = "none"
    overrides: frozenset[str] = frozenset()


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _config(run_dir: Path) -> DictConfig | None:
    """The resolved config.yaml, else Hydra's unresolved copy (resolved key by key below)."""
    for name in ("config.yaml", ".hydra/config.yaml"):
        path = run_dir / name
        if path.is_file():
            try:
                cfg = OmegaConf.load(path)
            except Exception:  # a damaged file: the next source may still say what the run is
                continue
            if isinstance(cfg, DictConfig):
                return cfg
    return None


def _select(cfg: DictConfig | None, key: str) -> Any:
    if cfg is None:
        return None
    return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def started_at(run_dir: Path) -> float | None:
    """The modification time of the earliest of the files a run writes first."""
    times = [(run_dir / n).stat().st_mtime for n in START_FILES if (run_dir / n).is_file()]
    return min(times) if times else None


def read_entry(run_dir: Path, root: Path) -> RunEntry:
    """What is known about one run folder, whatever its state."""
    status = _json(run_dir / "status.json")
    if not (run_dir / "status.json").is_file():
        state, reason = "no status", ""
    elif not isinstance(status, dict):
        state, reason = "unreadable", "status.json unreadable"
    else:
        raw = str(status.get("status"))
        state, reason = STATUS_NAMES.get(raw, raw), str(status.get("reason") or "")
    entry = RunEntry(run_dir.relative_to(root) if run_dir != root else Path("."), state, reason)
    entry.started = started_at(run_dir)
    try:
        overrides = read_overrides(run_dir)
    except BadRunFile:
        overrides = []
    given = {o.split("=", 1)[0].lstrip("+~"): o.split("=", 1)[1] for o in overrides if "=" in o}
    metrics = _json(run_dir / "metrics.json")
    run = metrics.get("run") if isinstance(metrics, dict) else None
    run = run if isinstance(run, dict) else {}
    cfg = _config(run_dir)
    method = _select(cfg, "method.name")
    if method is not None:
        method = f"{method}{_select(cfg, 'ssl.label') or ''}"  # baseline+fixmatch, as metrics.json

    def first(key: str, from_config: Any) -> Any:
        """metrics.json's value, else the config's, else the override's."""
        values = (run.get(key), from_config, given.get(key))
        return next((v for v in values if v is not None), None)

    entry.dataset = str(first("dataset", _select(cfg, "dataset.name")) or "?")
    entry.method = str(first("method", method) or "?")
    entry.n_labeled = _int(first("n_labeled", _select(cfg, "n_labeled")))
    entry.seed = _int(first("seed", _select(cfg, "seed")))
    entry.headline = str(_select(cfg, "dataset.metric") or "dice")
    if isinstance(metrics, dict):
        test = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
        entry.test_dice, entry.test_iou = test.get("dice_mean"), test.get("iou_mean")
        if metrics.get("train_time_s") is not None:
            entry.train_time_s = float(metrics["train_time_s"]) + float(
                metrics.get("prepare_time_s") or 0.0
            )
    entry.setup = setup_of(overrides)
    entry.start_weights = start_weights_of(run or None, run_dir, overrides)
    entry.overrides = variant_overrides(overrides)
    return entry


def list_runs(root: Path) -> tuple[list[RunEntry], Shared]:
    """Every run folder under `root`, labelled with its variant (setup included where runs have
    several), sorted by start time then path; and what every run shares."""
    register_resolvers()  # .hydra/config.yaml may hold genseg's own interpolations
    entries = [read_entry(d, root) for d in find_run_dirs(root)]
    shared = find_shared(
        [e.overrides for e in entries],
        (e.setup for e in entries),
        (e.start_weights for e in entries),
    )
    for e in entries:
        variant = variant_of(e.overrides, e.start_weights, shared)
        if not shared.one_setup:
            variant = " ".join(filter(None, (e.setup, variant)))
        e.method = method_label(e.method, variant)
    entries.sort(key=lambda e: (e.started if e.started is not None else float("inf"), str(e.path)))
    return entries, shared

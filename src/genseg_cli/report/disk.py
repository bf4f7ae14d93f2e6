"""The disk space genseg can give back (`genseg runs --disk [--clean]`).

Three kinds of file only: the generator pre-training caches (`<output dir>/cache/generators/*.pt`,
about 100 MB per configuration and split; a later run with the same recipe pre-trains again
instead of loading one), the resumable `checkpoints/last.pt` of runs whose status.json says
done (no run resumes from it; `genseg train` drops it itself unless `trainer.keep_last=true`)
and the `nnunet/preprocessed` folder of done nnU-Net runs (nnU-Net's copy of the run's training
data; evaluate and predict read the trained fold under `nnunet/results`, never this folder).
A stopped, failed or running run keeps its last.pt, which its resume needs, and best.pt, the
weights every run is scored and used by, is never a candidate.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from genseg_cli.report.collect import find_run_dirs

LAST = Path("checkpoints") / "last.pt"
CACHE = Path("cache") / "generators"  # under an output dir (conf/method/separate.yaml)
NNUNET_PREPROCESSED = Path("nnunet") / "preprocessed"  # engine.nnunet.layout's folder


@dataclass(frozen=True)
class Held:
    """One file (a folder for "nnunet") and its size; `what`: "cache", "last.pt" or "nnunet"."""

    path: Path
    size: int
    what: str


@dataclass
class DiskUse:
    """What can be given back (`freeable`), and what is kept because a run still needs it."""

    freeable: list[Held]
    kept: list[Held]  # last.pt of stopped, failed or running runs
    running: list[Path]  # runs whose status is running: the caches stay while they train

    @property
    def total(self) -> int:
        return sum(h.size for h in self.freeable)


def size_text(size: float) -> str:
    """Bytes in decimal units, as `df -H` and file managers show them.

    >>> size_text(172_041_216), size_text(950), size_text(3.2e9)
    ('172.0 MB', '950 B', '3.2 GB')
    """
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def run_status(run_dir: Path) -> str | None:
    """status.json's status word (None: absent or unreadable)."""
    try:
        status = json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return None
    return str(status.get("status")) if isinstance(status, dict) else None


def cache_files(folders: Iterable[Path]) -> list[Held]:
    """The cached pre-trained generators in these folders, each real folder once."""
    held, seen = [], set()
    for folder in folders:
        real = folder.resolve()
        if real in seen or not folder.is_dir():
            continue
        seen.add(real)
        held += [Held(p, p.stat().st_size, "cache") for p in sorted(folder.glob("*.pt"))]
    return held


def disk_use(root: Path, caches: Iterable[Path]) -> DiskUse:
    """The caches in `caches` and the last.pt of every run folder under `root`, sorted into
    what can be given back and what a run still needs."""
    use = DiskUse(cache_files(caches), [], [])
    for run_dir in find_run_dirs(root):
        status = run_status(run_dir)
        if status == "running":
            use.running.append(run_dir)
        path = run_dir / LAST
        if path.is_file():
            held = Held(path, path.stat().st_size, "last.pt")
            (use.freeable if status == "done" else use.kept).append(held)
        preprocessed = run_dir / NNUNET_PREPROCESSED
        if status == "done" and preprocessed.is_dir():  # a stopped run's resume trains from it
            size = sum(f.stat().st_size for f in preprocessed.rglob("*") if f.is_file())
            use.freeable.append(Held(preprocessed, size, "nnunet"))
    if use.running:  # a running run may be loading or writing a cache right now
        use.kept += [h for h in use.freeable if h.what == "cache"]
        use.freeable = [h for h in use.freeable if h.what != "cache"]
    return use


def remove(held: list[Held]) -> tuple[list[Held], list[tuple[Held, OSError]]]:
    """Delete each file: the ones removed (or already gone), and the ones that could not be,
    with why."""
    removed, failed = [], []
    for item in held:
        try:
            if item.path.is_dir():
                shutil.rmtree(item.path)
            else:
                item.path.unlink(missing_ok=True)
        except OSError as err:
            failed.append((item, err))
            continue
        removed.append(item)
    return removed, failed

"""`genseg runs [DIR] [--status STATUS]`: every run folder under DIR, one line each.

Shows what state each run is in (done, failed, running, stopped), what it is (dataset, method
with its variant, budget, seed), its test Dice when done (and IoU where that is the dataset's
headline metric), its train time, when it started and its folder. The reasons of failed and
stopped runs follow the table. `--disk` lists instead the space genseg can give back (generator
pre-training caches, last.pt of finished runs: `genseg_cli.report.disk`); `--clean` removes it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from genseg_cli.core.errors import GensegError
from genseg_cli.report.disk import CACHE, DiskUse, Held, disk_use, remove, size_text
from genseg_cli.report.runs_table import STATUS_NAMES, RunEntry, list_runs
from genseg_cli.stages.arguments import fit_width

STATUSES = (*STATUS_NAMES.values(), "interrupted", "no status", "unreadable")
COLORS = {"done": "green", "failed": "red", "running": "cyan", "stopped": "yellow"}
USAGE = (
    "usage: genseg runs [DIR] [--status STATUS[,STATUS]]\n"
    "       genseg runs --disk [--clean] [DIR]\n"
    "  DIR       folder searched (recursively) for run folders (default: $GENSEG_OUTPUT_DIR, "
    "else ./outputs, where genseg train writes)\n"
    "  --status  list only runs in these states: done, failed, running, stopped\n"
    "  --disk    the space genseg can give back, one line per file: the generator pre-training "
    "caches (DIR/cache/generators and $GENSEG_OUTPUT_DIR's) and checkpoints/last.pt of the "
    "finished runs under DIR\n"
    "  --clean   with --disk: remove those files (never best.pt; never a file of a running, "
    "stopped or failed run, which its resume needs)\n"
    "Columns: status, dataset, method [variant], labels, seed, test Dice (and IoU where the "
    "dataset's headline metric is IoU), train time, start time, folder (relative to DIR)."
)


@dataclass
class Options:
    """What `genseg runs` was asked: the folder, the statuses to list (None: all), and whether
    to show (and remove) the space genseg can give back instead."""

    folder: Path
    wanted: set[str] | None = None
    disk: bool = False
    clean: bool = False


def default_dir() -> Path:
    """Where `genseg train` writes runs unless told otherwise (conf/paths/default.yaml)."""
    return Path(os.environ.get("GENSEG_OUTPUT_DIR", "outputs"))


def parse_args(args: list[str]) -> Options:
    """The folder, the statuses to keep and the --disk/--clean switches.

    >>> opts = parse_args(["outputs/grid", "--status", "failed,interrupted"])
    >>> opts.folder, sorted(opts.wanted), opts.disk
    (PosixPath('outputs/grid'), ['failed', 'stopped'], False)
    """
    folders: list[str] = []
    wanted: set[str] | None = None
    switches: set[str] = set()
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg in ("--disk", "--clean"):
            switches.add(arg)
        elif arg == "--status" or arg.startswith("--status="):
            value = arg.split("=", 1)[1] if "=" in arg else (rest.pop(0) if rest else "")
            words = {w.strip() for w in value.split(",") if w.strip()}
            unknown = sorted(words - set(STATUSES))
            if not words or unknown:
                raise GensegError(
                    f"genseg runs: --status takes {', '.join(STATUS_NAMES.values())} "
                    f"(comma-separated), not {unknown[0] if unknown else 'nothing'!r}"
                )
            wanted = {STATUS_NAMES.get(w, w) for w in words} | (wanted or set())
        elif arg.startswith("-"):
            raise GensegError(f"genseg runs: unknown option {arg!r}; {USAGE.splitlines()[0]}")
        else:
            folders.append(arg)
    if len(folders) > 1:
        raise GensegError(f"genseg runs takes one folder, not {len(folders)}: {' '.join(folders)}")
    if "--clean" in switches and "--disk" not in switches:
        raise GensegError(
            "genseg runs: --clean removes what --disk lists; give both: "
            "genseg runs --disk --clean [DIR] (genseg runs --disk [DIR] shows what it removes)"
        )
    if "--disk" in switches and wanted is not None:
        raise GensegError(
            "genseg runs: --disk lists files of finished runs and caches, not runs by status; "
            "leave out --status"
        )
    folder = Path(folders[0]) if folders else default_dir()
    return Options(folder, wanted, "--disk" in switches, "--clean" in switches)


def duration(seconds: float | None) -> str:
    """45 -> '45s', 754 -> '12m34s', 7380 -> '2h03m'; None -> '-'."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def runs_table(entries: list[RunEntry], width: int = 100) -> Table:
    """One line per run; cells are plain Text (a variant's [brackets] are not rich markup).

    The short columns keep their full width; the method and the folder share what is left of
    `width` and fold onto more lines when they do not fit: a variant or a folder is never cut
    (it is what tells two runs apart)."""
    with_iou = any(e.headline == "iou" for e in entries)
    columns = ["status", "dataset", "method", "n", "seed", "Dice", *(["IoU"] * with_iou)]
    columns += ["time", "started", "folder"]
    rows = []
    for e in entries:
        started = time.strftime("%m-%d %H:%M", time.localtime(e.started)) if e.started else "-"
        iou = [score(e.test_iou) if e.headline == "iou" else ""] if with_iou else []
        rows.append(
            [
                e.status,
                e.dataset,
                e.method,
                "-" if e.n_labeled is None else str(e.n_labeled),
                "-" if e.seed is None else str(e.seed),
                score(e.test_dice),
                *iou,
                duration(e.train_time_s),
                started,
                str(e.path),
            ]
        )
    widest = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(columns)]
    elastic = {columns.index("method"), columns.index("folder")}
    left = width - (len(columns) - 1) - sum(w for i, w in enumerate(widest) if i not in elastic)
    method_w, folder_w = (widest[i] for i in sorted(elastic))
    if method_w + folder_w > left:  # the method keeps at least half of what is left
        method_w = min(method_w, max(left // 2, left - folder_w))
        folder_w = max(8, left - method_w)
    widths = dict(zip(sorted(elastic), (method_w, folder_w), strict=True))
    # one space between columns and none at the edges, so that a table fits 100 columns
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=0,
    )
    for i, name in enumerate(columns):
        table.add_column(
            name,
            justify="right" if name in ("n", "seed", "Dice", "IoU", "time") else "left",
            no_wrap=i not in elastic,
            overflow="fold",
            width=widths.get(i, widest[i]),
        )
    for row in rows:
        style = COLORS.get(row[0], "")
        table.add_row(Text(row[0], style=style), *(Text(cell) for cell in row[1:]))
    return table


def shown_path(path: Path, root: Path) -> str:
    """A path relative to `root` where it lies under it, else as it is."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def held_line(item: Held, root: Path) -> str:
    what = {"cache": "generator cache", "nnunet": "nnU-Net's data"}.get(item.what, "last.pt of run")
    where = item.path if item.what == "cache" else item.path.parent.parent  # the run folder
    return f"{size_text(item.size):>9}  {what:<15}  {shown_path(where, root)}"


def kept_line(use: DiskUse, root: Path) -> str | None:
    """What stays, and why (None: nothing)."""
    runs = [h for h in use.kept if h.what == "last.pt"]
    caches = [h for h in use.kept if h.what == "cache"]
    parts = []
    if runs:
        parts.append(
            f"last.pt of {len(runs)} stopped, failed or running "
            f"{'run' if len(runs) == 1 else 'runs'} ({size_text(sum(h.size for h in runs))}): "
            "resume=RUN_DIR needs it"
        )
    if caches:
        parts.append(
            f"{len(caches)} generator {'cache' if len(caches) == 1 else 'caches'} "
            f"({size_text(sum(h.size for h in caches))}) while "
            f"{shown_path(use.running[0], root)} is running"
        )
    return "kept: " + "; ".join(parts) if parts else None


def disk(root: Path, clean: bool, console: Console) -> int:
    """`--disk`: list the space genseg can give back under `root`; `--clean`: remove it."""
    use = disk_use(root, [default_dir() / CACHE, root / CACHE])

    def say(line: str) -> None:  # plain, soft-wrapped: a folder name is never cut
        console.print(line, highlight=False, markup=False, soft_wrap=True)

    if not use.freeable:
        say(
            f"nothing to give back under {root}: no cache, finished run's last.pt or finished "
            "nnU-Net run's preprocessed data is free to go"
        )
    elif not clean:
        say(f"space genseg can give back under {root}:")
        for item in use.freeable:
            say(held_line(item, root))
        n = len(use.freeable)
        say(
            f"{size_text(use.total):>9}  in all ({n} {'file' if n == 1 else 'files'}); "
            f"genseg runs --disk --clean {root} removes them"
        )
    else:
        removed, failed = remove(use.freeable)
        for item in removed:
            say(f"removed {held_line(item, root).strip()}")
        n = len(removed)
        freed = sum(h.size for h in removed)
        say(f"freed {size_text(freed)} ({n} {'file' if n == 1 else 'files'}); best.pt kept")
        if failed:
            item, err = failed[0]
            raise GensegError(
                f"could not remove {item.path} ({err.strerror}) and {len(failed) - 1} more; "
                "check the folder's permissions"
            )
    kept = kept_line(use, root)
    if kept:
        say(kept)
    return 0


def main(args: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in args):
        print(fit_width(USAGE))
        return 0
    opts = parse_args(args)
    root, wanted = opts.folder, opts.wanted
    if not root.is_dir():
        raise GensegError(
            f"no run folder {root}: give the folder holding the runs, e.g. genseg runs outputs"
        )
    if opts.disk:
        return disk(root, opts.clean, Console())
    entries, shared = list_runs(root)
    shown = [e for e in entries if wanted is None or e.status in wanted]
    console = Console()
    if not entries:
        console.print(f"no run folders under {root}", highlight=False, markup=False)
        return 0
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.status] = counts.get(e.status, 0) + 1
    tally = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    title = f"{len(entries)} runs under {root} ({tally})"
    if wanted is not None:
        title += f"; showing {len(shown)} {'/'.join(sorted(wanted))}"
    # plain lines (soft-wrapped, never cut): a long folder name must stay whole
    for line in [title, *shared.header()]:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(runs_table(shown, console.width))
    for e in shown:
        if e.reason and e.status != "done":
            reason = e.reason.splitlines()[0] if e.reason.strip() else e.reason
            line = f"{e.status} {e.path}: {reason}"
            console.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0

"""`genseg runs [DIR] [--status STATUS]`: every run folder under DIR, one line each.

Shows what state each run is in (done, failed, running, stopped), what it is (dataset, method
with its variant, budget, seed), its test Dice when done (and IoU where that is the dataset's
headline metric), its train time, when it started and its folder. The reasons of failed and
stopped runs follow the table.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from genseg_cli.core.errors import GensegError
from genseg_cli.report.runs_table import STATUS_NAMES, RunEntry, list_runs

STATUSES = (*STATUS_NAMES.values(), "interrupted", "no status", "unreadable")
COLORS = {"done": "green", "failed": "red", "running": "cyan", "stopped": "yellow"}
USAGE = (
    "usage: genseg runs [DIR] [--status STATUS[,STATUS]]\n"
    "  DIR       folder searched (recursively) for run folders (default: $GENSEG_OUTPUT_DIR,\n"
    "            else ./outputs, where genseg train writes)\n"
    "  --status  list only runs in these states: done, failed, running, stopped\n"
    "Columns: status, dataset, method [variant], labels, seed, test Dice (and IoU where the\n"
    "dataset's headline metric is IoU), train time, start time, folder (relative to DIR)."
)


def default_dir() -> Path:
    """Where `genseg train` writes runs unless told otherwise (conf/paths/default.yaml)."""
    return Path(os.environ.get("GENSEG_OUTPUT_DIR", "outputs"))


def parse_args(args: list[str]) -> tuple[Path, set[str] | None]:
    """The folder and the statuses to keep (None: all).

    >>> folder, wanted = parse_args(["outputs/grid", "--status", "failed,interrupted"])
    >>> folder, sorted(wanted)
    (PosixPath('outputs/grid'), ['failed', 'stopped'])
    """
    folders: list[str] = []
    wanted: set[str] | None = None
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--status" or arg.startswith("--status="):
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
    return (Path(folders[0]) if folders else default_dir()), wanted


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


def main(args: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in args):
        print(USAGE)
        return 0
    root, wanted = parse_args(args)
    if not root.is_dir():
        raise GensegError(
            f"no run folder {root}: give the folder holding the runs, e.g. genseg runs outputs"
        )
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

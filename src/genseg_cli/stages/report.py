"""`genseg report sweep_dir=DIR [out=DIR] [reference=baseline] [method=genseg] [duplicates=error]`.

Gathers the finished runs under a sweep directory into tables (CSV, Markdown, LaTeX), paired
differences to the reference method, label-efficiency factors, Dice-versus-labels figures and
paired-difference figures. What every run shares (overrides, setup, start weights) is written
once, as the header of summary.md and paired.md and above the terminal tables; the grouping
rules are in genseg_cli.report.grouping.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from genseg_cli.core.errors import GensegError
from genseg_cli.report.collect import (
    DUPLICATE_RULES,
    KEYS,
    Collected,
    SkippedRun,
    collect_from_csv,
    collect_runs,
)
from genseg_cli.report.figures import dice_vs_labels, paired_figure, series_colors
from genseg_cli.report.grouping import Shared
from genseg_cli.report.summary import (
    SETS_MEAN,
    aggregate,
    dice_columns,
    efficiency,
    metric_columns,
    paired,
    paired_differences,
)
from genseg_cli.report.views import TABLES, VIEWS, write_view
from genseg_cli.stages.arguments import Arg, fit_width, parse_key_values

log = logging.getLogger("genseg.report")

KINDS = {"dice": "Dice", "iou": "IoU", "hd95": "HD95 (mm)"}
DEFAULTS = {
    "sweep_dir": None,
    "runs_csv": None,
    "out": None,
    "reference": "baseline",
    "method": "genseg",
    "duplicates": Arg("error", str, choices=DUPLICATE_RULES),
    "view": Arg(TABLES, str, choices=VIEWS),
    "wins": Arg(2, int, minimum=1),
}
USAGE = (
    "usage: genseg report sweep_dir=DIR [out=DIR] [reference=baseline] [method=genseg]"
    " [duplicates=error]\n"
    "       genseg report runs_csv=FILE out=DIR [reference=...] [method=...]\n"
    "  sweep_dir   folder searched (recursively) for run directories\n"
    "  runs_csv    instead of sweep_dir: rebuild the report from an earlier report's runs.csv\n"
    "              (e.g. one committed under results/, after the run folders are gone)\n"
    "  out         where tables and figures go (default: <sweep_dir>/report)\n"
    "  reference   method that paired differences and label efficiency compare against\n"
    "  method      method whose label-efficiency factor over the reference is computed (and of\n"
    "              each of its variants)\n"
    "  duplicates  two finished runs of one config and seed: error (default; names both\n"
    "              folders) or newest (keeps the run whose metrics.json is newest, lists the\n"
    "              others as skipped)\n"
    "  view        tables (default): the report's tables and figures; goal: per dataset, the\n"
    "              method's per-seed difference to two references (reference=baseline,separate)\n"
    "              on the mean over test sets, and whether it is above both in at least `wins`\n"
    "              seeds (default 2);\n"
    "              upper_moves: each run's upper-level parameters, first and last logged value.\n"
    "              A view writes <out>/<view>.md only\n"
    "Overrides given to every run are named once in the header, not in method labels; runs of\n"
    "different profiles/experiments (the setup column) are never averaged or paired together."
)


def parse_args(args: list[str]) -> dict[str, str | None]:
    """key=value arguments over the defaults; unknown keys or bare words are errors.

    >>> parse_args(["sweep_dir=multirun/x", "reference=baseline_noaug"])["reference"]
    'baseline_noaug'
    """
    opts = parse_key_values("report", args, DEFAULTS)
    return {k: None if v is None else str(v) for k, v in opts.items()}


def label(column: str) -> str:
    """Display name of a metric column: test_dice -> 'test Dice', nlm_mc_iou -> 'nlm_mc IoU',
    test_anterior_dice -> 'test anterior Dice' (a class of a multi-class test set)."""
    if column == "train_time_s":
        return "train time (s)"
    if column == SETS_MEAN:
        return "mean Dice over test sets"
    name, _, kind = column.rpartition("_")
    if name.startswith("test_"):
        name = name.replace("_", " ", 1)
    return f"{name} {KINDS.get(kind, kind)}" if name else column


def fmt(value: object, digits: int = 4) -> str:
    """Floats to `digits` decimals, anything else (the '> max' markers, ints) as it is."""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def shown_keys(shared: Shared | None = None) -> list[str]:
    """The key columns a displayed table shows: the setup only where runs have several (one
    setup is named in the header instead)."""
    return [k for k in KEYS if not (k == "setup" and (shared is None or shared.one_setup))]


def display_summary(
    summary: pd.DataFrame, metrics: list[str], shared: Shared | None = None
) -> pd.DataFrame:
    """Summary as strings: one 'mean ± std' column (4 decimals) per metric; one seed: the
    mean alone (a std of one value says nothing)."""
    shown = summary[[*shown_keys(shared), "n_seeds"]].astype(str)
    for m in metrics:
        shown[label(m)] = [
            "-" if pd.isna(a) else f"{a:.4f}" if n == 1 else f"{a:.4f} ± {b:.4f}"
            for a, b, n in zip(
                summary[f"{m}_mean"], summary[f"{m}_std"], summary["n_seeds"], strict=True
            )
        ]
    return shown


def display_paired(
    table: pd.DataFrame, dice: list[str], shared: Shared | None = None
) -> pd.DataFrame:
    """Paired table as strings: '+mean ± std (wins/pairs)' per Dice column, the pairs counted
    where both runs have a score on that column (`<col>_n`; n_pairs where a table lacks it)."""
    shown = table[[*shown_keys(shared), "reference", "n_pairs"]].astype(str)
    for d in dice:
        shown[f"Δ {label(d)}"] = [
            "-"
            if pd.isna(a)
            else f"{a:+.4f} ({w}/{n})"
            if n == 1
            else f"{a:+.4f} ± {b:.4f} ({w}/{n})"
            for a, b, w, n in zip(
                table[f"{d}_diff_mean"],
                table[f"{d}_diff_std"],
                table[f"{d}_wins"],
                table.get(f"{d}_n", table["n_pairs"]),
                strict=True,
            )
        ]
    return shown


def markdown(frame: pd.DataFrame, header: list[str] | None = None) -> str:
    """A GitHub Markdown table of a frame of strings, after the header lines (one paragraph
    each: what every run shares)."""
    lines = [line for text in header or [] for line in (text, "")]
    lines += ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_latex(frame: pd.DataFrame, path: Path, header: list[str] | None = None) -> None:
    """LaTeX table via pandas (needs jinja2), the header lines as comments; a warning instead
    of a crash when it fails."""
    try:
        tex = frame.to_latex(index=False, escape=True)
    except Exception as err:  # jinja2 missing or a pandas quirk: the other outputs still matter
        log.warning("skipped %s: %s", path.name, err)
        return
    comments = "".join(f"% {line}\n" for line in header or [])
    path.write_text(comments + tex.replace("±", r"$\pm$").replace("Δ", r"$\Delta$"))


# shorter headers for the terminal (the files keep the full names)
TERSE = {"n_labeled": "n", "n_seeds": "seeds", "n_pairs": "pairs", "backbone": "net"}


def rich_table(frame: pd.DataFrame, title: str) -> Table:
    """The frame as a terminal table. Cells are plain Text: a variant label such as
    `genseg [mlo.generator_weights=true]` would otherwise be read as rich markup and vanish."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for column in frame.columns:
        left = column in (*KEYS[:3], "method", "reference")
        longest = max([len(str(v)) for v in frame[column]] + [1])
        # values keep their width (a long variant label folds at 40); headers wrap instead
        table.add_column(
            Text(TERSE.get(column, column), overflow="fold"),
            justify="left" if left else "right",
            overflow="fold",
            no_wrap=longest <= 40,
            min_width=min(longest, 40),
        )
    for row in frame.itertuples(index=False):
        table.add_row(*(Text(str(value)) for value in row))
    return table


def column_pages(frame: pd.DataFrame, width: int) -> list[list[str]]:
    """The frame's columns in groups that each fit `width` beside the key columns (dataset,
    method, ...), which every group repeats: a narrow terminal gets more tables, never a number
    cut or a column dropped."""
    keys = [c for c in frame.columns if c in (*KEYS[:3], "method", "reference")]
    rest = [c for c in frame.columns if c not in keys]

    def size(column: str) -> int:  # the cell, its header and rich's padding
        longest = max([len(str(v)) for v in frame[column]] + [1])
        return max(min(longest, 40), len(TERSE.get(column, column))) + 3

    room = width - sum(size(c) for c in keys)
    pages: list[list[str]] = [[]]
    for column in rest:
        if pages[-1] and sum(size(c) for c in pages[-1]) + size(column) > room:
            pages.append([])
        pages[-1].append(column)
    return [keys + page for page in pages]


def print_table(console: Console, frame: pd.DataFrame, title: str) -> None:
    """`rich_table` of the frame, in as many tables as the terminal's width needs."""
    pages = column_pages(frame, console.width)
    for i, columns in enumerate(pages, 1):
        part = f" ({i}/{len(pages)})" if len(pages) > 1 else ""
        console.print(rich_table(frame[columns], title + part))


def skipped_message(skipped: list[SkippedRun], limit: int = 5) -> str:
    shown = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:limit])
    return shown + (f"; ... {len(skipped) - limit} more" if len(skipped) > limit else "")


def write_figures(out: Path, summary: pd.DataFrame, diffs: pd.DataFrame, reference: str) -> None:
    """dice_vs_labels_<dataset>.png and, where there are pairs, paired_<dataset>.png."""
    for dataset in sorted(summary.dataset.unique()):
        colors = series_colors(summary, dataset)  # one colour per method in both figures
        dice_vs_labels(summary, dataset, out / f"dice_vs_labels_{dataset}.png", colors)
        path = out / f"paired_{dataset}.png"
        if paired_figure(diffs, dataset, path, reference, colors) is None:
            path.unlink(missing_ok=True)  # an earlier report's figure would no longer be true


def collect(opts: dict[str, str | None]) -> tuple[Collected, Path, Path]:
    """The runs (from sweep_dir's run folders, or runs_csv), where they came from, and `out`."""
    if opts["runs_csv"]:
        if opts["sweep_dir"]:
            raise GensegError("give genseg report sweep_dir=DIR or runs_csv=FILE, not both")
        source = Path(opts["runs_csv"])
        if not source.is_file():
            raise GensegError(f"runs_csv={source} is not a file")
        if not opts["out"]:
            raise GensegError("genseg report runs_csv=FILE needs out=DIR (where tables go)")
        return collect_from_csv(source), source, Path(opts["out"])
    if not opts["sweep_dir"]:
        raise GensegError("genseg report needs sweep_dir=DIR (the folder holding the runs)")
    sweep = Path(opts["sweep_dir"])
    if not sweep.is_dir():
        raise GensegError(f"sweep_dir {sweep} is not a directory")
    out = Path(opts["out"]) if opts["out"] else sweep / "report"
    return collect_runs(sweep, duplicates=str(opts["duplicates"])), sweep, out


def main(args: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in args):
        print(fit_width(USAGE))
        return 0
    opts = parse_args(args)
    collected, sweep, out = collect(opts)
    reference, method = opts["reference"], opts["method"]
    runs, skipped, shared = collected.runs, collected.skipped, collected.shared
    if runs.empty:
        detail = f" ({len(skipped)} skipped: {skipped_message(skipped)})" if skipped else ""
        raise GensegError(f"no finished runs under {sweep}{detail}")
    if opts["view"] != TABLES:
        text, path = write_view(str(opts["view"]), runs, out, method, reference, int(opts["wins"]))
        print(f"{text}\nwritten to {path}")
        return 0
    summary = aggregate(runs)
    diffs = paired_differences(runs, reference)
    pairs = paired(runs, reference)
    factors = efficiency(summary, method, reference)
    metrics, dice = metric_columns(runs), dice_columns(runs)
    shown = display_summary(summary, metrics, shared)
    paired_columns = dice + [SETS_MEAN] * (f"{SETS_MEAN}_diff_mean" in pairs.columns)
    shown_pairs = display_paired(pairs, paired_columns, shared)
    header = shared.header()
    if opts["runs_csv"]:  # runs.csv does not record the overrides every run shared
        header[0] = f"shared overrides: not recorded (rebuilt from {opts['runs_csv']})"

    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(markdown(shown, header))
    write_latex(shown, out / "summary.tex", header)
    pairs.to_csv(out / "paired.csv", index=False)
    diffs.to_csv(out / "paired_seeds.csv", index=False)
    (out / "paired.md").write_text(markdown(shown_pairs, header))
    factors.to_csv(out / "efficiency.csv", index=False)
    skipped_frame = pd.DataFrame(
        [(str(s.path), s.reason) for s in skipped], columns=["path", "reason"]
    )
    skipped_frame.to_csv(out / "skipped.csv", index=False)
    write_figures(out, summary, diffs, reference)
    if pairs.empty:
        log.warning("no runs of reference method '%s' to pair with; paired.csv is empty", reference)
    if factors.empty:
        log.warning("no label-efficiency factors: need runs of '%s' and '%s'", method, reference)

    console = Console()
    for line in header:
        console.print(line, highlight=False, markup=False)
    # the terminal shows the Dice columns; IoU, HD95, tstr and train time are in summary.md
    terse = shown[
        [c for c in shown.columns if not c.endswith((" IoU", "(s)", "HD95 (mm)", "tstr"))]
    ]
    print_table(
        console, terse, f"{len(runs)} finished runs under {sweep} (all columns: summary.md)"
    )
    if not pairs.empty:
        # the reference is in the title; its column only when a variant has its own
        terse_pairs = shown_pairs
        if shown_pairs["reference"].nunique() == 1:
            terse_pairs = shown_pairs.drop(columns="reference")
        print_table(console, terse_pairs, f"paired differences to {reference}")
    if not factors.empty:
        title = f"label efficiency of {method} over {reference}"
        shown_factors = factors[
            [c for c in factors.columns if c in shown_keys(shared) or c not in KEYS]
        ]
        print_table(console, shown_factors.map(fmt), title)
    if skipped:
        console.print(f"[yellow]{len(skipped)} skipped run(s):[/yellow]")
        for s in skipped:
            console.print(f"  {s.path}: {s.reason}", highlight=False, markup=False)
    console.print(f"report written to {out}", highlight=False)
    return 0

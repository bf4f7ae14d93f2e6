"""`genseg data list | check NAME | prepare NAME --src PATH | download NAME`: the registry at work.

Exit codes of `genseg data download`: 0 prepared and valid (or already there), 1 prepared but
`genseg data check` found problems, 2 a step for the user: a dataset behind a registration (the
one line printed says where to get it and which `genseg data prepare` to run), a checksum
mismatch, a network error or another bad request (one-line error).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from rich import box
from rich.console import Console
from rich.table import Table

from genseg_cli.core.errors import DataContractError, GensegError
from genseg_cli.data import remote
from genseg_cli.data.codecs import codec_for
from genseg_cli.data.contract import ContractReport
from genseg_cli.data.io import WIDE_GREY, read_split_table
from genseg_cli.data.registry import (
    GENERIC,
    dataset_names,
    dataset_root,
    dataset_spec,
    require_present,
)
from genseg_cli.data.splits import split_table_problems, uses_split_table
from genseg_cli.data.unlabeled import UNLABELED_DIR, extra_images

console = Console()
MANUAL = 2  # exit code of `genseg data download` for a dataset the user must fetch by hand


def default_data_dir() -> str:
    """paths.data_dir of the composed config (GENSEG_DATA_DIR when set)."""
    from genseg_cli.core.config import compose

    return str(compose("train", ["profile=debug"]).paths.data_dir)


def list_datasets(data_dir: str) -> int:
    # readable at 80 columns: no cell wraps; the task (long prose) only where there is room
    with_task = console.width >= 110
    table = Table(
        title=f"datasets in {Path(data_dir).resolve()}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("name", "here", "pairs", "split", "budgets", "OOD sets", "metric"):
        table.add_column(column, no_wrap=True, min_width=len(column))
    if with_task:
        table.add_column("task")
    downloadable = False
    for name in dataset_names():
        spec = dataset_spec(name)
        if spec.name == GENERIC:
            continue  # not a dataset of its own: the line below the table
        root, codec = dataset_root(spec, data_dir), codec_for(spec.dims)
        present = codec.is_present(root)
        # "no*": absent but `genseg data download` fetches it (a marker, not a column: 80 wide)
        fetchable = not present and remote.is_downloadable(spec)
        downloadable = downloadable or fetchable
        table.add_row(
            name,
            "[green]yes[/green]" if present else "[dim]no*[/dim]" if fetchable else "[dim]no[/dim]",
            str(codec.count_pairs(root)) if present else "-",
            "official" if present and read_split_table(root) else "seeded" if present else "-",
            ",".join(map(str, spec.label_budgets)),
            ",".join(spec.ood) or "-",
            spec.metric,
            *([spec.task] if with_task else []),
        )
    console.print(table)
    if downloadable:
        console.print(
            "no*: not here, and `genseg data download NAME` fetches it",
            highlight=False,
        )
    console.print(
        f"{GENERIC}: any folder with images/ and masks/: genseg train dataset={GENERIC} "
        "dataset.root=PATH (check it with genseg data check folder --root PATH)",
        highlight=False,
    )
    return 0


def summary_table(name: str, report: ContractReport) -> Table:
    table = Table(title=f"{name}: {report.root}", show_header=False)
    sizes = ", ".join(f"{'x'.join(map(str, s))} ({n})" for s, n in report.sizes.most_common(3))
    fg = np.asarray(report.foreground) if report.foreground else np.zeros(1)
    rows = {
        "pairs": str(report.n_pairs),
        "modes / labels": ", ".join(f"{m} ({n})" for m, n in sorted(report.modes.items())),
        "most common sizes": sizes or "-",
        "foreground share": f"mean {fg.mean():.3f}, min {fg.min():.3f}, max {fg.max():.3f}",
        "empty masks": str(len(report.empty_masks)),
        "problems": str(len(report.problems) + report.all_empty),
    }
    for key, value in rows.items():
        table.add_row(key, value)
    return table


def split_findings(spec: DictConfig, folder: Path) -> tuple[list[str], list[str]]:
    """(warnings, problems) of the folder's split.csv, as training would read it."""
    try:
        table = read_split_table(folder)
    except DataContractError as err:
        return [], [str(err)]
    if table is None:
        return [], []
    if not uses_split_table(spec):
        return [
            f"{table.path} is not read: '{spec.name}' holds out a seeded "
            f"{spec.split.test_fraction} of the ids as its test set"
        ], []
    return [], split_table_problems(codec_for(spec.dims).ids(folder), spec, table)


def check(name: str, data_dir: str, root: str | None) -> int:
    """Exit 0 when the folder meets the contract, 1 (after listing the problems) when not."""
    spec = dataset_spec(name)
    if spec.name == GENERIC and not root:
        raise GensegError("genseg data check folder needs --root /path/to/folder (images/, masks/)")
    folder = Path(root).resolve() if root else dataset_root(spec, data_dir)
    require_present(spec, folder)
    try:
        report = codec_for(spec.dims).check(folder)
    except DataContractError as err:  # a folder that cannot even be indexed (duplicate ids)
        console.print(f"[red]problem:[/red] {err}", highlight=False, soft_wrap=True)
        console.print(f"[red]{name} breaks the dataset contract[/red] (1 problem)")
        return 1
    console.print(summary_table(name, report))
    if report.mask_convention:  # which of the two accepted conventions the masks use
        console.print(report.mask_convention, highlight=False)
    extra = extra_images(folder, codec_for(spec.dims))
    if extra:  # images without masks, for objectives on unlabeled images (ssl=...)
        console.print(f"{len(extra)} unlabeled images in {folder / UNLABELED_DIR}", highlight=False)
    wide = sum(n for mode, n in report.modes.items() if mode in WIDE_GREY)
    if wide:  # read_image's rule, said where the user checks the data
        console.print(
            f"{wide} images are grey of more than 8 bits: each is stretched from its own "
            "min..max to 0..255",
            highlight=False,
        )
    warnings, split_problems = split_findings(spec, folder)
    for warning in report.warnings + warnings:
        # soft_wrap: a long path is never broken across lines (copyable, and greppable)
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    problems = report.problems + ([report.empty_problem()] if report.all_empty else [])
    problems += split_problems
    for problem in problems:
        console.print(f"[red]problem:[/red] {problem}", highlight=False, soft_wrap=True)
    if problems:
        console.print(f"[red]{name} breaks the dataset contract[/red] ({len(problems)} problems)")
        return 1
    console.print(f"[green]{name} is valid[/green]: {report.n_pairs} pairs")
    return 0


def prepare(
    name: str, src: str, data_dir: str, dst: str | None, max_size: int | None, overwrite: bool
) -> int:
    from genseg_cli.data.prepare import prepare_dataset

    spec = dataset_spec(name)
    target = Path(dst) if dst else Path(data_dir) / name
    result = prepare_dataset(
        spec.prepare or name, src=Path(src), dst=target, max_size=max_size, overwrite=overwrite
    )
    for warning in result.warnings:
        # soft_wrap: a long path is never broken across lines (copyable, and greppable)
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    console.print(
        f"prepared {result.n_pairs} pairs of {name} in {result.dst}"
        f"{' (with the official split)' if result.has_split else ''}"
    )
    return 0


def download(
    name: str,
    to: str,
    keep_archive: bool,
    overwrite: bool,
    max_size: int | None,
    url: str | None,
) -> int:
    """Fetch, verify, prepare and check one dataset; see the module docstring for exit codes."""
    from genseg_cli.data.download import download_dataset, resolve_plan, unverified

    spec = dataset_spec(name)
    target = Path(to).expanduser().resolve()
    dst = target / name
    if codec_for(spec.dims).is_present(dst) and not overwrite:
        console.print(
            f"{name} is already in {dst}; nothing downloaded (--overwrite fetches it again)",
            highlight=False,
            soft_wrap=True,
        )
        return 0
    plan = remote.download_plan(spec)
    if isinstance(plan, remote.ManualPlan):
        # not an error: what the user does next, on one line even at 80 columns
        console.print(
            f"{name} cannot be downloaded by genseg: {plan.instruction(target)}",
            highlight=False,
            soft_wrap=True,
        )
        return MANUAL
    public = resolve_plan(name, url)
    for warning in unverified(public):
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    result = download_dataset(
        name,
        target,
        plan=public,
        overwrite=overwrite,
        keep_archive=keep_archive,
        max_size=max_size,
    )
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    where = ", ".join(str(p) for p in result.archives)
    console.print(
        f"downloaded and prepared {result.n_pairs} pairs of {name} in {result.dst}"
        f"{' (with the official split)' if result.has_split else ''}; archive "
        f"{'kept in ' + where if result.archives_kept else 'deleted (--keep-archive keeps it)'}",
        highlight=False,
        soft_wrap=True,
    )
    return check(name, str(target), None)


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", help="folder of datasets (default: paths.data_dir, GENSEG_DATA_DIR)"
    )
    p = argparse.ArgumentParser(
        prog="genseg data", description="list, check, prepare and download datasets"
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "list", parents=[common], help="every registered dataset, whether present, pairs"
    )
    c = sub.add_parser(
        "check", parents=[common], help="verify a dataset's files against the contract"
    )
    c.add_argument("name")
    c.add_argument("--root", help="check this folder instead of <data-dir>/<name>")
    pr = sub.add_parser(
        "prepare", parents=[common], help="convert an official download into the standard layout"
    )
    pr.add_argument("name")
    pr.add_argument(
        "--src",
        required=True,
        help="the official download: its archive (tar, zip) or the unpacked folder",
    )
    pr.add_argument("--dst", help="output folder (default: <data-dir>/<name>)")
    pr.add_argument("--max-size", type=int, help="resize so the long side is at most this")
    pr.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    d = sub.add_parser(
        "download",
        parents=[common],
        help="fetch a public dataset's official archive, verify, prepare and check it",
        description="exit 0: done; 1: check found problems; 2: a manual download is needed "
        "(the line printed says where and what to run) or a download/checksum error",
    )
    d.add_argument("name")
    d.add_argument("--to", help="folder of datasets to put it in (default: --data-dir)")
    d.add_argument(
        "--keep-archive",
        action="store_true",
        help="keep the archive in <DIR>/.downloads (default: deleted after a successful prepare)",
    )
    d.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    d.add_argument("--max-size", type=int, help="resize so the long side is at most this")
    # a mirror of a single-archive dataset; its checksum is still checked
    d.add_argument("--url", help=argparse.SUPPRESS)
    return p


def main(args: list[str]) -> int:
    ns = parser().parse_args(args)
    if ns.command == "download":  # --to needs no composed config
        to = ns.to or ns.data_dir or default_data_dir()
        return download(ns.name, to, ns.keep_archive, ns.overwrite, ns.max_size, ns.url)
    data_dir = ns.data_dir or default_data_dir()
    if ns.command == "list":
        return list_datasets(data_dir)
    if ns.command == "check":
        return check(ns.name, data_dir, ns.root)
    return prepare(ns.name, ns.src, data_dir, ns.dst, ns.max_size, ns.overwrite)

"""Gather a suite's finished runs into one table (block and method from each run's folder) and
write the benchmark's tables."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from genseg_cli.benchmark.state import run_dir
from genseg_cli.benchmark.suite import Block, Suite
from genseg_cli.core.errors import GensegError
from genseg_cli.report.benchmark_tables import SuiteInfo, write_benchmark_tables
from genseg_cli.report.collect import MACHINE_COLUMNS, SkippedRun, try_read_run

log = logging.getLogger("genseg.benchmark")
FIRST = ["dataset", "budget", "seed", "block", "method"]


def suite_runs(
    suite: Suite, out: Path, blocks: list[Block]
) -> tuple[pd.DataFrame, list[SkippedRun]]:
    """One row per finished run of `blocks`: the runs-table columns of `genseg report`, with the
    suite's method name and the block; runs not done are returned as skipped, with the reason."""
    rows, skipped = [], []
    for block in blocks:
        for method in suite.methods:
            folder = run_dir(out, block, method)
            if not folder.exists():
                continue
            row, reason = try_read_run(folder)
            if row is None:
                skipped.append(SkippedRun(folder, reason))
                continue
            row = {k: v for k, v in row.items() if not k.startswith("_")}
            row.update(dataset=block.dataset, budget=block.budget, seed=block.seed)
            row.update(block=block.name, method=method)
            rows.append(row)
    runs = pd.DataFrame(rows)
    if runs.empty:
        return pd.DataFrame(columns=[*FIRST, "test_dice", *MACHINE_COLUMNS]), skipped
    drop = ["n_labeled", "base_method", "variant"]
    rest = [c for c in runs.columns if c not in FIRST and c not in drop]
    return runs[[*FIRST, *rest]], skipped


def write_report(suite: Suite, out: Path, tables: Path, blocks: list[Block]) -> str:
    """Write the tables of every finished run of `blocks` into `tables` (with the recorded runs
    of complete blocks whose folders are elsewhere); benchmark.md's text."""
    runs, skipped = suite_runs(suite, out, blocks)
    recorded = recorded_runs(suite, tables)
    if not recorded.empty:
        here = set(zip(runs.block, runs.method, strict=True)) if not runs.empty else set()
        names = {b.name for b in blocks}
        keep = [
            (b, m) not in here and b in names
            for b, m in zip(recorded.block, recorded.method, strict=True)
        ]
        recorded = recorded[keep]
        # run folders are machine-specific: the tables name them relative to the benchmark folder
        runs = pd.concat([relative_dirs(runs, out), recorded], ignore_index=True)
    else:
        runs = relative_dirs(runs, out)
    for skip in skipped:
        log.info("not in the tables: %s (%s)", skip.path, skip.reason)
    info = SuiteInfo(
        name=suite.name,
        description=suite.description or suite.name,
        reference=suite.reference,
        methods=tuple(suite.methods),
        blocks=tuple(b.name for b in blocks),
    )
    order = {b.name: i for i, b in enumerate(blocks)}
    methods = {m: i for i, m in enumerate(suite.methods)}
    if not runs.empty:
        runs = runs.assign(_b=runs.block.map(order), _m=runs.method.map(methods))
        runs = runs.sort_values(["_b", "_m"]).drop(columns=["_b", "_m"]).reset_index(drop=True)
    return write_benchmark_tables(info, runs, tables)


def relative_dirs(runs: pd.DataFrame, out: Path) -> pd.DataFrame:
    if "run_dir" in runs.columns and not runs.empty:
        runs = runs.assign(run_dir=[str(Path(p).relative_to(out)) for p in runs.run_dir])
    return runs


def recorded_runs(suite: Suite, tables: Path) -> pd.DataFrame:
    """The runs of complete blocks in an earlier runs.csv of these tables (committed, say, from
    another machine whose run folders are not here): they count as done and stay in the tables.
    Runs of incomplete blocks there are not taken: such a block is trained again whole."""
    path = tables / "runs.csv"
    if not path.is_file():
        return pd.DataFrame()
    try:
        runs = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise GensegError(f"{path} cannot be read ({err}); move it away to start afresh") from None
    if runs.empty or not {"block", "method"} <= set(runs.columns):
        return pd.DataFrame()
    runs = runs[runs.method.isin(list(suite.methods))]
    counts = runs.groupby("block").method.nunique()
    complete = counts[counts == len(suite.methods)].index
    return runs[runs.block.isin(complete)].reset_index(drop=True)


def glance_section(markdown: str) -> str:
    """The first at-a-glance table of benchmark.md (kept checkpoint) with its header line."""
    lines = markdown.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("## Scored with")]
    if not starts:
        return lines[2] if len(lines) > 2 else ""
    end = next((i for i in range(starts[0] + 2, len(lines)) if not lines[i].startswith("|")), None)
    title = lines[starts[0]].removeprefix("## ")
    return "\n".join([lines[2], "", f"**{title}**", *lines[starts[0] + 1 : end]])


def readme_markers(readme: Path, suite: str) -> tuple[str, str]:
    """The suite's marker pair in `readme`; a GensegError when the file or a marker is missing."""
    start, end = f"<!-- benchmark:{suite} -->", f"<!-- /benchmark:{suite} -->"
    try:
        text = readme.read_text()
    except OSError as err:
        raise GensegError(f"readme={readme}: cannot be read ({err.strerror})") from None
    if start not in text or end not in text.split(start, 1)[1]:
        raise GensegError(
            f"readme={readme}: no `{start}` ... `{end}` markers; add them where the table goes"
        )
    return start, end


def paste_into_readme(readme: Path, suite: str, markdown: str, tables: Path) -> None:
    """Replace what lies between `<!-- benchmark:SUITE -->` and `<!-- /benchmark:SUITE -->` in
    `readme` with the suite's at-a-glance table; nothing else of the file changes."""
    start, end = readme_markers(readme, suite)
    head, rest = readme.read_text().split(start, 1)
    _, tail = rest.split(end, 1)
    where = (
        f"Made by `genseg benchmark suite={suite} tables={tables} --report readme={readme.name}`"
        f" (all of it: `{tables}/benchmark.md`)."
    )
    body = f"{start}\n{glance_section(markdown)}\n\n{where}\n{end}"
    readme.write_text(head + body + tail)

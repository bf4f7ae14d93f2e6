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

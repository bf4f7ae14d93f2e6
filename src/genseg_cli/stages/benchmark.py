"""`genseg benchmark suite=NAME [--plan] [--report] [key=value ...]`: run a suite, block by block,
and write its paired tables.

Every missing run of the suite is trained (finished runs are kept, so a stopped benchmark
continues, here or on another machine); after each finished block the tables are rewritten, so
they can be committed block by block. `--plan` only lists what is done, what is left and the
time each block still needs on this machine; `--report` only rewrites the tables.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from genseg_cli.benchmark.report import (
    paste_into_readme,
    readme_markers,
    recorded_runs,
    write_report,
)
from genseg_cli.benchmark.runner import run_local, submit_slurm
from genseg_cli.benchmark.state import (
    MACHINE_KEYS,
    BlockState,
    block_states,
    estimates,
    machine_label,
    this_machine,
)
from genseg_cli.benchmark.suite import Block, Suite, load_suite
from genseg_cli.core.errors import GensegError
from genseg_cli.data.registry import dataset_root, dataset_spec, require_present
from genseg_cli.stages.arguments import REQUIRED, Arg, parse_key_values

log = logging.getLogger("genseg.benchmark")
FLAGS = ("--plan", "--report")
ABOUT = (
    "Runs every missing run of a suite (conf/benchmark/<suite>.yaml) block by block, then writes\n"
    "its tables: per dataset and method, Dice and IoU per test set, and the paired difference to\n"
    "the reference inside each block with a 95% bootstrap interval. --plan lists what is done\n"
    "and left with the time per block on this machine; --report only rewrites the tables."
)
SPEC = {
    "suite": Arg(REQUIRED, str, help="suite name (conf/benchmark/NAME.yaml) or a .yaml path"),
    "out": Arg(None, str, help="benchmark folder (default: $GENSEG_OUTPUT_DIR/benchmark/SUITE)"),
    "tables": Arg(None, str, help="where the tables go (default: OUT/tables)"),
    "jobs": Arg(None, int, minimum=1, help="runs at once on this machine (default: the suite's)"),
    "seeds": Arg(None, list, help="only these seeds of the suite, e.g. [0,1]"),
    "datasets": Arg(None, list, help="only these datasets of the suite, e.g. [jsrt,ph2]"),
    "methods": Arg(
        None, list, help="only these methods' runs here, e.g. [nnunet] (another process, same out)"
    ),
    "blocks": Arg(None, int, minimum=1, help="stop after starting this many unfinished blocks"),
    "launcher": Arg(
        "local", str, ("local", "slurm"), help="local processes | a Slurm job per block"
    ),
    "slurm": Arg(None, None, help="submitit parameters, e.g. {partition: gpu, timeout_min: 600}"),
    "readme": Arg(None, str, help="also paste the table between this file's benchmark markers"),
    "restart_foreign": Arg(False, bool, help="rerun here the blocks started on another machine"),
}


def output_root() -> Path:
    return Path(os.environ.get("GENSEG_OUTPUT_DIR", "outputs"))


def data_dir() -> Path:
    return Path(os.environ.get("GENSEG_DATA_DIR", "data"))


def check_data(suite: Suite, blocks: list[Block]) -> None:
    """Every dataset and out-of-domain set of the blocks to run is present, before any run
    starts (an absent out-of-domain set would silently drop a column from some blocks only)."""
    names = {b.dataset for b in blocks}
    for entry in [d for d in suite.datasets if d.name in names]:
        for name in (entry.name, *entry.ood):
            spec = dataset_spec(name)
            require_present(spec, dataset_root(spec, data_dir()))


def chosen_seeds(suite: Suite, seeds: list[str] | None) -> tuple[int, ...]:
    if seeds is None:
        return suite.seeds
    try:
        chosen = tuple(int(s) for s in seeds)
    except ValueError:
        raise GensegError(
            f"genseg benchmark: seeds={seeds}: give whole numbers, e.g. [0,1]"
        ) from None
    unknown = [s for s in chosen if s not in suite.seeds]
    if unknown:
        raise GensegError(
            f"genseg benchmark: seed {unknown[0]} is not in suite {suite.name}'s seeds "
            f"{list(suite.seeds)}; add it to {suite.path}"
        )
    return chosen


def chosen(suite: Suite, what: str, names: list[str] | None, known: list[str]) -> tuple | None:
    """The names given for `what` (dataset, method), each one of the suite's; None: all."""
    if names is None:
        return None
    unknown = [str(n) for n in names if str(n) not in known]
    if unknown:
        raise GensegError(
            f"genseg benchmark: {what} {unknown[0]} is not in suite {suite.name}'s {what}s "
            f"{known}; add it to {suite.path}"
        )
    return tuple(str(n) for n in names)


def only_methods(todo: list[BlockState], methods: tuple[str, ...] | None) -> list[BlockState]:
    """The blocks to run with only the chosen methods' runs (the others are another process's,
    on this machine: a block still never spans two machines, the foreign check sees to that)."""
    if methods is None:
        return todo
    chosen = [
        BlockState(s.block, [r for r in s.runs if r.method in methods], s.status) for s in todo
    ]
    return [s for s in chosen if s.missing]


def plan_table(suite: Suite, out: Path, states: list[BlockState], jobs: int) -> Table:
    times = estimates(suite, out)
    table = Table(title=f"suite {suite.name}: {out}", title_justify="left")
    for column in ("block", "state", "runs done", "time left", "note"):
        table.add_column(column)
    total = 0.0
    for state in states:
        left = sum(times[state.block.dataset, r.method].seconds for r in state.missing)
        measured = all(times[state.block.dataset, r.method].measured for r in state.missing)
        if state.status != "foreign":
            total += left
        done = len(state.runs) - len(state.missing)
        shown = "-" if not left else f"{left / 60:.1f} min" + ("" if measured else " (hint)")
        note = state.why or ", ".join(r.method for r in state.missing if r.status != "missing")
        row = (state.block.name, state.status, f"{done}/{len(state.runs)}", shown, note)
        table.add_row(*(escape(cell) for cell in row))
    blocks_done = sum(s.status == "done" for s in states)
    table.caption = escape(
        f"{blocks_done}/{len(states)} blocks done; about {total / 3600 / jobs:.1f} h left at "
        f"{jobs} run(s) at once on {machine_label(this_machine())}. "
        "(hint): the suite's minutes, until a run of this machine is timed"
    )
    table.caption_justify = "left"
    return table


def to_run(states: list[BlockState], restart_foreign: bool, limit: int | None) -> list[BlockState]:
    todo = [s for s in states if s.status in ("left", "partial")]
    if restart_foreign:
        todo = [s for s in states if s.status != "done"]
    return todo[:limit] if limit else todo


def main(args: list[str]) -> int:
    flags = {a for a in args if a in FLAGS}
    cfg = parse_key_values("benchmark", [a for a in args if a not in FLAGS], SPEC, ABOUT)
    suite = load_suite(cfg.suite)
    out = Path(cfg.out) if cfg.out else output_root() / "benchmark" / suite.name
    tables = Path(cfg.tables) if cfg.tables else out / "tables"
    jobs = int(cfg.jobs or suite.jobs)
    datasets = chosen(suite, "dataset", cfg.datasets, [d.name for d in suite.datasets])
    blocks = suite.blocks(chosen_seeds(suite, cfg.seeds), datasets)
    methods = chosen(suite, "method", cfg.methods, list(suite.methods))
    if methods is not None and cfg.launcher == "slurm":
        raise GensegError(
            "genseg benchmark: methods= runs part of a block; a Slurm job runs whole blocks, "
            "so leave methods= out with launcher=slurm"
        )
    if cfg.readme:
        readme_markers(Path(cfg.readme), suite.name)  # before hours of training, not after
    console = Console()
    recorded = recorded_runs(suite, tables)
    machines = {
        (row["block"], row["method"]): {k: str(row.get(f"machine_{k}", "")) for k in MACHINE_KEYS}
        for _, row in recorded.iterrows()
    }
    states = block_states(suite, out, blocks, machines)
    if "--plan" in flags:
        console.print(plan_table(suite, out, states, jobs))
        return 0
    if "--report" not in flags:
        check_data(suite, [s.block for s in to_run(states, bool(cfg.restart_foreign), None)])
        if cfg.restart_foreign:
            set_aside_foreign(out, states)
        todo = to_run(states, bool(cfg.restart_foreign), cfg.blocks)
        if cfg.launcher == "slurm":
            slurm = OmegaConf.to_container(cfg.slurm) if cfg.slurm else {}
            if not isinstance(slurm, dict):
                raise GensegError(
                    f"genseg benchmark: slurm={cfg.slurm}: give a mapping, e.g. "
                    "slurm='{slurm_partition: gpu, timeout_min: 600}'"
                )
            ids = [str(job.job_id) for job in submit_slurm(suite, out, todo, slurm)]
            console.print(f"submitted {len(ids)} block(s) to Slurm: {', '.join(ids)}")
            console.print(f"when they finish: genseg benchmark suite={cfg.suite} --report")
            return 0

        def on_block_done(block: Block) -> None:
            write_report(suite, out, tables, suite.blocks())
            what = "finished" if methods is None else f"runs of {', '.join(methods)} finished"
            console.print(f"block {block.name}: {what}; tables in {tables}")

        outcome = run_local(suite, out, only_methods(todo, methods), jobs, on_block_done)
        skipped = [s for s in states if s.status == "foreign" and not cfg.restart_foreign]
        for state in skipped:
            console.print(f"[yellow]skipped[/yellow] {state.block.name}: {state.why}")
    # the tables cover the whole suite: a run limited to some seeds or datasets keeps the rest
    text = write_report(suite, out, tables, suite.blocks())
    print(text)  # markdown as written to benchmark.md, unwrapped
    if cfg.readme:
        paste_into_readme(Path(cfg.readme), suite.name, text, tables)
        console.print(f"table pasted into {cfg.readme}")
    console.print(f"tables written to {tables}")
    if "--report" not in flags and outcome.failed:
        console.print(f"[red]failed runs[/red] (logs under {out / 'logs'}):")
        for name in outcome.failed:
            console.print(f"  {name}")
        return 1
    return 0


def set_aside_foreign(out: Path, states: list[BlockState]) -> None:
    """Move the finished runs of blocks started on another machine under <out>/foreign/, so that
    the whole block is trained again here (nothing is deleted)."""
    for state in states:
        if state.status != "foreign":
            continue
        for run in state.runs:
            if run.path.exists():
                target = out / "foreign" / state.block.name / run.method
                n = 1
                while target.exists():
                    target = target.with_name(f"{run.method}-{n}")
                    n += 1
                target.parent.mkdir(parents=True, exist_ok=True)
                run.path.rename(target)
                run.status = "missing"
        state.status = "left"

"""Run a suite's missing runs, block after block, on this machine or on Slurm.

Each run is its own `genseg train` process (its log under `<out>/logs/<block>/<method>.log`), so
a crash, an out-of-memory or Ctrl-C in one run leaves the others and the benchmark's state as
they were. Locally `jobs` runs go at once, taken in block order; on Slurm (submitit) each block
is one job that runs its methods one after the other, so a block never spans two machines.
A run that failed earlier is moved to `<out>/failed/` (nothing is deleted) and trained again;
an interrupted one is resumed.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from genseg_cli.benchmark.state import BlockState, RunState, read_run_state, record_timing
from genseg_cli.benchmark.suite import Block, Suite

log = logging.getLogger("genseg.benchmark")
FAILED = "failed"  # <out>/failed/<block>/<method>-<n>: earlier failed attempts, kept


@dataclass
class Outcome:
    """What a benchmark invocation did."""

    done: list[str] = field(default_factory=list)  # "<block>/<method>"
    failed: list[str] = field(default_factory=list)
    blocks_finished: list[str] = field(default_factory=list)


def train_command(suite: Suite, run: RunState) -> list[str]:
    """The `genseg train` command line of one run: a fresh start, or a resume."""
    base = [sys.executable, "-m", "genseg_cli", "train"]
    if run.status in ("interrupted", "running"):
        return [*base, f"resume={run.path}"]
    return [*base, *suite.run_overrides(run.block, run.method), f"hydra.run.dir={run.path}"]


def set_aside(out: Path, run: RunState) -> None:
    """Move a failed run's folder under <out>/failed/ so that it can be trained again."""
    if run.status != "failed" or not run.path.exists():
        return
    target_dir = out / FAILED / run.block.name
    target_dir.mkdir(parents=True, exist_ok=True)
    n = 1
    while (target_dir / f"{run.method}-{n}").exists():
        n += 1
    shutil.move(str(run.path), target_dir / f"{run.method}-{n}")
    run.status = "missing"


def execute(suite: Suite, out: Path, run: RunState) -> bool:
    """Train one run to the end in its own process; True when its status is then done."""
    set_aside(out, run)
    command = train_command(suite, run)
    logfile = out / "logs" / run.block.name / f"{run.method}.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with logfile.open("a") as handle:
        handle.write("$ " + " ".join(command) + "\n")
        handle.flush()
        code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT)
    ok = code == 0 and read_run_state(out, run.block, run.method).status == "done"
    record_timing(out, run.block, run.method, time.perf_counter() - started, ok)
    return ok


def run_local(
    suite: Suite,
    out: Path,
    todo: list[BlockState],
    jobs: int,
    on_block_done: Callable[[Block], None],
) -> Outcome:
    """Every missing run of `todo`, `jobs` at a time in block order; `on_block_done(block)` as
    soon as a block's last run finishes (the report is rewritten there)."""
    outcome = Outcome()
    remaining = {state.block: len(state.missing) for state in todo}
    failed_blocks: set[Block] = set()
    lock = threading.Lock()
    queue = [run for state in todo for run in state.missing]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        pending: dict[Future, RunState] = {}
        try:
            while queue or pending:
                while queue and len(pending) < jobs:
                    run = queue.pop(0)
                    log.info("start %s/%s", run.block.name, run.method)
                    pending[pool.submit(execute, suite, out, run)] = run
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in finished:
                    run = pending.pop(future)
                    name = f"{run.block.name}/{run.method}"
                    with lock:
                        if future.result():
                            outcome.done.append(name)
                            log.info("done %s", name)
                        else:
                            outcome.failed.append(name)
                            failed_blocks.add(run.block)
                            log.warning("failed %s (log: %s)", name, out / "logs" / f"{name}.log")
                        remaining[run.block] -= 1
                        if remaining[run.block] == 0 and run.block not in failed_blocks:
                            outcome.blocks_finished.append(run.block.name)
                            on_block_done(run.block)
        except KeyboardInterrupt:
            queue.clear()  # the running trainings got the same Ctrl-C and record `interrupted`
            for future in pending:
                future.cancel()
            raise
    return outcome


def run_block_serially(suite: Suite, out: Path, block: Block) -> list[str]:
    """A Slurm job's body: the block's missing runs one after the other; the failed ones."""
    failed = []
    for method in suite.methods:
        run = read_run_state(out, block, method, suite.run_overrides(block, method))
        if run.status != "done" and not execute(suite, out, run):
            failed.append(f"{block.name}/{method}")
    return failed


def submit_slurm(suite: Suite, out: Path, todo: list[BlockState], slurm: dict) -> list:
    """One submitit job per block (one machine per block); returns submitit's jobs (each job's
    result: its failed runs). `slurm` holds submitit's parameters (slurm_partition, timeout_min,
    gpus_per_node, cpus_per_task, ...)."""
    import submitit  # only when Slurm is asked for

    executor = submitit.AutoExecutor(
        folder=out / "slurm" / "%j", cluster=slurm.pop("cluster", None)
    )
    executor.update_parameters(name=f"genseg-{suite.name}", **slurm)
    return [executor.submit(run_block_serially, suite, out, s.block) for s in todo]

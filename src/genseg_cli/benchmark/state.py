"""Where a benchmark stands: each run's state from its folder, each block's from its runs, and
the time a block still needs on this machine.

A block is `done` when every method's run is done, `left` when none has started, `partial`
otherwise. A block whose finished runs were computed on another machine (CPU model or flags,
GPU, torch, CUDA or code commit differ from this one) is `foreign`: finishing it here would
pair runs of two machines, so it is left for that machine unless the user restarts it.
"""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genseg_cli.benchmark.suite import Block, Suite
from genseg_cli.core.fingerprint import machine_fingerprint

TIMINGS = "timings.csv"  # one row per run the benchmark launched: its wall time and machine
# the fields a run's machine must share with this one for a block to continue here (threads
# and precision follow from the suite's overrides on the same machine)
MACHINE_KEYS = ("cpu_model", "cpu_flags", "gpu", "torch", "cuda", "commit")


def this_machine() -> dict[str, str]:
    """The MACHINE_KEYS of the machine the benchmark runs on (its default device)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    fingerprint = machine_fingerprint("n/a", device)  # precision: set by each run's profile
    return {key: str(fingerprint[key]) for key in MACHINE_KEYS}


def machine_label(machine: dict) -> str:
    gpu = machine.get("gpu", "none")
    where = (
        gpu
        if gpu not in ("none", "", None)
        else f"{machine.get('cpu_model')} [{machine.get('cpu_flags')}]"
    )
    return f"{where}, torch {machine.get('torch')}, {str(machine.get('commit'))[:12]}"


@dataclass
class RunState:
    block: Block
    method: str
    path: Path
    status: str  # missing | running | interrupted | failed | done
    machine: dict = field(default_factory=dict)


@dataclass
class BlockState:
    block: Block
    runs: list[RunState]
    status: str  # done | partial | left | foreign
    why: str = ""

    @property
    def missing(self) -> list[RunState]:
        return [r for r in self.runs if r.status != "done"]


def run_dir(out: Path, block: Block, method: str) -> Path:
    return out / block.name / method


def read_run_state(out: Path, block: Block, method: str) -> RunState:
    path = run_dir(out, block, method)
    status_file = path / "status.json"
    if not status_file.is_file():
        return RunState(block, method, path, "missing")
    try:
        status = str(json.loads(status_file.read_text()).get("status"))
    except (OSError, json.JSONDecodeError, AttributeError):
        status = "failed"
    machine: dict = {}
    if status == "done":
        try:
            machine = json.loads((path / "metrics.json").read_text()).get("machine") or {}
        except (OSError, json.JSONDecodeError, AttributeError):
            status = "failed"
    return RunState(block, method, path, status, machine)


def block_states(
    suite: Suite,
    out: Path,
    blocks: list[Block],
    recorded: dict[tuple[str, str], dict] | None = None,
) -> list[BlockState]:
    """Each block's state from its run folders; `recorded` ((block, method) -> machine) holds the
    runs of complete blocks known from earlier tables, done though their folders are elsewhere."""
    here = this_machine()
    recorded = recorded or {}
    states = []
    for block in blocks:
        runs = [read_run_state(out, block, m) for m in suite.methods]
        for run in runs:
            if run.status == "missing" and (block.name, run.method) in recorded:
                run.status, run.machine = "done", recorded[block.name, run.method]
        done = [r for r in runs if r.status == "done"]
        started = [r for r in runs if r.status != "missing"]
        if len(done) == len(runs):
            states.append(BlockState(block, runs, "done"))
        elif not started:
            states.append(BlockState(block, runs, "left"))
        else:
            other = [r for r in done if any(r.machine.get(k) != here[k] for k in MACHINE_KEYS)]
            if other:
                why = f"started on {machine_label(other[0].machine)}"
                states.append(BlockState(block, runs, "foreign", why))
            else:
                states.append(BlockState(block, runs, "partial"))
    return states


def record_timing(out: Path, block: Block, method: str, wall_s: float, ok: bool) -> None:
    """Append one launched run's wall time to <out>/timings.csv (for the plan's estimates)."""
    path = out / TIMINGS
    new = not path.is_file()
    here = this_machine()
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["block", "dataset", "method", "wall_s", "ok", *MACHINE_KEYS])
        writer.writerow(
            [block.name, block.dataset, method, f"{wall_s:.1f}", int(ok)]
            + [here[k] for k in MACHINE_KEYS]
        )


@dataclass
class Estimate:
    seconds: float
    measured: bool  # from runs timed on this machine, else the suite's `minutes` hint


def estimates(suite: Suite, out: Path) -> dict[tuple[str, str], Estimate]:
    """(dataset, method) -> wall time of one run on this machine: the median of the runs timed
    here (same dataset, else any dataset), else the suite's hint."""
    here = this_machine()
    timed: dict[tuple[str, str], list[float]] = {}
    path = out / TIMINGS
    if path.is_file():
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                same = all(row.get(k) == here[k] for k in ("cpu_model", "cpu_flags", "gpu"))
                if same and row.get("ok") == "1":
                    timed.setdefault((row["dataset"], row["method"]), []).append(
                        float(row["wall_s"])
                    )
    result = {}
    for entry in suite.datasets:
        for method in suite.methods:
            own = timed.get((entry.name, method))
            anywhere = [t for (_, m), ts in timed.items() if m == method for t in ts]
            if own or anywhere:
                result[entry.name, method] = Estimate(statistics.median(own or anywhere), True)
            else:
                result[entry.name, method] = Estimate(60 * suite.minutes.get(method, 10.0), False)
    return result

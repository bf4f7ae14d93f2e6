"""Where a benchmark stands: each run's state from its folder, each block's from its runs, and
the time a block still needs on this machine.

A block is `done` when every method's run is done, `left` when none has started, `partial`
otherwise. A block whose finished runs were computed on another machine (CPU model or flags,
GPU, torch, CUDA or code commit differ from this one) is `foreign`: finishing it here would
pair runs of two machines, so it is left for that machine unless the user restarts it.

Suites may share one `out` folder: a run is the folder `<out>/<block>/<method>`, and a run that
another suite already made with the same overrides counts as this suite's run too (the baseline
of a block is trained once for every suite that has it). A folder made with other overrides is
refused, never taken for this suite's run.
"""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genseg_cli.benchmark.suite import Block, Suite
from genseg_cli.core.config import parsed_overrides
from genseg_cli.core.errors import GensegError
from genseg_cli.core.fingerprint import machine_fingerprint
from genseg_cli.report.grouping import BadRunFile, read_overrides

TIMINGS = "timings.csv"  # one row per run the benchmark launched: its wall time and machine
# the fields a run's machine must share with this one for a block to continue here (threads
# and precision follow from the suite's overrides on the same machine)
MACHINE_KEYS = ("cpu_model", "cpu_flags", "gpu", "torch", "cuda", "commit")
# overrides that change how a run is shown, not what it computes
DISPLAY_ONLY = ("trainer.progress=",)


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


def same_run(made_with: list[str], expected: list[str]) -> bool:
    """Whether a folder's overrides make the run `expected` describes (order, YAML spellings of
    one value and display-only overrides aside)."""

    def key(overrides: list[str]) -> list[tuple[str, object]]:
        return parsed_overrides(o for o in overrides if not o.startswith(DISPLAY_ONLY))

    return key(made_with) == key(expected)


def check_made_with(path: Path, expected: list[str]) -> None:
    """Refuse a run folder made with other overrides than this suite's run (another suite's
    same-named method, a hand-made run) instead of taking its results for this run."""
    try:
        made_with = read_overrides(path)
    except BadRunFile as err:
        raise GensegError(
            f"benchmark: {path}: {err}; move the folder away to train it again"
        ) from None
    if made_with and not same_run(made_with, expected):
        extra = sorted(set(made_with) - set(expected))
        lacking = sorted(set(expected) - set(made_with))
        raise GensegError(
            f"benchmark: {path} holds a run made with other overrides (it has "
            f"{' '.join(extra) or 'nothing more'}; this suite's run has "
            f"{' '.join(lacking) or 'nothing more'}); give this suite its own out= or move the "
            "folder away"
        )


def read_run_state(
    out: Path, block: Block, method: str, expected: list[str] | None = None
) -> RunState:
    """The state of `<out>/<block>/<method>`; with `expected` (the suite's overrides of this
    run), a started run made with other overrides is refused."""
    path = run_dir(out, block, method)
    status_file = path / "status.json"
    if not status_file.is_file():
        return RunState(block, method, path, "missing")
    if expected is not None:
        check_made_with(path, expected)
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
        runs = [read_run_state(out, block, m, suite.run_overrides(block, m)) for m in suite.methods]
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

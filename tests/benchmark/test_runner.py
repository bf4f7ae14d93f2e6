"""The runner's scheduling, with the training replaced by a stand-in that records its calls."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from genseg_cli.benchmark import runner
from genseg_cli.benchmark.state import block_states
from genseg_cli.benchmark.suite import load_suite


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Stand-in trainings: each writes a done run and records (block, method, thread name)."""
    calls: list[tuple[str, str, str]] = []

    def fake_execute(suite, out: Path, run) -> bool:
        calls.append((run.block.name, run.method, threading.current_thread().name))
        run.path.mkdir(parents=True)
        (run.path / "status.json").write_text(json.dumps({"status": "done"}))
        (run.path / "metrics.json").write_text(json.dumps({"machine": {}}))
        return run.method != "baseline_noaug" or run.block.seed != 1

    monkeypatch.setattr(runner, "execute", fake_execute)
    return calls


def test_local_runs_go_in_block_order_and_report_each_finished_block(recorded, tmp_path) -> None:
    suite = load_suite("smoke")
    states = block_states(suite, tmp_path, suite.blocks())
    finished = []
    outcome = runner.run_local(suite, tmp_path, states, 1, lambda b: finished.append(b.name))
    assert [(b, m) for b, m, _ in recorded] == [
        (b.name, m) for b in suite.blocks() for m in suite.methods
    ]
    assert finished == ["jsrt-n9-s0", "ph2-n40-s0"]  # seed 1's blocks each have a failed run
    assert outcome.failed == ["jsrt-n9-s1/baseline_noaug", "ph2-n40-s1/baseline_noaug"]


def test_slurm_runs_each_block_as_one_job_on_one_machine(recorded, tmp_path) -> None:
    suite = load_suite("smoke")
    states = block_states(suite, tmp_path, suite.blocks())
    jobs = runner.submit_slurm(suite, tmp_path, states, {"cluster": "debug", "timeout_min": 5})
    assert len(jobs) == len(suite.blocks())
    failed = [job.result() for job in jobs]  # the debug cluster runs a job when asked for it
    assert failed == [[], [], ["jsrt-n9-s1/baseline_noaug"], ["ph2-n40-s1/baseline_noaug"]]
    by_job = [recorded[i : i + 2] for i in range(0, len(recorded), 2)]
    for calls in by_job:  # a job's two methods are one block's, one after the other
        assert len({block for block, _, _ in calls}) == 1


def test_a_failed_run_is_set_aside_before_it_is_trained_again(tmp_path) -> None:
    suite = load_suite("smoke")
    block = suite.blocks()[0]
    path = tmp_path / block.name / "baseline"
    path.mkdir(parents=True)
    (path / "status.json").write_text(json.dumps({"status": "failed"}))
    (path / "train.log").write_text("the reason")
    (state,) = block_states(suite, tmp_path, [block])
    runner.set_aside(tmp_path, state.runs[0])
    assert not path.exists()
    kept = tmp_path / "failed" / block.name / "baseline-1" / "train.log"
    assert kept.read_text() == "the reason"

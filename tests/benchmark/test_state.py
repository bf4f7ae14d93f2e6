"""Suites sharing one out folder: a run another suite made with the same overrides is this
suite's run too; a same-named run made with other overrides is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from genseg_cli.benchmark.state import block_states, same_run, this_machine
from genseg_cli.benchmark.suite import Suite, load_suite
from genseg_cli.core.errors import GensegError

SMOKE = Path(__file__).parents[2] / "conf" / "benchmark" / "smoke.yaml"


def variant(tmp_path: Path, name: str, methods: dict) -> Suite:
    """The smoke suite with other methods, as conf/benchmark would hold it."""
    raw = yaml.safe_load(SMOKE.read_text())
    raw["methods"] = methods
    raw["minutes"] = {m: 0.2 for m in methods}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_suite(str(path))


def make_done_run(suite: Suite, out: Path, method: str, overrides: list[str] | None = None):
    """A finished run of the first block, with the overrides it was made with."""
    block = suite.blocks()[0]
    folder = out / block.name / method
    folder.mkdir(parents=True)
    made_with = overrides if overrides is not None else suite.run_overrides(block, method)
    (folder / "overrides.yaml").write_text(yaml.safe_dump(made_with))
    (folder / "status.json").write_text(json.dumps({"status": "done"}))
    (folder / "metrics.json").write_text(json.dumps({"machine": this_machine()}))
    return folder


def test_a_run_another_suite_made_with_the_same_overrides_counts_as_done(tmp_path) -> None:
    first = variant(tmp_path, "first", {"baseline": {"method": "baseline"}})
    second = variant(
        tmp_path, "second", {"baseline": {"method": "baseline"}, "sep": {"method": "separate"}}
    )
    out = tmp_path / "runs"
    make_done_run(first, out, "baseline")
    (state, *_) = block_states(second, out, second.blocks())
    assert {r.method: r.status for r in state.runs} == {"baseline": "done", "sep": "missing"}
    assert state.status == "partial"


def test_order_and_display_overrides_do_not_make_another_run(tmp_path) -> None:
    suite = load_suite("smoke")
    block = suite.blocks()[0]
    shuffled = list(reversed(suite.run_overrides(block, "baseline")))
    shuffled.remove("trainer.progress=false")
    shuffled = [o.replace("=true", "=True") for o in shuffled]  # one value, another spelling
    make_done_run(suite, tmp_path, "baseline", shuffled)
    (state, *_) = block_states(suite, tmp_path, suite.blocks())
    assert state.runs[0].status == "done"


def test_a_same_named_run_made_with_other_overrides_is_refused(tmp_path) -> None:
    first = variant(tmp_path, "first", {"baseline": {"method": "baseline", "ssl": "fixmatch"}})
    second = load_suite("smoke")
    folder = make_done_run(first, tmp_path, "baseline")
    with pytest.raises(GensegError) as err:
        block_states(second, tmp_path, second.blocks())
    message = str(err.value)
    assert str(folder) in message and "ssl=fixmatch" in message and "out=" in message


def test_the_shipped_cpu_suites_make_their_common_runs_alike() -> None:
    """docs/benchmark.md: one out shares baseline, genseg and the FixMatch runs among them."""
    suites = [load_suite(n) for n in ("cpu", "nnunet", "comparators", "generator")]
    reference = suites[0]
    shared = 0
    for other in suites[1:]:
        for block in other.blocks():
            if block not in reference.blocks():
                continue
            for method in set(other.methods) & set(reference.methods):
                assert same_run(
                    other.run_overrides(block, method), reference.run_overrides(block, method)
                ), (other.name, block.name, method)
                shared += 1
    assert shared >= 40

"""The README's results table is the benchmark's own table, pasted between markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from genseg_cli.benchmark.report import glance_section, paste_into_readme
from genseg_cli.core.errors import GensegError

REPO = Path(__file__).resolve().parents[2]
BENCHMARK_MD = """# Benchmark `cpu`

five datasets. Reference method: baseline. Blocks complete and valid: 1 of 25.

A block is ...

## Scored with the kept checkpoint (best validation Dice)

| dataset | method |
|---|---|
| jsrt-9 | genseg |

## Scored with the final weights (last step)

| dataset | method |
"""


def test_paste_replaces_only_what_lies_between_the_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- benchmark:cpu -->\nold table\n<!-- /benchmark:cpu -->\nend\n")
    paste_into_readme(readme, "cpu", BENCHMARK_MD, Path("results/cpu"))
    text = readme.read_text()
    assert text.startswith("intro\n<!-- benchmark:cpu -->\n") and text.endswith("cpu -->\nend\n")
    assert "old table" not in text and "| jsrt-9 | genseg |" in text
    assert "final weights" not in text  # the first table only
    assert "\n## " not in text  # no heading that would break the README's outline


def test_a_readme_without_markers_is_refused_and_left_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    with pytest.raises(GensegError, match="benchmark:cpu"):
        paste_into_readme(readme, "cpu", BENCHMARK_MD, Path("results/cpu"))
    assert readme.read_text() == "no markers\n"


def test_the_readme_shows_the_committed_cpu_table() -> None:
    committed = REPO / "results" / "cpu" / "benchmark.md"
    if not committed.is_file():
        pytest.skip("no committed results/cpu/benchmark.md yet")
    readme = (REPO / "README.md").read_text()
    assert glance_section(committed.read_text()) in readme

"""`genseg report runs_csv=FILE out=DIR`: an earlier report's runs.csv rebuilds the same tables
after the run folders are gone, including the older runs.csv files under results/; the terminal
tables keep every number whole at 80 columns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from genseg_cli.cli import main
from tests.report.fake_runs import fake_run

REPO = Path(__file__).resolve().parents[2]


def table_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("|")]


def sweep(root: Path) -> Path:
    for seed, (base, gen) in enumerate([(0.80, 0.82), (0.78, 0.81), (0.83, 0.82)]):
        ood = {"nlm_mc": base - 0.1}
        fake_run(root / f"b{seed}", method="baseline", seed=seed, dice=base, ood=ood)
        fake_run(root / f"g{seed}", method="genseg", seed=seed, dice=gen, ood=ood)
    return root


def test_rebuilt_tables_match_the_report_from_run_folders(tmp_path: Path) -> None:
    runs = sweep(tmp_path / "sweep")
    assert main(["report", f"sweep_dir={runs}"]) == 0
    first = runs / "report"
    assert main(["report", f"runs_csv={first / 'runs.csv'}", f"out={tmp_path / 'again'}"]) == 0
    for name in ("summary.md", "paired.md"):
        assert table_lines(tmp_path / "again" / name) == table_lines(first / name), name
    assert (tmp_path / "again" / "paired_jsrt.png").is_file()


@pytest.mark.parametrize("grid", ["ssl_screen", "genseg_ssl"])
def test_committed_results_rebuild(grid: str, tmp_path: Path) -> None:
    """The runs.csv files under results/ predate the setup and start-weights columns."""
    source = REPO / "results" / grid / "runs.csv"
    assert main(["report", f"runs_csv={source}", f"out={tmp_path}"]) == 0
    assert "busi" in (tmp_path / "summary.md").read_text()


def test_runs_csv_needs_out_and_excludes_sweep_dir(tmp_path: Path, capsys) -> None:
    csv = REPO / "results" / "ssl_screen" / "runs.csv"
    assert main(["report", f"runs_csv={csv}"]) == 2
    assert main(["report", f"runs_csv={csv}", f"sweep_dir={tmp_path}", f"out={tmp_path}"]) == 2
    assert main(["report", f"runs_csv={tmp_path / 'none.csv'}", f"out={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "needs out=DIR" in err and "not both" in err and "is not a file" in err


def test_terminal_tables_keep_numbers_whole_at_80_columns(tmp_path: Path) -> None:
    csv = REPO / "results" / "ssl_screen" / "runs.csv"
    out = subprocess.run(
        [sys.executable, "-m", "genseg_cli", "report", f"runs_csv={csv}", f"out={tmp_path}"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "80", "PATH": ""},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "+0.0323 ± 0.0343 (2/3)" in out.stdout
    assert "0.6465 ± 0.0361" in out.stdout and "baseline+fixmatch" in out.stdout
    assert max(len(line) for line in out.stdout.splitlines()) <= 80

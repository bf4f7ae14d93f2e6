"""`genseg runs [DIR]`: every run folder with its status, what it is, its score and its folder;
`genseg runs --disk [--clean] [DIR]`: the space genseg can give back, and giving it back."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from genseg_cli.cli import STAGES
from genseg_cli.cli import main as cli_main
from genseg_cli.core.errors import GensegError
from genseg_cli.report.disk import CACHE, LAST
from genseg_cli.stages import runs
from tests.report.fake_runs import fake_run


def genseg_runs(*args: str) -> int:
    """`genseg runs ...` through the command line where the stage is registered."""
    if "runs" in STAGES:
        return cli_main(["runs", *args])
    return runs.main(list(args))


def started(folder: Path, when: float) -> None:
    """Date every file of a run folder (the listing's start time and order)."""
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (when, when))


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COLUMNS", "100")
    root = tmp_path / "outputs"
    now = time.time()
    done = fake_run(root / "grid" / "z_done", method="genseg", dice=0.8125, train_time_s=754)
    failed = fake_run(
        root / "grid" / "a_failed", method="baseline", status="failed", reason="CUDA out of memory"
    )
    stopped = fake_run(
        root / "b_stopped", status="interrupted", reason="stopped by SIGTERM\ntraceback..."
    )
    # a pre-flight failure in a sweep: only Hydra's files and the status, no overrides.yaml
    pre = root / "grid" / "c_preflight"
    fake_run(pre, status="failed", reason="dataset 'ph2' not found")
    (pre / "overrides.yaml").unlink()
    (pre / ".hydra").mkdir()
    (pre / ".hydra" / "overrides.yaml").write_text("- dataset=ph2\n- method=separate\n- seed=2\n")
    (pre / ".hydra" / "config.yaml").write_text(
        "dataset:\n  name: ph2\n  metric: iou\n  label_budgets: [40, 100]\n"
        "method:\n  name: separate\nssl:\n  label: ''\nseed: 2\n"
        "n_labeled: ${dataset.label_budgets.0}\n"
    )
    for i, folder in enumerate((done, failed, stopped, pre)):  # started in this order
        started(folder, now - 3600 + 60 * i)
    return root


def lines_of(out: str) -> dict[str, str]:
    """Table lines by their folder (the last cell)."""
    return {line.split()[-1]: line for line in out.splitlines() if line.split()}


def test_runs_lists_every_run_with_its_status(outputs: Path, capsys):
    assert genseg_runs(str(outputs)) == 0
    out = capsys.readouterr().out
    rows = lines_of(out)
    done = rows["grid/z_done"].split()
    assert done[:6] == ["done", "jsrt", "genseg", "9", "0", "0.8125"]
    assert "12m34s" in done
    assert rows["grid/a_failed"].split()[:3] == ["failed", "jsrt", "baseline"]
    assert rows["b_stopped"].split()[0] == "stopped"
    # what a pre-flight failure was, from Hydra's config (its budget an interpolation)
    assert rows["grid/c_preflight"].split()[:5] == ["failed", "ph2", "separate", "40", "2"]
    # sorted by start time, not by path
    order = [line.split()[-1] for line in out.splitlines() if line.split()[-1] in rows]
    table = [f for f in order if f in ("grid/z_done", "grid/a_failed", "b_stopped")]
    assert table == ["grid/z_done", "grid/a_failed", "b_stopped"]
    assert "failed grid/a_failed: CUDA out of memory" in out
    assert "stopped b_stopped: stopped by SIGTERM" in out and "traceback" not in out
    assert "4 runs under" in out and "1 done, 2 failed, 1 stopped" in out
    folders = {"grid/z_done", "grid/a_failed", "b_stopped", "grid/c_preflight"}
    table = [line for line in out.splitlines() if line.split() and line.split()[-1] in folders]
    assert len(table) == 4 and all(len(line) <= 100 for line in table)  # one line per run


def test_runs_filters_by_status(outputs: Path, capsys):
    assert genseg_runs(str(outputs), "--status", "failed") == 0
    rows = lines_of(capsys.readouterr().out)
    assert "grid/a_failed" in rows and "grid/c_preflight" in rows
    assert "grid/z_done" not in rows and "b_stopped" not in rows
    assert genseg_runs(str(outputs), "--status=done,stopped") == 0
    rows = lines_of(capsys.readouterr().out)
    assert "grid/z_done" in rows and "b_stopped" in rows and "grid/a_failed" not in rows


def test_runs_reads_outputs_by_default(outputs: Path, capsys, monkeypatch):
    monkeypatch.chdir(outputs.parent)
    monkeypatch.delenv("GENSEG_OUTPUT_DIR", raising=False)
    assert genseg_runs() == 0
    assert "grid/z_done" in capsys.readouterr().out


def test_runs_errors_on_a_missing_folder(tmp_path: Path, capsys):
    missing = tmp_path / "nowhere"
    with pytest.raises(GensegError, match=f"no run folder {missing}") as err:
        runs.main([str(missing)])
    assert err.value.exit_code == 2
    if "runs" in STAGES:
        assert cli_main(["runs", str(missing)]) == 2
        assert f"no run folder {missing}" in capsys.readouterr().err
    with pytest.raises(GensegError, match="--status takes"):
        runs.main([str(tmp_path), "--status", "finished"])
    with pytest.raises(GensegError, match="one folder"):
        runs.main([str(tmp_path), str(tmp_path)])


def test_runs_help(capsys):
    assert genseg_runs("--help") == 0
    assert "usage: genseg runs [DIR]" in capsys.readouterr().out


def test_runs_shows_iou_where_it_is_the_headline_metric(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    run = fake_run(tmp_path / "ph2_run", dataset="ph2", n_labeled=40, dice=0.9)  # IoU 0.81
    (run / "config.yaml").write_text("dataset:\n  name: ph2\n  metric: iou\n")
    fake_run(tmp_path / "jsrt_run", dice=0.8)
    assert genseg_runs(str(tmp_path)) == 0
    rows = lines_of(capsys.readouterr().out)
    assert rows["folder"].split()[5:7] == ["Dice", "IoU"]
    assert rows["ph2_run"].split()[5:7] == ["0.9000", "0.8100"]
    assert rows["jsrt_run"].split()[5:7] == ["0.8000", "1m00s"]  # no IoU for a Dice dataset


def test_runs_at_80_columns_fold_the_variant_and_folder_never_cut_them(
    tmp_path: Path, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "80")
    deep = tmp_path / "a_sweep_with_a_long_name" / "jsrt_unet_genseg_n9_s0_20250101-120000"
    fake_run(deep, method="genseg", overrides=["optim.optimizer.lr=0.002", "mlo.arch_lr=0.02"])
    fake_run(tmp_path / "plain", method="genseg")
    assert genseg_runs(str(tmp_path)) == 0
    out = capsys.readouterr().out
    table = out.split("start weights: none\n", 1)[1]  # the title lines wrap as the shell does
    assert "…" not in table and all(len(line) <= 80 for line in table.splitlines())
    lines = table.splitlines()
    header = next(line for line in lines if line.startswith("status"))
    method, n_column, folder = (
        header.index("method"),
        header.index(" n ") + 1,
        header.index("folder"),
    )
    rows = lines[lines.index(header) + 2 :]
    # the folded pieces of each column, read back in order
    methods = "".join(line[method:n_column].strip() for line in rows)
    folders = "".join(line[folder:].strip() for line in rows)
    assert str(deep.relative_to(tmp_path)) in folders
    assert "[mlo.arch_lr=0.02optim.optimizer.lr=0.002]" in methods


@pytest.fixture
def held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(DIR: a done run with last.pt, one without, a stopped, a failed and a running one with
    theirs, a cache of its own; the output dir, elsewhere, with the default cache)."""
    from tests.report.test_disk import with_checkpoints

    monkeypatch.setenv("COLUMNS", "80")
    root, output = tmp_path / "grid", tmp_path / "outputs"
    monkeypatch.setenv("GENSEG_OUTPUT_DIR", str(output))
    sizes = {"done": 172_000, "interrupted": 5000, "failed": 6000, "running": 7000}
    for status, size in sizes.items():
        with_checkpoints(fake_run(root / status, status=status), size)
    with_checkpoints(fake_run(root / "done_dropped"), None)
    for folder, size in ((root / CACHE, 109_000), (output / CACHE, 2_000_000)):
        folder.mkdir(parents=True)
        (folder / "g.pt").write_bytes(b"c" * size)
    return root, output


def files_under(*roots: Path) -> set[Path]:
    return {p for root in roots for p in root.rglob("*") if p.is_file()}


def test_runs_disk_lists_each_file_with_its_size_and_clean_removes_exactly_them(held, capsys):
    root, output = held
    (root / "running" / "status.json").write_text('{"status": "failed"}')  # none running
    before = files_under(root, output)
    assert genseg_runs("--disk", str(root)) == 0
    out = capsys.readouterr().out
    assert files_under(root, output) == before  # listing removes nothing
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "172.0 kB last.pt of run done" in lines
    assert "109.0 kB generator cache cache/generators/g.pt" in lines
    assert f"2.0 MB generator cache {output / CACHE / 'g.pt'}" in lines
    assert any(line.startswith("2.3 MB in all (3 files)") for line in lines), out
    assert "kept: last.pt of 3 stopped, failed or running runs (18.0 kB)" in out
    assert not any(w in out for w in ("interrupted ", "done_dropped", "best.pt "))

    assert genseg_runs("--disk", "--clean", str(root)) == 0
    out = capsys.readouterr().out
    gone = {root / "done" / LAST, root / CACHE / "g.pt", output / CACHE / "g.pt"}
    assert before - files_under(root, output) == gone
    assert "freed 2.3 MB (3 files)" in out
    assert genseg_runs("--disk", str(root)) == 0
    assert "nothing to give back" in capsys.readouterr().out


def test_runs_disk_clean_keeps_every_file_of_a_running_run_and_the_caches(held, capsys):
    root, output = held
    assert genseg_runs("--disk", "--clean", str(root)) == 0
    out = " ".join(capsys.readouterr().out.split())
    for status in ("running", "interrupted", "failed"):
        assert {p.name for p in (root / status / "checkpoints").iterdir()} == {"last.pt", "best.pt"}
    assert (root / CACHE / "g.pt").is_file() and (output / CACHE / "g.pt").is_file()
    assert not (root / "done" / LAST).exists() and (root / "done" / "checkpoints/best.pt").is_file()
    assert "2 generator caches (2.1 MB) while running is running" in out


@pytest.mark.parametrize(
    "args, words",
    [
        (["--disk", "{tmp}/nowhere"], "no run folder {tmp}/nowhere"),
        (["--clean", "{tmp}"], "--clean removes what --disk lists; give both"),
        (["--disk", "--status", "done", "{tmp}"], "--disk lists files"),
    ],
    ids=["missing-dir", "clean-without-disk", "disk-with-status"],
)
def test_runs_disk_mistakes_are_one_line_and_exit_2(args, words, tmp_path: Path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    code = cli_main(["runs", *(a.format(tmp=tmp_path) for a in args)])
    captured = capsys.readouterr()
    assert code == 2 and not captured.out
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    assert words.format(tmp=tmp_path) in captured.err and "Traceback" not in captured.err
    assert (tmp_path / "keep.txt").read_text() == "mine"

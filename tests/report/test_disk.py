"""The space genseg can give back: generator caches and last.pt of finished runs, never a file a
stopped, failed or running run needs, never best.pt (`genseg_cli.report.disk`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from genseg_cli.report.disk import CACHE, LAST, disk_use, remove, size_text
from tests.report.fake_runs import fake_run

SIZES = {"done": 3000, "interrupted": 500, "failed": 700, "running": 900}


def with_checkpoints(folder: Path, last: int | None) -> Path:
    """A run's checkpoints: best.pt always, last.pt of `last` bytes unless None."""
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    (folder / "checkpoints" / "best.pt").write_bytes(b"b" * 100)
    if last is not None:
        (folder / LAST).write_bytes(b"l" * last)
    return folder


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    """An output dir: a cache of two generators, and a run of each status with its last.pt
    (plus a finished run trained without one)."""
    root = tmp_path / "outputs"
    for status, size in SIZES.items():
        with_checkpoints(fake_run(root / "grid" / status, status=status), size)
    with_checkpoints(fake_run(root / "grid" / "done_dropped"), None)
    (root / CACHE).mkdir(parents=True)
    (root / CACHE / "a.pt").write_bytes(b"c" * 20_000)
    (root / CACHE / "b.pt").write_bytes(b"c" * 40_000)
    return root


def test_only_caches_and_finished_runs_last_pt_can_be_given_back(outputs: Path) -> None:
    (outputs / "grid" / "running" / "status.json").write_text('{"status": "done"}')
    use = disk_use(outputs, [outputs / CACHE, outputs / CACHE])  # one folder, counted once
    assert {(h.path, h.size) for h in use.freeable} == {
        (outputs / CACHE / "a.pt", 20_000),
        (outputs / CACHE / "b.pt", 40_000),
        (outputs / "grid" / "done" / LAST, 3000),
        (outputs / "grid" / "running" / LAST, 900),  # now done
    }
    assert use.total == 63_900
    assert {h.path for h in use.kept} == {
        outputs / "grid" / s / LAST for s in ("interrupted", "failed")
    }
    assert not any(h.path.name == "best.pt" for h in use.freeable + use.kept)


def test_a_running_run_keeps_its_last_pt_and_the_caches(outputs: Path) -> None:
    use = disk_use(outputs, [outputs / CACHE])
    assert [h.path for h in use.freeable] == [outputs / "grid" / "done" / LAST]
    assert use.running == [outputs / "grid" / "running"]
    kept = {h.path for h in use.kept}
    assert outputs / "grid" / "running" / LAST in kept and outputs / CACHE / "a.pt" in kept


def test_remove_deletes_exactly_the_files_given(outputs: Path) -> None:
    (outputs / "grid" / "running" / "status.json").write_text('{"status": "failed"}')
    before = {p for p in outputs.rglob("*") if p.is_file()}
    use = disk_use(outputs, [outputs / CACHE])
    removed, failed = remove(use.freeable)
    assert not failed and removed == use.freeable
    after = {p for p in outputs.rglob("*") if p.is_file()}
    assert before - after == {h.path for h in use.freeable}
    assert disk_use(outputs, [outputs / CACHE]).freeable == []


def test_sizes_read_in_decimal_units() -> None:
    assert [size_text(n) for n in (0, 999, 1000, 172_041_216, 109e6, 2.5e9)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "172.0 MB",
        "109.0 MB",
        "2.5 GB",
    ]


def test_a_finished_nnunet_runs_preprocessed_data_goes_a_stopped_ones_stays(tmp_path) -> None:
    from genseg_cli.report.disk import NNUNET_PREPROCESSED

    root = tmp_path / "outputs"
    for status in ("done", "interrupted"):
        run = fake_run(root / status, status=status)
        data = run / NNUNET_PREPROCESSED / "Dataset001_jsrt"
        data.mkdir(parents=True)
        (data / "case.npz").write_bytes(b"p" * 1234)
        (run / "nnunet" / "results").mkdir()
    use = disk_use(root, [])
    assert [(h.path, h.size, h.what) for h in use.freeable] == [
        (root / "done" / NNUNET_PREPROCESSED, 1234, "nnunet")
    ]
    removed, failed = remove(use.freeable)
    assert not failed and not (root / "done" / NNUNET_PREPROCESSED).exists()
    assert (root / "done" / "nnunet" / "results").is_dir()  # the trained fold stays
    assert (root / "interrupted" / NNUNET_PREPROCESSED / "Dataset001_jsrt").is_dir()

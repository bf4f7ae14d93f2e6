"""prepare_dataset itself: request checks, archives, overwriting and cleaning up on failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from genseg_cli.core.errors import GensegError
from genseg_cli.data.prepare import prepare_dataset
from tests.data.prepare.fake_downloads import check_output, mask, nifti, rgb, run


def test_unknown_name_lists_known(tmp_path: Path) -> None:
    with pytest.raises(GensegError, match="unknown dataset 'nope'.*kvasir"):
        prepare_dataset("nope", tmp_path, tmp_path / "out")


def test_missing_src_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(GensegError, match="nowhere.*does not exist"):
        prepare_dataset("kvasir", missing, tmp_path / "out")


def _kvasir_src(root: Path) -> Path:
    rgb(root / "images" / "a.jpg")
    mask(root / "masks" / "a.jpg")
    return root


def test_existing_dst_needs_overwrite(tmp_path: Path) -> None:
    src = _kvasir_src(tmp_path / "src")
    dst = tmp_path / "out"
    (dst / "images").mkdir(parents=True)
    (dst / "images" / "keep.png").write_bytes(b"mine")

    with pytest.raises(GensegError, match="--overwrite") as info:
        prepare_dataset("kvasir", src, dst)
    assert str(dst) in str(info.value)
    assert (dst / "images" / "keep.png").read_bytes() == b"mine"

    result = prepare_dataset("kvasir", src, dst, overwrite=True)
    check_output(result.dst, ["a"], ".jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


def test_corrupt_image_leaves_nothing_behind(tmp_path: Path) -> None:
    src = _kvasir_src(tmp_path / "src")
    bad = src / "images" / "b.jpg"
    bad.write_bytes(b"this is not a jpeg")
    mask(src / "masks" / "b.jpg")

    with pytest.raises(GensegError, match="b.jpg"):
        prepare_dataset("kvasir", src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "out.partial").exists()


def test_failed_overwrite_keeps_old_dataset(tmp_path: Path) -> None:
    src = _kvasir_src(tmp_path / "src")
    dst = tmp_path / "out"
    prepare_dataset("kvasir", src, dst)
    (src / "images" / "b.jpg").write_bytes(b"broken")
    mask(src / "masks" / "b.jpg")

    with pytest.raises(GensegError, match="b.jpg"):
        prepare_dataset("kvasir", src, dst, overwrite=True)
    check_output(dst, ["a"], ".jpg")


def test_jsrt_options_only_for_jsrt(tmp_path: Path) -> None:
    src = _kvasir_src(tmp_path / "src")
    with pytest.raises(GensegError, match="labels"):
        prepare_dataset("kvasir", src, tmp_path / "out", labels=[1])


def _msd_task(root: Path, ids: list[str]) -> Path:
    task = root / "Task04_Hippocampus"
    for key in ids:
        nifti(task / "imagesTr" / f"{key}.nii.gz")
        nifti(task / "labelsTr" / f"{key}.nii.gz")
    return task


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_prepare_reads_the_official_archive(tmp_path: Path, kind: str) -> None:
    import tarfile
    import zipfile

    ids = ["hippocampus_001", "hippocampus_003", "hippocampus_004"]
    task = _msd_task(tmp_path / "download", ids)
    archive = tmp_path / f"Task04_Hippocampus.{kind}"
    if kind == "tar":
        with tarfile.open(archive, "w") as tar:
            tar.add(task, arcname=task.name)
    else:
        with zipfile.ZipFile(archive, "w") as zf:
            for path in task.rglob("*"):
                zf.write(path, path.relative_to(task.parent))
    result = run("hippocampus", archive, tmp_path)
    assert result.n_pairs == 3
    assert sorted(p.name for p in (result.dst / "labelsTr").iterdir()) == [
        f"{k}.nii.gz" for k in ids
    ]
    assert not list(tmp_path.glob(".unpack-*"))  # the temporary folder is gone


def test_an_archive_escaping_its_folder_is_refused(tmp_path: Path) -> None:
    import io
    import tarfile

    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(GensegError, match="cannot unpack"):
        run("hippocampus", archive, tmp_path / "x")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "x" / "out").exists()


def test_a_file_that_is_no_archive_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "Task04_Hippocampus.tar"
    bogus.write_bytes(b"not an archive")
    with pytest.raises(GensegError, match="not a directory or a tar/zip archive"):
        run("hippocampus", bogus, tmp_path)

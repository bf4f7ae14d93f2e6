"""MSD volume converters: hippocampus and liver, copied as NIfTI with a split."""

from __future__ import annotations

from pathlib import Path

from genseg_cli.data.prepare import prepare_dataset
from tests.data.prepare.fake_downloads import nifti, run, split_rows


def test_hippocampus_copies_and_makes_split(tmp_path: Path) -> None:
    task = tmp_path / "src" / "Task04_Hippocampus"
    ids = [f"hippocampus_{n:03d}" for n in (1, 3, 4, 6, 7)]
    for key in ids:
        nifti(task / "imagesTr" / f"{key}.nii.gz")
        nifti(task / "labelsTr" / f"{key}.nii.gz")
    nifti(task / "labelsTr" / "hippocampus_009.nii.gz")  # label without image
    (task / "imagesTr" / "._hippocampus_001.nii.gz").write_bytes(b"junk")
    (task / "dataset.json").write_text('{"name": "Hippocampus"}')

    result = run("hippocampus", tmp_path / "src", tmp_path)

    dst = result.dst
    assert sorted(p.name for p in (dst / "imagesTr").iterdir()) == [f"{k}.nii.gz" for k in ids]
    assert sorted(p.name for p in (dst / "labelsTr").iterdir()) == [f"{k}.nii.gz" for k in ids]
    assert (dst / "dataset.json").read_text() == '{"name": "Hippocampus"}'
    assert result.n_pairs == 5 and result.has_split
    rows = split_rows(dst)
    assert rows[0] == "id,split" and [r.split(",")[0] for r in rows[1:]] == ids
    assert [r.split(",")[1] for r in rows[1:]].count("val") == 1
    assert any("hippocampus_009" in w for w in result.warnings)
    again = prepare_dataset("hippocampus", tmp_path / "src", tmp_path / "again")
    assert split_rows(again.dst) == rows  # seeded, so reproducible


def test_liver_src_is_task_folder_and_keeps_its_split(tmp_path: Path) -> None:
    task = tmp_path / "Task03_Liver"
    for key in ("liver_0", "liver_1"):
        nifti(task / "imagesTr" / f"{key}.nii.gz")
        nifti(task / "labelsTr" / f"{key}.nii.gz")
    (task / "split.csv").write_text("id,split\nliver_0,train\nliver_1,test\n")

    result = run("liver", task, tmp_path)

    assert result.n_pairs == 2 and not (result.dst / "dataset.json").exists()
    assert split_rows(result.dst) == ["id,split", "liver_0,train", "liver_1,test"]

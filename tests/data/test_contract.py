from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genseg_cli.core.errors import DataContractError
from genseg_cli.data.images import IMAGES
from genseg_cli.data.volumes import VOLUMES
from tests.conftest import write_pair


def test_real_dataset_satisfies_the_contract(data_dir: Path):
    report = IMAGES.check(data_dir / "ph2")
    assert report.n_pairs == 200 and report.problems == [] and report.warnings == []
    assert report.modes == {"RGB": 200}


def test_real_volumes_satisfy_the_contract(data_dir: Path):
    report = VOLUMES.check(data_dir / "hippocampus")
    assert report.n_pairs == 260 and report.problems == []
    assert {"label 0", "label 1", "label 2"} <= set(report.modes)


def test_orphans_are_listed_by_id(folder_dataset: Path):
    (folder_dataset / "masks" / "case03.png").unlink()
    write_pair(folder_dataset / "extra", "lonely")
    (folder_dataset / "extra" / "masks" / "lonely.png").rename(
        folder_dataset / "masks" / "lonely.png"
    )
    report = IMAGES.check(folder_dataset)
    assert report.orphan_images == ["case03"] and report.orphan_masks == ["lonely"]
    with pytest.raises(
        DataContractError, match="images without a mask: case03.*masks without an image: lonely"
    ):
        report.raise_if_broken()


def test_size_mismatch_names_id_and_sizes(folder_dataset: Path):
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(folder_dataset / "masks" / "case05.png")
    report = IMAGES.check(folder_dataset)
    assert list(report.size_mismatch) == ["case05"]
    assert "case05 (image 24x20, mask 10x10)" in report.problems[0]


def test_unreadable_file_is_named(folder_dataset: Path):
    (folder_dataset / "images" / "case07.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    report = IMAGES.check(folder_dataset)
    assert "case07" in report.unreadable
    assert "case07.png" in report.problems[0]


def test_truncated_image_is_unreadable(folder_dataset: Path):
    path = folder_dataset / "images" / "case01.png"
    path.write_bytes(path.read_bytes()[:60])
    assert "case01" in IMAGES.check(folder_dataset).unreadable


def test_nonbinary_mask_is_a_warning_with_a_count(tmp_path: Path):
    write_pair(tmp_path / "d", "a", mask_values=(0, 200))
    write_pair(tmp_path / "d", "b")
    report = IMAGES.check(tmp_path / "d")
    assert report.problems == [] and list(report.nonbinary) == ["a"]
    assert "120 pixels that are neither 0 nor 255" in report.warnings[0]


def test_empty_folder_is_a_problem(tmp_path: Path):
    (tmp_path / "images").mkdir()
    assert "no images" in IMAGES.check(tmp_path).problems[0]


def test_duplicate_ids_are_refused(folder_dataset: Path):
    Image.new("L", (24, 20)).save(folder_dataset / "images" / "case00.jpg")
    with pytest.raises(DataContractError, match="two files share the id 'case00'"):
        IMAGES.check(folder_dataset)

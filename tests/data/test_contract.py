from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genseg_cli.core.errors import DataContractError
from genseg_cli.data.images import IMAGES
from genseg_cli.data.io import read_mask
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


def test_masks_of_other_values_are_refused_naming_file_and_values(tmp_path: Path):
    write_pair(tmp_path / "d", "a", mask_values=(0, 200))
    write_pair(tmp_path / "d", "b")
    report = IMAGES.check(tmp_path / "d")
    assert list(report.bad_masks) == ["a"]
    assert "masks that are not 0/255 or 0/1: a.png (0, 200)" in report.problems[0]
    with pytest.raises(DataContractError, match=r"a\.png \(0, 200\)"):
        report.raise_if_broken()


def test_zero_one_masks_are_read_as_zero_255(tmp_path: Path):
    """nnU-Net's convention (and `genseg generate format=nnunet`'s): 1 is the foreground."""
    for key in ("a", "b"):
        write_pair(tmp_path / "d", key, mask_values=(0, 1))
    report = IMAGES.check(tmp_path / "d")
    assert report.problems == [] and report.conventions == {"0/1": 2}
    assert report.mask_convention.startswith("masks: 0/1")
    mask = read_mask(tmp_path / "d" / "masks" / "a.png")
    assert mask.dtype == bool and 0 < mask.mean() < 1
    write_pair(tmp_path / "e", "a")  # the same square stored as 0/255
    assert np.array_equal(mask, read_mask(tmp_path / "e" / "masks" / "a.png"))


def test_mixed_conventions_are_read_and_said(tmp_path: Path):
    write_pair(tmp_path / "d", "a", mask_values=(0, 1))
    write_pair(tmp_path / "d", "b")
    report = IMAGES.check(tmp_path / "d")
    assert report.problems == [] and "mixed" in report.mask_convention
    assert "mix conventions" in report.warnings[0]


def test_colour_masks_are_refused_but_grey_rgb_is_read_and_said(tmp_path: Path):
    write_pair(tmp_path / "d", "red")
    write_pair(tmp_path / "d", "grey")
    red = np.zeros((20, 24, 3), np.uint8)
    red[5:15, 6:18, 0] = 255
    Image.fromarray(red, "RGB").save(tmp_path / "d" / "masks" / "red.png")
    grey = np.asarray(Image.open(tmp_path / "d" / "masks" / "grey.png").convert("RGB"))
    Image.fromarray(grey, "RGB").save(tmp_path / "d" / "masks" / "grey.png")
    report = IMAGES.check(tmp_path / "d")
    assert list(report.bad_masks) == ["red"]
    assert "red.png (colour (0, 0, 0), (255, 0, 0))" in report.problems[0]
    assert report.grey_rgb_masks == 1 and "stored as RGB" in report.mask_convention


def test_palette_masks_are_read_by_their_indices(tmp_path: Path):
    write_pair(tmp_path / "d", "a")
    indices = (np.asarray(Image.open(tmp_path / "d" / "masks" / "a.png")) > 0).astype(np.uint8)
    palette = Image.fromarray(indices, "P")
    palette.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)  # VOC-style: foreground dark red
    palette.save(tmp_path / "d" / "masks" / "a.png")
    report = IMAGES.check(tmp_path / "d")
    assert report.problems == [] and report.conventions == {"0/1": 1}


def test_all_empty_masks_are_refused_for_training_only(tmp_path: Path):
    for key in ("a", "b"):
        write_pair(tmp_path / "d", key, mask_values=(0, 0))
    report = IMAGES.check(tmp_path / "d")
    assert report.problems == [] and report.all_empty  # scoring healthy cases is fine
    with pytest.raises(DataContractError, match="all 2 masks are empty"):
        report.raise_if_broken(training=True)


def test_empty_folder_is_a_problem(tmp_path: Path):
    (tmp_path / "images").mkdir()
    assert "no images" in IMAGES.check(tmp_path).problems[0]


def test_duplicate_ids_are_refused(folder_dataset: Path):
    Image.new("L", (24, 20)).save(folder_dataset / "images" / "case00.jpg")
    with pytest.raises(DataContractError, match="two files share the id 'case00'"):
        IMAGES.check(folder_dataset)
